"""Complexity measures of 2-D functions sampled on a grid (Neural Redshift, Teney et al. 2024).

All measures take ``values`` of shape ``(R, R)`` or a batch ``(..., R, R)`` with
``values[..., i, j] = f(x_i, y_j)`` and return a float (single function) or an array over the
batch dimensions. Each measure has its own sample points:

* Fourier and Lempel-Ziv: the equispaced grid :func:`grid` (the paper: ``R = 300`` points per
  axis, endpoints included, ``grid(300, endpoint=True)``).
* Chebyshev: the tensor grid of Chebyshev points of the first kind, :func:`chebyshev_grid`.

Definitions (references.md, section 3):

* Fourier, ``convention="paper"`` (default; the co-author code's measure, in [0, 1]):
  ``c = |rfft2(values)|`` restricted to ``k_x, k_y >= 0``, ``c[0, 0] = 0``; each coefficient is
  weighted by its integer radial bin ``rint(||k||)``;
  ``C_F = sum rint(||k||) c / (r_max sum c)`` with ``r_max = rint(||(R//2, R//2)||)``.
  ``convention="cycles"`` (this project's earlier measure): DFT of ``values - mean``, all ``k``,
  ``C_F = sum ||k|| |F| / sum |F|`` in cycles per domain.
* Chebyshev: coefficients ``a[n1, n2]`` of the degree ``M - 1`` interpolant at the nodes (DCT-II);
  ``C_T = sum_{(n1,n2) != 0, n <= D} |a| ||(n1, n2)||_2 / sum |a|``.
* Lempel-Ziv: binarise at the median (``value > median`` -> 1), flatten row-major, count the
  LZ76 phrases ``c`` of the Kaspar-Schuster parse; ``C_LZ = c log2(n) / n``.

A constant function has complexity 0 under the Fourier and Chebyshev measures (the 0/0 is
defined as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import scipy.fft

__all__ = [
    "grid_axis",
    "grid",
    "chebyshev_nodes",
    "chebyshev_grid",
    "fourier_complexity",
    "FOURIER_CONVENTIONS",
    "chebyshev_coefficients",
    "chebyshev_complexity",
    "lz_complexity",
    "longest_previous_factor",
    "lz76_phrase_count",
    "lz76_phrase_count_reference",
    "MEASURES",
    "MeasureSettings",
    "compute_measures",
]

# Relative spread below which a function counts as constant: float64 round-off of
# ``values - mean`` would otherwise leave a 0/0 made of noise.
_CONST_RTOL = 64 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------- grids


def grid_axis(R: int, endpoint: bool = False) -> np.ndarray:
    """The 1-D grid axis on [-1, 1]: ``linspace(-1, 1, R)`` with ``endpoint=True`` (the paper's
    grid), else ``x_i = -1 + 2 i / R`` for ``i = 0..R-1`` (1 excluded; the default, kept for
    existing callers: on it ``cos(pi m x)`` is exactly periodic, the ``"cycles"`` fixed point)."""
    if R < 1:
        raise ValueError(f"R must be >= 1, got {R}")
    if endpoint:
        return np.linspace(-1.0, 1.0, R)
    return -1.0 + 2.0 * np.arange(R, dtype=np.float64) / R


def _tensor_grid(ax: np.ndarray) -> np.ndarray:
    xx, yy = np.meshgrid(ax, ax, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def grid(R: int, endpoint: bool = False) -> np.ndarray:
    """All grid points as an ``(R*R, 2)`` array of ``(x, y)``, x varying slowest.

    ``f(grid(R)).reshape(R, R)[i, j] == f(x_i, y_j)`` (row-major, first index = x), with the
    axis :func:`grid_axis`; ``grid(300, endpoint=True)`` is the paper's grid.
    """
    return _tensor_grid(grid_axis(R, endpoint))


def chebyshev_nodes(M: int) -> np.ndarray:
    """Chebyshev points of the first kind ``x_k = cos(pi (k + 1/2) / M)``, k = 0..M-1 (1 -> -1)."""
    if M < 1:
        raise ValueError(f"M must be >= 1, got {M}")
    return np.cos(np.pi * (np.arange(M, dtype=np.float64) + 0.5) / M)


def chebyshev_grid(M: int) -> np.ndarray:
    """The ``(M*M, 2)`` tensor grid of :func:`chebyshev_nodes`, in the layout of :func:`grid`:
    ``f(chebyshev_grid(M)).reshape(M, M)[i, j] == f(x_i, x_j)``."""
    return _tensor_grid(chebyshev_nodes(M))


# -------------------------------------------------------------------------------- helpers


def _as_batch(values) -> tuple[np.ndarray, tuple[int, ...]]:
    """float64 array ``(B, R, R)`` plus the batch shape to restore."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 2 or v.shape[-1] != v.shape[-2]:
        raise ValueError(f"values must be (..., R, R), got shape {v.shape}")
    batch_shape = v.shape[:-2]
    return v.reshape((-1,) + v.shape[-2:]), batch_shape


