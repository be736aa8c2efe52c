"""Representation mitosis (Doimo, Glielmo, Goldt & Laio, arXiv 2106.03485 / NeurIPS 2022).

Above a critical width the last hidden layer of a network splits into groups of neurons ("clones")
that carry the same information and differ by independent noise. The signature is measured on
random chunks of neurons (``chunk_metrics``): for each chunk size ``c`` and each of ``repeats``
random subsets ``S`` of ``c`` neurons (drawn without replacement),

* **chunk accuracy** — the trained last layer restricted to the chunk and rescaled to the full
  layer's magnitude, ``logits = (width / c) · features[:, S] @ weight[:, S].T + bias`` (the
  paper's chunk classifier; without the factor the bias dominates small chunks), scored against
  ``labels``;
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
docstring for ``c*``); ``planted_clones`` builds synthetic representations with a known
number of clones and ``planted_mixture`` rank-d ones without designed copies, which give the
same critical chunk (≈ d): a clone count is width ÷ the layer's effective dimension, bounded
below by the rank floor ``pca_chunk_size``.

The pipeline steps (``repatlas.steps.mitosis``: last-layer features, :func:`clone_metrics` of
them, :func:`clones_table` of all) work on any ``repatlas.models`` classifier: the representation is
the input of the final linear layer, i.e. an MLP's last hidden layer (``width`` units) or a ResNet's
globally pooled features (64·k units for width multiplier k, :func:`last_layer_units`).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
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
    idx = (np.argpartition(keys, chunk_size - 1, axis=1)[:, :chunk_size] if chunk_size < width
           else np.argsort(keys, axis=1))
    return np.sort(idx, axis=1)


def _heldout_split(n: int, heldout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x4D17])
    perm = rng.permutation(n)
    n_test = int(round(heldout * n))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"heldout={heldout} leaves fewer than 2 rows to fit or to score (n={n})")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# ----------------------------------------------------------------------------- per-batch kernels


def _chunk_accuracy(f, w, b, y, masks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Accuracy of the last layer restricted by 0/1 ``masks`` (r, width) — one per row — with the
    chunk's logits multiplied by ``scale`` before the bias is added.

    Masking the weight columns instead of gathering keeps the summation order of the full layer,
    so an all-ones mask with scale 1 reproduces ``features @ weight.T + bias`` exactly.
    """
    r, (k, width) = len(masks), w.shape
    wm = (w[None, :, :] * (masks[:, None, :] * scale)).reshape(r * k, width)   # (r·classes, width)
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
    "def_accuracy": "mean over examples of "
    "argmax((width / chunk_size) * features[:, S] @ weight[:, S].T + bias) "
    "== label (the factor is 1 when rescale is off), S a uniform random subset of chunk_size neurons",
    "def_r2": "variance-weighted R^2 = 1 - sum_ij (F - Fhat)^2 / sum_ij (F - mean_j F)^2 "
    "of a ridge regression "
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
    compute_accuracy: bool = True,
    rescale: bool = True,
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
    compute_accuracy : ``False`` skips the chunk accuracy (NaN; ``full_accuracy`` is still computed).
    rescale : ``True`` (default, the paper's chunk classifier) scores
        ``(width / c) · features[:, S] @ weight[:, S].T + bias``: the chunk's logits are scaled up
        to the full layer's magnitude, so the bias keeps its weight relative to them. ``False``
        scores the unscaled ``features[:, S] @ weight[:, S].T + bias``, where the bias dominates
        small chunks.
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
            per = 8 * max(n * (n_classes + 1) + n_classes * width,
                          5 * width * width if compute_regression else 0)
            bs = int(max(1, min(repeats, _BATCH_BYTES // max(per, 1))))
            if c == width:  # every subset is the whole layer: compute once (acc == full_acc)
                acc[ci] = full_acc if compute_accuracy else np.nan
                if stats is not None:
                    r2[ci], rc[ci] = (v[0] for v in stats.batch(idx[:1], ridge, var_tol))
                continue
            for lo in range(0, repeats, bs):
                sl = slice(lo, lo + bs)
                if compute_accuracy:
                    masks = np.zeros((len(idx[sl]), width))
                    np.put_along_axis(masks, idx[sl], 1.0, axis=1)
                    acc[ci, sl] = _chunk_accuracy(f, w, b, y, masks, width / c if rescale else 1.0)
                else:
                    acc[ci, sl] = np.nan
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
        "reference": "Doimo, Glielmo, Goldt, Laio, Representation mitosis in wide neural networks, "
                     "arXiv 2106.03485",
        "repeats": repeats,
        "seed": int(seed),
        "ridge": float(ridge),
        "var_tol": float(var_tol),
        "regression_rows": ("in-sample (all rows)" if heldout is None
                            else f"fit on {1 - heldout:g}, scored on held-out {heldout:g} of rows"),
        "heldout": 0.0 if heldout is None else float(heldout),
        "rescale": int(rescale),
        "width": int(width),
        "n_examples": int(n),
        "full_accuracy": full_acc,
        "std_ddof": 0,
    }
    return ds


def critical_chunk_size(ds: xr.Dataset, threshold: float = DEFAULT_R2_THRESHOLD, *,
                        variable: str = "r2_mean") -> float:
    """Critical chunk size c* of a :func:`chunk_metrics` result: where the mean R² (``variable``)
    first reaches ``threshold``, linearly interpolated in log(chunk size).

    With grid sizes c_1 < c_2 < … and mean R² values R_i, let j be the first index with
    R_j ≥ threshold. If j = 1, c* = c_1 (only an upper bound on the crossing). Otherwise
    ``log c* = log c_{j−1} + (threshold − R_{j−1}) / (R_j − R_{j−1}) · (log c_j − log c_{j−1})``.
    NaN when no chunk size reaches the threshold.
    """
    c = ds["chunk_size"].values.astype(float)
    r = ds[variable].values
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
        warnings.warn(f"no chunk size reached mean R² ≥ {threshold}; returning NaN", RuntimeWarning,
                      stacklevel=2)
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


def planted_mixture(
    n: int,
    d: int,
    width: int,
    *,
    noise: float = 0.1,
    n_classes: int = 10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic representation of rank ``d`` with independent noise and no designed copies.

    ``features = z M + noise · ε`` with ``z ~ N(0, I_d)`` (n, d), ``M ~ N(0, 1/d)`` (d, width) and
    ``ε ~ N(0, I)`` (n, width): every neuron is its own random mixture of the d latent directions
    (variance ≈ 1 + noise², like a :func:`planted_clones` neuron). Labels are the argmax of
    ``z Aᵀ`` (A ~ N(0, 1), (n_classes, d)); ``weight`` is the least-squares readout of those class
    scores from the features, ``bias = 0``.

    Why: any d random neurons of it span z, so its critical chunk is ≈ d and its "clone count"
    width / d, exactly as for width / d planted clones — the chunk measure counts how many times
    the layer's effective dimension fits in its width; "clones" are redundancy beyond the rank
    (identical information plus independent noise), which is what the paper's definition says.
    """
    for name, v in (("n", n), ("d", d), ("width", width), ("n_classes", n_classes)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number ≥ 0; got {noise!r}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    features = z @ (rng.standard_normal((d, width)) / np.sqrt(d)) + noise * rng.standard_normal((n, width))
    scores = z @ rng.standard_normal((n_classes, d)).T
    weight = np.linalg.lstsq(features, scores, rcond=None)[0].T
    return features, weight, np.zeros(n_classes), scores.argmax(1).astype(np.int64)


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


R2_THRESHOLDS = (0.8, 0.9, 0.95)
DEFAULT_HELDOUT = 0.5


def clone_metrics(arrays: dict, info: dict, *, repeats: int = 50, seed: int = 0,
                  threshold: float = DEFAULT_R2_THRESHOLD, thresholds=R2_THRESHOLDS,
                  heldout: float = DEFAULT_HELDOUT, attrs: dict | None = None,
                  source: str = "features") -> xr.Dataset:
    """Chunk metrics of a features file's arrays and meta `info` (`repatlas.steps.mitosis.features_to_file`;
    `source` names it in errors) on the test split (chunk sizes 1, 2, 4, … width).

    Two regressions per chunk: in-sample (fit and score on all test rows, as the paper's code) and
    held-out (fit on a random ``1 − heldout`` of the test rows, score R² and residual correlation
    on the rest: ``r2_heldout_*``, ``residual_corr_heldout_*``). In-sample R² cannot fall as the
    chunk grows and reaches 1 once the chunk has as many neurons as rows (360 test images for
    digits); held-out R² charges a chunk for fitting noise. Chunk accuracy (rescaled, the
    paper's) uses all rows.

    Clones: ``critical_chunk`` and ``clones`` (= width ÷ critical chunk) for each R² kind
    (``r2``: in_sample, heldout) and each of ``thresholds`` (:func:`critical_chunk_size`), as
    variables; the attrs ``critical_chunk`` and ``clones`` are the in-sample values at
    ``threshold`` (the figures' estimate), with the rank floor ``pca_chunk``
    (:func:`pca_chunk_size`), ``arch``, ``depth``, ``model_width`` (the model's width argument),
    ``width`` (last-hidden-layer units), ``test_accuracy``, ``train_accuracy`` (eval
    mode, no augmentation, on the training subset), ``epoch`` (the training epoch of the weights;
    -1 if unknown) and ``attrs`` (e.g. regime, dataset, n; plain
    str/int/float values).
    """
    thresholds = sorted({float(t) for t in (*thresholds, threshold)})
    if not all(0 < t <= 1 for t in thresholds):
        raise ValueError(f"threshold(s) must lie in (0, 1]; got {thresholds}")
    missing = [k for k in ("features_test", "weight", "bias", "labels_test") if k not in arrays]
    if missing:
        raise KeyError(f"{source}: not a mitosis features file (lacks {missing})")
    args = (arrays["features_test"], arrays["weight"], arrays["bias"], arrays["labels_test"])
    width = arrays["features_test"].shape[1]
    sizes = default_chunk_sizes(width)
    ds = chunk_metrics(*args, sizes, repeats=repeats, seed=seed)
    held = chunk_metrics(*args, sizes, repeats=repeats, seed=seed, heldout=heldout, compute_accuracy=False)
    for name in ("r2_mean", "r2_std", "residual_corr_mean", "residual_corr_std"):
        ds[name.replace("_mean", "_heldout_mean").replace("_std", "_heldout_std")] = held[name]
    kinds = {"in_sample": "r2_mean", "heldout": "r2_heldout_mean"}
    c_star = np.array([[critical_chunk_size(ds, t, variable=v) for t in thresholds] for v in kinds.values()])
    ds["critical_chunk"] = (("r2", "threshold"), c_star,
                            {"long_name": "chunk size where mean R^2 first reaches the threshold"})
    ds["clones"] = (("r2", "threshold"), width / c_star, {"long_name": "width / critical_chunk"})
    ds = ds.assign_coords(r2=list(kinds), threshold=thresholds)
    primary = float(ds["critical_chunk"].sel(r2="in_sample", threshold=float(threshold)))
    spec = info.get("model") or {}
    ds.attrs.update({
        "clones": float(width / primary),
        "critical_chunk": primary,
        "pca_chunk": pca_chunk_size(arrays["features_test"], threshold),
        "r2_threshold": float(threshold),
        "heldout": float(heldout),
        "def_clones": f"width / critical_chunk; critical_chunk = chunk size where mean R^2 first reaches "
                      f"{threshold:g}, interpolated in log(chunk size)",
        "width": int(width),
        "model": str(spec),
        "arch": str(spec.get("arch", "")),
        "depth": int(spec.get("depth", -1)),
        "model_width": int(spec.get("width", -1)),
        "test_accuracy": float(info.get("test_accuracy", float("nan"))),
        "train_accuracy": float(info.get("train_accuracy", float("nan"))),
        "epoch": int(info.get("epoch", -1)),
        **(attrs or {}),
    })
    return ds


SUMMARY_COLUMNS = ("dataset", "n", "arch", "depth", "model_width", "width", "regime", "epoch", "model_seed",
                   "clones", "critical_chunk", "pca_chunk", "train_accuracy", "train_error", "test_accuracy")

# Tolerances of the paper's qualitative claims (mitosis_claims). Fixed before looking at our data.
CLAIM_TOLERANCES = {
    # critical chunk "constant" above the onset: max / min over those widths at most this ratio
    "constant_ratio": 1.5,
    # clones ∝ width: the log-log slope above the onset within 1 ± this
    "slope_tolerance": 0.25,
    # residual correlations "low": mean |ρ| of the residuals at twice the critical chunk at most
    # this. Ideal planted clones and rank-d mixtures with independent noise give 0.12-0.14 there
    # (0.35-0.44 at c* itself, where 10 % of the shared signal is still unexplained, 0.06 at 4c*);
    # independent noise measured on n rows has a floor ≈ sqrt(2 / (π n)): 0.04 for 360 rows.
    "residual_corr": 0.15,
    # chunk accuracy ≈ full-layer accuracy: the (rescaled) chunk at the critical size within this
    "accuracy": 0.02,
    # mitosis needs zero training error: clones at zero error at least this factor above every
    # earlier snapshot of the same run with training error > 0
    "growth_ratio": 1.5,
    # "zero" training error: at most this (eval-mode BatchNorm statistics can miss an image or
    # two of 1000 that the training-mode pass fitted: converged digits ResNets measure 0.001)
    "zero_error": 0.002,
}


def _at_critical(ds: xr.Dataset, variable: str, c_star: float) -> float:
    """``variable`` at the smallest chunk size of the grid ≥ c* (NaN if c* is NaN or beyond the grid)."""
    if not np.isfinite(c_star):
        return float("nan")
    sizes = ds["chunk_size"].values
    i = np.searchsorted(sizes, c_star * (1 - 1e-9))
    return float(ds[variable].values[i]) if i < len(sizes) else float("nan")


def chunk_summary(ds: xr.Dataset) -> dict:
    """One summary row of a :func:`clone_metrics` Dataset: its attrs (``SUMMARY_COLUMNS``), the
    clone count for each R² kind and threshold (``clones_r2_<t>`` in-sample,
    ``clones_heldout_r2_<t>``), and at the (in-sample, primary-threshold) critical chunk c* — read
    at the smallest chunk size of the grid ≥ c* — the residual correlation (in-sample; also at 2c*,
    in-sample and held-out), the rescaled chunk accuracy and its shortfall from the full layer's
    test accuracy (also at 2c*)."""
    row = {k: ds.attrs.get(k) for k in SUMMARY_COLUMNS}
    if row["train_accuracy"] is not None:
        row["train_error"] = 1.0 - float(row["train_accuracy"])
    if "clones" in ds.data_vars:
        for kind, prefix in (("in_sample", "clones_r2_"), ("heldout", "clones_heldout_r2_")):
            for t in ds["threshold"].values:
                row[f"{prefix}{float(t):g}"] = float(ds["clones"].sel(r2=kind, threshold=t))
    c_star = float(ds.attrs.get("critical_chunk", np.nan))
    row["residual_corr_at_critical"] = _at_critical(ds, "residual_corr_mean", c_star)
    # at 2c* (NaN when that is the whole layer: no residuals left)
    row["residual_corr_at_2critical"] = _at_critical(ds, "residual_corr_mean", 2 * c_star)
    if "residual_corr_heldout_mean" in ds.data_vars:
        row["residual_corr_heldout_at_2critical"] = _at_critical(ds, "residual_corr_heldout_mean", 2 * c_star)
    row["chunk_accuracy_at_critical"] = _at_critical(ds, "accuracy_mean", c_star)
    row["accuracy_gap_at_critical"] = float(row["test_accuracy"]) - row["chunk_accuracy_at_critical"]
    row["accuracy_gap_at_2critical"] = (float(row["test_accuracy"])
                                        - _at_critical(ds, "accuracy_mean", 2 * c_star))
    return row


def _onset(widths: np.ndarray, c_star: np.ndarray, ratio: float):
    """Smallest width from which on (≥ 3 widths) max/min of the critical chunk is ≤ ratio; None if none."""
    for i in range(len(widths) - 2):
        tail = c_star[i:]
        if np.all(np.isfinite(tail)) and tail.max() <= ratio * tail.min():
            return int(widths[i])
    return None


def mitosis_claims(table, tolerances: dict | None = None):
    """The paper's qualitative claims as columns of the summary ``table`` (rows of
    :func:`chunk_summary`; ``regime`` "converged" for the trained-to-the-end model, "epoch<E>" for
    snapshots of the same run). Per architecture, on the converged rows (critical chunk = median
    over seeds per width; widths in last-hidden-layer units):

    * ``onset_width``: the smallest swept width from which on (at least 3 widths) the critical
      chunk stays within ``constant_ratio`` (max/min) — empty if there is none;
      ``claim_constant_critical_chunk``: such an onset exists;
    * ``clones_width_slope``: log-log slope of clones against width above the onset (the widest
      3 widths if no onset); ``claim_clones_proportional_to_width``: an onset exists and the slope
      is within 1 ± ``slope_tolerance``;
    * ``claim_low_residual_corr``: every converged model above the onset where 2c* is below the
      full width has ``residual_corr_at_2critical`` ≤ ``residual_corr`` (at c* itself even ideal
      clones keep correlated residuals: the unexplained tenth of the shared signal);
    * ``claim_chunk_accuracy_matches_full``: every converged model above the onset has
      ``accuracy_gap_at_critical`` ≤ ``accuracy``;

    and per converged model above the onset (its own row): ``clones_before_zero_error``, the most
    clones of a snapshot of the same run with training error above ``zero_error``, and
    ``claim_mitosis_needs_zero_error``: the converged model's training error is at most
    ``zero_error`` and it has at least ``growth_ratio`` times those clones (empty when no snapshot
    had training error above ``zero_error``).
    Claims are 1/0 (empty where untestable: below the onset, too few widths). Tolerances:
    ``CLAIM_TOLERANCES`` updated by ``tolerances``.
    """
    tol = {**CLAIM_TOLERANCES, **(tolerances or {})}
    out = table.copy()
    cols = ["onset_width", "above_onset", "clones_width_slope", "claim_constant_critical_chunk",
            "claim_clones_proportional_to_width", "claim_low_residual_corr",
            "claim_chunk_accuracy_matches_full", "clones_before_zero_error", "claim_mitosis_needs_zero_error"]
    for c in cols:
        out[c] = pd.Series(np.nan, index=out.index, dtype=float)
    conv = out["regime"] == "converged"
    for arch in out.loc[conv, "arch"].unique():
        rows = conv & (out["arch"] == arch)
        per_width = out[rows].groupby("width")["critical_chunk"].median().sort_index()
        widths, c_star = per_width.index.values, per_width.values
        if len(widths) < 3:
            continue  # the width claims need at least 3 widths
        onset = _onset(widths, c_star, tol["constant_ratio"])
        above = rows & (out["width"] >= onset) if onset is not None else rows & False
        tail = widths >= onset if onset is not None else np.arange(len(widths)) >= len(widths) - 3
        slope = float(np.polyfit(np.log(widths[tail]), np.log(widths[tail] / c_star[tail]), 1)[0])
        out.loc[rows, "onset_width"] = np.nan if onset is None else onset
        out.loc[rows, "above_onset"] = ((out.loc[rows, "width"] >= onset).astype(float) if onset is not None
                                        else 0.0)
        out.loc[rows, "clones_width_slope"] = slope
        out.loc[rows, "claim_constant_critical_chunk"] = float(onset is not None)
        out.loc[rows, "claim_clones_proportional_to_width"] = float(
            onset is not None and abs(slope - 1) <= tol["slope_tolerance"])
        if onset is not None:
            rc = out.loc[above, "residual_corr_at_2critical"].dropna()
            if len(rc):
                out.loc[rows, "claim_low_residual_corr"] = float((rc <= tol["residual_corr"]).all())
            out.loc[rows, "claim_chunk_accuracy_matches_full"] = float(
                (out.loc[above, "accuracy_gap_at_critical"] <= tol["accuracy"]).all())
        for i in out.index[above]:
            r = out.loc[i]
            run = ((out["arch"] == arch) & (out["width"] == r["width"])
                   & (out["model_seed"] == r["model_seed"])
                   & ~conv & (out["train_error"] > tol["zero_error"]))
            if run.any():
                before = float(out.loc[run, "clones"].max())
                out.loc[i, "clones_before_zero_error"] = before
                out.loc[i, "claim_mitosis_needs_zero_error"] = float(
                    r["train_error"] <= tol["zero_error"] and r["clones"] >= tol["growth_ratio"] * before)
    return out


def clones_table(datasets, tolerances: dict | None = None) -> "pd.DataFrame":
    """One row per :func:`clone_metrics` result (:func:`chunk_summary`: ``width`` = last-hidden-layer
    units, ``model_width`` = the model's width argument; a missing attr is empty) with the claim
    columns of :func:`mitosis_claims`, rows sorted by arch, width, seed and epoch (each run's
    snapshots, then its converged model)."""
    rows = [chunk_summary(ds) for ds in datasets]
    if not rows:
        raise ValueError("datasets must hold at least one chunk-metrics Dataset")
    columns = list(dict.fromkeys([*SUMMARY_COLUMNS, *(k for r in rows for k in r)]))
    table = pd.DataFrame(rows, columns=columns).sort_values(
        ["arch", "width", "model_seed", "epoch"], kind="stable").reset_index(drop=True)
    return mitosis_claims(table, tolerances)
