"""Infinite-width networks: NNGP/NTK kernels, gradient-flow predictions, finite-width checks.

Conventions follow neural-tangents (references.md section 4), NTK parameterisation:

* Input kernel ``K0(x, x') = x.x'/d`` (inputs flattened after the first axis), ``Theta0 = 0``.
* Dense(w, b): ``K <- w^2 K + b^2``; ``Theta <- K_new + w^2 Theta``.
* Nonlinearity phi, with ``q11 = K(x,x)``, ``q22 = K(x',x')``, ``q12 = K(x,x')``:
  ``K <- E[phi(u) phi(v)]``, ``Theta <- Theta * E[phi'(u) phi'(v)]``,
  ``(u, v) ~ N(0, [[q11,q12],[q12,q22]])``.

Architectures (``depth`` counts hidden layers / residual blocks; every Dense uses the same w_std, b_std):

* ``"mlp"``:    ``[Dense(width), phi] x depth -> Dense(1)``  (== ``stax.serial(Dense, act, ..., Dense(1))``).
* ``"resnet"``: ``Dense(width) -> [z <- z + Dense(phi(z))] x depth -> phi -> Dense(1)``.
  The block is stax's ``FanOut(2) / parallel(serial(phi, Dense), Identity) / FanInSum``: its kernel is
  ``K <- K + (w^2 E[phi phi](K) + b^2)`` and ``Theta <- Theta + (K_branch + w^2 Theta E[phi' phi'](K))``
  (branch/skip cross terms vanish at infinite width because the branch's Dense weights are zero-mean and
  independent). It is checked against finite networks like the MLP (empirical NTK, Monte-Carlo NNGP).

Finite networks: ``h = (w_std / sqrt(fan_in)) x W + b_std b`` with ``W, b ~ N(0, 1)``; their empirical NTK and
output covariance converge to the kernels above as width -> infinity.

Convolutional networks (:func:`conv_kernels`): ``[Conv(k x k, SAME), phi] x depth -> GlobalAvgPool ->
Dense(1)``, the same recursion over pairs of pixel positions (== neural-tangents' ``stax.Conv`` /
``stax.GlobalAvgPool``), compared with the fully-connected kernels by :func:`conv_regression`.
:func:`cookbook_gap` measures how far the mean of GD-trained finite networks sits from the NTK mean,
per width, to see whether that gap is a finite-width bias (~ 1/width).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import xarray as xr
from scipy.optimize import curve_fit
from torch import nn
from torch.func import functional_call, jacrev, vmap

from repatlas.data import balanced_order
from repatlas.threads import pinned_threads

ACTIVATIONS = ("relu", "erf")
ARCHITECTURES = ("mlp", "resnet")

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "kernels",
    "predict_from_kernels",
    "predict_gd_mse",
    "expected_mse_loss",
    "ntk_mlp",
    "NTKMLP",
    "empirical_ntk",
    "train_ensemble_gd",
    "sine_dataset",
    "cookbook_experiment",
    "cookbook_gap",
    "cookbook_gap_table",
    "conv_kernels",
    "conv_regression",
    "ntk_convergence",
    "regression_experiment",
]


# --------------------------------------------------------------------------------------------------
# Analytic kernels
# --------------------------------------------------------------------------------------------------


def _as_2d_float64(x) -> np.ndarray:
    """Array (n, d) float64: torch or numpy in, flattened after the first axis."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:  # a single feature per point
        x = x[:, None]
    return x.reshape(x.shape[0], -1)


def _check(activation: str, architecture: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


def _relu_cross(q11, q22, q12):
    """ReLU arc-cosine maps: (E[phi phi], E[phi' phi'])."""
    # Clip: rounding can make q11 q22 - q12^2 slightly negative for (near-)identical points.
    s = np.sqrt(np.maximum(q11 * q22 - q12 * q12, 0.0))
    theta = np.arctan2(s, q12)
    return (s + (np.pi - theta) * q12) / (2 * np.pi), (np.pi - theta) / (2 * np.pi)


def _erf_cross(q11, q22, q12):
    """Erf maps: (E[phi phi], E[phi' phi'])."""
    prod = (1 + 2 * q11) * (1 + 2 * q22)
    e = (2 / np.pi) * np.arcsin(np.clip(2 * q12 / np.sqrt(prod), -1.0, 1.0))
    # prod - 4 q12^2 >= 1 by Cauchy-Schwarz; the floor only guards rounding.
    ed = (4 / np.pi) / np.sqrt(np.maximum(prod - 4 * q12 * q12, 1.0))
    return e, ed


_CROSS = {"relu": _relu_cross, "erf": _erf_cross}


def _kernel_block(x1, x2, sq1, sq2, *, depth, activation, w_std, b_std, architecture, same=False):
    """NNGP and NTK of one (rows, cols) block; diagonals travel as per-point vectors q1 (r,1), q2 (1,c).

    ``same``: x1 and x2 are the same points (a diagonal block), so the Gram diagonal is set to the
    per-point squared norms.
    """
    d = x1.shape[1]
    w2, b2 = w_std**2, b_std**2
    cross = _CROSS[activation]

    def self_map(q):
        # Same floating-point path as the cross map at q11 = q22 = q12, so a diagonal entry of a
        # symmetric block equals its per-point self-kernel bit for bit (the ReLU derivative map has a
        # sqrt singularity at coinciding points that would amplify any rounding mismatch to ~1e-8).
        return cross(q, q, q)[0]

    def dense(s):
        k, th, q1, q2 = s
        k = w2 * k + b2
        return k, k + w2 * th, w2 * q1 + b2, w2 * q2 + b2

    def act(s):
        k, th, q1, q2 = s
        e, ed = cross(q1, q2, k)
        return e, th * ed, self_map(q1), self_map(q2)

    k0 = x1 @ x2.T / d
    if same:
        np.fill_diagonal(k0, sq1 / d)
    s = (k0, np.zeros_like(k0), (sq1 / d)[:, None], (sq2 / d)[None, :])
    if architecture == "mlp":
        for _ in range(depth):
            s = act(dense(s))
    else:
        s = dense(s)
        for _ in range(depth):
            branch = dense(act(s))
            s = tuple(a + b for a, b in zip(s, branch))
        s = act(s)
    k, th, _, _ = dense(s)
    return k, th


def kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str = "relu",
    w_std: float,
    b_std: float,
    batch_size: int | None = None,
    architecture: str = "mlp",
) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-width (NNGP, NTK) kernels of the network's scalar output, each float64 (n1, n2).

    ``depth`` hidden layers (MLP) or residual blocks (``architecture="resnet"``); see the module docstring.
    Rows and columns are processed in blocks of ``batch_size`` points, so peak extra memory is a few
    (batch_size x batch_size) arrays besides the two outputs; self-kernels q11, q22 are computed per point.
    ``x2=None`` means ``x2 = x1``; then (and whenever x2 equals x1) only the upper block triangle is
    computed and mirrored, and diagonal entries are exactly the self-kernels. Where x1 and x2 share some
    points but are not equal, the ReLU NTK at coinciding pairs is only accurate to ~1e-8 relative: its
    derivative map (pi - theta)/(2 pi) has a sqrt singularity at theta = 0 that amplifies rounding in x.x'.
    """
    _check(activation, architecture)
    if depth < 0:
        raise ValueError("depth must be >= 0")
    a = _as_2d_float64(x1)
    b = a if x2 is None else _as_2d_float64(x2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    # kernels(x, x) takes the symmetric path too (exact self-kernels on the diagonal)
    same = x2 is None or (a.shape == b.shape and np.array_equal(a, b))
    n1, n2 = a.shape[0], b.shape[0]
    bs = max(n1, n2, 1) if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError("batch_size must be >= 1")
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = sq_a if same else np.einsum("ij,ij->i", b, b)
    nngp = np.empty((n1, n2))
    ntk = np.empty((n1, n2))
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std, architecture=architecture)
    for i in range(0, n1, bs):
        ri = slice(i, min(i + bs, n1))
        for j in range(i if same else 0, n2, bs):
            cj = slice(j, min(j + bs, n2))
            k, th = _kernel_block(a[ri], b[cj], sq_a[ri], sq_b[cj], same=same and i == j, **opts)
            if same and i == j:  # diagonal block: exact symmetry despite matmul rounding
                k, th = (k + k.T) / 2, (th + th.T) / 2
            nngp[ri, cj], ntk[ri, cj] = k, th
            if same and j != i:
                nngp[cj, ri], ntk[cj, ri] = k.T, th.T
    return nngp, ntk


# --------------------------------------------------------------------------------------------------
# Convolutional kernels: [Conv(k x k, SAME) -> phi] x depth -> GlobalAvgPool -> Dense(1)
# --------------------------------------------------------------------------------------------------


def _as_images_float64(x) -> np.ndarray:
    """Images (n, C, H, W) float64 from (n, C, H, W) or single-channel (n, H, W); numpy or torch."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must have shape (n, C, H, W) or (n, H, W); got shape {x.shape}")
    return x


