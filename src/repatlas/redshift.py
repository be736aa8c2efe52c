"""Neural Redshift (Teney et al., CVPR 2024): complexity of random networks on 2-D inputs.

* :func:`random_mlp_outputs` / :func:`random_mlp_values` -- random MLPs ``2 -> width -> ... -> 1``
  evaluated at given points / on ``grid(R)``.
* :func:`unbiased_values` / :func:`unbiased_reference` -- the "unbiased" white-noise reference.
* :func:`complexity_sweep` -- measures over (activation, scale, depth, width, variant, seed) as an
  ``xarray.Dataset``; :func:`normalise_by_unbiased` rescales it so that the reference is 1.
* :func:`chebyshev_degree_sweep` -- the Chebyshev measure's sensitivity to its degree D.
* :func:`summod_dataset` / :func:`train_summod` / :func:`summod_sweep` -- the sum-mod-M task.

Random weights. Every weight and bias is ``A * u`` with ``u ~ U(-1, 1)`` i.i.d., i.e.
``U(-A, A)`` (the co-author code's ``uniform_(-A, A)`` for weights and biases). Each layer's base
draws ``u`` come from their own numpy ``SeedSequence([seed, index, width, crc32(variant), kind,
layer])`` (kind 0: hidden layer, 1: its gate, 2: the output layer), so a value never depends on
the order or batching of evaluation, and the network of depth d *is* the first d hidden layers
of the deeper networks of the same seed plus the shared output layer. Each network of each
depth is still an MLP with i.i.d. U(-A, A) parameters, as in the paper; what is shared across
depths, activations and magnitudes are the base draws (common random numbers), which makes each
seed's curve over A and depth smooth, the comparisons paired, and lets one pass through the
deepest network give every depth (7 depths for the price of the deepest one, ~3.7x less work).
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from typing import Sequence

import dask
import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from .complexity import (
    MEASURES,
    MeasureSettings,
    chebyshev_complexity,
    chebyshev_grid,
    fourier_complexity,
    grid,
)
from .threads import pinned_threads

__all__ = [
    "ACTIVATIONS",
    "VARIANTS",
    "random_mlp_outputs",
    "random_mlp_values",
    "unbiased_values",
    "unbiased_reference",
    "complexity_sweep",
    "settings_from_attrs",
    "normalise_by_unbiased",
    "chebyshev_degree_sweep",
    "paper_scales",
    "summod_labels",
    "summod_dataset",
    "summod_target_complexity",
    "scale_inputs",
    "train_summod",
    "summod_sweep",
    "function_images",
]


def _gaussian(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-x * x)


ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": F.gelu,  # exact (erf) GELU
    "swish": F.silu,
    "selu": F.selu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "sin": torch.sin,
    "gaussian": _gaussian,  # exp(-x^2)
}

VARIANTS = ("plain", "residual", "layernorm", "gating")

# Largest hidden activation tensor (points x width) per evaluation chunk: 2^18 float32 = 1 MB
# stays cache-resident. Measured on the 2-core dev machine: a 64 x 64 matmul over 90,000 points
# took 18 ms in chunks of 4096 points and 130 ms in one piece (elementwise ops on big tensors are
# memory-bound and pay for fresh pages).
_CHUNK_ELEMENTS = 1 << 18


def paper_scales(n: int = 15, lo: float = 0.1, hi: float = 100.0) -> np.ndarray:
    """The paper's weight magnitudes: ``n`` log-spaced values from ``lo`` to ``hi``."""
    return np.geomspace(lo, hi, n)


# ----------------------------------------------------------------------- random networks


def _check(activation: str, variant: str, depth: int, width: int) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be >= 1, got {depth}, {width}")


def _layer_draws(seed: int, index: int, width: int, variant: str, kind: int, layer: int, fan_in: int,
                 fan_out: int):
    ss = np.random.SeedSequence([int(seed), int(index), int(width), zlib.crc32(variant.encode()), kind,
                                 int(layer)])
    rng = np.random.default_rng(ss)
    W = rng.uniform(-1.0, 1.0, size=(fan_in, fan_out)).astype(np.float32)
    b = rng.uniform(-1.0, 1.0, size=fan_out).astype(np.float32)
    return [W, b]


