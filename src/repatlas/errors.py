"""Per-example errors of two architectures, and a permutation test of whether they differ.

Nguyen et al. (2021) report that wide and deep models of similar accuracy make statistically
different per-example errors. Here each architecture is represented by several seeds; an
example's error rate under an architecture is the fraction of its seeds that get it wrong. The
null hypothesis is that the architecture changes per-example errors no more than the seed does,
i.e. the S_a + S_b models are exchangeable, so the test reassigns the models to two groups of
sizes S_a and S_b and recomputes the statistic (a two-sample permutation test on models).

Every comparison of a permuted statistic with the observed one is made on exact integers (the
statistic scaled by a constant), so ties, including the identity assignment, are counted exactly.

Architectures must be compared at matched accuracy: a less accurate model makes more errors, and
the test then rejects because of accuracy, not architecture. `error_table` lists every compared
pair with both mean accuracies and warns where they differ by more than `max_gap` (1 point).
With S seeds per architecture the smallest attainable p is 2 / C(2S, S): 1/3 for 2 seeds, 2/252
for 5, so rejecting at 0.05 needs ≥ 4 seeds each.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import torch
import xarray as xr

from repatlas.devices import resolve_device

TEST_DESCRIPTION = (
    "Permutation test on models. H0: the models of A and B are exchangeable (the architecture "
    "changes per-example errors no more than the seed does). Statistic T = mean over examples of "
    "(error_a - error_b)^2, where error_x is the fraction of group x's models that misclassify the "
    "example. T is recomputed over reassignments of the S_a + S_b models to groups of sizes S_a, "
    "S_b: all C(S_a+S_b, S_a) of them when that is <= `permutations` (exact; p = #{T* >= T} / N, "
    "identity included), else `permutations` uniformly random ones (p = (1 + #{T* >= T}) / (1 + N)). "
    "min_p is the smallest p the design can give. Per-class p-values: two-sided, statistic "
    "|mean error_a - mean error_b| over the class's examples, same reassignments, not corrected for "
    "multiple comparisons."
)

# Permuted group sums are held as (assignments, examples) blocks of at most this many entries.
_BLOCK_ENTRIES = 2_000_000


# ----------------------------------------------------------------------------- predictions


def predict(model, x, *, batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """Predicted labels (n,) int64 of a classifier on standardised inputs (eval mode, no grad).

    Runs in float32 on every device (no autocast), so near-tied logits are decided the same way on
    CPU and GPU. The model's device and train/eval mode are restored afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    x = torch.as_tensor(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of inputs (n, ...); got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be standardised float inputs (see repatlas.data.standardise); "
                         f"got dtype {x.dtype}")
    dev = resolve_device(device)
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    home = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.no_grad():
            out = [model(x[i : i + batch_size].to(dev, torch.float32)).argmax(1)
                   for i in range(0, len(x), batch_size)]
            labels = torch.cat(out).cpu()  # one read back to the host, after the last batch
    finally:
        model.to(home).train(was_training)
    return labels.numpy().astype(np.int64)


# ----------------------------------------------------------------------------- error analysis


