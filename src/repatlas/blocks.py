"""Block structure of within-model CKA heatmaps, and its first-PC explanation (Nguyen et al. 2021).

Blocks are found by `detect_blocks`: runs of layers with high pairwise CKA whose
first principal component dominates (mean PC1 variance share ≥ `min_pc1_share`), the paper's
block structure; `model_blocks` applies it to one model's within-model CKA and first-PC analysis.
This module summarises blocks per model (`block_summary`, `block_table`, with each block's PC1
share and its CKA before and after removing PC1), compares seeds inside and outside blocks
(`seed_similarity`: inside blocks, representations are unique to each seed), and computes the
first-PC analysis itself (`first_pc_analysis`: the share of variance of PC1 per layer, and
full-data CKA before and after projecting PC1 out of every layer).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse.linalg import eigsh  # scipy comes with scikit-learn

from repatlas import activations
from repatlas.cka import MIN_BATCH, ucentre
from repatlas.model_ids import parse_model_id
from repatlas.threads import pinned_threads

DENSE_EIGH_MAX = 512  # above this many examples, Lanczos (one eigenpair) beats a full eigh
RANK_ONE_TOL = 1e-12  # 1 − pc1_ratio below this: nothing is left once PC1 is removed


# ----------------------------------------------------------------------------- block summaries


def _matrix(cka, name: str) -> np.ndarray:
    values = cka.values if hasattr(cka, "dims") else cka
    k = np.asarray(values, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{name} must be a square 2-D (layer, layer) matrix; got shape {k.shape}")
    return k


def _layer_names(cka, n: int) -> list[str]:
    if hasattr(cka, "dims"):
        return [str(v) for v in cka[cka.dims[0]].values]
    return [str(i) for i in range(n)]


def check_blocks(blocks, n: int, name: str) -> list[tuple[int, int]]:
    """`blocks` as (start, end) int pairs after checking that they are inclusive, in-order,
    non-overlapping layer indices in [0, n − 1]; a ValueError naming `name` otherwise."""
    out, previous_end = [], -1
    for block in blocks:
        try:
            start, end = (int(v) for v in block)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be (start, end) index pairs; got {block!r}") from None
        if not previous_end < start <= end < n:
            raise ValueError(
                f"{name}: block {block!r} is not an in-order, non-overlapping (start, end) "
                f"pair of layer indices in [0, {n - 1}]"
            )
        out.append((start, end))
        previous_end = end
    return out


def in_block(blocks, n: int) -> np.ndarray:
    """Boolean mask over n layers: True for the layers inside one of the (checked) `blocks`."""
    mask = np.zeros(n, dtype=bool)
    for start, end in blocks:
        mask[start : end + 1] = True
    return mask


def block_summary(cka, blocks) -> dict:
    """Numbers describing the blocks of one within-model CKA heatmap.

    `cka`: square matrix or DataArray (layer_a, layer_b); `blocks`: (start, end) inclusive index
    pairs, e.g. from `detect_blocks`. Relative depth is index / (n_layers − 1); the largest
    block is the first (shallowest) of the longest. `mean_in_block_cka` pools all off-diagonal
    pairs of all blocks (a long block weighs more than a short one). `blocks` names the layers
    (DataArray) or indices (array), e.g. "block3-block9;block12-pool"; "" when there is none.
    """
    k = _matrix(cka, "cka")
    n = len(k)
    blocks = check_blocks(blocks, n, "blocks")
    names = _layer_names(cka, n)
    lengths = [end - start + 1 for start, end in blocks]
    pair_sum = sum(k[s : e + 1, s : e + 1].sum() - np.trace(k[s : e + 1, s : e + 1]) for s, e in blocks)
    pairs = sum(m * (m - 1) for m in lengths)
    if blocks:
        start, end = blocks[int(np.argmax(lengths))]
        largest_start, largest_end = start / (n - 1), end / (n - 1)
    else:
        largest_start = largest_end = float("nan")
    return {
        "n_layers": n,
        "n_blocks": len(blocks),
        "block_layers": int(sum(lengths)),
        "largest_length": max(lengths, default=0),
        "largest_start": largest_start,
        "largest_end": largest_end,
        "mean_in_block_cka": float(pair_sum / pairs) if pairs else float("nan"),
        "blocks": ";".join(f"{names[s]}-{names[e]}" for s, e in blocks),
    }


def _mean_pairs(k: np.ndarray, start: int, end: int) -> float:
    """Mean of the off-diagonal entries of k[start..end, start..end] (NaN entries skipped)."""
    square = k[start : end + 1, start : end + 1]
    values = square[~np.eye(len(square), dtype=bool)]
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def first_pc_summary(first_pc, blocks) -> dict:
    """What the first principal component says about the blocks of one model.

    `first_pc`: a `first_pc_analysis` Dataset; `blocks`: (start, end) index pairs into its layers.
    Per block (";"-joined, in block order): block_pc1_share = mean PC1 variance share of its
    layers; block_cka = mean full-data CKA over its layer pairs and block_cka_without_pc1 the same
    after projecting PC1 out (the paper: a block is PC1, so its CKA collapses without it).
    largest_* are the same numbers for the largest block (`block_summary`'s), NaN without blocks;
    mean_pc1_share is over all layers.
    """
    share = np.asarray(first_pc["pc1_ratio"].values, dtype=np.float64)
    n = len(share)
    blocks = check_blocks(blocks, n, "blocks")
    with_pc1 = _matrix(first_pc["cka"], "first_pc['cka']")
    without = _matrix(first_pc["cka_without_pc1"], "first_pc['cka_without_pc1']")
    rows = [(float(share[s : e + 1].mean()), _mean_pairs(with_pc1, s, e), _mean_pairs(without, s, e))
            for s, e in blocks]
    largest = rows[int(np.argmax([e - s for s, e in blocks]))] if blocks else (float("nan"),) * 3

    def joined(i):
        return ";".join(f"{row[i]:.4f}" for row in rows)

    return {
        "mean_pc1_share": float(share.mean()),
        "largest_pc1_share": largest[0],
        "largest_cka": largest[1],
        "largest_cka_without_pc1": largest[2],
        "block_pc1_share": joined(0),
        "block_cka": joined(1),
        "block_cka_without_pc1": joined(2),
    }


def model_blocks(cka, first_pc, *, threshold: float, min_length: int, min_pc1_share: float,
                 source: str = "the within-model CKA"):
    """Blocks of one model: `detect_blocks` on its within-model CKA (DataArray) with the per-layer
    PC1 shares of its `first_pc_analysis` Dataset, whose layers must be the CKA's, in order."""
    return blocks_over(cka, first_pc["layer"].values, threshold=threshold, min_length=min_length,
                       pc1_share=first_pc["pc1_ratio"].values, min_pc1_share=min_pc1_share, source=source)


def seed_similarity(across, blocks_a, blocks_b) -> dict:
    """Mean cross-seed CKA of corresponding layers inside and outside blocks.

    `across`: CKA (layer_a, layer_b) between seeds a and b of one architecture; its diagonal
    compares corresponding layers. "inside" averages the layers inside a block of both seeds'
    heatmaps, "outside" the layers inside a block of neither; layers in a block of only one
    seed are left out. NaN where no layer qualifies.
    """
    k = _matrix(across, "across")
    if hasattr(across, "dims"):
        rows, cols = (list(across[d].values) for d in across.dims)
        if rows != cols:
            raise ValueError("across must compare the same layers along both axes "
                             "(two seeds of one architecture)")
    n = len(k)
    in_a = in_block(check_blocks(blocks_a, n, "blocks_a"), n)
    in_b = in_block(check_blocks(blocks_b, n, "blocks_b"), n)
    diagonal = np.diagonal(k)

    def mean(mask):
        return float(diagonal[mask].mean()) if mask.any() else float("nan")

    return {"inside": mean(in_a & in_b), "outside": mean(~in_a & ~in_b)}


def _mean_finite(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def block_table(within, *, threshold: float, min_length: int, seed_pairs=(), first_pc=None,
                min_pc1_share: float = 0.5, test_accuracy=None):
    """One row per model: parsed id, `block_summary` of its heatmap, optional seed similarity.

    `within` maps flat model ids to within-model CKA DataArrays. With `first_pc` (model id →
    `first_pc_analysis` Dataset over the same layers, as the pipeline runs it), blocks must also be
    PC1-dominated (`model_blocks`, `min_pc1_share`), and each row gains `first_pc_summary`'s
    columns plus n_cka_runs, the runs that high CKA alone would call blocks (the difference is
    stage-level similarity without a dominant PC1). `seed_pairs` holds (id_a, id_b, across)
    tuples of two seeds of one architecture; each model then gets seed_cka_inside /
    seed_cka_outside = mean of `seed_similarity` over the pairs it is in (pairs where the value is
    undefined are skipped) and n_seed_pairs. `test_accuracy` (model id → the model's test
    accuracy) adds that column: block structure in a badly trained model proves nothing.
    Returns a DataFrame.
    """
    if not within:
        raise ValueError("within must map at least one model id to its CKA heatmap")
    if first_pc is not None and set(first_pc) != set(within):
        raise KeyError(f"first_pc must cover the models of within; "
                       f"missing {sorted(set(within) - set(first_pc))}, "
                       f"extra {sorted(set(first_pc) - set(within))}")
    rows, blocks_of, ids = [], {}, {}
    for model_id, cka in within.items():
        ids[model_id] = parse_model_id(model_id)
        row = {"model": model_id, **ids[model_id]}
        if first_pc is None:
            blocks_of[model_id] = detect_blocks(cka, threshold=threshold, min_length=min_length)
            extra = {}
        else:
            blocks_of[model_id] = model_blocks(cka, first_pc[model_id], threshold=threshold,
                                               min_length=min_length, min_pc1_share=min_pc1_share,
                                               source=f"within-model CKA of {model_id}")
            runs = detect_blocks(cka, threshold=threshold, min_length=min_length)
            extra = {"n_cka_runs": len(runs), **first_pc_summary(first_pc[model_id], blocks_of[model_id]),
                     "min_pc1_share": float(min_pc1_share)}
        if test_accuracy is not None:
            row["test_accuracy"] = float(test_accuracy[model_id])
        rows.append({**row, **block_summary(cka, blocks_of[model_id]), **extra,
                     "threshold": float(threshold), "min_length": int(min_length)})
    table = pd.DataFrame(rows)
    if not seed_pairs:
        return table
    inside = {m: [] for m in within}
    outside = {m: [] for m in within}
    for id_a, id_b, across in seed_pairs:
        for model_id in (id_a, id_b):
            if model_id not in within:
                raise KeyError(f"seed_pairs: model {model_id!r} has no within-model heatmap in `within`")
        a, b = ({k: v for k, v in ids[m].items() if k != "seed"} for m in (id_a, id_b))
        if a != b or id_a == id_b:
            raise ValueError(f"seed_pairs: {id_a!r} and {id_b!r} are not two seeds of one architecture")
        n_layers = table.loc[table.model == id_a, "n_layers"].iloc[0]
        if _matrix(across, "across").shape[0] != n_layers:
            raise ValueError(f"seed_pairs: across CKA of {id_a!r} vs {id_b!r} "
                             f"does not have its {n_layers} layers")
        sim = seed_similarity(across, blocks_of[id_a], blocks_of[id_b])
        for model_id in (id_a, id_b):
            inside[model_id].append(sim["inside"])
            outside[model_id].append(sim["outside"])
    table["seed_cka_inside"] = [_mean_finite(inside[m]) for m in table.model]
    table["seed_cka_outside"] = [_mean_finite(outside[m]) for m in table.model]
    table["n_seed_pairs"] = [len(inside[m]) for m in table.model]
    return table


# ----------------------------------------------------------------------------- first principal component


def _centred_gram(array, n: int, rows: int, name: str) -> np.ndarray:
    """float64 Gram (n, n) of the column-centred first n rows, read `rows` rows at a time.

    A first pass takes the float64 column means; the Gram is then built from centred float64
    values, so a large common offset in float32 activations does not cancel catastrophically.
    """
    spans = [(lo, min(lo + rows, n)) for lo in range(0, n, rows)]

    def read(lo, hi):
        return activations.read_rows(array, lo, hi).astype(np.float64).reshape(hi - lo, -1)

    if len(spans) == 1:
        x = read(0, n)
        x -= x.mean(0)
        gram = x @ x.T
    else:
        mean = sum(read(lo, hi).sum(0) for lo, hi in spans) / n
        gram = np.empty((n, n))
        for i, (lo, hi) in enumerate(spans):
            xa = read(lo, hi) - mean
            gram[lo:hi, lo:hi] = xa @ xa.T
            for lo_b, hi_b in spans[i + 1 :]:
                block = xa @ (read(lo_b, hi_b) - mean).T
                gram[lo:hi, lo_b:hi_b] = block
                gram[lo_b:hi_b, lo:hi] = block.T
    if not np.isfinite(gram).all():
        raise ValueError(f"layer {name!r} contains NaN or Inf")
    return gram


def _top_eigenpair(gram: np.ndarray) -> tuple[float, np.ndarray]:
    if len(gram) <= DENSE_EIGH_MAX:
        values, vectors = np.linalg.eigh(gram)
        return float(values[-1]), vectors[:, -1]
    # a fixed random start (not the ones vector, which lies in the centred Gram's null space)
    start = np.random.default_rng(0).standard_normal(len(gram))
    values, vectors = eigsh(gram, k=1, which="LA", v0=start, tol=0)
    return float(values[0]), vectors[:, 0]


def _cka_of_stack(stack: np.ndarray, undefined=()) -> np.ndarray:
    """CKA matrix of centred (or U-centred) Grams stacked (layers, n, n); NaN rows for `undefined`."""
    flat = stack.reshape(len(stack), -1)
    inner = flat @ flat.T
    norms = np.sqrt(np.clip(np.diagonal(inner), 0, None))
    scale = np.outer(norms, norms)
    with np.errstate(invalid="ignore", divide="ignore"):
        cka = np.where(scale > 0, inner / scale, np.nan)
    cka[list(undefined), :] = np.nan
    cka[:, list(undefined)] = np.nan
    return cka


def first_pc_analysis(store_path, *, layers=None, examples=None, debiased: bool = True,
                      window: int = 8, threads: int | None = None):
    """Share of variance of each layer's first principal component, and CKA with it removed.

    Streams every layer of an activation store (`repatlas.activations.dump_activations`) in
    row blocks of `window` storage chunks into the float64 Gram K of its column-centred
    features; `examples` keeps only the first rows. Memory: layers × n² float64 (all Grams are
    held at once for the layer-by-layer CKA) — 10 layers at n = 5,000 take 2 GB.
    Removing PC1 from the features, X − σ₁u₁v₁ᵀ = (I − u₁u₁ᵀ)X, turns K into
    P K P = K − λ₁u₁u₁ᵀ with u₁ the top eigenvector of K, so no feature matrix is rebuilt.
    A layer of rank one has nothing left and gets NaN in `cka_without_pc1`.
    Returns an xarray.Dataset: pc1_ratio (layer) = λ₁ / trace K, cka and cka_without_pc1
    (layer_a, layer_b) = full-data linear CKA (HSIC₁ via U-centring when `debiased`).
    `threads` pins BLAS to that many threads.
    """
    arrays = activations.layer_arrays(store_path)
    names = list(arrays) if layers is None else list(layers)
    unknown = [name for name in names if name not in arrays]
    if unknown:
        raise KeyError(f"{store_path}: unknown layer(s) {unknown}; the store has {list(arrays)}")
    if not names:
        raise ValueError("layers must name at least one layer")
    n_stored = arrays[names[0]].shape[0]
    for name in names:
        if arrays[name].shape[0] != n_stored:
            raise ValueError(f"{store_path}: layer {name!r} has {arrays[name].shape[0]} examples; "
                             f"expected {n_stored}")
    smallest = MIN_BATCH if debiased else 2
    n = n_stored if examples is None else examples
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not smallest <= n <= n_stored:
        raise ValueError(f"examples must be an integer in [{smallest}, {n_stored}] (the store's size); "
                         f"got {examples!r}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1 (storage chunks per read); got {window!r}")
    n = int(n)

    stack = np.empty((len(names), n, n))
    pc1_ratio = np.empty(len(names))
    top = []
    with pinned_threads(threads):
        for i, name in enumerate(names):
            gram = _centred_gram(arrays[name], n, arrays[name].chunks[0] * window, name)
            trace = np.trace(gram)
            if trace <= 0:
                raise ValueError(f"layer {name!r} is constant over the {n} examples: "
                                 "CKA and PCA are undefined")
            value, vector = _top_eigenpair(gram)
            pc1_ratio[i] = value / trace
            top.append((value, vector))
            # K is already double-centred (centred features), so the biased HSIC needs nothing more
            stack[i] = ucentre(gram) if debiased else gram
            del gram
        cka = _cka_of_stack(stack)
        for i, (value, vector) in enumerate(top):
            # in place, one layer at a time: ucentre is linear, so ucentre(K − λuuᵀ) = K_u − λ·ucentre(uuᵀ)
            rank_one = value * np.outer(vector, vector)
            stack[i] -= ucentre(rank_one) if debiased else rank_one
        nothing_left = [i for i, ratio in enumerate(pc1_ratio) if 1 - ratio <= RANK_ONE_TOL]
        cka_without_pc1 = _cka_of_stack(stack, nothing_left)

    hsic = "unbiased HSIC (U-centred)" if debiased else "biased HSIC"
    pair = ("layer_a", "layer_b")
    return xr.Dataset(
        {
            "pc1_ratio": ("layer", pc1_ratio,
                          {"long_name": "explained-variance ratio of the first principal component"}),
            "cka": (pair, cka, {"long_name": "linear CKA"}),
            "cka_without_pc1": (pair, cka_without_pc1,
                                {"long_name": "linear CKA after projecting each layer's "
                                              "first principal component out"}),
        },
        coords={"layer": names, "layer_a": names, "layer_b": names},
        attrs={
            "produced_by": "repatlas.blocks.first_pc_analysis",
            "source": str(store_path),
            "n_examples": n,
            "examples": "first n rows of the store",
            "estimator": f"full-data linear CKA, {hsic}",
            "debiased": int(debiased),
            "pc1_removal": "K' = P K P, P = I - u u^T, u the top eigenvector of the centred Gram K",
        },
    )


# ----------------------------------------------------------------------------- pruning labels


def label_pruning(pruning, blocks):
    """Label a `repatlas.probes.pruning_experiment` Dataset inside / outside `blocks`.

    `blocks` are inclusive (start, end) index pairs into the Dataset's ``attrs["layers"]``. A
    removed block is *inside* iff its input (the layer before it) and its output (itself) lie in
    the same block; the first layer has no input and counts as outside. Returns a copy with the
    bool variable ``inside`` and attrs mean_change_inside / mean_change_outside (NaN for an
    empty group), blocks (JSON) and inside_rule.
    """
    layers = json.loads(pruning.attrs["layers"])
    blocks = check_blocks(blocks, len(layers), "blocks")
    index = [layers.index(str(name)) for name in pruning["removed"].values]
    inside = np.array([k > 0 and any(s <= k - 1 and k <= e for s, e in blocks) for k in index], dtype=bool)
    change = np.asarray(pruning["accuracy_change"].values, dtype=np.float64)
    out = pruning.assign(inside=("removed", inside))
    out.attrs.update({
        "mean_change_inside": _mean_finite(change[inside]),
        "mean_change_outside": _mean_finite(change[~inside]),
        "blocks": json.dumps([list(b) for b in blocks]),
        "inside_rule": "input (previous layer) and output of the removed block lie in one detected block",
    })
    return out


def blocks_over(cka, layers, *, threshold: float, min_length: int, pc1_share=None, min_pc1_share: float = 0.5,
                source: str = "the within-model CKA"):
    """`detect_blocks` on a within-model CKA DataArray whose layers must be `layers`, in order: the
    blocks are then index pairs into `layers` of another result of the same model (first PC,
    pruning). `pc1_share` (per layer of `layers`) adds the PC1 criterion. `source` names the CKA
    in the error."""
    layers = [str(n) for n in layers]
    names = _layer_names(cka, len(layers))
    if names != layers:
        raise ValueError(f"{source}: layers {names} differ from {layers}: are they files of the same model?")
    return detect_blocks(_matrix(cka, "cka"), threshold=threshold, min_length=min_length, pc1_share=pc1_share,
                         min_pc1_share=min_pc1_share)


def label_pruning_with_cka(pruning, cka, *, threshold: float, min_length: int, first_pc=None,
                           min_pc1_share: float = 0.5):
    """`label_pruning` with the blocks `detect_blocks` finds in the model's within-model CKA (a
    DataArray over the same layers, in the same order); with `first_pc` (the model's
    `first_pc_analysis` Dataset) only PC1-dominated runs are blocks, as in `block_table`."""
    layers = json.loads(pruning.attrs["layers"])
    share = None
    if first_pc is not None:
        if [str(v) for v in first_pc["layer"].values] != [str(v) for v in layers]:
            raise ValueError(f"first_pc: layers {list(first_pc['layer'].values)} differ from the pruning "
                             f"result's {layers}: are they files of the same model?")
        share = first_pc["pc1_ratio"].values
    out = label_pruning(pruning, blocks_over(cka, layers, threshold=threshold, min_length=min_length,
                                             pc1_share=share, min_pc1_share=min_pc1_share))
    out.attrs.update({"threshold": float(threshold), "min_length": int(min_length)})
    if first_pc is not None:
        out.attrs["min_pc1_share"] = float(min_pc1_share)
    return out


# ----------------------------------------------------------------------------- block detection


def detect_blocks(cka_matrix, *, threshold: float = 0.9, min_length: int = 3, pc1_share=None,
                  min_pc1_share: float = 0.5) -> list[tuple[int, int]]:
    """Blocks of consecutive, mutually similar layers in a within-model CKA heatmap (Nguyen et al.).

    A block is a run of layers i..j (inclusive indices) whose CKA is ≥ `threshold` for *every*
    pair in the run, not only neighbours, with j − i + 1 ≥ `min_length`. Pairs are compared
    through min(K[i, j], K[j, i]), so a slightly asymmetric matrix counts its weaker direction.

    With `pc1_share` (one number per layer: the share of variance of the layer's first principal
    component, e.g. `repatlas.blocks.first_pc_analysis`'s pc1_ratio), a block must also be
    dominated by its first PC: the mean share over the run is ≥ `min_pc1_share`. That is the
    paper's block structure (its §4: blocks are a dominant first PC shared by the layers); high
    CKA alone also tiles ordinary networks into stage-aligned runs (digits ResNet-26: three runs
    covering all 14 layers, PC1 share 0.1–0.3), which is not it.

    The scan is greedy, left to right: from layer i the run grows while the next layer clears the
    threshold with every layer already in it; the longest prefix of that run which is long enough
    (and PC1-dominated, with `pc1_share`) is recorded and the scan resumes after its end,
    otherwise at i + 1. Blocks therefore never overlap. `cka_matrix` is a square numpy array or an
    xarray.DataArray (layer_a, layer_b).
    """
    values = cka_matrix.values if hasattr(cka_matrix, "dims") else cka_matrix
    k = np.asarray(values, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"cka_matrix must be a square 2-D (layer, layer) matrix; got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError("cka_matrix contains NaN or Inf")
    real = (int, float, np.integer, np.floating)
    if isinstance(threshold, bool) or not isinstance(threshold, real) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1]; got {threshold!r}")
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 2:
        raise ValueError(f"min_length must be an integer >= 2; got {min_length!r}")
    n = len(k)
    if pc1_share is not None:
        share = np.asarray(pc1_share.values if hasattr(pc1_share, "dims") else pc1_share, dtype=np.float64)
        if share.shape != (n,) or not np.isfinite(share).all() or (share < 0).any() or (share > 1).any():
            raise ValueError(f"pc1_share must hold one variance share in [0, 1] per layer ({n}); "
                             f"got {share!r}")
        if (isinstance(min_pc1_share, bool) or not isinstance(min_pc1_share, real)
                or not 0 <= min_pc1_share <= 1):
            raise ValueError(f"min_pc1_share must be a number in [0, 1]; got {min_pc1_share!r}")
        prefix = np.concatenate([[0.0], np.cumsum(share)])

    def dominated(i, j):
        return pc1_share is None or (prefix[j + 1] - prefix[i]) / (j - i + 1) >= min_pc1_share

    similar = np.minimum(k, k.T) >= threshold
    blocks, i = [], 0
    while i < n:
        j = i
        while j + 1 < n and similar[j + 1, i : j + 1].all():
            j += 1
        end = next((e for e in range(j, i + min_length - 2, -1) if dominated(i, e)), None)
        if end is not None:
            blocks.append((i, end))
            i = end + 1
        else:
            i += 1
    return blocks