def _base_params(seed: int, index: int, depth: int, width: int, variant: str) -> list[np.ndarray]:
    """U(-1, 1) draws of one network (module docstring for the seeding).

    Order: (W, b) of each hidden layer (the first maps 2 -> width; ``h @ W + b``), then for
    "gating" the gate (W', b') of each hidden layer, then the output (W, b).
    """
    fan_in = [2] + [width] * (depth - 1)
    params = []
    for layer in range(depth):
        params += _layer_draws(seed, index, width, variant, 0, layer, fan_in[layer], width)
    if variant == "gating":
        for layer in range(depth):
            params += _layer_draws(seed, index, width, variant, 1, layer, fan_in[layer], width)
    return params + _layer_draws(seed, index, width, variant, 2, 0, width, 1)


def _forward_depths(params: list[torch.Tensor], x: torch.Tensor, activation: str, variant: str,
                    depths: Sequence[int]) -> list[torch.Tensor]:
    """Outputs ``(P,)`` of the depth-d networks, d in ``depths``, from one pass through the deepest.

    ``params`` as :func:`_base_params` for ``max(depths)`` hidden layers; ``x`` is (P, 2).
    """
    phi = ACTIVATIONS[activation]
    n = max(depths)
    Wo, bo = params[-2], params[-1]
    h, outs = x, []
    for layer in range(n):
        W, b = params[2 * layer], params[2 * layer + 1]
        z = torch.addmm(b, h, W)
        if variant == "layernorm":
            z = F.layer_norm(z, z.shape[-1:])  # no affine parameters
        a = phi(z)
        if variant == "gating":
            Wg, bg = params[2 * n + 2 * layer], params[2 * n + 2 * layer + 1]
            a = a * torch.sigmoid(torch.addmm(bg, h, Wg))
        # residual only where shapes allow it: hidden -> hidden layers
        h = h + a if (variant == "residual" and layer > 0) else a
        if layer + 1 in depths:
            outs.append(torch.addmm(bo, h, Wo).squeeze(-1))
    return outs


# float32 evaluation is trusted only where the output varies by at least this fraction of its
# magnitude over the sample points. Below it (deep networks at small A with saturating or
# flat activations: sigmoid at A = 0.1, depth 7 spans 4e-7 of its value) float32 round-off is a
# visible part of the variation and the measures read it as noise (measured: LZ 25x, Chebyshev
# 2.7x too high for Gaussian A = 0.1, depth 7), so those networks are re-run in float64.
_MIN_SPREAD_FLOAT32 = 0.05