def _box_filter(k: np.ndarray, p: int, axis_groups) -> np.ndarray:
    """``(1/(2p+1)^2) sum_{dh, dw in -p..p} k[.. i + d ..]``, zero where the shifted index leaves the
    image (SAME zero padding). Each group of axes is shifted together: (row_1, row_2) then
    (col_1, col_2) for a position-pair kernel, (row,) then (col,) for a per-position diagonal. The
    same additions in the same order on both, so a diagonal entry of the pair kernel equals the
    filtered diagonal bit for bit."""
    out = k
    for axes in axis_groups:
        acc = out.copy()
        for d in range(1, p + 1):
            for lo, hi in ((slice(d, None), slice(None, -d)), (slice(None, -d), slice(d, None))):
                dst, src = [slice(None)] * k.ndim, [slice(None)] * k.ndim
                for a in axes:
                    dst[a], src[a] = lo, hi
                acc[tuple(dst)] += out[tuple(src)]
        out = acc
    return out / (2 * p + 1) ** 2


def _conv_kernel_block(xa, xb, *, depth, activation, w_std, b_std, p, same):
    """NNGP and NTK of a (len(xa), len(xb)) block of images (b, C, H, W)."""
    w2, b2 = w_std**2, b_std**2
    cross = _CROSS[activation]
    n1, c, h, w = xa.shape
    n2 = xb.shape[0]
    pair_axes, diag_axes = ((2, 4), (3, 5)), ((1,), (2,))
    # input kernel: per position pair, the channel average x_c(i) x'_c(j) / C
    k = np.einsum("acp,bcq->abpq", xa.reshape(n1, c, h * w), xb.reshape(n2, c, h * w)) / c
    k = k.reshape(n1, n2, h, w, h, w)
    q1 = np.einsum("acij,acij->aij", xa, xa) / c  # per-position self-kernels (diagonal recursion)
    q2 = q1 if same else np.einsum("acij,acij->aij", xb, xb) / c
    if same:  # exact self-kernels on the diagonal, as kernels() does
        for a in range(n1):
            k[a, a].reshape(h * w, h * w)[np.diag_indices(h * w)] = q1[a].ravel()
    th = np.zeros_like(k)
    for _ in range(depth):
        k = w2 * _box_filter(k, p, pair_axes) + b2             # Conv (NTK parameterisation)
        th = k + w2 * _box_filter(th, p, pair_axes)
        q1 = w2 * _box_filter(q1, p, diag_axes) + b2
        q2 = q1 if same else w2 * _box_filter(q2, p, diag_axes) + b2
        e, ed = cross(q1[:, None, :, :, None, None], q2[None, :, None, None, :, :], k)   # phi
        k, th = e, th * ed
        q1 = cross(q1, q1, q1)[0]
        q2 = q1 if same else cross(q2, q2, q2)[0]
    k, th = k.mean(axis=(2, 3, 4, 5)), th.mean(axis=(2, 3, 4, 5))  # GlobalAvgPool
    k = w2 * k + b2                                                # Dense(1)
    return k, k + w2 * th