def _restore(out: np.ndarray, batch_shape: tuple[int, ...]):
    out = out.reshape(batch_shape)
    return float(out) if out.ndim == 0 else out


def _is_constant(v: np.ndarray) -> np.ndarray:
    """Per-item flag for (numerically) constant functions of a ``(B, R, R)`` batch."""
    flat = v.reshape(v.shape[0], -1)
    spread = flat.max(axis=1) - flat.min(axis=1)
    scale = np.abs(flat).max(axis=1)
    return spread <= _CONST_RTOL * scale


def _weighted_mean_norm(weights: np.ndarray, norms: np.ndarray, const: np.ndarray) -> np.ndarray:
    """``sum(w * norm) / sum(w)`` over the last two axes, 0 where the function is constant."""
    num = np.einsum("bij,ij->b", weights, norms)
    den = weights.sum(axis=(1, 2))
    ok = (den > 0) & ~const
    out = np.zeros(weights.shape[0])
    out[ok] = num[ok] / den[ok]
    return out


# -------------------------------------------------------------------------------- Fourier

FOURIER_CONVENTIONS = ("paper", "cycles")


@lru_cache(maxsize=16)
def _fourier_norms(R: int) -> np.ndarray:
    k = np.fft.fftfreq(R) * R  # integer frequencies, cycles per domain
    kn = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    kn.setflags(write=False)
    return kn


@lru_cache(maxsize=16)
def _radial_bins(R: int) -> np.ndarray:
    """``rint(||(i, j)||) / r_max`` on the kept quadrant ``(R//2 + 1, R//2 + 1)`` of ``rfft2``."""
    du = dv = R // 2 + 1
    i, j = np.meshgrid(np.arange(du), np.arange(dv), indexing="ij")
    r_max = np.rint(np.hypot(du - 1, dv - 1))
    w = np.rint(np.hypot(i, j)) / max(r_max, 1.0)
    w.setflags(write=False)
    return w


