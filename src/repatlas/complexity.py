"""Complexity measures of 2-D functions sampled on a grid (Neural Redshift, Teney et al. 2024).

All measures take ``values`` of shape ``(R, R)`` or a batch ``(..., R, R)`` with
``values[..., i, j] = f(x_i, y_j)`` on the grid of :func:`grid_axis`, and return a float
(single function) or an array over the batch dimensions.

Definitions (references.md, section 3):

* Fourier: ``F`` = 2-D DFT of ``values - mean``; ``k`` = integer frequency vector in cycles per
  domain (``np.fft.fftfreq(R) * R`` per axis);
  ``C_F = sum_{k != 0} |F(k)| ||k||_2 / sum_{k != 0} |F(k)|``. ``cos(pi m x)`` gives exactly ``m``.
* Chebyshev: least-squares fit ``sum_{n1, n2 <= D} c[n1, n2] T_n1(x) T_n2(y)`` on the grid;
  ``C_T = sum_{(n1,n2) != 0} |c| ||(n1, n2)||_2 / sum_{(n1,n2) != 0} |c|``.
* Lempel-Ziv: binarise at the median (``value > median`` -> 1), flatten row-major, count the
  LZ76 phrases ``c`` of the Kaspar-Schuster parse; ``C_LZ = c log2(n) / n``.

A constant function has complexity 0 under the Fourier and Chebyshev measures (the 0/0 is
defined as 0).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "grid_axis",
    "grid",
    "fourier_complexity",
    "chebyshev_complexity",
    "default_chebyshev_degree",
    "lz_complexity",
    "lz76_phrase_count",
    "lz76_phrase_count_reference",
    "MEASURES",
    "compute_measures",
]

# Relative spread below which a function counts as constant: float64 round-off of
# ``values - mean`` would otherwise leave a 0/0 made of noise.
_CONST_RTOL = 64 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------- grid


def grid_axis(R: int) -> np.ndarray:
    """The 1-D grid axis: ``x_i = -1 + 2 i / R`` for ``i = 0..R-1`` (endpoint 1 excluded)."""
    if R < 1:
        raise ValueError(f"R must be >= 1, got {R}")
    return -1.0 + 2.0 * np.arange(R, dtype=np.float64) / R


def grid(R: int) -> np.ndarray:
    """All grid points as an ``(R*R, 2)`` array of ``(x, y)``, x varying slowest.

    ``f(grid(R)).reshape(R, R)[i, j] == f(x_i, y_j)`` (row-major, first index = x).
    """
    ax = grid_axis(R)
    xx, yy = np.meshgrid(ax, ax, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


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


@lru_cache(maxsize=16)
def _fourier_norms(R: int) -> np.ndarray:
    k = np.fft.fftfreq(R) * R  # integer frequencies, cycles per domain
    kn = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    kn.setflags(write=False)
    return kn


def fourier_complexity(values):
    """Mean frequency norm weighted by the DFT magnitude of ``values - mean`` (k = 0 excluded).

    ``C_F = sum_{k!=0} |F(k)| ||k||_2 / sum_{k!=0} |F(k)|`` with integer ``k`` in cycles per
    domain; constant functions give 0.
    """
    v, batch_shape = _as_batch(values)
    R = v.shape[-1]
    const = _is_constant(v)
    F = np.abs(np.fft.fft2(v - v.mean(axis=(1, 2), keepdims=True)))
    F[:, 0, 0] = 0.0  # k = 0 excluded (zero up to round-off after centring anyway)
    return _restore(_weighted_mean_norm(F, _fourier_norms(R), const), batch_shape)


# ------------------------------------------------------------------------------ Chebyshev


def default_chebyshev_degree(R: int) -> int:
    """Default maximum degree ``D = min(20, R // 2)``.

    On R equispaced points the Chebyshev least-squares problem is well posed for D << R but its
    condition number grows fast once D approaches R (Runge): cond(V) = 69 for (R, D) = (64, 20),
    2.6e3 for (32, 20), 3.5e4 for (16, 15). ``R // 2`` keeps small grids usable.
    """
    return int(min(20, R // 2))


@lru_cache(maxsize=16)
def _chebyshev_projector(R: int, D: int) -> np.ndarray:
    """Pseudo-inverse ``P`` (D+1, R) of the 1-D Vandermonde ``V[i, n] = T_n(x_i)``.

    The 2-D design matrix is ``kron(V, V)`` whose pseudo-inverse is ``kron(P, P)``, so the 2-D
    least-squares coefficients are ``C = P @ values @ P.T`` (separable; exact, not an approximation).
    """
    x = grid_axis(R)
    V = np.polynomial.chebyshev.chebvander(x, D)
    P = np.linalg.pinv(V)
    P.setflags(write=False)
    return P


@lru_cache(maxsize=16)
def _index_norms(D: int) -> np.ndarray:
    n = np.arange(D + 1, dtype=np.float64)
    nn = np.sqrt(n[:, None] ** 2 + n[None, :] ** 2)
    nn.setflags(write=False)
    return nn


def chebyshev_coefficients(values, degree: int | None = None) -> np.ndarray:
    """Least-squares coefficients ``c[..., n1, n2]`` of ``sum c T_n1(x) T_n2(y)`` on the grid."""
    v, batch_shape = _as_batch(values)
    R = v.shape[-1]
    D = default_chebyshev_degree(R) if degree is None else int(degree)
    if not 0 <= D < R:
        raise ValueError(f"degree must be in [0, R-1] = [0, {R - 1}], got {D}")
    P = _chebyshev_projector(R, D)
    c = P @ v @ P.T
    return c.reshape(batch_shape + (D + 1, D + 1))


def chebyshev_complexity(values, degree: int | None = None):
    """Mean index norm ``||(n1, n2)||_2`` weighted by ``|c|`` of the Chebyshev fit, (0,0) excluded.

    ``degree`` = maximum degree D per axis (default :func:`default_chebyshev_degree`, i.e. 20 on a
    64 x 64 grid). Constant functions give 0.
    """
    v, batch_shape = _as_batch(values)
    c = np.abs(chebyshev_coefficients(v, degree))
    c[:, 0, 0] = 0.0
    out = _weighted_mean_norm(c, _index_norms(c.shape[-1] - 1), _is_constant(v))
    return _restore(out, batch_shape)


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


def _extend(s: bytes, n: int, p: int, l: int, m: int) -> int:
    """Length of the common prefix of ``s[p:]`` and ``s[l:]`` (capped at ``n - l``), given >= m."""
    # 16-byte chunks first (long phrases of smooth functions), then single bytes.
    while l + m + 16 <= n and s[p + m : p + m + 16] == s[l + m : l + m + 16]:
        m += 16
    while l + m < n and s[p + m] == s[l + m]:
        m += 1
    return m


_WIN = 8  # bits per window symbol of the binary fast path


def lz76_phrase_count(seq) -> int:
    """LZ76 phrase count (Kaspar-Schuster parse) of a symbol sequence (bytes or 1-D int array).

    The phrase starting at ``l`` is the longest piece ``s[l:l+m]`` that already occurs starting
    before ``l`` (overlap allowed, i.e. inside ``s[:l+m-1]``) plus one new symbol; the last phrase
    may end at the end of the sequence without a new symbol. Searches use ``bytes.find``; every
    successful search is extended greedily from the occurrence it found, so a phrase costs a few
    C-level searches. For 0/1 sequences the searches for pieces of length >= 8 run on the
    sequence of overlapping 8-bit windows (``W[i]`` = bits ``i..i+7``): a piece of length L at
    ``i`` equals the window string ``W[i:i+L-7]``, and the 256-letter alphabet makes ``find``
    several times faster than on the 2-letter string.
    """
    if isinstance(seq, (bytes, bytearray)):
        arr = np.frombuffer(bytes(seq), dtype=np.uint8)
    else:
        arr = np.asarray(seq)
        if arr.ndim != 1:
            raise ValueError("sequence must be 1-D")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            _, arr = np.unique(arr, return_inverse=True)  # relabel to fit in a byte
        arr = arr.astype(np.uint8)
    n = arr.shape[0]
    if n == 0:
        return 0
    s = arr.tobytes()
    find = s.find
    binary = n > _WIN and int(arr.max()) <= 1
    if binary:
        nw = n - _WIN + 1
        w = np.zeros(nw, dtype=np.uint8)
        for j in range(_WIN):
            w = (w << 1) | arr[j : j + nw]
        W = w.tobytes()
        wfind = W.find
    c, l = 1, 1  # the first symbol is always a phrase of its own
    while l < n:
        m = 0  # invariant: s[l:l+m] occurs starting before l
        if binary and l + _WIN <= n:
            # One cheap search usually settles m >= 8 and skips the short lengths.
            p = wfind(W[l : l + 1], 0, l)
            if p >= 0:
                m = _extend(s, n, p, l, _WIN)
        while l + m < n:
            L = m + 1  # try to reproduce one symbol more
            if binary and L >= _WIN:
                k = L - _WIN + 1
                p = wfind(W[l : l + k], 0, l - 1 + k)
            else:
                p = find(s[l : l + L], 0, l + m)
            if p < 0:
                break
            m = _extend(s, n, p, l, L)
        c += 1
        l += m + 1
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
    ``2 log2(n) / n`` (all values equal the median, so all bits are 0). About 2 ms per
    white-noise 64 x 64 function, far less for smooth ones (long phrases).
    """
    v, batch_shape = _as_batch(values)
    bits = _binarise(v)
    n = bits.shape[1]
    counts = np.array([lz76_phrase_count(row) for row in bits], dtype=np.float64)
    return _restore(counts * math.log2(n) / n if n > 1 else counts, batch_shape)


# --------------------------------------------------------------------------------- registry

MEASURES = {
    "fourier": fourier_complexity,
    "chebyshev": chebyshev_complexity,
    "lz": lz_complexity,
}


def compute_measures(values, measures=("fourier", "chebyshev", "lz")) -> dict[str, np.ndarray]:
    """``{name: measure(values)}`` for the named measures of :data:`MEASURES`."""
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}; choose from {sorted(MEASURES)}")
    return {m: np.asarray(MEASURES[m](values), dtype=np.float64) for m in measures}