def _evaluate(base: list[np.ndarray], scale: float, points: np.ndarray, activation: str, variant: str,
              depths: Sequence[int], device=None) -> np.ndarray:
    """Outputs ``(len(depths), P)`` of the networks with parameters ``scale * base`` at ``points``.

    Runs in float32, in chunks of points (a point's value does not depend on the chunking, nor
    on the other networks: each network is evaluated on its own), and again in float64 when a
    float32 output is not finite (overflow for huge A and depth with unbounded activations) or
    varies by less than ``_MIN_SPREAD_FLOAT32`` of its magnitude. float64 costs 2.7-4x more
    (measured). Measured agreement of this path with float64 throughout (8 activations x A in
    {0.1, 0.27, 1.2, 8.5, 100} x depths 1-7, paper settings; 8 of the 40 networks took the
    float64 re-run): Fourier within 0.4%, LZ within 1.2%, Chebyshev within 3.4%, the largest
    differences in chaotic networks (sin, Gaussian at A = 100, depth >= 5) that float32 and
    float64 resolve differently point by point -- another sample of the same complexity, well
    inside the seed-to-seed spread.
    """
    depths = sorted(set(int(d) for d in depths))
    width = base[0].shape[1]
    chunk = max(1, _CHUNK_ELEMENTS // width)
    P = points.shape[0]
    for dtype in (torch.float32, torch.float64):
        params = [torch.as_tensor(a, dtype=dtype, device=device) * float(scale) for a in base]
        x = torch.as_tensor(points, dtype=dtype, device=device)
        y = torch.empty((len(depths), P), dtype=dtype, device=device)
        for p0 in range(0, P, chunk):
            for k, out in enumerate(_forward_depths(params, x[p0 : p0 + chunk], activation, variant, depths)):
                y[k, p0 : p0 + chunk] = out
        if not bool(torch.isfinite(y).all()):
            continue
        spread = y.amax(dim=1) - y.amin(dim=1)
        if bool((spread >= _MIN_SPREAD_FLOAT32 * y.abs().amax(dim=1)).all()):
            break
    return y.double().cpu().numpy()


def random_mlp_outputs(
    points,
    *,
    activation: str,
    scale: float,
    depths: Sequence[int],
    width: int = 64,
    variant: str = "plain",
    seed: int = 0,
    index: int = 0,
    torch_threads: int | None = 1,
    device=None,
) -> np.ndarray:
    """Outputs ``(len(depths), P)`` at ``points`` (P, 2) of network ``index`` of ``seed``, one row
    per depth in ``sorted(set(depths))`` (one pass through the deepest; module docstring).
    ``device``: where the network runs (default the CPU); outputs come back as numpy either way."""
    depths = sorted(set(int(d) for d in depths))
    _check(activation, variant, min(depths), width)
    base = _base_params(seed, index, max(depths), width, variant)
    with pinned_threads(torch_threads), torch.no_grad():
        return _evaluate(base, scale, np.asarray(points, dtype=np.float64), activation, variant, depths,
                         device)


def random_mlp_values(
    R: int,
    *,
    activation: str,
    scale: float,
    depth: int,
    width: int = 64,
    variant: str = "plain",
    seed: int = 0,
    n_functions: int = 1,
    endpoint: bool = False,
    torch_threads: int | None = 1,
    device=None,
) -> np.ndarray:
    """Values ``(n_functions, R, R)`` of random MLPs on ``grid(R, endpoint)``
    (``values[:, i, j] = f(x_i, y_j)``).

    MLP ``2 -> width (x depth hidden layers) -> 1`` with weights and biases ``U(-scale, scale)``.
    Variants: "plain" ``h <- phi(W h + b)``; "layernorm" ``h <- phi(LN(W h + b))`` (LN without
    affine, before every activation); "residual" ``h <- h + phi(W h + b)`` on hidden -> hidden
    layers; "gating" ``h <- phi(W h + b) * sigmoid(W' h + b')`` on every hidden layer. Network
    ``j`` is network ``index=j`` of ``seed`` (module docstring).
    ``torch_threads``: intra-op threads during the call (None = torch's current setting).
    ``device``: where the networks run (default the CPU); values come back as numpy either way.
    """
    _check(activation, variant, depth, width)
    pts = grid(R, endpoint)
    return np.stack([
        random_mlp_outputs(pts, activation=activation, scale=scale, depths=[depth], width=width,
                           variant=variant, seed=seed, index=j, torch_threads=torch_threads,
                           device=device)[0].reshape(R, R)
        for j in range(n_functions)
    ])


# -------------------------------------------------------------------- unbiased reference


def unbiased_values(R: int, seed: int = 0, n_functions: int = 1) -> np.ndarray:
    """The "unbiased" model: i.i.d. ``U(-1, 1)`` values at every sample point, ``(n_functions, R, R)``.

    White noise: every non-zero frequency has the same expected DFT magnitude (a uniform
    spectrum), every Chebyshev coefficient of the interpolant through i.i.d. node values the
    same variance, and the median-binarised sequence is a fair-coin sequence, so it is the
    reference of maximal expected complexity for all three measures (the paper's "unbiased"
    model has a uniform Fourier spectrum).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0B1A5]))
    return rng.uniform(-1.0, 1.0, size=(n_functions, R, R))


def unbiased_reference(settings: MeasureSettings | None = None, *, n_functions: int = 32,
                       seed: int = 0) -> dict[str, float]:
    """Mean of each measure over ``n_functions`` unbiased (white-noise) functions, each measure
    sampled as ``settings`` says (white noise on each sample set)."""
    settings = settings or MeasureSettings()
    samples = {name: unbiased_values(side, seed, n_functions)
               for name, side in settings.sample_sides().items()}
    return {m: float(v.mean()) for m, v in settings.compute(samples).items()}


_SETTING_ATTRS = ("grid_size", "grid_endpoint", "fourier_convention", "chebyshev_nodes", "chebyshev_degree",
                  "lz_grid_size")


def _settings_attrs(settings: MeasureSettings) -> dict:
    """netCDF-safe attrs of the measure settings (bools as 0/1, lz_grid_size None as 0)."""
    a = {f"settings_{k}": getattr(settings, k) for k in _SETTING_ATTRS}
    a["settings_grid_endpoint"] = int(settings.grid_endpoint)
    a["settings_lz_grid_size"] = int(settings.lz_grid_size or 0)
    return a


def settings_from_attrs(attrs: dict, measures: Sequence[str] | None = None) -> MeasureSettings:
    """The :class:`MeasureSettings` a sweep was computed with, from its ``attrs``."""
    kw = {k: attrs[f"settings_{k}"] for k in _SETTING_ATTRS}
    kw["grid_endpoint"] = bool(kw["grid_endpoint"])
    kw["lz_grid_size"] = int(kw["lz_grid_size"]) or None
    kw["grid_size"], kw["chebyshev_nodes"], kw["chebyshev_degree"] = (
        int(kw[k]) for k in ("grid_size", "chebyshev_nodes", "chebyshev_degree"))
    return MeasureSettings(measures=tuple(measures or MEASURES), **kw)


def normalise_by_unbiased(ds: xr.Dataset, reference: dict[str, float] | None = None, *,
                          n_functions: int = 32, seed: int = 0) -> xr.Dataset:
    """Divide every measure of a sweep by the unbiased model's mean value (unbiased -> 1).

    ``reference`` defaults to the measures' stored ``unbiased_reference`` attrs, else to
    :func:`unbiased_reference` with the sweep's own settings (attrs).
    """
    measures = [m for m in ds.data_vars if m in MEASURES]
    if reference is None and all("unbiased_reference" in ds[m].attrs for m in measures):
        reference = {m: ds[m].attrs["unbiased_reference"] for m in measures}
    if reference is None:
        reference = unbiased_reference(settings_from_attrs(ds.attrs, measures), n_functions=n_functions,
                                       seed=seed)
    out = ds.copy()
    for m in measures:
        out[m] = ds[m] / reference[m]
        out[m].attrs = {**ds[m].attrs, "normalised_by": "unbiased (white-noise) reference",
                        "reference_value": reference[m]}
    out.attrs = {**ds.attrs, "normalised": 1}
    return out


# ------------------------------------------------------------------------------- sweep


def _sweep_task(activation, width, variant, depths, scales, seeds, settings, torch_threads):
    """Measures (n_scales, n_depths, n_seeds) of one (activation, width, variant) group, and timings.

    Each (scale, seed) network is evaluated once, at every sample point of every measure and
    for every depth at once (one pass through the deepest network). Timings are CPU seconds of
    the calling thread (wall time on a shared machine says little): exact with one torch
    intra-op thread, an undercount with more.
    """
    pts = settings.points()
    results = {m: np.full((len(scales), len(depths), len(seeds)), np.nan) for m in settings.measures}
    timings = {k: 0.0 for k in ["network", *settings.measures]}
    # torch_threads is only passed to process workers (0 elsewhere: the caller has pinned them)
    with pinned_threads(torch_threads), torch.no_grad():
        for i, A in enumerate(scales):
            for s, seed in enumerate(seeds):
                t0 = time.thread_time()
                base = _base_params(seed, 0, max(depths), width, variant)
                y = _evaluate(base, A, pts, activation, variant, depths)  # (n_depths, P), depths sorted
                timings["network"] += time.thread_time() - t0
                samples = settings.split(y)
                for m in settings.measures:
                    t = time.thread_time()
                    results[m][i, :, s] = settings.compute(samples, [m])[m]
                    timings[m] += time.thread_time() - t
    return (activation, width, variant), results, timings


def complexity_sweep(
    *,
    activations: Sequence[str],
    scales: Sequence[float],
    depths: Sequence[int],
    widths: Sequence[int] = (64,),
    variants: Sequence[str] = ("plain",),
    seeds: Sequence[int] = (0,),
    settings: MeasureSettings | None = None,
    R: int | None = None,
    measures: Sequence[str] | None = None,
    n_jobs: int = 1,
    scheduler: str = "processes",
    torch_threads: int = 1,
    n_unbiased: int = 32,
) -> xr.Dataset:
    """Complexity of random MLPs over a grid of settings, as an ``xarray.Dataset``.

    One data variable per measure, dims ``(activation, scale, depth, width, variant, seed)``;
    each cell is the measure of seed ``s``'s network (index 0 of :func:`random_mlp_outputs`),
    sampled as ``settings`` says (default: the paper's setup, :class:`MeasureSettings`; ``R`` and
    ``measures`` override its ``grid_size`` and ``measures``). Work is split into one dask task per
    (activation, width, variant), each evaluating all scales x seeds, every depth from one pass
    through the deepest network. ``n_jobs > 1`` runs the tasks on ``n_jobs`` dask workers;
    ``scheduler`` = "processes" (default: the LZ parse holds the GIL, so only processes overlap
    it) or "threads". ``torch_threads`` = intra-op threads during the sweep (restored
    afterwards). ``attrs`` record the settings, the wall time and the CPU seconds spent per stage,
    summed over tasks; each measure's attrs its ``description`` and ``unbiased_reference``, the
    mean over ``n_unbiased`` white-noise functions (:func:`unbiased_reference`; 0 = skip).
    """
    settings = settings or MeasureSettings()
    overrides = {k: v for k, v in (("grid_size", R), ("measures", measures)) if v is not None}
    settings = dataclasses.replace(settings, **overrides)
    for a in activations:
        for v in variants:
            _check(a, v, 1, 1)
    activations, variants = list(activations), list(variants)
    scales = [float(s) for s in scales]
    depths, widths, seeds = sorted(int(d) for d in depths), [int(w) for w in widths], [int(s) for s in seeds]
    if min(depths) < 1 or min(widths) < 1:
        raise ValueError(f"depths and widths must be >= 1, got {depths}, {widths}")

    # Process workers set their own thread count; here it applies to the calling process.
    worker_threads = torch_threads if (n_jobs > 1 and scheduler == "processes") else 0
    task = dask.delayed(_sweep_task, pure=True)
    tasks = [task(a, w, v, depths, scales, seeds, settings, worker_threads)
             for a in activations for w in widths for v in variants]
    t0 = time.perf_counter()
    with pinned_threads(torch_threads):
        if n_jobs <= 1:
            outs = dask.compute(*tasks, scheduler="synchronous")
        else:
            outs = dask.compute(*tasks, scheduler=scheduler, num_workers=n_jobs)
    wall = time.perf_counter() - t0

    shape = (len(activations), len(scales), len(depths), len(widths), len(variants), len(seeds))
    data = {m: np.full(shape, np.nan) for m in settings.measures}
    stage = {k: 0.0 for k in ["network", *settings.measures]}
    for (a, w, v), res, timings in outs:
        ia, iw, iv = activations.index(a), widths.index(w), variants.index(v)
        for m in settings.measures:
            data[m][ia, :, :, iw, iv, :] = res[m]
        for k, t in timings.items():
            stage[k] += t
    dims = ("activation", "scale", "depth", "width", "variant", "seed")
    coords = {"activation": activations, "scale": scales, "depth": depths, "width": widths,
              "variant": variants, "seed": seeds}
    ds = xr.Dataset({m: (dims, data[m]) for m in settings.measures}, coords=coords)
    reference = unbiased_reference(settings, n_functions=n_unbiased) if n_unbiased else {}
    for m in settings.measures:
        ds[m].attrs["long_name"] = f"{m} complexity"
        ds[m].attrs["description"] = settings.describe(m)
        if m in reference:
            ds[m].attrs["unbiased_reference"] = reference[m]
    ds.attrs = {
        "description": "Complexity of random MLPs (Neural Redshift); weights and biases U(-scale, scale)",
        "R": settings.grid_size,
        **_settings_attrs(settings),
        "n_functions": int(np.prod(shape)),
        "n_jobs": n_jobs,
        "scheduler": "synchronous" if n_jobs <= 1 else scheduler,
        "wall_seconds": wall,
        **{f"stage_seconds_{k}": v for k, v in stage.items()},
    }
    return ds


def chebyshev_degree_sweep(
    *,
    activations: Sequence[str],
    scales: Sequence[float],
    depth: int,
    degrees: Sequence[int],
    seeds: Sequence[int],
    nodes: int = 128,
    width: int = 64,
    n_unbiased: int = 32,
    torch_threads: int | None = 1,
) -> xr.Dataset:
    """Chebyshev complexity at several maximum degrees D of the same networks' interpolants.

    Data variables: ``chebyshev`` (activation, scale, degree, seed) and ``unbiased`` (degree), the
    white-noise mean at each D, so ``chebyshev / unbiased`` is comparable across D. Networks as
    in :func:`complexity_sweep` (plain MLPs, seed's network 0), sampled at ``nodes`` x ``nodes``
    Chebyshev points.
    """
    degrees = [int(D) for D in degrees]
    pts = chebyshev_grid(nodes)
    out = np.full((len(activations), len(scales), len(degrees), len(seeds)), np.nan)
    for i, a in enumerate(activations):
        for j, A in enumerate(scales):
            for s, seed in enumerate(seeds):
                v = random_mlp_outputs(pts, activation=a, scale=float(A), depths=[depth], width=width,
                                       seed=int(seed), torch_threads=torch_threads)[0].reshape(nodes, nodes)
                out[i, j, :, s] = [chebyshev_complexity(v, D) for D in degrees]
    noise = unbiased_values(nodes, 0, n_unbiased)
    unbiased = [float(np.mean(chebyshev_complexity(noise, D))) for D in degrees]
    return xr.Dataset(
        {"chebyshev": (("activation", "scale", "degree", "seed"), out), "unbiased": (("degree",), unbiased)},
        coords={"activation": list(activations), "scale": [float(A) for A in scales], "degree": degrees,
                "seed": [int(s) for s in seeds]},
        attrs={"description": "Chebyshev complexity vs maximum degree D (interpolation at Chebyshev points)",
               "depth": int(depth), "width": int(width), "chebyshev_nodes": int(nodes),
               "n_unbiased": int(n_unbiased)},
    )


# ------------------------------------------------------------------------ sum-mod-M task
# The paper (section "Learning complex functions"): inputs are vectors of integers in
# [0, N-1], N = 16; the label says whether their sum modulo M lies in the lower half; "M = {10,
# 7, 4} correspond to increasingly higher frequencies in the target function": the label is
# periodic in sum(x) with period M, so a smaller M packs more periods into the input range --
# smaller M = higher frequency (M = 4 is the hardest). MLPs with a multiplicative prefactor
# before each activation learn the higher frequencies only with larger prefactors. The paper
# does not state d; we use d = 2 (see summod_dataset).


def summod_labels(x_int, M: int) -> np.ndarray:
    """Label 1 where ``(sum_i x_i) mod M < M / 2``, else 0 (last axis = input dimensions)."""
    x = np.asarray(x_int)
    return ((x.sum(axis=-1) % M) < M / 2).astype(np.int64)


def scale_inputs(x_int, N: int = 16) -> np.ndarray:
    """Map integers ``0..N-1`` linearly onto ``[-1, 1]`` (float32): the lattice ``0..N-1`` becomes
    ``grid_axis(N, endpoint=True)``."""
    return (-1.0 + 2.0 * np.asarray(x_int, dtype=np.float64) / (N - 1)).astype(np.float32)


def summod_dataset(n: int, *, d: int = 2, N: int = 16, M: int,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` integer inputs ``(n, d)`` in ``[0, N-1]`` and their sum-mod-M labels ``(n,)``.

    Points are drawn uniformly *without replacement* from the ``N**d`` lattice when ``n`` fits
    (so a train/test split of one draw is disjoint), otherwise i.i.d. Default ``d = 2`` (the
    paper does not give d): the whole input space (16 x 16 points) lives in the same 2-D square
    as the random-network grid, so the learnt function and the target's own complexity can be
    measured on it directly; the target is a diagonal stripe pattern whose frequency grows as M
    shrinks (:func:`summod_target_complexity`).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(d), int(N), int(M), 0x5A3]))
    total = N**d
    if n <= total and total <= 1 << 24:
        flat = rng.choice(total, size=n, replace=False)
        x = np.stack(np.unravel_index(flat, (N,) * d), axis=1).astype(np.int64)
    else:
        x = rng.integers(0, N, size=(n, d), dtype=np.int64)
    return x, summod_labels(x, M)


def summod_target_complexity(M: int, *, N: int = 16, convention: str = "paper") -> float:
    """Fourier complexity of the sum-mod-M target itself on the ``N x N`` lattice plane of the
    first two inputs (the whole input space for d = 2; other inputs 0 for larger d).

    The lattice, scaled to [-1, 1], is ``grid(N, endpoint=True)``, so this is the measure of the
    study's random networks applied to the target's labels. Measured (N = 16, paper
    convention): M = 10 -> 0.42, M = 7 -> 0.46, M = 4 -> 0.55 (M = 2, a checkerboard, -> 1):
    smaller M, higher complexity.
    """
    i = np.arange(N)
    labels = summod_labels(np.stack(np.meshgrid(i, i, indexing="ij"), axis=-1), M).astype(np.float64)
    return float(fourier_complexity(labels, convention))


class _PrefactorMLP(torch.nn.Module):
    """MLP whose hidden layers compute ``phi(alpha * (W h + b))``; PyTorch default init."""

    def __init__(self, d: int, width: int, depth: int, activation: str, alpha: float):
        super().__init__()
        sizes = [d] + [width] * depth
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = torch.nn.Linear(width, 1)
        self.phi = ACTIVATIONS[activation]
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.hidden:
            x = self.phi(self.alpha * lin(x))
        return self.out(x).squeeze(-1)


def _slice_fourier(model: torch.nn.Module, d: int, settings: MeasureSettings) -> float:
    """Fourier complexity of the model on the settings' grid in the (x1, x2) plane, other inputs 0."""
    R = settings.grid_size
    pts = np.zeros((R * R, d), dtype=np.float32)
    pts[:, :2] = grid(R, settings.grid_endpoint)
    with torch.no_grad():
        vals = model(torch.as_tensor(pts)).double().numpy().reshape(R, R)
    return float(fourier_complexity(vals, settings.fourier_convention))


def train_summod(
    *,
    M: int,
    activation: str = "relu",
    alpha: float = 1.0,
    d: int = 2,
    N: int = 16,
    width: int = 64,
    depth: int = 2,
    train_fraction: float = 0.5,
    steps: int = 500,
    lr: float = 3e-3,
    seed: int = 0,
    settings: MeasureSettings | None = None,
    R: int | None = None,
    torch_threads: int | None = 1,
) -> dict:
    """Train an MLP with prefactor ``alpha`` on sum-mod-M; return accuracies and complexities.

    Full-batch Adam on binary cross-entropy (logits). With ``d = 2`` all ``N**2`` lattice points
    are split into a random train set (``train_fraction``) and the test set (the rest); for
    larger ``d`` 2048 points are drawn and split the same way. Complexity: Fourier complexity of
    the network on the grid of ``settings`` (default the paper's: 300 x 300 with endpoints, paper
    convention; ``R`` overrides the grid size) at initialisation and after training; for
    ``d > 2`` it is taken on the 2-D slice through the centre of the input cube spanned by the
    first two inputs (all other inputs 0), since the measures are defined for 2-D functions.
    Default init is PyTorch's ``nn.Linear`` init, seeded by ``seed``; ``torch_threads`` as in
    :func:`random_mlp_values`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    settings = dataclasses.replace(settings or MeasureSettings(), **({"grid_size": R} if R else {}))
    with pinned_threads(torch_threads):
        return _train_summod(M, activation, alpha, d, N, width, depth, train_fraction, steps, lr, seed,
                             settings)


def _train_summod(M, activation, alpha, d, N, width, depth, train_fraction, steps, lr, seed,
                  settings) -> dict:
    n_total = min(N**d, 2048)
    x_int, y = summod_dataset(n_total, d=d, N=N, M=M, seed=seed)
    n_train = int(round(train_fraction * n_total))
    x = torch.as_tensor(scale_inputs(x_int, N))
    yt = torch.as_tensor(y, dtype=torch.float32)
    xtr, ytr, xte, yte = x[:n_train], yt[:n_train], x[n_train:], yt[n_train:]

    with torch.random.fork_rng(devices=[]):  # leave the global RNG untouched
        torch.manual_seed(seed)
        model = _PrefactorMLP(d, width, depth, activation, alpha)
    init_c = _slice_fourier(model, d, settings)

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(xtr), ytr)
        loss.backward()
        opt.step()

    with torch.no_grad():
        final_loss = float(loss_fn(model(xtr), ytr))
        acc_tr = float(((model(xtr) > 0).float() == ytr).float().mean())
        acc_te = float(((model(xte) > 0).float() == yte).float().mean()) if len(yte) else math.nan
    return {
        "test_accuracy": acc_te,
        "train_accuracy": acc_tr,
        "final_train_loss": final_loss,
        "init_fourier_complexity": init_c,
        "trained_fourier_complexity": _slice_fourier(model, d, settings),
        "target_fourier_complexity": summod_target_complexity(M, N=N, convention=settings.fourier_convention),
        "M": M, "activation": activation, "alpha": float(alpha), "d": d, "N": N,
        "n_train": n_train, "n_test": int(len(yte)),
    }


def summod_sweep(
    *,
    activations: Sequence[str],
    alphas: Sequence[float],
    Ms: Sequence[int],
    seeds: Sequence[int],
    **options,
) -> xr.Dataset:
    """:func:`train_summod` over (activation, alpha, M, seed), as an ``xarray.Dataset``.

    Data variables test_accuracy, train_accuracy, init_fourier_complexity and
    trained_fourier_complexity (activation, alpha, M, seed), and target_fourier_complexity (M),
    the target's own complexity (:func:`summod_target_complexity`); ``options`` go to
    :func:`train_summod` and, where scalar, into ``attrs``.
    """
    keys = ("test_accuracy", "train_accuracy", "init_fourier_complexity", "trained_fourier_complexity")
    shape = (len(activations), len(alphas), len(Ms), len(seeds))
    out = {k: np.full(shape, np.nan) for k in keys}
    target = np.full(len(Ms), np.nan)
    for i, a in enumerate(activations):
        for j, alpha in enumerate(alphas):
            for k, M in enumerate(Ms):
                for s, seed in enumerate(seeds):
                    r = train_summod(M=int(M), activation=a, alpha=float(alpha), seed=int(seed), **options)
                    for key in keys:
                        out[key][i, j, k, s] = r[key]
                    target[k] = r["target_fourier_complexity"]
    settings = options.get("settings") or MeasureSettings()
    if options.get("R"):
        settings = dataclasses.replace(settings, grid_size=int(options["R"]))
    dims = ("activation", "alpha", "M", "seed")
    coords = {"activation": list(activations), "alpha": [float(a) for a in alphas],
              "M": [int(m) for m in Ms], "seed": [int(s) for s in seeds]}
    data = {k: (dims, v) for k, v in out.items()}
    data["target_fourier_complexity"] = (("M",), target)
    scalars = {k: v for k, v in options.items() if isinstance(v, (int, float, str))}
    return xr.Dataset(data, coords=coords,
                      attrs={"task": "sum-mod-M, label = (sum x_i mod M) < M/2, x_i in [0, N); "
                                     "smaller M = higher frequency",
                             "d": int(options.get("d", 2)), "N": int(options.get("N", 16)),
                             "network_complexity": settings.describe("fourier"),
                             "target_complexity": f"Fourier ({settings.fourier_convention} convention) "
                                                  "of the labels on the N x N lattice",
                             **scalars, **_settings_attrs(settings)})


def function_images(R: int, *, activations: Sequence[str], scales: Sequence[float], depth: int,
                    width: int = 64, variant: str = "plain", seed: int = 0,
                    endpoint: bool = False) -> xr.DataArray:
    """Values of one random MLP per (activation, scale): DataArray (activation, scale, x, y)."""
    data = np.stack([
        np.stack([random_mlp_values(R, activation=a, scale=float(s), depth=depth, width=width,
                                    variant=variant, seed=seed, endpoint=endpoint)[0] for s in scales])
        for a in activations
    ])
    axis = grid(R, endpoint)[::R, 0]
    return xr.DataArray(data, dims=("activation", "scale", "x", "y"),
                        coords={"activation": list(activations), "scale": [float(s) for s in scales],
                                "x": axis, "y": axis},
                        attrs={"depth": depth, "width": width, "variant": variant, "seed": seed,
                               "grid_endpoint": int(endpoint)})