def fourier_complexity(values, convention: str = "paper"):
    """Fourier complexity: the mean frequency of the function's DFT magnitude spectrum.

    ``convention="paper"`` (default) is the measure behind the paper's heatmaps, as the
    co-author code computes it (ArmandNM/neural-redshift, ``get_mean_frequency_2d`` on
    ``|rfft2(output)|``): ``c = |rfft2(values)|`` of the raw values (no centring, window or
    mirroring), rows ``[: R//2 + 1]`` (so ``k_x, k_y >= 0``), ``c[0, 0] = 0``; ``S_r`` = sum of
    ``c`` over the entries with ``rint(hypot(i, j)) = r``; ``C = sum_r r S_r / (r_max sum_r S_r)``
    with ``r_max = rint(hypot(R//2, R//2))`` (212 for R = 300). It lies in [0, 1]; white noise
    gives 0.542 +- 0.0004 at R = 300 (0.547 at 64, 0.573 at 16; 16 draws each). Fixed point:
    ``values[i, j] = cos(2 pi m i / R) cos(2 pi n j / R)`` gives ``rint(hypot(m, n)) / r_max``.
    Only one quadrant is kept, so a function whose energy all lies at ``k_x k_y < 0`` (e.g.
    ``cos(2 pi m (i - j) / R)``) has nothing to measure and gets 0, as a constant does; the DFT
    treats the grid as periodic, so a smooth function whose edges do not match has a floor
    of high-frequency energy -- part of the paper's measure, not an artefact of ours.

    ``convention="cycles"`` is this project's earlier measure, kept for existing callers: DFT of
    ``values - mean``, all frequencies, ``C = sum_{k != 0} ||k|| |F(k)| / sum_{k != 0} |F(k)|``
    with integer ``k`` in cycles per domain (unbounded; ``cos(pi m x)`` on ``grid(R)`` gives m).

    Why "paper" is the default: it is the number the paper's figures report, so a value from
    this function can be set beside the paper's (ReLU ~0.15-0.2 at every A and depth).
    Constant functions give 0 under both conventions.
    """
    if convention not in FOURIER_CONVENTIONS:
        raise ValueError(f"unknown Fourier convention {convention!r}; choose from {FOURIER_CONVENTIONS}")
    v, batch_shape = _as_batch(values)
    R = v.shape[-1]
    const = _is_constant(v)
    if convention == "cycles":
        F = np.abs(np.fft.fft2(v - v.mean(axis=(1, 2), keepdims=True)))
        F[:, 0, 0] = 0.0  # k = 0 excluded (zero up to round-off after centring anyway)
        return _restore(_weighted_mean_norm(F, _fourier_norms(R), const), batch_shape)
    c = np.abs(np.fft.rfft2(v))[:, : R // 2 + 1]
    c[:, 0, 0] = 0.0  # the mean ("0 Hz") is ignored
    return _restore(_weighted_mean_norm(c, _radial_bins(R), const), batch_shape)


# ------------------------------------------------------------------------------ Chebyshev


@lru_cache(maxsize=16)
def _index_norms(D: int) -> np.ndarray:
    n = np.arange(D + 1, dtype=np.float64)
    nn = np.sqrt(n[:, None] ** 2 + n[None, :] ** 2)
    nn.setflags(write=False)
    return nn


def chebyshev_coefficients(values_at_nodes) -> np.ndarray:
    """Coefficients ``a[..., n1, n2]`` (n < M) of the interpolant ``sum a T_n1(x) T_n2(y)``
    through values at :func:`chebyshev_grid` ``(M)``.

    With ``x_k = cos(pi (k + 1/2) / M)``, ``T_n(x_k) = cos(pi n (2k + 1) / 2M)``, so the
    coefficients are a 2-D DCT-II: ``a = dctn(values) / M^2`` (scipy's unnormalised DCT-II,
    ``2 sum_k f_k cos(...)`` per axis) with row 0 and column 0 halved. Exact for polynomials of
    degree < M per axis; higher degrees alias onto lower ones.
    """
    v, batch_shape = _as_batch(values_at_nodes)
    M = v.shape[-1]
    a = scipy.fft.dctn(v, type=2, axes=(-2, -1)) / (M * M)
    a[:, 0, :] *= 0.5
    a[:, :, 0] *= 0.5
    return a.reshape(batch_shape + (M, M))


def chebyshev_complexity(values_at_nodes, degree: int = 20):
    """Mean index norm ``||(n1, n2)||_2`` weighted by the Chebyshev coefficients' ``|a|``.

    ``values_at_nodes``: ``(..., M, M)`` samples on :func:`chebyshev_grid` ``(M)``; coefficients
    by interpolation (:func:`chebyshev_coefficients`), kept for ``n1, n2 <= degree`` (< M), (0, 0)
    excluded. Constant functions give 0; ``T_3(x)`` gives 3, ``T_2(x) T_1(y)`` gives sqrt(5).

    Why interpolation at Chebyshev points and not a least-squares fit on the equispaced grid
    (this project's earlier measure): on equispaced points the fit of a function with a kink
    is dominated by Runge oscillations, and it rated random ReLU networks at 0.3-1.0 of white
    noise depending on D; interpolated at the nodes they come out at 0.26 (depth 2) to 0.33
    (depth 7) of white noise for D = 20 at every A (measured, 5 seeds), below tanh and sin at large A.
    Aliasing: with M = 128 nodes the value at D = 20 is within ~2% of M = 256 for the networks
    of the study (7% at M = 64 for high-frequency Gaussian networks), so use M >= ~6 D.
    White noise at the nodes gives ~15.6 at D = 20 (all coefficients equally likely).
    """
    v, batch_shape = _as_batch(values_at_nodes)
    M = v.shape[-1]
    D = int(degree)
    if not 0 <= D < M:
        raise ValueError(f"degree must be in [0, M-1] = [0, {M - 1}] for {M} nodes per axis, got {D}")
    a = np.abs(chebyshev_coefficients(v)[:, : D + 1, : D + 1])
    a[:, 0, 0] = 0.0
    return _restore(_weighted_mean_norm(a, _index_norms(D), _is_constant(v)), batch_shape)


# ------------------------------------------------------------------------------ Lempel-Ziv


def lz76_phrase_count_reference(s) -> int:
    """Kaspar-Schuster (1987) LZ76 phrase count, written as in the paper (slow, for testing)."""
    s = list(s)
    n = len(s)
    if n == 0:
        return 0
    if n == 1:
        return 1
    c, l, i, k, kmax = 1, 1, 0, 1, 1
    while True:
        if s[i + k - 1] == s[l + k - 1]:
            k += 1
            if l + k > n:
                c += 1
                break
        else:
            kmax = max(k, kmax)
            i += 1
            if i == l:  # no earlier start reproduces a longer piece: new phrase
                c += 1
                l += kmax
                if l + 1 > n:
                    break
                i, k, kmax = 0, 1, 1
            else:
                k = 1
    return c


# Exact LZ76 parse from the longest previous factor (LPF) of every position, all in numpy:
# suffix array by prefix doubling, LCP of neighbours in it, then for each suffix the nearest
# earlier-position suffix on either side in suffix-array order (Crochemore & Ilie 2008: the
# longest match with an earlier position is with one of these two). O(n log n) array work, a
# Python loop only over the c phrases. Measured on the 2-core dev machine (CPU time, busy
# machine), median-binarised random MLPs at 128 x 128: 11 ms per function on average, 18 ms
# at most, vs 15 ms and 56 ms for the bytes.find parse it replaced; at 300 x 300: 96 ms vs
# 157 ms on average (still too slow for 4,200 functions, hence the study's coarser LZ grid).

_NSV_WINDOW = 16  # neighbours checked directly before binary lifting (most suffixes find theirs)


def _symbols(seq) -> np.ndarray:
    """The sequence as an int64 array of symbols 0..k-1 (relabelled if needed)."""
    if isinstance(seq, (bytes, bytearray)):
        arr = np.frombuffer(bytes(seq), dtype=np.uint8)
    else:
        arr = np.asarray(seq)
        if arr.ndim != 1:
            raise ValueError("sequence must be 1-D")
    if arr.size and (arr.min() < 0 or not np.issubdtype(arr.dtype, np.integer)):
        _, arr = np.unique(arr, return_inverse=True)
    return arr.astype(np.int64)


def _window_codes(s: np.ndarray, b: int, w: int) -> np.ndarray:
    """uint64 code of ``s[i:i+w]`` (b bits per symbol, first symbol most significant, zero-padded)."""
    n = s.shape[0]
    pad = np.zeros(n + w, dtype=np.uint64)
    pad[:n] = s
    code = np.zeros(n, dtype=np.uint64)
    shift = np.uint64(b)
    for t in range(w):
        code <<= shift
        code |= pad[t : t + n]
    return code


def _dense_rank(order: np.ndarray, differs: np.ndarray) -> np.ndarray:
    """rank[order[j]] = number of key changes up to j (``differs[j]``: key j != key j-1)."""
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.cumsum(differs)
    return rank


def _suffix_array(s: np.ndarray, code: np.ndarray, w: int):
    """Suffix array (end of string smaller than every symbol) and the rank arrays of prefix
    lengths w, 2w, 4w, ... (the last one all distinct)."""
    n = s.shape[0]
    # Among equal codes, suffixes that end inside the code come first, shortest first: a stable
    # sort of the positions in reverse order puts them there.
    order = (n - 1) - np.argsort(code[::-1], kind="stable")
    short = np.minimum(n - order, w + 1)
    cs = code[order]
    differs = np.zeros(n, dtype=bool)
    differs[1:] = (cs[1:] != cs[:-1]) | (short[1:] != short[:-1])
    rank = _dense_rank(order, differs)
    levels = [(w, rank)]
    h = w
    while differs.sum() < n - 1:
        nxt = np.zeros(n, dtype=np.int64)
        nxt[: n - h] = rank[h:] + 1  # 0 = past the end
        key = rank * (n + 1) + nxt
        order = np.argsort(key)
        ks = key[order]
        differs[1:] = ks[1:] != ks[:-1]
        rank = _dense_rank(order, differs)
        h *= 2
        levels.append((h, rank))
    return order, levels


def _neighbour_lcp(sa, levels, code, b, w) -> np.ndarray:
    """``lcp(sa[j-1], sa[j])`` for j = 1..n-1: binary lifting over the rank levels, then the last
    < w symbols from the XOR of the window codes."""
    n = sa.shape[0]
    a, c = sa[:-1], sa[1:]
    acc = np.zeros(n - 1, dtype=np.int64)
    for L, rk in reversed(levels[:-1]):
        ia, ic = a + acc, c + acc
        ok = (ia < n) & (ic < n)
        acc += L * (ok & (rk.take(np.minimum(ia, n - 1)) == rk.take(np.minimum(ic, n - 1))))
    ia, ic = a + acc, c + acc
    ok = (ia < n) & (ic < n)
    x = code.take(np.minimum(ia, n - 1)) ^ code.take(np.minimum(ic, n - 1))
    hi = (x >> np.uint64(32)).astype(np.float64)
    lo = (x & np.uint64(0xFFFFFFFF)).astype(np.float64)
    # leading zero bits of the 64-bit XOR, exact via its two 32-bit halves
    lead = np.where(hi > 0, 31 - np.floor(np.log2(np.maximum(hi, 1))),
                    63 - np.floor(np.log2(np.maximum(lo, 1))))
    same = np.where(x == 0, w, (lead.astype(np.int64) - (64 - w * b)) // b)
    return np.minimum(acc + np.where(ok, same, 0), np.minimum(n - a, n - c))


def _sparse_min(a: np.ndarray, K: int) -> list[np.ndarray]:
    tables = [a]
    for k in range(1, K):
        s = 1 << (k - 1)
        tables.append(np.minimum(tables[-1][:-s], tables[-1][s:]))
    return tables


def _lcp_with_previous_smaller(sa: np.ndarray, LCP: np.ndarray) -> np.ndarray:
    """For each j: lcp of suffix ``sa[j]`` with the nearest ``j' < j`` having ``sa[j'] < sa[j]``
    (0 if none), ``LCP[x] = lcp(sa[x-1], sa[x])``: the minimum of LCP over ``(j', j]``."""
    n = sa.shape[0]
    out = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    run = np.full(n, np.iinfo(np.int64).max)  # min LCP over (j - d, j]
    for d in range(1, min(_NSV_WINDOW, n - 1) + 1):
        run[d:] = np.minimum(run[d:], LCP[1 : n - d + 1])
        hit = (sa[: n - d] < sa[d:]) & ~found[d:]
        out[d:] = np.where(hit, run[d:], out[d:])
        found[d:] |= hit
    rest = np.nonzero(~found)[0]
    rest = rest[rest > 0]
    if rest.size:  # binary lifting over sparse tables of minima, for the far ones
        K = max(1, (n - 1).bit_length())
        min_sa, min_lcp = _sparse_min(sa, K), _sparse_min(LCP, K)
        pos, cur, target = rest.copy(), np.full(rest.size, np.iinfo(np.int64).max), sa[rest]
        for k in reversed(range(K)):
            s = 1 << k
            cand = pos - s
            valid = cand >= 0
            cand = np.where(valid, cand, 0)
            move = valid & (min_sa[k].take(cand) > target)  # all of sa[cand:pos] later than sa[j]
            cur = np.where(move, np.minimum(cur, min_lcp[k].take(cand + 1)), cur)
            pos = np.where(move, cand, pos)
        has = pos > 0
        out[rest[has]] = np.minimum(cur[has], LCP[pos[has]])
    return out


def longest_previous_factor(seq) -> np.ndarray:
    """``LPF[i]`` = length of the longest ``s[i:i+m]`` that also starts at some ``p < i``
    (overlap allowed), for every position i of a symbol sequence."""
    s = _symbols(seq)
    n = s.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    b = max(1, int(s.max()).bit_length())
    w = 64 // b
    code = _window_codes(s, b, w)
    sa, levels = _suffix_array(s, code, w)
    LCP = np.concatenate([[0], _neighbour_lcp(sa, levels, code, b, w)])
    left = _lcp_with_previous_smaller(sa, LCP)
    right = _lcp_with_previous_smaller(sa[::-1].copy(), np.concatenate([[0], LCP[1:][::-1]]))[::-1]
    lpf = np.empty(n, dtype=np.int64)
    lpf[sa] = np.maximum(left, right)
    return lpf


def lz76_phrase_count(seq) -> int:
    """LZ76 phrase count (Kaspar-Schuster parse) of a symbol sequence (bytes or 1-D int array).

    The phrase starting at ``l`` is the longest piece ``s[l:l+m]`` that already occurs starting
    before ``l`` (overlap allowed) plus one new symbol, i.e. ``m = LPF[l]``; the last phrase may
    end at the end of the sequence without a new symbol. Equal to
    :func:`lz76_phrase_count_reference`; see :func:`longest_previous_factor` for the method.
    """
    s = _symbols(seq)
    n = s.shape[0]
    if n < 2:
        return n
    lpf = longest_previous_factor(s).tolist()
    c, l = 1, 1  # the first symbol is always a phrase of its own
    while l < n:
        c += 1
        l += lpf[l] + 1
    return c


def _binarise(v: np.ndarray) -> np.ndarray:
    """``(B, n)`` uint8 array: 1 where value > the item's median, flattened row-major."""
    flat = v.reshape(v.shape[0], -1)
    med = np.median(flat, axis=1, keepdims=True)
    return (flat > med).astype(np.uint8)


def lz_complexity(values):
    """Normalised LZ76 complexity ``c log2(n) / n`` of the median-binarised, row-major values.

    ``c`` = number of Kaspar-Schuster phrases, ``n = R*R``. An i.i.d. fair-coin sequence gives
    about 1 (1.035 +- 0.008 at n = 4096: the limit is approached from above), a constant one
    ``2 log2(n) / n`` (all values equal the median, so all bits are 0). About 11 ms per
    128 x 128 random-MLP function (:func:`lz76_phrase_count`).
    """
    v, batch_shape = _as_batch(values)
    bits = _binarise(v)
    n = bits.shape[1]
    counts = np.array([lz76_phrase_count(row) for row in bits], dtype=np.float64)
    return _restore(counts * math.log2(n) / n if n > 1 else counts, batch_shape)


# --------------------------------------------------------------------------------- registry

MEASURES = ("fourier", "chebyshev", "lz")


@dataclass(frozen=True)
class MeasureSettings:
    """Where each measure samples a function and with which options.

    The defaults are the study's (configs/redshift.yaml): Fourier on the paper's 300 x 300 grid
    with endpoints (paper convention), Chebyshev at D = 20 from 128 x 128 Chebyshev nodes, LZ on
    its own 128 x 128 grid with the same endpoint convention (``lz_grid_size=None``: on the
    Fourier grid). Why LZ is coarser: the exact parse costs 71 ms per 300 x 300 random-MLP
    function against 11 ms at 128 x 128 (CPU, measured over the paper sweep), 5 of the study's
    10 minutes at 4,200 functions. A function is sampled once per *sample set*
    (:meth:`sample_sets`); measures sharing a set share the samples.
    """

    measures: tuple[str, ...] = MEASURES
    grid_size: int = 300
    grid_endpoint: bool = True
    fourier_convention: str = "paper"
    chebyshev_nodes: int = 128
    chebyshev_degree: int = 20
    lz_grid_size: int | None = 128

    def __post_init__(self):
        object.__setattr__(self, "measures", tuple(self.measures))
        unknown = set(self.measures) - set(MEASURES)
        if unknown:
            raise ValueError(f"unknown measures {sorted(unknown)}; choose from {list(MEASURES)}")
        if self.fourier_convention not in FOURIER_CONVENTIONS:
            raise ValueError(f"unknown Fourier convention {self.fourier_convention!r}; "
                             f"choose from {FOURIER_CONVENTIONS}")
        if not 0 <= self.chebyshev_degree < self.chebyshev_nodes:
            raise ValueError(f"chebyshev_degree must be < chebyshev_nodes ({self.chebyshev_nodes}), "
                             f"got {self.chebyshev_degree}")

    def sample_set(self, measure: str) -> str:
        """Name of the sample set a measure reads: "grid", "chebyshev" or "lz_grid"."""
        if measure == "chebyshev":
            return "chebyshev"
        if measure == "lz" and self.lz_grid_size not in (None, self.grid_size):
            return "lz_grid"
        return "grid"

    def sample_sides(self) -> dict[str, int]:
        """``{set name: points per axis}`` for the sets the selected measures need, in a fixed order."""
        sides = {"grid": self.grid_size, "chebyshev": self.chebyshev_nodes, "lz_grid": self.lz_grid_size}
        return {name: sides[name] for name in dict.fromkeys(self.sample_set(m) for m in self.measures)}

    def sample_sets(self) -> dict[str, np.ndarray]:
        """``{set name: (side * side, 2) points}``, in the order of :meth:`sample_sides`."""
        return {name: chebyshev_grid(side) if name == "chebyshev" else grid(side, self.grid_endpoint)
                for name, side in self.sample_sides().items()}

    def points(self) -> np.ndarray:
        """All sample points, the sets one after the other: evaluate a function once on these."""
        return np.concatenate(list(self.sample_sets().values()))

    def split(self, values) -> dict[str, np.ndarray]:
        """Values ``(..., P)`` at :meth:`points` -> ``{set name: (..., side, side)}``."""
        values = np.asarray(values)
        out, start = {}, 0
        for name, side in self.sample_sides().items():
            out[name] = values[..., start : start + side * side].reshape(values.shape[:-1] + (side, side))
            start += side * side
        if start != values.shape[-1]:
            raise ValueError(f"expected {start} values per function (the sample points), "
                             f"got {values.shape[-1]}")
        return out

    def compute(self, samples: dict[str, np.ndarray],
                measures: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``{measure: values}`` from ``samples[set name]`` of shape ``(..., R, R)``, for the
        selected measures (or the named subset of them)."""
        out = {}
        for m in self.measures if measures is None else measures:
            v = samples[self.sample_set(m)]
            if m == "fourier":
                r = fourier_complexity(v, self.fourier_convention)
            elif m == "chebyshev":
                r = chebyshev_complexity(v, self.chebyshev_degree)
            else:
                r = lz_complexity(v)
            out[m] = np.asarray(r, dtype=np.float64)
        return out

    def describe(self, measure: str) -> str:
        """One line naming the measure and its samples, for attrs and captions."""
        end = "with endpoints" if self.grid_endpoint else "endpoint 1 excluded"
        if measure == "fourier":
            return (f"Fourier ({self.fourier_convention} convention), "
                    f"{self.grid_size}x{self.grid_size} grid on [-1, 1]^2, {end}")
        if measure == "chebyshev":
            M = self.chebyshev_nodes
            return f"Chebyshev, degree <= {self.chebyshev_degree}, interpolated at {M}x{M} Chebyshev points"
        R = self.lz_grid_size or self.grid_size
        return f"Lempel-Ziv (LZ76), {R}x{R} grid on [-1, 1]^2, {end}"


def compute_measures(values, measures=("fourier", "lz"), **options) -> dict[str, np.ndarray]:
    """``{name: measure(values)}`` for measures reading one ``(..., R, R)`` array of samples.

    For Chebyshev the values must be samples at :func:`chebyshev_grid`; ``options`` go to the
    measures (``convention`` for Fourier, ``degree`` for Chebyshev).
    """
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}; choose from {list(MEASURES)}")
    funcs = {
        "fourier": lambda v: fourier_complexity(v, options.get("convention", "paper")),
        "chebyshev": lambda v: chebyshev_complexity(v, options.get("degree", 20)),
        "lz": lz_complexity,
    }
    return {m: np.asarray(funcs[m](values), dtype=np.float64) for m in measures}