def _integer_array(a, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        shape = "(seeds, examples)" if ndim == 2 else "(examples,)"
        raise ValueError(f"{name} must be a {ndim}-D array {shape}; got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels; got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _check_inputs(pred_a, pred_b, labels, permutations):
    pred_a = _integer_array(pred_a, "pred_a", 2)
    pred_b = _integer_array(pred_b, "pred_b", 2)
    labels = _integer_array(labels, "labels", 1)
    for name, p in (("pred_a", pred_a), ("pred_b", pred_b)):
        if p.shape[0] < 1:
            raise ValueError(f"{name} needs at least one seed (row); got shape {p.shape}")
    n = len(labels)
    if n < 1:
        raise ValueError("labels is empty: need at least one example")
    for name, p in (("pred_a", pred_a), ("pred_b", pred_b)):
        if p.shape[1] != n:
            raise ValueError(f"{name} has {p.shape[1]} examples (columns) but labels has {n}")
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) or permutations < 1:
        raise ValueError(f"permutations must be a positive integer; got {permutations!r}")
    return pred_a, pred_b, labels


def _assignment_blocks(s_a: int, s: int, permutations: int, seed: int, block: int):
    """(exact, N, iterator of (m, s) 0/1 float matrices: row = models assigned to group A)."""
    total = math.comb(s, s_a)
    exact = total <= permutations

    def exact_blocks():
        combos = itertools.combinations(range(s), s_a)
        while chunk := list(itertools.islice(combos, block)):
            m = np.zeros((len(chunk), s))
            np.put_along_axis(m, np.asarray(chunk, dtype=np.int64).reshape(len(chunk), s_a), 1.0, axis=1)
            yield m

    def random_blocks():
        rng = np.random.default_rng(seed)
        for start in range(0, permutations, block):
            rows = min(block, permutations - start)
            chosen = np.argsort(rng.random((rows, s)), axis=1)[:, :s_a]  # uniform s_a-subsets
            m = np.zeros((rows, s))
            np.put_along_axis(m, chosen, 1.0, axis=1)
            yield m

    return exact, (total if exact else permutations), (exact_blocks() if exact else random_blocks())


def _scaled_differences(assign: np.ndarray, wrong_counts: np.ndarray, s_a: int) -> np.ndarray:
    """S_a·S_b·(error_a − error_b) for each assignment row, as exact int64.

    With k = wrongs among the models assigned to A and c = wrongs among all S models,
    error_a − error_b = k/S_a − (c − k)/S_b = (S·k − S_a·c) / (S_a·S_b).
    """
    s = assign.shape[1]
    k = np.rint(assign @ wrong_counts).astype(np.int64)  # integer sums far below 2**53: exact in float64
    return s * k - s_a * wrong_counts.sum(0).astype(np.int64)


def _pairwise_disagreement(p: np.ndarray, q: np.ndarray | None = None) -> float:
    """Mean fraction of differing predictions over pairs (p_i, q_j); over pairs i < j if q is None."""
    fractions = []
    for i in range(len(p)):
        others = p[i + 1 :] if q is None else q
        fractions.extend((p[i] != others).mean(axis=1))
    return float(np.mean(fractions)) if fractions else float("nan")


def error_analysis(pred_a, pred_b, labels, *, permutations: int = 10000, seed: int = 0,
                   examples=None) -> xr.Dataset:
    """Per-example and per-class errors of two architectures' seeds, with permutation p-values.

    pred_a (S_a, n) and pred_b (S_b, n) are integer test-set predictions of S_a seeds of
    architecture A and S_b seeds of B; labels (n,). `examples` (n,) optionally names the examples
    (e.g. indices into the test split); default 0..n-1. See TEST_DESCRIPTION for the test.
    """
    pred_a, pred_b, labels = _check_inputs(pred_a, pred_b, labels, permutations)
    s_a, s_b, n = len(pred_a), len(pred_b), len(labels)
    s = s_a + s_b
    if n * (s_a * s_b) ** 2 >= 2**62:
        raise ValueError(f"too many models and examples for exact integer statistics "
                         f"(S_a={s_a}, S_b={s_b}, n={n})")
    examples = np.arange(n) if examples is None else np.asarray(examples)
    if examples.shape != (n,):
        raise ValueError(f"examples must have shape ({n},) like labels; got {examples.shape}")

    wrong = np.concatenate([pred_a, pred_b]) != labels  # (S, n): model × example
    error_a, error_b = wrong[:s_a].mean(0), wrong[s_a:].mean(0)
    classes, class_of = np.unique(labels, return_inverse=True)
    one_hot = np.zeros((n, len(classes)))
    one_hot[np.arange(n), class_of] = 1.0
    class_counts = one_hot.sum(0)
    wrong_f = wrong.astype(np.float64)
    class_wrong = wrong_f @ one_hot  # (S, classes): each model's number of errors per class

    # Observed statistics on the integer scale (identity assignment: the first S_a models are A).
    identity = np.zeros((1, s))
    identity[0, :s_a] = 1.0
    observed = _scaled_differences(identity, wrong_f, s_a)[0]
    observed_t = int((observed * observed).sum())
    observed_class = np.abs(_scaled_differences(identity, class_wrong, s_a)[0])

    exact, n_perm, blocks = _assignment_blocks(s_a, s, permutations, seed,
                                               max(1, _BLOCK_ENTRIES // n))
    at_least = 0
    at_least_class = np.zeros(len(classes), dtype=np.int64)
    for assign in blocks:
        d = _scaled_differences(assign, wrong_f, s_a)
        at_least += int(((d * d).sum(1) >= observed_t).sum())
        dc = np.abs(_scaled_differences(assign, class_wrong, s_a))
        at_least_class += (dc >= observed_class).sum(0)
    if exact:
        p_value, class_p = at_least / n_perm, at_least_class / n_perm
        # The identity always counts; with S_a == S_b so does swapping the groups (same T).
        min_p = (2 if s_a == s_b else 1) / n_perm
    else:
        p_value, class_p = (1 + at_least) / (1 + n_perm), (1 + at_least_class) / (1 + n_perm)
        min_p = 1 / (1 + n_perm)

    class_error_a = (class_wrong[:s_a] / class_counts).mean(0)
    class_error_b = (class_wrong[s_a:] / class_counts).mean(0)
    accuracy = 1.0 - wrong.mean(1)
    # Within-architecture disagreement pools the pairs of both groups (each pair counts once).
    pairs_a = s_a * (s_a - 1) // 2
    pairs_b = s_b * (s_b - 1) // 2
    within_a = _pairwise_disagreement(pred_a)
    within_b = _pairwise_disagreement(pred_b)
    within_all = (float((within_a * pairs_a + within_b * pairs_b) / (pairs_a + pairs_b))
                  if s_a >= 2 and s_b >= 2 else float("nan"))

    model_names = [f"a{i}" for i in range(s_a)] + [f"b{i}" for i in range(s_b)]

    def scalar(value, doc):
        return (), float(value), {"description": doc}

    return xr.Dataset(
        {
            "label": ("example", labels),
            "error_a": ("example", error_a, {"description": "fraction of A's models wrong"}),
            "error_b": ("example", error_b, {"description": "fraction of B's models wrong"}),
            "class_count": ("class", class_counts.astype(np.int64)),
            "class_error_a": ("class", class_error_a, {"description": "A's mean error rate on the class"}),
            "class_error_b": ("class", class_error_b, {"description": "B's mean error rate on the class"}),
            "class_error_diff": ("class", class_error_a - class_error_b,
                                 {"description": "class_error_a - class_error_b"}),
            "class_p_value": ("class", class_p, {"description": "two-sided permutation p-value, "
                                                 "uncorrected for multiple comparisons"}),
            "accuracy": ("model", accuracy),
            "mean_accuracy_a": scalar(accuracy[:s_a].mean(), "mean test accuracy of A's models"),
            "mean_accuracy_b": scalar(accuracy[s_a:].mean(), "mean test accuracy of B's models"),
            "disagreement_between": scalar(_pairwise_disagreement(pred_a, pred_b),
                                           "mean fraction of differing predictions over (A, B) pairs"),
            "disagreement_within": scalar(within_all, "mean over all same-architecture pairs; NaN "
                                          "unless both groups have >= 2 models"),
            "disagreement_within_a": scalar(within_a, "mean over pairs of A's models"),
            "disagreement_within_b": scalar(within_b, "mean over pairs of B's models"),
        },
        coords={
            "example": examples,
            "class": classes,
            "model": model_names,
            "group": ("model", ["a"] * s_a + ["b"] * s_b),
        },
        attrs={
            "statistic": float(np.mean((error_a - error_b) ** 2)),
            "p_value": float(p_value),
            "n_permutations": int(n_perm),
            "exact": int(exact),
            "min_p": float(min_p),
            "permutations": int(permutations),
            "seed": int(seed),
            "seeds_a": int(s_a),
            "seeds_b": int(s_b),
            "n_examples": int(n),
            "test": TEST_DESCRIPTION,
            "created_by": "repatlas.errors.error_analysis",
        },
    )


# ----------------------------------------------------------------------------- tables


MAX_ACCURACY_GAP = 0.01  # 1 point: Nguyen et al. compare wide and deep models of similar accuracy


def error_table(results: dict, *, max_gap: float = MAX_ACCURACY_GAP):
    """One row per compared pair: {(arch_a, arch_b): `error_analysis` Dataset} → DataFrame.

    Columns: arch_a, arch_b, seeds_a, seeds_b, mean_accuracy_a, mean_accuracy_b, accuracy_gap
    (a − b), p_value, min_p, statistic, disagreement_between / _within, and `warning`: non-empty
    where |accuracy_gap| > `max_gap` (then a small p may reflect the accuracy difference, not the
    architecture) or where min_p > 0.05 (too few seeds to reject at 5 %).
    """
    if not 0 <= max_gap <= 1:
        raise ValueError(f"max_gap must be an accuracy difference in [0, 1]; got {max_gap}")
    rows = []
    for (arch_a, arch_b), ds in results.items():
        acc_a, acc_b = float(ds["mean_accuracy_a"]), float(ds["mean_accuracy_b"])
        gap = acc_a - acc_b
        warnings = []
        if abs(gap) > max_gap:
            warnings.append(f"accuracies differ by {100 * abs(gap):.1f} points (> {100 * max_gap:g}): "
                            f"not matched, errors differ by accuracy")
        if ds.attrs["min_p"] > 0.05:
            warnings.append(f"min attainable p = {ds.attrs['min_p']:.3g} > 0.05: too few seeds to reject")
        rows.append({
            "arch_a": arch_a, "arch_b": arch_b,
            "seeds_a": int(ds.attrs["seeds_a"]), "seeds_b": int(ds.attrs["seeds_b"]),
            "mean_accuracy_a": acc_a, "mean_accuracy_b": acc_b, "accuracy_gap": gap,
            "matched": bool(abs(gap) <= max_gap),
            "p_value": float(ds.attrs["p_value"]), "min_p": float(ds.attrs["min_p"]),
            "statistic": float(ds.attrs["statistic"]),
            "disagreement_between": float(ds["disagreement_between"]),
            "disagreement_within": float(ds["disagreement_within"]),
            "warning": "; ".join(warnings),
        })
    return pd.DataFrame(rows)