def conv_kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str = "relu",
    w_std: float,
    b_std: float,
    filter_size: int = 3,
    batch_size: int | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-width (NNGP, NTK) of a CNN with global average pooling, float64 (n1, n2).

    The network is ``[Conv(filter_size x filter_size, stride 1, SAME zero padding), phi] x depth ->
    GlobalAvgPool -> Dense(1)``, every layer with the same ``w_std``, ``b_std`` in the NTK
    parameterisation, i.e. neural-tangents' ``stax.serial(stax.Conv(C, (k, k), padding="SAME",
    W_std=w_std, b_std=b_std), act, ..., stax.GlobalAvgPool(), stax.Dense(1, w_std, b_std))``
    (act = ``stax.Relu()`` or ``stax.Erf()``). Inputs are images (n, C, H, W) (or (n, H, W)).

    Recursion over position pairs (i, j) of the two images (K, Theta: (H, W, H, W) per image pair):
    the input kernel is ``K0[i, j] = sum_c x_c(i) x'_c(j) / C``; a Conv maps
    ``K <- w^2 mean_d K[i + d, j + d] + b^2`` over the (2p+1)^2 filter offsets d, a shifted index
    outside the image contributing 0, and ``Theta <- K_new + w^2 mean_d Theta[i + d, j + d]``; phi
    acts entrywise as in :func:`kernels` with ``q11 = K(x, x)[i, i]``, ``q22 = K(x', x')[j, j]`` (the
    diagonal obeys its own closed recursion, so self-kernels cost O(H W)); GlobalAvgPool averages
    K and Theta over all (i, j); the readout Dense is as in :func:`kernels`.

    Cost: time O(n1 n2 (H W)^2 depth) and memory O(batch^2 (H W)^2) per block of ``batch_size``
    images (default: about 2^20 entries per block). ``threads`` blocks run concurrently (numpy
    releases the GIL in its array operations). ``x2=None`` (or x2 equal to x1) computes the upper
    block triangle and mirrors it, with exact self-kernels on the diagonal.
    """
    _check(activation, "mlp")
    if depth < 1:
        raise ValueError(f"depth must be >= 1 (conv layers before the pooling); got {depth}")
    if int(filter_size) != filter_size or filter_size < 1 or filter_size % 2 == 0:
        raise ValueError(f"filter_size must be a positive odd integer (SAME padding); got {filter_size!r}")
    a = _as_images_float64(x1)
    b = a if x2 is None else _as_images_float64(x2)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image shapes differ: {a.shape[1:]} vs {b.shape[1:]}")
    same = x2 is None or (a.shape == b.shape and np.array_equal(a, b))
    n1, n2 = len(a), len(b)
    positions = a.shape[2] * a.shape[3]
    bs = max(1, int(math.sqrt(2**20 / positions**2))) if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError("batch_size must be >= 1")
    if int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads!r}")
    nngp, ntk = np.empty((n1, n2)), np.empty((n1, n2))
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std, p=(int(filter_size) - 1) // 2)
    blocks = [(slice(i, min(i + bs, n1)), slice(j, min(j + bs, n2)))
              for i in range(0, n1, bs) for j in range(i if same else 0, n2, bs)]

    def run(block):
        ri, cj = block
        diagonal = same and ri == cj
        k, th = _conv_kernel_block(a[ri], b[cj], same=diagonal, **opts)
        if diagonal:
            k, th = (k + k.T) / 2, (th + th.T) / 2
        nngp[ri, cj], ntk[ri, cj] = k, th
        if same and not diagonal:
            nngp[cj, ri], ntk[cj, ri] = k.T, th.T

    if threads == 1:
        for block in blocks:
            run(block)
    else:
        with pinned_threads(1), ThreadPoolExecutor(int(threads)) as pool:
            list(pool.map(run, blocks))  # list(): re-raise a worker's exception here
    return nngp, ntk


# --------------------------------------------------------------------------------------------------
# Gradient-flow predictions (neural-tangents' gradient_descent_mse_ensemble)
# --------------------------------------------------------------------------------------------------


def _gain(lam: np.ndarray, t: float, n: int, keep: np.ndarray) -> np.ndarray:
    """Eigenvalues of A = M^-1 (I - exp(-M t / n)); 1/lam at t = inf; 0 on dropped (<= 0) eigenvalues."""
    g = np.zeros_like(lam)
    lk = lam[keep]
    if math.isinf(t):
        g[keep] = 1.0 / lk
    else:
        g[keep] = -np.expm1(-lk * t / n) / lk  # expm1: accurate when lam t / n is small
    return g


def predict_from_kernels(
    k_dd,
    k_td,
    k_tt,
    theta_dd,
    theta_td,
    y_train,
    *,
    t=None,
    get: str = "ntk",
    diag_reg: float = 0.0,
    learning_rate: float = 1.0,
):
    """Mean and covariance of infinite-width networks trained by gradient flow on MSE, from kernels.

    Loss ``(1/2n) sum (f - y)^2`` with ``n = y_train.size``; ``t_eff = learning_rate * t``.
    ``M`` = Theta_dd (get="ntk") or K_dd (get="nngp") plus ``diag_reg * trace(M)/n_train * I``;
    ``A = M^-1 (I - exp(-M t_eff / n))`` by eigendecomposition, eigenvalues clipped at 0 (eigenvalues
    <= n_train * eps * max eigenvalue are dropped, i.e. treated as 0, so t = inf is a pseudo-inverse).
    NTK: mean = Theta_td A Y, cov = K_tt + Theta_td A K_dd A Theta_dt - (Theta_td A K_dt + transpose),
    with the unregularised K_dd. NNGP: mean = K_td A Y, cov = K_tt - K_td M^-1 (I - exp(-2 M t_eff/n)) K_dt.
    ``t=None`` (or inf) is t = infinity. ``t`` may be a 1-D sequence: results gain a leading time axis
    (the eigendecomposition is shared). ``k_tt=None`` skips the covariance (cov is None).
    Returns (mean (n_test,) or (n_test, k) like y_train, cov (n_test, n_test)).
    """
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
    y = np.asarray(y_train, dtype=np.float64)
    n_tr = y.shape[0]
    n = y.size
    Y = y.reshape(n_tr, -1)
    k_dd = np.asarray(k_dd, dtype=np.float64)
    k_td = np.asarray(k_td, dtype=np.float64)
    if get == "ntk":
        if theta_dd is None or theta_td is None:
            raise ValueError("get='ntk' needs theta_dd and theta_td")
        m, cross = np.asarray(theta_dd, np.float64), np.asarray(theta_td, np.float64)
    else:
        m, cross = k_dd, k_td
    m = (m + m.T) / 2
    if diag_reg:
        m = m + diag_reg * (np.trace(m) / n_tr) * np.eye(n_tr)
    lam, v = np.linalg.eigh(m)
    keep = lam > n_tr * np.finfo(np.float64).eps * max(lam.max(initial=0.0), 0.0)
    cross_v = cross @ v  # (n_test, n_train), shared by every t
    vy = v.T @ Y
    if get == "ntk" and k_tt is not None:
        k_tt = np.asarray(k_tt, np.float64)
        kdt_v = k_td @ v  # K_td V
        vkv = v.T @ k_dd @ v
    elif k_tt is not None:
        k_tt = np.asarray(k_tt, np.float64)

    scalar_t = t is None or np.ndim(t) == 0
    times = [t] if scalar_t else list(np.asarray(t, dtype=np.float64))
    means, covs = [], []
    for ti in times:
        te = math.inf if ti is None else learning_rate * float(ti)
        if te < 0:
            raise ValueError("t must be >= 0")
        g = _gain(lam, te, n, keep)
        mean = (cross_v * g) @ vy
        means.append(mean.reshape((-1,) + y.shape[1:]))
        if k_tt is None:
            covs.append(None)
            continue
        if get == "ntk":
            b = cross_v * g  # Theta_td A = B V^T, kept in the eigenbasis
            bkd = b @ kdt_v.T  # Theta_td A K_dt
            cov = k_tt + b @ vkv @ b.T - (bkd + bkd.T)
        else:
            g2 = _gain(lam, 2 * te, n, keep)
            cov = k_tt - (cross_v * g2) @ cross_v.T
        covs.append((cov + cov.T) / 2)
    if scalar_t:
        return means[0], covs[0]
    return np.stack(means), (None if k_tt is None else np.stack(covs))


def predict_gd_mse(
    x_train,
    y_train,
    x_test,
    *,
    t=None,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
    diag_reg: float = 0.0,
    get: str = "ntk",
    learning_rate: float = 1.0,
    batch_size: int | None = None,
    architecture: str = "mlp",
    compute_cov: bool = True,
):
    """Gradient-flow MSE prediction of the infinite-width network at time t (see predict_from_kernels)."""
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                batch_size=batch_size, architecture=architecture)
    k_dd, th_dd = kernels(x_train, None, **opts)
    k_td, th_td = kernels(x_test, x_train, **opts)
    k_tt = kernels(x_test, None, **opts)[0] if compute_cov else None
    return predict_from_kernels(k_dd, k_td, k_tt, th_dd, th_td, y_train, t=t, get=get,
                                diag_reg=diag_reg, learning_rate=learning_rate)


def expected_mse_loss(mean, cov, y) -> float | np.ndarray:
    """Ensemble-expected loss ``E[0.5 mean((f - y)^2)] = 0.5 mean((mu - y)^2) + 0.5 mean(diag cov)``.

    Accepts a leading time axis on mean/cov (as returned for a sequence of t).
    """
    mean = np.asarray(mean, np.float64)
    y = np.asarray(y, np.float64).reshape(-1)  # scalar targets (n_test,)
    var = np.diagonal(np.asarray(cov, np.float64), axis1=-2, axis2=-1)
    return 0.5 * np.mean((mean - y) ** 2, axis=-1) + 0.5 * np.mean(var, axis=-1)


# --------------------------------------------------------------------------------------------------
# Finite networks in NTK parameterisation
# --------------------------------------------------------------------------------------------------


def _phi(activation: str):
    return torch.relu if activation == "relu" else torch.erf


def _forward(weights, biases, x, *, activation, w_std, b_std, architecture):
    """Scalar output of the network; works unbatched (W (fan_in, fan_out)) and stacked (W (M, ...)).

    Stacked parameters broadcast: x (n, d) @ W (M, d, N) -> (M, n, N); biases (M, N) -> (M, 1, N).
    """
    phi = _phi(activation)

    def dense(h, w, b):
        return h @ w * (w_std / math.sqrt(w.shape[-2])) + b.unsqueeze(-2) * b_std

    h = x
    if architecture == "mlp":
        for w, b in zip(weights[:-1], biases[:-1]):
            h = phi(dense(h, w, b))
    else:
        h = dense(h, weights[0], biases[0])
        for w, b in zip(weights[1:-1], biases[1:-1]):
            h = h + dense(phi(h), w, b)
        h = phi(h)
    out = dense(h, weights[-1], biases[-1])
    return out.squeeze(-1) if out.shape[-1] == 1 else out


def _layer_sizes(in_dim: int, width: int, depth: int, architecture: str,
                 out_dim: int = 1) -> list[tuple[int, int]]:
    if architecture == "mlp":
        dims = [in_dim] + [width] * depth + [out_dim]
    else:  # input projection, depth residual Dense(width, width), readout
        dims = [in_dim] + [width] * (depth + 1) + [out_dim]
    return list(zip(dims[:-1], dims[1:]))


class NTKMLP(nn.Module):
    """Finite MLP / residual MLP in NTK parameterisation: ``(n, ...) -> (n,)``, or ``(n, out_dim)``.

    Each of ``out_dim`` outputs has the same infinite-width kernels as the scalar network.

    Parameters ``weights.i`` (fan_in, fan_out) and ``biases.i`` (fan_out,), all N(0, 1) at init;
    layer i computes ``h @ W * w_std / sqrt(fan_in) + b * b_std``.
    """

    def __init__(self, in_dim, width, depth, *, activation, w_std, b_std, architecture="mlp",
                 generator=None, dtype=torch.float32, out_dim: int = 1):
        super().__init__()
        _check(activation, architecture)
        self.activation, self.w_std, self.b_std, self.architecture = activation, w_std, b_std, architecture
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        # drawn where the generator is
        dev = generator.device if generator is not None else torch.device("cpu")
        for fi, fo in _layer_sizes(in_dim, width, depth, architecture, out_dim):
            self.weights.append(nn.Parameter(torch.randn(fi, fo, generator=generator, dtype=dtype,
                                                         device=dev)))
            self.biases.append(nn.Parameter(torch.randn(fo, generator=generator, dtype=dtype, device=dev)))

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return _forward(list(self.weights), list(self.biases), x, activation=self.activation,
                        w_std=self.w_std, b_std=self.b_std, architecture=self.architecture)


def ntk_mlp(in_dim: int, width: int, depth: int, *, activation: str, w_std: float, b_std: float,
            seed: int, architecture: str = "mlp", dtype=torch.float32, out_dim: int = 1) -> NTKMLP:
    """A freshly initialised :class:`NTKMLP` (parameters drawn from
    ``torch.Generator().manual_seed(seed)``)."""
    gen = torch.Generator().manual_seed(int(seed))
    return NTKMLP(in_dim, width, depth, activation=activation, w_std=w_std, b_std=b_std,
                  architecture=architecture, generator=gen, dtype=dtype, out_dim=out_dim)


def empirical_ntk(model: nn.Module, x1, x2=None, *, batch_size: int = 64) -> np.ndarray:
    """Empirical NTK ``Theta(x, x') = sum_p df(x)/dp df(x')/dp`` of a scalar-output model, float64 (n1, n2).

    Per-example Jacobians via ``vmap(jacrev)`` over ``batch_size`` inputs at a time; the contraction is
    accumulated parameter tensor by parameter tensor so no (n, n_params) Jacobian is concatenated.
    """
    params = {k: p.detach() for k, p in model.named_parameters()}
    p0 = next(iter(params.values()))

    def f(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).reshape(())

    jac = vmap(jacrev(f), in_dims=(None, 0))

    def to_t(x):
        x = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x.detach()
        return x.to(device=p0.device, dtype=p0.dtype).reshape(x.shape[0], -1)

    a = to_t(x1)
    b = a if x2 is None else to_t(x2)

    def jacs(x, i):
        j = jac(params, x[i:i + batch_size])
        return [v.reshape(v.shape[0], -1).to(torch.float64) for v in j.values()]

    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=p0.device)  # read back once
    for i in range(0, a.shape[0], batch_size):
        ja = jacs(a, i)
        for j in range(0, b.shape[0], batch_size):
            jb = ja if (x2 is None and i == j) else jacs(b, j)
            out[i:i + batch_size, j:j + batch_size] = sum(u @ w.T for u, w in zip(ja, jb))
    return out.cpu().numpy()


# --------------------------------------------------------------------------------------------------
# Finite ensembles trained by full-batch gradient descent
# --------------------------------------------------------------------------------------------------


def _member_seeds(seed: int, n: int) -> list[int]:
    """Independent per-member seeds (SeedSequence children: no overlap between ensembles of nearby seeds)."""
    return [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(seed).spawn(n)]


def _dphi(activation: str):
    if activation == "relu":
        return lambda z: (z > 0).to(z.dtype)
    return lambda z: (2 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _update(w, a, delta, alpha):
    """w += alpha * a^T delta, in place (a shared (n, fan_in) or stacked (m, n, fan_in))."""
    if a.dim() == 2:
        w.add_(torch.matmul(a.T, delta), alpha=alpha)
    else:
        w.baddbmm_(a.transpose(-1, -2), delta, alpha=alpha)


@torch.no_grad()
def _gd_step(ws, bs, x, y, *, lr, activation, w_std, b_std, architecture):
    """One full-batch GD step on 0.5 mean((f - y)^2) for stacked members, in place; returns f before it.

    Hand-written backward pass: each weight is updated as soon as the error has been propagated through
    it, so no gradient tensor of a weight's size is ever allocated (the step is memory-bound on W).
    """
    phi, dphi = _phi(activation), _dphi(activation)
    cs = [w_std / math.sqrt(w.shape[-2]) for w in ws]

    def dense(h, i):
        return torch.matmul(h, ws[i]).mul_(cs[i]).add_(bs[i].unsqueeze(-2), alpha=b_std)

    def apply(i, a, delta):  # propagate delta through layer i (old weights), then update layer i
        back = torch.matmul(delta, ws[i].transpose(-1, -2)).mul_(cs[i]) if i > 0 else None
        _update(ws[i], a, delta, -lr * cs[i])
        bs[i].add_(delta.sum(-2), alpha=-lr * b_std)
        return back

    n_out = len(ws) - 1
    if architecture == "mlp":
        ins, pres, h = [x], [], x
        for i in range(n_out):
            z = dense(h, i)
            pres.append(z)
            h = phi(z)
            ins.append(h)
        f = dense(h, n_out).squeeze(-1)
        delta = ((f - y) / y.shape[0]).unsqueeze(-1)  # dL/df per member
        for i in range(n_out, -1, -1):
            back = apply(i, ins[i], delta)
            if i > 0:
                delta = back.mul_(dphi(pres[i - 1]))
    else:
        zs = [dense(x, 0)]
        ins = [x]
        for i in range(1, n_out):
            a = phi(zs[-1])
            ins.append(a)
            zs.append(zs[-1] + dense(a, i))
        a_fin = phi(zs[-1])
        f = dense(a_fin, n_out).squeeze(-1)
        delta = ((f - y) / y.shape[0]).unsqueeze(-1)
        dz = apply(n_out, a_fin, delta).mul_(dphi(zs[-1]))  # d/dz_K
        for i in range(n_out - 1, 0, -1):  # block i: z_i = z_{i-1} + Dense_i(phi(z_{i-1}))
            back = apply(i, ins[i], dz)
            dz = dz + back.mul_(dphi(zs[i - 1]))
        apply(0, x, dz)
    return f


def train_ensemble_gd(
    x_train,
    y_train,
    x_test,
    *,
    n_models: int,
    width: int,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
    lr: float,
    steps: int,
    record_every: int,
    seed: int,
    y_test=None,
    architecture: str = "mlp",
    antithetic: bool = False,
    chunk_size: int | None = None,
    dtype=torch.float32,
    device=None,
) -> dict:
    """Train ``n_models`` independent finite networks by full-batch GD on ``0.5 mean((f - y)^2)``.

    Member i is exactly ``ntk_mlp(..., seed=result["seeds"][i])`` (seeds from ``SeedSequence(seed)``).
    The loss equals ``(1/2n) sum (f - y)^2``, so step s is gradient-flow time ``t = s * lr`` of
    ``predict_gd_mse(..., learning_rate=1)``. Members are trained ``chunk_size`` at a time with stacked
    parameters and batched matmuls; each chunk runs all steps before the next starts, so a chunk's weights
    stay cache-resident (default: about 2**21 parameters per chunk).
    ``antithetic=True`` pairs members (2j, 2j+1) that share all parameters except the readout's, which are
    negated; f_0 then cancels in each pair's mean, removing most initial-function noise from the ensemble
    mean (useful to test convergence to the infinite-width mean; the ensemble variance is then biased).

    Returns numpy arrays: ``step``, ``t`` (n_records,); ``f_test`` (n_records, n_models, n_test);
    ``f_train`` (n_records, n_models, n_train); ``train_loss``, ``test_loss`` (n_records, n_models;
    test_loss None without ``y_test``); ``seeds`` (n_models,). Records at steps 0, record_every, ... and
    at ``steps``; ``f_train``/``train_loss`` at a step are the values before that step's update.
    """
    _check(activation, architecture)
    if antithetic and n_models % 2:
        raise ValueError("antithetic=True needs an even n_models")
    if steps < 0 or record_every < 1:
        raise ValueError("need steps >= 0 and record_every >= 1")
    kw = dict(dtype=dtype, device=device)
    xtr = torch.as_tensor(_as_2d_float64(x_train), **kw)
    xte = torch.as_tensor(_as_2d_float64(x_test), **kw)
    ytr = torch.as_tensor(np.asarray(y_train, np.float64).reshape(-1), **kw)
    if ytr.shape[0] != xtr.shape[0]:
        raise ValueError("y_train must hold one scalar target per training point")
    net = dict(activation=activation, w_std=w_std, b_std=b_std, architecture=architecture)

    n_draw = n_models // 2 if antithetic else n_models
    seeds = _member_seeds(seed, n_draw)
    if antithetic:
        seeds = [s for s in seeds for _ in range(2)]
    n_par = sum(a * b + b for a, b in _layer_sizes(xtr.shape[1], width, depth, architecture))
    if chunk_size is None:
        chunk_size = max(1, (2**21) // n_par)
    if antithetic:
        chunk_size += chunk_size % 2  # keep pairs together
    rec = list(range(0, steps, record_every)) + [steps]

    f_te = np.empty((len(rec), n_models, xte.shape[0]))
    f_tr = np.empty((len(rec), n_models, xtr.shape[0]))
    for c0 in range(0, n_models, chunk_size):
        chunk = range(c0, min(c0 + chunk_size, n_models))
        members = [ntk_mlp(xtr.shape[1], width, depth, seed=seeds[m], dtype=dtype, **net) for m in chunk]
        ws = [torch.stack([mod.weights[i].detach() for mod in members]).to(device)
              for i in range(len(members[0].weights))]
        bs = [torch.stack([mod.biases[i].detach() for mod in members]).to(device)
              for i in range(len(members[0].biases))]
        del members
        if antithetic:  # odd members: negated readout
            sign = torch.tensor([1.0 if m % 2 == 0 else -1.0 for m in chunk], **kw)
            ws[-1].mul_(sign[:, None, None])
            bs[-1].mul_(sign[:, None])
        step, r = 0, 0
        while True:
            if step == rec[r]:
                with torch.no_grad():
                    f_tr[r, chunk] = _forward(ws, bs, xtr, **net).cpu().numpy()
                    f_te[r, chunk] = _forward(ws, bs, xte, **net).cpu().numpy()
                r += 1
            if step == steps:
                break
            _gd_step(ws, bs, xtr, ytr, lr=lr, **net)
            step += 1

    y_tr = np.asarray(y_train, np.float64).reshape(-1)
    st = np.asarray(rec)
    return {
        "step": st,
        "t": st * float(lr),
        "f_test": f_te,
        "f_train": f_tr,
        "train_loss": 0.5 * np.mean((f_tr - y_tr) ** 2, axis=-1),
        "test_loss": None if y_test is None else 0.5 * np.mean(
            (f_te - np.asarray(y_test, np.float64).reshape(-1)) ** 2, axis=-1),
        "seeds": np.asarray(seeds, dtype=np.uint64),
    }


# --------------------------------------------------------------------------------------------------
# Cookbook data
# --------------------------------------------------------------------------------------------------


def sine_dataset(n_train: int = 5, n_test: int = 50, noise: float = 0.1, seed: int = 0):
    """neural-tangents cookbook data: x_train ~ U(-pi, pi), y = sin x + noise N(0,1); x_test = linspace.

    Returns (x_train (n_train, 1), y_train (n_train,), x_test (n_test, 1), y_test = sin x_test (n_test,)).
    """
    rng = np.random.default_rng(seed)
    x_train = rng.uniform(-np.pi, np.pi, size=(n_train, 1))
    y_train = np.sin(x_train[:, 0]) + noise * rng.standard_normal(n_train)
    x_test = np.linspace(-np.pi, np.pi, n_test)[:, None]
    return x_train, y_train, x_test, np.sin(x_test[:, 0])


# --------------------------------------------------------------------------------------------------
# Studies: finite networks against their infinite-width limit
# --------------------------------------------------------------------------------------------------


def cookbook_experiment(*, architecture="mlp", n_models=100, width=512, depth=2, activation="erf",
                        w_std=1.5, b_std=0.05, lr=0.1, steps=10000, record_every=100, diag_reg=1e-4,
                        seed=0, data_seed=0, n_train=5, n_test=50, noise=0.1):
    """The neural-tangents cookbook: a GD-trained finite ensemble against the NTK prediction over time.

    Returns an xarray.Dataset with dims (t, member, x): ensemble test predictions ``f_test``, the
    infinite-width NTK mean ``ntk_mean`` and sd ``ntk_sd`` at each recorded t, the ensemble's
    and the predicted train/test losses, and the training data.
    """
    x_train, y_train, x_test, y_test = sine_dataset(n_train, n_test, noise, seed=data_seed)
    run = train_ensemble_gd(x_train, y_train, x_test, y_test=y_test, n_models=n_models, width=width,
                            depth=depth, activation=activation, w_std=w_std, b_std=b_std, lr=lr,
                            steps=steps, record_every=record_every, seed=seed, architecture=architecture)
    ts = [float(t) for t in run["t"]]
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std, architecture=architecture)
    mean_t, cov_t = predict_gd_mse(x_train, y_train, x_test, t=ts, diag_reg=diag_reg, get="ntk", **opts)
    mean_d, cov_d = predict_gd_mse(x_train, y_train, x_train, t=ts, diag_reg=diag_reg, get="ntk", **opts)
    sd = np.sqrt(np.clip(np.diagonal(cov_t, axis1=-2, axis2=-1), 0, None))
    pred_train = [expected_mse_loss(m, c, y_train) for m, c in zip(mean_d, cov_d)]
    pred_test = [expected_mse_loss(m, c, y_test) for m, c in zip(mean_t, cov_t)]
    return xr.Dataset(
        {
            "f_test": (("t", "member", "x"), run["f_test"]),
            "ntk_mean": (("t", "x"), mean_t),
            "ntk_sd": (("t", "x"), sd),
            "train_loss": (("t", "member"), run["train_loss"]),
            "test_loss": (("t", "member"), run["test_loss"]),
            "predicted_train_loss": (("t",), np.asarray(pred_train, dtype=float)),
            "predicted_test_loss": (("t",), np.asarray(pred_test, dtype=float)),
            "y_test": (("x",), y_test),
            "x_train": (("train",), x_train[:, 0]),
            "y_train": (("train",), y_train),
        },
        coords={"t": ts, "x": x_test[:, 0], "member": np.arange(n_models)},
        attrs=dict(architecture=architecture, width=width, depth=depth, activation=activation,
                   w_std=w_std, b_std=b_std, lr=lr, steps=steps, diag_reg=diag_reg, seed=seed,
                   loss="0.5 mean((f - y)^2); t = step * lr"),
    )


def cookbook_gap(*, width, pairs, architecture="mlp", depth=2, activation="erf", w_std=1.5, b_std=0.05,
                 lr=0.1, steps=10000, diag_reg=0.0, seed=0, data_seed=0, n_train=5, n_test=50, noise=0.1):
    """Finite-width bias of the cookbook's ensemble mean at the final time t = steps * lr, one width.

    ``pairs`` antithetic pairs of networks (:func:`train_ensemble_gd` with ``antithetic=True``: the
    two members of a pair share every parameter but the readout's, which are negated) are trained
    on the cookbook data exactly like :func:`cookbook_experiment`. A pair's mean cancels the random
    initial function f0, whose O(1) spread would otherwise swamp an O(1/width) bias: at width 512
    the sd over pairs of a pair's mean is 0.008 (rms over x), against 0.3 for a single network.
    Pairs are independent, so their mean is an unbiased estimate of the finite-width ensemble mean
    with a standard error from the spread over pairs. The target is the NTK gradient-flow mean at
    the same t with ``diag_reg`` (default 0: the finite networks are unregularised; the cookbook's
    1e-4 alone moves the NTK mean by ~0.004 rms at t = 1000, a width-independent offset).

    Members' seeds come from ``SeedSequence([seed, width])``, so widths are independent samples.
    Returns an xarray.Dataset: ``pair_mean`` (pair, x), ``ntk_mean`` (x), and the statistics of
    :func:`gap_statistics` as scalars.
    """
    x_train, y_train, x_test, _ = sine_dataset(n_train, n_test, noise, seed=data_seed)
    width_seed = int(np.random.SeedSequence([int(seed), int(width)]).generate_state(1)[0])
    run = train_ensemble_gd(x_train, y_train, x_test, n_models=2 * int(pairs), width=int(width), depth=depth,
                            activation=activation, w_std=w_std, b_std=b_std, lr=lr, steps=steps,
                            record_every=steps, seed=width_seed, architecture=architecture, antithetic=True)
    f = run["f_test"][-1]                       # (members, x) at t = steps * lr
    pair_mean = 0.5 * (f[0::2] + f[1::2])
    t = float(run["t"][-1])
    mean, _ = predict_gd_mse(x_train, y_train, x_test, t=t, depth=depth, activation=activation, w_std=w_std,
                             b_std=b_std, diag_reg=diag_reg, architecture=architecture, compute_cov=False)
    stats = gap_statistics(pair_mean, mean)
    return xr.Dataset(
        {"pair_mean": (("pair", "x"), pair_mean), "ntk_mean": (("x",), mean),
         **{k: ((), v) for k, v in stats.items()}},
        coords={"pair": np.arange(int(pairs)), "x": x_test[:, 0]},
        attrs=dict(architecture=architecture, width=int(width), pairs=int(pairs), depth=depth,
                   activation=activation, w_std=w_std, b_std=b_std, lr=lr, steps=steps, t=t,
                   diag_reg=diag_reg, seed=seed, width_seed=width_seed, data_seed=data_seed,
                   def_gap="rms over the test points x of "
                           "(mean over pairs of the pair means - NTK mean at t), "
                           "its square debiased by the sampling variance of the mean"),
    )


def gap_statistics(samples, target) -> dict:
    """Root-mean-square difference between the mean of iid rows and a target, corrected for noise.

    ``samples`` (P, n) are P iid estimates of a function at n points, ``target`` (n,). With
    ``d = mean_p samples - target`` and ``C`` the sample covariance of the rows divided by P (the
    covariance of the mean), ``mean(d^2)`` overestimates the squared bias ``mean(b^2)`` by
    ``tr(C)/n``; ``gap2 = mean(d^2) - tr(C)/n`` is unbiased, with standard error
    ``sqrt(4 d'Cd + 2 tr(C^2)) / n`` (Gaussian noise). ``gap = sqrt(max(gap2, 0))`` with
    ``gap_se = gap2_se / (2 gap)`` (delta method; NaN at gap 0). ``gap_raw`` is ``sqrt(mean(d^2))``
    and ``noise_rms`` ``sqrt(tr(C)/n)``, the rms standard error of the mean.
    """
    s = np.asarray(samples, np.float64)
    p, n = s.shape
    if p < 2:
        raise ValueError(f"need at least 2 independent samples (rows); got {p}")
    d = s.mean(0) - np.asarray(target, np.float64)
    c = np.cov(s, rowvar=False, ddof=1).reshape(n, n) / p
    gap2 = float(np.mean(d**2) - np.trace(c) / n)
    gap2_se = float(np.sqrt(max(4 * d @ c @ d + 2 * np.sum(c * c), 0.0)) / n)
    gap = math.sqrt(max(gap2, 0.0))
    return {"gap2": gap2, "gap2_se": gap2_se, "gap": gap,
            "gap_se": gap2_se / (2 * gap) if gap > 0 else float("nan"),
            "gap_raw": float(np.sqrt(np.mean(d**2))), "noise_rms": float(np.sqrt(np.trace(c) / n))}


def fit_gap_exponent(widths, gap2, gap2_se) -> dict:
    """Weighted least-squares fit of ``gap2 = A * width^(-2 p)``, i.e. gap ~ width^-p.

    Fitted on the squared gaps, whose noise is additive and roughly Gaussian with the given
    standard errors (a log-log fit would drop widths whose debiased gap2 came out <= 0). Returns
    ``exponent`` p, ``exponent_se`` (from the fit's covariance with absolute sigma), ``amplitude``
    A (gap at width 1 is sqrt(A)) and ``chi2`` / ``dof``. Needs at least 3 widths.
    """
    w = np.asarray(widths, np.float64)
    g2, se = np.asarray(gap2, np.float64), np.asarray(gap2_se, np.float64)
    if len(w) < 3:
        raise ValueError(f"fitting an exponent needs at least 3 widths; got {len(w)}")
    pos = g2 > 0
    if pos.sum() >= 2:  # start from the log-log line through the positive estimates
        slope, icept = np.polyfit(np.log(w[pos]), np.log(g2[pos]), 1)
        p0 = (icept, -slope / 2)
    else:
        p0 = (np.log(max(np.abs(g2).max(), 1e-12)) + 2 * np.log(w[0]), 1.0)

    def model(x, log_a, p):
        return np.exp(log_a - 2 * p * np.log(x))

    (log_a, p), cov = curve_fit(model, w, g2, p0=p0, sigma=se, absolute_sigma=True, maxfev=20000)
    chi2 = float(np.sum(((g2 - model(w, log_a, p)) / se) ** 2))
    return {"exponent": float(p), "exponent_se": float(np.sqrt(cov[1, 1])), "amplitude": float(np.exp(log_a)),
            "chi2": chi2, "dof": int(len(w) - 2)}


def cookbook_gap_table(datasets) -> xr.Dataset:
    """Per-width :func:`cookbook_gap` results stacked along ``width``, with the fitted exponent.

    Variables ``gap``, ``gap_se``, ``gap2``, ``gap2_se``, ``gap_raw``, ``noise_rms`` and ``pairs``
    (width); attrs ``exponent``, ``exponent_se``, ``amplitude``, ``chi2``, ``dof`` of
    :func:`fit_gap_exponent` and ``one_over_width`` (1/0): whether the gap is seen to shrink
    (p > 2 standard errors) with p = 1 within 2 standard errors — the condition for citing the gap
    as a finite-width bias rather than noise or a width-independent offset.
    """
    rows = sorted(datasets, key=lambda ds: int(ds.attrs["width"]))
    widths = [int(ds.attrs["width"]) for ds in rows]
    if len(set(widths)) != len(widths):
        raise ValueError(f"one result per width expected; got widths {widths}")
    names = ("gap", "gap_se", "gap2", "gap2_se", "gap_raw", "noise_rms")
    out = xr.Dataset({k: ("width", [float(ds[k]) for ds in rows]) for k in names}
                     | {"pairs": ("width", [int(ds.attrs["pairs"]) for ds in rows])},
                     coords={"width": widths})
    keep = ("architecture", "depth", "activation", "w_std", "b_std", "lr", "steps", "t", "diag_reg",
            "def_gap")
    out.attrs = {k: rows[0].attrs[k] for k in keep if k in rows[0].attrs}
    if len(widths) >= 3:
        fit = fit_gap_exponent(widths, out["gap2"].values, out["gap2_se"].values)
        out.attrs.update(fit)
        p, se = fit["exponent"], fit["exponent_se"]
        out.attrs["one_over_width"] = int(p > 2 * se and abs(p - 1) <= 2 * se)
    return out


def ntk_convergence(*, widths, seeds, n_points=20, in_dim=8, depth=2, activation="relu",
                    w_std=1.5, b_std=0.05, architecture="mlp", data_seed=0):
    """Relative Frobenius error ‖Θ_emp − Θ‖/‖Θ‖ of finite networks' empirical NTK, per width and seed.

    Inputs are ``n_points`` Gaussian points in ``in_dim`` dimensions. Expected to fall ~ 1/√width.
    """
    x = np.random.default_rng(data_seed).standard_normal((n_points, in_dim))
    _, theta = kernels(x, depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                       architecture=architecture)
    err = np.zeros((len(widths), len(seeds)))
    for i, w in enumerate(widths):
        for j, s in enumerate(seeds):
            net = ntk_mlp(in_dim, int(w), depth, activation=activation, w_std=w_std, b_std=b_std,
                          seed=int(s), architecture=architecture, dtype=torch.float64)
            emp = empirical_ntk(net, torch.as_tensor(x))
            err[i, j] = np.linalg.norm(emp - theta) / np.linalg.norm(theta)
    return xr.Dataset({"relative_error": (("width", "seed"), err)},
                      coords={"width": [int(w) for w in widths], "seed": [int(s) for s in seeds]},
                      attrs=dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std,
                                 architecture=architecture, n_points=n_points, in_dim=in_dim))


def regression_experiment(x_train, labels_train, x_test, labels_test, *, widths, seeds, depth=2,
                          activation="relu", w_std=1.5, b_std=0.05, lr=1.0, steps=1000,
                          diag_reg=1e-4, architecture="mlp"):
    """Classification by MSE regression on centred one-hot targets: finite widths vs NTK/NNGP.

    Finite networks (NTK parameterisation, one output per class) are trained by full-batch
    gradient descent on 0.5·mean((f − y)²) over all n·k entries for ``steps`` steps of ``lr``
    (the loss of :func:`predict_gd_mse`, so t = steps·lr); their test accuracy is
    compared with the infinite-width NTK prediction at the same time t = steps·lr and with the
    NNGP and NTK predictions at t = ∞ (``diag_reg`` regularised). Finite networks are trained
    both as they are (centred=0) and centred, f − f0 (centred=1): the NTK prediction is the mean
    over initialisations, so only centred networks converge to it as width grows; a single raw
    network keeps its random initial function at every width. Returns an xarray.Dataset.
    """
    x_train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    x_test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    n_classes = int(max(labels_train.max(), labels_test.max()) + 1)
    y = np.eye(n_classes)[labels_train] - 1.0 / n_classes
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std, architecture=architecture,
                diag_reg=diag_reg, compute_cov=False)

    def accuracy(pred):
        return float((np.asarray(pred).argmax(-1) == labels_test).mean())

    t_end = steps * lr
    infinite = {
        "ntk_t": accuracy(predict_gd_mse(x_train, y, x_test, t=t_end, get="ntk", **opts)[0]),
        "ntk_inf": accuracy(predict_gd_mse(x_train, y, x_test, t=None, get="ntk", **opts)[0]),
        "nngp_inf": accuracy(predict_gd_mse(x_train, y, x_test, t=None, get="nngp", **opts)[0]),
    }
    xt = torch.as_tensor(x_train, dtype=torch.float32)
    xs = torch.as_tensor(x_test, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    finite = np.zeros((2, len(widths), len(seeds)))
    for c, centred in enumerate((False, True)):
        for i, w in enumerate(widths):
            for j, s in enumerate(seeds):
                net = ntk_mlp(x_train.shape[1], int(w), depth, activation=activation, w_std=w_std,
                              b_std=b_std, seed=int(s), architecture=architecture, out_dim=n_classes)
                with torch.no_grad():  # centring subtracts the random initial function f0
                    f0_train = net(xt) if centred else torch.zeros_like(yt)
                    f0_test = net(xs) if centred else 0.0
                opt = torch.optim.SGD(net.parameters(), lr=lr)
                for _ in range(steps):
                    opt.zero_grad()
                    # 0.5 mean over all n·k entries: predict_gd_mse's loss (its n is
                    # y_train.size), so step s is its time t = s·lr
                    loss = 0.5 * ((net(xt) - f0_train - yt) ** 2).mean()
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    finite[c, i, j] = accuracy((net(xs) - f0_test).numpy())
    return xr.Dataset(
        {"finite_accuracy": (("centred", "width", "seed"), finite),
         **{k: ((), v) for k, v in infinite.items()}},
        coords={"centred": [0, 1], "width": [int(w) for w in widths], "seed": [int(s) for s in seeds]},
        attrs=dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std, lr=lr, steps=steps,
                   diag_reg=diag_reg, architecture=architecture, n_train=len(x_train),
                   targets="one-hot minus 1/classes"),
    )


def pooled_images(images, pool: int) -> np.ndarray:
    """uint8 images (n, C, H, W) -> float64 in [0, 1], averaged over ``pool`` x ``pool`` pixel blocks.

    Downsampling keeps the conv kernel affordable: its cost grows as (H W)^2 per image pair
    (28 x 28 Fashion-MNIST -> 14 x 14 with pool 2 is 16 times cheaper)."""
    x = np.asarray(images, np.float64) / 255.0
    if x.ndim != 4:
        raise ValueError(f"images must have shape (n, C, H, W); got shape {x.shape}")
    n, c, h, w = x.shape
    if int(pool) != pool or pool < 1 or h % pool or w % pool:
        raise ValueError(f"pool must be a positive integer dividing the image size {h} x {w}; got {pool!r}")
    return x.reshape(n, c, h // pool, pool, w // pool, pool).mean(axis=(3, 5))


def conv_regression(x_train, labels_train, x_test, labels_test, *, n_trains, depth=2, activation="relu",
                    w_std=1.5, b_std=0.05, filter_size=3, diag_reg=1e-4, order_seed=0, threads=1):
    """Kernel regression with a fully-connected network's NNGP/NTK against a CNN-with-pooling's.

    Both kernels see the same images (n, C, H, W) floats: ``"fc"`` is :func:`kernels` on the
    flattened image (``[Dense, phi] x depth -> Dense(1)``), ``"conv"`` is :func:`conv_kernels`
    (``[Conv(filter_size, SAME), phi] x depth -> GlobalAvgPool -> Dense(1)``), equal depth, w_std,
    b_std and activation. Targets are one-hot minus 1/classes; the prediction is the t = inf mean
    of :func:`predict_from_kernels` (``diag_reg`` regularised), classified by argmax.

    Training sets are nested: the first n examples of ``balanced_order(labels_train, order_seed)``
    for each n in ``n_trains`` (so each is class-balanced and the kernels are computed once, on the
    largest). The test-test block is never needed (no covariance).

    Returns an xarray.Dataset with ``correct`` (architecture, kernel, n_train, example) (0/1 per
    test example), ``accuracy`` (architecture, kernel, n_train), the paired difference
    ``conv_minus_fc`` (kernel, n_train) = accuracy(conv) - accuracy(fc) on the same test examples
    and its standard error ``conv_minus_fc_se`` = sd(correct_conv - correct_fc) / sqrt(n_test).
    """
    x_train, x_test = _as_images_float64(x_train), _as_images_float64(x_test)
    labels_train, labels_test = np.asarray(labels_train), np.asarray(labels_test)
    n_trains = sorted({int(n) for n in n_trains})
    if n_trains[0] < 2 or n_trains[-1] > len(x_train):
        raise ValueError(f"n_trains must lie in [2, {len(x_train)}] (the training images given); "
                         f"got {n_trains}")
    order = balanced_order(labels_train, order_seed)[: n_trains[-1]]
    xs, ys = x_train[order], labels_train[order]
    n_classes = int(max(labels_train.max(), labels_test.max()) + 1)
    targets = np.eye(n_classes)[ys] - 1.0 / n_classes
    opts = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    grams = {
        "fc": (kernels(xs, **opts), kernels(x_test, xs, **opts)),
        "conv": (conv_kernels(xs, **opts, filter_size=filter_size, threads=threads),
                 conv_kernels(x_test, xs, **opts, filter_size=filter_size, threads=threads)),
    }
    archs, kinds = ("fc", "conv"), ("nngp", "ntk")
    correct = np.zeros((2, 2, len(n_trains), len(x_test)))
    for a, arch in enumerate(archs):
        (k_dd, th_dd), (k_td, th_td) = grams[arch]
        for g, get in enumerate(kinds):
            for i, n in enumerate(n_trains):
                mean, _ = predict_from_kernels(k_dd[:n, :n], k_td[:, :n], None, th_dd[:n, :n], th_td[:, :n],
                                               targets[:n], t=None, get=get, diag_reg=diag_reg)
                correct[a, g, i] = mean.argmax(1) == labels_test
    diff = correct[1] - correct[0]
    dims = ("architecture", "kernel", "n_train")
    return xr.Dataset(
        {"correct": (dims + ("example",), correct),
         "accuracy": (dims, correct.mean(-1)),
         "conv_minus_fc": (dims[1:], diff.mean(-1)),
         "conv_minus_fc_se": (dims[1:], diff.std(-1, ddof=1) / math.sqrt(len(x_test)))},
        coords={"architecture": list(archs), "kernel": list(kinds), "n_train": n_trains,
                "example": np.arange(len(x_test))},
        attrs=dict(**opts, filter_size=int(filter_size), diag_reg=diag_reg, order_seed=int(order_seed),
                   image_shape=list(x_test.shape[1:]), n_test=len(x_test), targets="one-hot minus 1/classes",
                   prediction="t = inf kernel regression mean (NNGP or NTK)",
                   fc="[Dense, phi] x depth -> Dense(1) on the flattened image",
                   conv="[Conv(filter_size x filter_size, SAME), phi] x depth -> GlobalAvgPool -> Dense(1)"),
    )
