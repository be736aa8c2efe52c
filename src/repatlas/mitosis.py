"""Representation mitosis (Doimo, Glielmo, Goldt & Laio, arXiv 2106.03485 / NeurIPS 2022).

Above a critical width the last hidden layer of a network splits into groups of neurons ("clones")
that carry the same information and differ by independent noise. The signature is measured on
random chunks of neurons (``chunk_metrics``): for each chunk size ``c`` and each of ``repeats``
random subsets ``S`` of ``c`` neurons (drawn without replacement),

* **chunk accuracy** — the trained last layer restricted to the chunk,
  ``logits = features[:, S] @ weight[:, S].T + bias``, scored against ``labels``;
* **R²** — ridge regression with intercept (penalty ``ridge`` on the coefficients only, the sum of
  squares *not* divided by n, as in ``sklearn.linear_model.Ridge``) from the chunk to the *full*
  representation; variance-weighted ``R² = 1 − Σ_ij (F_ij − F̂_ij)² / Σ_ij (F_ij − F̄_j)²``
  (sklearn's ``r2_score(..., multioutput="variance_weighted")``). By default the fit and the score
  use the same rows (**in-sample**, as the paper's code does); ``heldout=f`` instead fits on a
  random ``1 − f`` of the rows and scores on the rest (means ``F̄_j`` then of the held-out rows);
* **residual correlation** — the mean of ``|ρ_ij|`` over ordered pairs ``i ≠ j`` of *active*
  columns of the residual matrix ``E = F − F̂`` (rows as above), ``ρ`` the Pearson correlation.
  A column ``j`` is active when its residual sum of squares about its mean exceeds
  ``var_tol`` × the sum of squares of ``F[:, j]`` about its mean; this drops the chunk's own
  neurons (reconstructed exactly up to the ridge), constant (dead) neurons and exact duplicates
  whose correlation would be 0/0. Fewer than two active columns (e.g. ``c = width``) give NaN,
  and the across-repeat mean ignores NaN repeats.

Implementation: everything is float64 and goes through the centred Gram matrix ``G = F_cᵀF_c``
(width × width), so a repeat costs O(c³ + c·width²) whatever the number of examples:
``B = (G_SS + αI)⁻¹ G_S·`` and the residual Gram ``EᵀE = G − G_·S B − Bᵀ G_S· + Bᵀ G_SS B``
(score-row Grams in the held-out case) gives both R² and the residual correlations. Repeats
are solved in batches with ``numpy.linalg.solve``; BLAS is pinned to ``threads`` (default 1).

``estimate_clones`` turns the R² curve into a number of clones, ``width / c*`` (see its
docstring for ``c*``), and ``planted_clones`` builds synthetic representations with a known
number of clones.

The pipeline steps at the end (``features_to_file``, ``chunks_to_file``, ``summary_to_file``)
work on any ``repatlas.models`` classifier: the representation is the input of the final linear
layer, i.e. an MLP's last hidden layer (``width`` units) or a ResNet's globally pooled features
(64·k units for width multiplier k, :func:`last_layer_units`).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import xarray as xr

from repatlas.threads import pinned_threads

DEFAULT_R2_THRESHOLD = 0.9
_BATCH_BYTES = 128 * 2**20  # memory budget per batch of repeats


# ----------------------------------------------------------------------------- input checks


def _to_numpy(x):
    if hasattr(x, "detach"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(features, weight, bias, labels):
    f = _to_numpy(features)
    if f.ndim != 2:
        raise ValueError(f"features must have shape (examples, width); got shape {f.shape}")
    if f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"features needs at least 2 examples and 1 neuron; got shape {f.shape}")
    f = f.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError("features contains NaN or Inf")
    n, width = f.shape
    w = _to_numpy(weight).astype(np.float64)
    if w.ndim != 2 or w.shape[1] != width:
        raise ValueError(f"weight must have shape (classes, width={width}); got shape {w.shape}")
    b = _to_numpy(bias).astype(np.float64)
    if b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape (classes={w.shape[0]},); got shape {b.shape}")
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise ValueError("weight or bias contains NaN or Inf")
    y = _to_numpy(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape (examples={n},); got shape {y.shape}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer class indices; got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= w.shape[0]):
        raise ValueError(f"labels must lie in [0, classes={w.shape[0]}); got range [{y.min()}, {y.max()}]")
    return f, w, b, y.astype(np.int64)


def _check_chunk_sizes(chunk_sizes, width: int) -> np.ndarray:
    cs = np.atleast_1d(np.asarray(chunk_sizes))
    if cs.ndim != 1 or cs.size == 0:
        raise ValueError(f"chunk_sizes must be a non-empty 1-D sequence of integers; got {chunk_sizes!r}")
    if cs.dtype.kind == "f" and np.all(cs == np.round(cs)):
        cs = cs.astype(np.int64)
    if cs.dtype.kind not in "iu":
        raise ValueError(f"chunk_sizes must be integers; got {chunk_sizes!r}")
    if cs.min() < 1 or cs.max() > width:
        raise ValueError(f"chunk_sizes must lie in [1, width={width}]; got {sorted(set(cs.tolist()))}")
    return np.unique(cs.astype(np.int64))  # sorted, duplicates dropped


def default_chunk_sizes(width: int) -> np.ndarray:
    """Powers of two 1, 2, 4, … up to ``width``, plus ``width`` itself."""
    if width < 1:
        raise ValueError(f"width must be ≥ 1; got {width}")
    return np.unique(np.r_[2 ** np.arange(int(math.log2(width)) + 1), width]).astype(np.int64)


# ----------------------------------------------------------------------------- subsets


def draw_subsets(width: int, chunk_size: int, repeats: int, seed: int = 0) -> np.ndarray:
    """``repeats`` random subsets of ``chunk_size`` distinct neurons out of ``width``, shape
    (repeats, chunk_size), each row sorted.

    Each subset is uniform over all ``C(width, chunk_size)`` subsets (first ``chunk_size`` entries
    of a uniform random permutation); subsets of different repeats are independent. The stream
    is seeded by ``(seed, chunk_size)``, so the subsets for one chunk size do not depend on which
    other chunk sizes are requested.
    """
    if not 1 <= chunk_size <= width:
        raise ValueError(f"chunk_size must lie in [1, width={width}]; got {chunk_size}")
    rng = np.random.default_rng([seed, chunk_size])
    keys = rng.random((repeats, width))
    idx = np.argpartition(keys, chunk_size - 1, axis=1)[:, :chunk_size] if chunk_size < width else np.argsort(keys, axis=1)
    return np.sort(idx, axis=1)


def _heldout_split(n: int, heldout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x4D17])
    perm = rng.permutation(n)
    n_test = int(round(heldout * n))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"heldout={heldout} leaves fewer than 2 rows to fit or to score (n={n})")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# ----------------------------------------------------------------------------- per-batch kernels


def _chunk_accuracy(f, w, b, y, masks: np.ndarray) -> np.ndarray:
    """Accuracy of the last layer restricted by 0/1 ``masks`` (r, width) — one per row.

    Masking the weight columns instead of gathering keeps the summation order of the full layer,
    so an all-ones mask reproduces ``features @ weight.T + bias`` exactly.
    """
    r, (k, width) = len(masks), w.shape
    wm = (w[None, :, :] * masks[:, None, :]).reshape(r * k, width)   # (r·classes, width)
    logits = (f @ wm.T).reshape(len(f), r, k) + b                     # one GEMM: (n, r, classes)
    return (logits.argmax(-1) == y[:, None]).mean(axis=0)


class _RegressionStats:
    """Gram-matrix summaries of the fit and score rows, so each repeat costs O(c³ + c·width²)."""

    def __init__(self, f: np.ndarray, fit_rows, score_rows):
        ft = f if fit_rows is None else f[fit_rows]
        self.mu = ft.mean(0)
        fc = ft - self.mu
        self.g = fc.T @ fc                                      # fit Gram
        if score_rows is None:                                  # in-sample
            self.ge, self.delta, self.n_e = self.g, np.zeros(f.shape[1]), len(ft)
        else:
            fe = f[score_rows] - self.mu                        # centred by the *fit* means
            self.ge, self.delta, self.n_e = fe.T @ fe, fe.mean(0), len(fe)
        # Σ_i (F_ij − F̄_j)² over the score rows, F̄ their own mean
        self.col_ss = np.diag(self.ge) - self.n_e * self.delta**2
        self.tss = float(self.col_ss.sum())

    def batch(self, idx: np.ndarray, ridge: float, var_tol: float):
        """R² and residual correlation for subsets ``idx`` (r, c)."""
        r, c = idx.shape
        g, ge = self.g, self.ge
        a = g[idx[:, :, None], idx[:, None, :]] + ridge * np.eye(c)   # (r, c, c)
        rhs = g[idx]                                                 # (r, c, width)
        try:
            coef = np.linalg.solve(a, rhs)                           # B: (r, c, width)
        except np.linalg.LinAlgError:
            coef = np.stack([np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, rhs)])
        coef_t = coef.transpose(0, 2, 1)
        if ge is g:
            # in-sample: Bᵀ G_SS B = Bᵀ G_S· − α BᵀB, so EᵀE = G − G_·S B − α BᵀB
            res = g[None] - np.matmul(rhs.transpose(0, 2, 1), coef)
            if ridge:
                res -= ridge * np.matmul(coef_t, coef)
        else:
            ge_s = ge[idx]                                           # (r, c, width) = G_e[S, :]
            ge_ss = ge[idx[:, :, None], idx[:, None, :]]             # (r, c, c)
            cross = np.matmul(ge_s.transpose(0, 2, 1), coef)         # G_e[:, S] B   (r, w, w)
            res = ge[None] - cross - cross.transpose(0, 2, 1) + np.matmul(coef_t, np.matmul(ge_ss, coef))
        # res = Eᵀ E about the fit means (E = F − F̂ on the score rows)
        rbar = self.delta[None] - np.einsum("rc,rcw->rw", self.delta[idx], coef)  # residual means
        s = res - self.n_e * rbar[:, :, None] * rbar[:, None, :]     # Eᵀ E about residual means
        s = 0.5 * (s + s.transpose(0, 2, 1))
        # R²: residual sum of squares is about the fit means (a prediction error, not a variance)
        rss = np.clip(np.einsum("rjj->r", res), 0.0, None)
        r2 = 1.0 - rss / self.tss if self.tss > 0 else np.full(r, np.nan)
        # residual correlation over active columns
        var = np.einsum("rjj->rj", s)
        active = var > var_tol * self.col_ss[None]
        sd = np.sqrt(np.where(active, var, 1.0))
        corr = np.abs(s) / (sd[:, :, None] * sd[:, None, :])
        pair = active[:, :, None] & active[:, None, :]
        m = active.sum(1)
        off = np.where(pair, corr, 0.0).sum((1, 2)) - np.where(active, 1.0, 0.0).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rc = np.where(m >= 2, off / (m * (m - 1.0)), np.nan)
        return r2, rc


# ----------------------------------------------------------------------------- public API


_DEFS = {
    "def_accuracy": "mean over examples of argmax(features[:, S] @ weight[:, S].T + bias) == label, "
    "S a uniform random subset of chunk_size neurons",
    "def_r2": "variance-weighted R^2 = 1 - sum_ij (F - Fhat)^2 / sum_ij (F - mean_j F)^2 of a ridge regression "
    "(intercept unpenalised, penalty `ridge` on unnormalised sums of squares, as sklearn Ridge) from "
    "features[:, S] to all features",
    "def_residual_corr": "mean |Pearson correlation| over ordered pairs i != j of active residual columns; "
    "a column is active if its residual sum of squares about its mean > var_tol * its feature sum of "
    "squares about its mean (drops the chunk's own neurons); NaN with < 2 active columns",
}


def chunk_metrics(
    features,
    weight,
    bias,
    labels,
    chunk_sizes: Sequence[int],
    *,
    repeats: int = 100,
    seed: int = 0,
    ridge: float = 1e-8,
    heldout: float | None = None,
    var_tol: float = 1e-6,
    keep_repeats: bool = False,
    compute_regression: bool = True,
    threads: int | None = 1,
) -> xr.Dataset:
    """Chunk accuracy, reconstruction R² and residual correlation of random neuron chunks.

    Parameters
    ----------
    features : (n, width) last-hidden-layer activations (numpy or torch; computed in float64).
    weight, bias : (classes, width) and (classes,) trained final layer.
    labels : (n,) integer classes in [0, classes).
    chunk_sizes : integers in [1, width]; sorted and de-duplicated in the output.
    repeats : random subsets per chunk size (see :func:`draw_subsets`; reproducible from ``seed``).
    ridge : ridge penalty α (on sums of squares, like ``sklearn.linear_model.Ridge(alpha)``).
    heldout : ``None`` (default) fits and scores the regression on all rows (in-sample, as the
        paper's code). A fraction in (0, 1) fits on a random ``1 − heldout`` of the rows
        (seeded by ``seed``) and scores R² and residual correlation on the rest; chunk accuracy
        involves no fitting and always uses all rows.
    var_tol : relative residual-variance threshold for a column to enter the residual correlation.
    keep_repeats : also return per-repeat ``accuracy``, ``r2``, ``residual_corr`` (chunk_size,
        repeat) and the boolean ``subset`` mask (chunk_size, repeat, neuron).
    compute_regression : ``False`` skips R² and residual correlation (NaN), e.g. for accuracy-only
        sweeps.
    threads : BLAS threads while computing (default 1, fastest on shared machines for these many
        small products; ``None`` leaves the BLAS setting alone).

    Returns
    -------
    xarray.Dataset with dim ``chunk_size`` and variables ``accuracy_mean``, ``accuracy_std``,
    ``error_mean`` (= 1 − accuracy_mean), ``r2_mean``, ``r2_std``, ``residual_corr_mean``,
    ``residual_corr_std`` (std over repeats, ddof = 0; residual correlation ignores NaN repeats)
    and the scalar ``full_accuracy`` (the whole last layer, also in ``attrs``). Definitions,
    ``repeats``, ``seed``, ``ridge`` and the other settings are in ``attrs`` — see the module
    docstring for the exact definitions.
    """
    f, w, b, y = _check_inputs(features, weight, bias, labels)
    n, width = f.shape
    cs = _check_chunk_sizes(chunk_sizes, width)
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    repeats = int(repeats)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number ≥ 0; got {ridge!r}")
    if not (np.isfinite(var_tol) and var_tol >= 0):
        raise ValueError(f"var_tol must be a finite number ≥ 0; got {var_tol!r}")
    if heldout is not None and not 0 < heldout < 1:
        raise ValueError(f"heldout must be None or a fraction in (0, 1); got {heldout!r}")

    with pinned_threads(threads):
        full_acc = float(_chunk_accuracy(f, w, b, y, np.ones((1, width)))[0])
        stats = None
        if compute_regression:
            fit_rows, score_rows = (None, None) if heldout is None else _heldout_split(n, heldout, seed)
            stats = _RegressionStats(f, fit_rows, score_rows)

        acc = np.empty((len(cs), repeats))
        r2 = np.full((len(cs), repeats), np.nan)
        rc = np.full((len(cs), repeats), np.nan)
        subset = np.zeros((len(cs), repeats, width), bool) if keep_repeats else None
        n_classes = w.shape[0]
        for ci, c in enumerate(cs):
            idx = draw_subsets(width, int(c), repeats, seed)
            if keep_repeats:
                np.put_along_axis(subset[ci], idx, True, axis=1)
            # batch size from the larger of (r, n, classes) logits and (r, width, width) Grams
            per = 8 * max(n * (n_classes + 1) + n_classes * width, 5 * width * width if compute_regression else 0)
            bs = int(max(1, min(repeats, _BATCH_BYTES // max(per, 1))))
            if c == width:  # every subset is the whole layer: compute once (acc == full_acc)
                acc[ci] = full_acc
                if stats is not None:
                    r2[ci], rc[ci] = (v[0] for v in stats.batch(idx[:1], ridge, var_tol))
                continue
            for lo in range(0, repeats, bs):
                sl = slice(lo, lo + bs)
                masks = np.zeros((len(idx[sl]), width))
                np.put_along_axis(masks, idx[sl], 1.0, axis=1)
                acc[ci, sl] = _chunk_accuracy(f, w, b, y, masks)
                if stats is not None:
                    r2[ci, sl], rc[ci, sl] = stats.batch(idx[sl], ridge, var_tol)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN residual correlation at c = width
        rc_mean, rc_std = np.nanmean(rc, 1), np.nanstd(rc, 1)
    dims = ("chunk_size",)
    data = {
        "accuracy_mean": (dims, acc.mean(1), {"long_name": "chunk accuracy"}),
        "accuracy_std": (dims, acc.std(1)),
        "error_mean": (dims, 1.0 - acc.mean(1), {"long_name": "chunk error (1 - accuracy)"}),
        "r2_mean": (dims, r2.mean(1), {"long_name": "R^2 of the full representation from the chunk"}),
        "r2_std": (dims, r2.std(1)),
        "residual_corr_mean": (dims, rc_mean, {"long_name": "mean |correlation| of regression residuals"}),
        "residual_corr_std": (dims, rc_std),
        "full_accuracy": ((), full_acc, {"long_name": "accuracy of the whole last layer"}),
    }
    if keep_repeats:
        rd = ("chunk_size", "repeat")
        data |= {"accuracy": (rd, acc), "r2": (rd, r2), "residual_corr": (rd, rc),
                 "subset": (rd + ("neuron",), subset)}
    ds = xr.Dataset(data, coords={"chunk_size": cs})
    ds.attrs = {
        **_DEFS,
        "reference": "Doimo, Glielmo, Goldt, Laio, Representation mitosis in wide neural networks, arXiv 2106.03485",
        "repeats": repeats,
        "seed": int(seed),
        "ridge": float(ridge),
        "var_tol": float(var_tol),
        "regression_rows": "in-sample (all rows)" if heldout is None else f"fit on {1 - heldout:g}, scored on held-out {heldout:g} of rows",
        "heldout": 0.0 if heldout is None else float(heldout),
        "width": int(width),
        "n_examples": int(n),
        "full_accuracy": full_acc,
        "std_ddof": 0,
    }
    return ds


def critical_chunk_size(ds: xr.Dataset, threshold: float = DEFAULT_R2_THRESHOLD) -> float:
    """Critical chunk size c* of a :func:`chunk_metrics` result: where the mean R² first reaches
    ``threshold``, linearly interpolated in log(chunk size).

    With grid sizes c_1 < c_2 < … and mean R² values R_i, let j be the first index with
    R_j ≥ threshold. If j = 1, c* = c_1 (only an upper bound on the crossing). Otherwise
    ``log c* = log c_{j−1} + (threshold − R_{j−1}) / (R_j − R_{j−1}) · (log c_j − log c_{j−1})``.
    NaN when no chunk size reaches the threshold.
    """
    c = ds["chunk_size"].values.astype(float)
    r = ds["r2_mean"].values
    hit = np.flatnonzero(r >= threshold)
    if hit.size == 0:
        return float("nan")
    j = int(hit[0])
    if j == 0:
        return float(c[0])
    t = (threshold - r[j - 1]) / (r[j] - r[j - 1])
    return float(np.exp(np.log(c[j - 1]) + t * (np.log(c[j]) - np.log(c[j - 1]))))


def pca_chunk_size(features, threshold: float = DEFAULT_R2_THRESHOLD) -> int:
    """Rank floor of the critical chunk: the fewest principal components of ``features`` (n, width)
    whose cumulative explained-variance ratio reaches ``threshold``.

    By Eckart–Young no linear reconstruction of rank c (in particular none from c neurons) has an
    in-sample variance-weighted R² above the top-c explained-variance ratio, so the mean chunk R²
    cannot reach ``threshold`` below this size. A critical chunk close to it means the clone count
    measures the layer's effective dimension (a rank effect) rather than redundancy beyond it.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    f = _to_numpy(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (examples ≥ 2, width); got shape {f.shape}")
    f = f.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError("features contains NaN or Inf")
    fc = f - f.mean(0)
    ev = np.clip(np.linalg.svd(fc, compute_uv=False) ** 2, 0.0, None)
    if ev.sum() == 0:
        raise ValueError("features are constant: no variance to explain")
    ratio = np.cumsum(ev) / ev.sum()
    return int(np.searchsorted(ratio, threshold * (1 - 1e-12)) + 1)  # tolerance: ratio[-1] may be 1 − ε


def estimate_clones(
    features,
    weight,
    bias,
    labels,
    *,
    chunk_sizes: Sequence[int] | None = None,
    seed: int = 0,
    threshold: float = DEFAULT_R2_THRESHOLD,
    repeats: int = 20,
    ridge: float = 1e-8,
    heldout: float | None = None,
    threads: int | None = 1,
) -> float:
    """Number of clones = width / c*, c* the critical chunk size.

    c* is the chunk size at which the mean (over ``repeats`` random chunks) variance-weighted R²
    of reconstructing the full representation from the chunk first reaches ``threshold``
    (default 0.9), interpolated linearly in log(chunk size) between the two bracketing chunk
    sizes (:func:`critical_chunk_size`), so the estimate varies continuously with the data. If the
    smallest chunk size already reaches the threshold, c* is that size (the estimate is then a
    lower bound); NaN (with a warning) if no size reaches it. ``chunk_sizes`` defaults to 1, 2,
    4, … up to width, plus width; ``repeats`` defaults to 20 (enough for a mean R², whose spread
    over chunks is small); the other arguments go to :func:`chunk_metrics`.

    Why R² and not chunk accuracy: R² asks directly whether a chunk carries the information of the
    whole layer, and it saturates once a chunk contains one clone's worth of neurons. Chunk
    accuracy with the trained last layer keeps improving well past that size (averaging away
    the clones' independent noise, the paper's ≈ w^(−1/2) error decay) and depends on how the
    readout weights the clones, so "within a tolerance of the full layer" has no
    width-independent scale (on :func:`planted_clones` with d = 12, k = 4 the chunk error is
    still 0.24 at two thirds of the width, against 0.05 for the full layer, while R² is 0.97
    at 16 neurons). R² has a fixed scale, but its crossing moves with
    the noise: R² of a neuron outside the chunk cannot exceed signal / (signal + noise) of that
    neuron, and it approaches that ceiling only as the chunk grows past one clone, so the
    threshold must sit well below the ceiling. Measured on ``planted_clones(n=1000–2000, d=12,
    k)`` (k = 2, 4, 8): noise 0.1 (1 % of a neuron's variance) gives 0.86–0.90·k, noise 0.2
    gives 0.66–0.85·k and noise 0.3 gives 0.41–0.78·k, the larger k the lower. With d = 16
    (chunk grid aligned with the clone size) noise 0.1 gives 0.95–1.04·k. Literal copies
    (``rotate=False``) give ≈ 0.5–0.7·k: a random chunk of d neurons then misses some latent
    coordinates, so one needs ~1.5–2 clones' worth of neurons.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    f, w, b, y = _check_inputs(features, weight, bias, labels)
    width = f.shape[1]
    cs = default_chunk_sizes(width) if chunk_sizes is None else chunk_sizes
    ds = chunk_metrics(f, w, b, y, cs, repeats=repeats, seed=seed, ridge=ridge, heldout=heldout,
                       threads=threads)
    c_star = critical_chunk_size(ds, threshold)
    if not np.isfinite(c_star):
        warnings.warn(f"no chunk size reached mean R² ≥ {threshold}; returning NaN", RuntimeWarning, stacklevel=2)
    return width / c_star


def planted_clones(
    n: int,
    d: int,
    k: int,
    *,
    noise: float = 0.1,
    n_classes: int = 10,
    seed: int = 0,
    rotate: bool = True,
    permute: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic last-layer representation made of ``k`` noisy clones of a ``d``-dim latent.

    ``z ~ N(0, I_d)`` (n, d); clone m is ``z Q_m + noise · ε_m`` with ε_m ~ N(0, I) independent
    across clones, and Q_m a random orthogonal d × d matrix (``rotate=True``) or the identity
    (``rotate=False``: literal copies ``z + noise · ε_m``). ``features = [clone_1, …, clone_k]``
    (n, d·k), columns shuffled when ``permute``. Labels are the argmax of a random linear readout
    ``z Aᵀ`` (A ~ N(0, 1), shape (n_classes, d)); the last layer reads the class from the average
    of the de-rotated clones, ``logits = (1/k) Σ_m clone_m Q_mᵀ Aᵀ``, i.e. ``weight`` block m is
    ``A Q_m / k`` and ``bias = 0``.

    With ``rotate=True`` every neuron mixes all latent directions, so any ≳ d random neurons span
    z (a random chunk of one clone's size carries the information), as in trained networks.
    With literal copies a random chunk of d neurons misses each latent coordinate with
    probability ≈ (1 − 1/k)^k, so chunk-based estimates see fewer, larger "clones".

    Returns float64 ``features`` (n, d·k), ``weight`` (n_classes, d·k), ``bias`` (n_classes,)
    and int64 ``labels`` (n,).
    """
    for name, v in (("n", n), ("d", d), ("k", k), ("n_classes", n_classes)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be ≥ 2; got {n_classes}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number ≥ 0; got {noise!r}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    a = rng.standard_normal((n_classes, d))
    labels = (z @ a.T).argmax(1).astype(np.int64)
    feats, blocks = [], []
    for _ in range(k):
        if rotate:
            q, r = np.linalg.qr(rng.standard_normal((d, d)))
            q = q * np.sign(np.diag(r))  # Haar-distributed
        else:
            q = np.eye(d)
        feats.append(z @ q + noise * rng.standard_normal((n, d)))
        blocks.append(a @ q / k)
    features, weight = np.concatenate(feats, 1), np.concatenate(blocks, 1)
    if permute:
        perm = rng.permutation(d * k)
        features, weight = features[:, perm], weight[:, perm]
    return features, weight, np.zeros(n_classes), labels


# --------------------------------------------------------------------------------------------------
# Pipeline steps: last-layer features of trained classifiers, their chunk metrics, ensembles
# --------------------------------------------------------------------------------------------------


def last_layer_units(arch: str, width: int) -> int:
    """Units of the last hidden layer of ``repatlas.models.build_model(arch, depth, width)``: the
    hidden width of an MLP, 64·k pooled features of a ResNet with width multiplier k."""
    units = {"mlp": 1, "resnet": 64}
    if arch not in units:
        raise ValueError(f"arch must be one of {', '.join(units)}; got {arch!r}")
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer; got {width!r}")
    return units[arch] * int(width)


def features_to_file(model_path, full_path, subset_path, out_path, *, device: str = "cpu") -> dict:
    """Last-hidden-layer features (input of the final linear layer: an MLP's last hidden layer, a
    ResNet's pooled features) on the training subset and the test split, with the final layer's
    weight and bias, the test logits and both accuracies → .npz (meta: model spec, layer, accuracies).

    Features are taken in eval mode (BatchNorm running statistics), without augmentation, on
    `device`; the rest is float64 numpy on the host."""
    import torch

    from repatlas.activations import iter_activations
    from repatlas.data import load_npz, save_npz, standardise
    from repatlas.devices import resolve_device
    from repatlas.models import representation_layers
    from repatlas.train import load_checkpoint

    dev = resolve_device(device)
    model, spec, _ = load_checkpoint(model_path)
    model.to(dev)
    full, meta = load_npz(full_path)
    sub, _ = load_npz(subset_path)
    last = representation_layers(model)[-1]
    head = list(model.children())[-1]  # the final nn.Linear (logits / fc)

    def features(images):
        x = standardise(torch.as_tensor(images, device=dev), meta["mean"], meta["std"])
        return np.concatenate([a[last] for _, a in iter_activations(model, x, [last], 512)])

    f_train, f_test = features(sub["x"]), features(full["x_test"])
    weight = head.weight.detach().cpu().numpy().astype(np.float64)
    bias = head.bias.detach().cpu().numpy().astype(np.float64)
    logits = f_test @ weight.T + bias
    train_logits = f_train @ weight.T + bias
    info = {"model": spec, "layer": last, "units": int(f_test.shape[1]),
            "test_accuracy": float((logits.argmax(1) == full["y_test"]).mean()),
            "train_accuracy": float((train_logits.argmax(1) == sub["y"]).mean())}
    save_npz(out_path, info, features_train=f_train, labels_train=sub["y"], features_test=f_test,
             labels_test=full["y_test"], weight=weight, bias=bias, logits_test=logits)
    return info


def chunks_to_file(features_path, out_path, *, repeats: int = 50, seed: int = 0,
                   threshold: float = DEFAULT_R2_THRESHOLD, attrs: dict | None = None) -> xr.Dataset:
    """Chunk metrics of a features file on the test split (chunk sizes 1, 2, 4, … width) → netCDF.

    The clone estimate comes from the R² curve of this very Dataset (the one the figures draw):
    ``critical_chunk`` = :func:`critical_chunk_size` at ``threshold`` and ``clones`` = width ÷ it,
    both in ``attrs``, with the rank floor ``pca_chunk`` (:func:`pca_chunk_size`), ``arch``,
    ``depth``, ``model_width`` (the model's width argument), ``width`` (last-hidden-layer units),
    ``test_accuracy``, ``train_accuracy`` and ``attrs`` (e.g. regime, dataset, n; plain
    str/int/float values). Returns the Dataset it wrote.
    """
    from repatlas.data import load_npz
    from repatlas.io import write_netcdf

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1]; got {threshold!r}")
    arrays, info = load_npz(features_path)
    missing = [k for k in ("features_test", "weight", "bias", "labels_test") if k not in arrays]
    if missing:
        raise KeyError(f"{features_path}: not a mitosis features file (lacks {missing})")
    args = (arrays["features_test"], arrays["weight"], arrays["bias"], arrays["labels_test"])
    width = arrays["features_test"].shape[1]
    ds = chunk_metrics(*args, default_chunk_sizes(width), repeats=repeats, seed=seed)
    c_star = critical_chunk_size(ds, threshold)  # finite: R² = 1 at the full width
    spec = info.get("model") or {}
    ds.attrs.update({
        "clones": float(width / c_star),
        "critical_chunk": float(c_star),
        "pca_chunk": pca_chunk_size(arrays["features_test"], threshold),
        "r2_threshold": float(threshold),
        "def_clones": f"width / critical_chunk; critical_chunk = chunk size where mean R^2 first reaches "
                      f"{threshold:g}, interpolated in log(chunk size)",
        "width": int(width),
        "model": str(spec),
        "arch": str(spec.get("arch", "")),
        "depth": int(spec.get("depth", -1)),
        "model_width": int(spec.get("width", -1)),
        "test_accuracy": float(info.get("test_accuracy", float("nan"))),
        "train_accuracy": float(info.get("train_accuracy", float("nan"))),
        **(attrs or {}),
    })
    write_netcdf(ds, out_path)
    return ds


SUMMARY_COLUMNS = ("dataset", "n", "arch", "depth", "model_width", "width", "regime", "model_seed", "clones",
                   "critical_chunk", "pca_chunk", "train_accuracy", "test_accuracy")


def clones_table(datasets) -> "pd.DataFrame":
    """One row per :func:`chunks_to_file` result: the columns of ``SUMMARY_COLUMNS`` from its attrs
    (``width`` = last-hidden-layer units, ``model_width`` = the model's width argument; a missing
    attr is empty), rows sorted by arch, regime, width, seed."""
    import pandas as pd

    rows = [{k: ds.attrs.get(k) for k in SUMMARY_COLUMNS} for ds in datasets]
    if not rows:
        raise ValueError("datasets must hold at least one chunk-metrics Dataset")
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).sort_values(
        ["arch", "regime", "width", "model_seed"], kind="stable").reset_index(drop=True)


def summary_to_file(chunk_paths, out_path) -> None:
    """The clone counts of every chunk-metrics file in ``chunk_paths`` → one CSV (:func:`clones_table`)."""
    from repatlas.io import atomic_path

    datasets = []
    for path in chunk_paths:
        with xr.open_dataset(path) as ds:
            datasets.append(ds.load())
    table = clones_table(datasets)
    with atomic_path(out_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
