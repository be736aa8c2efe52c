"""Neural Redshift (Teney et al., CVPR 2024): complexity of random networks on 2-D inputs.

* :func:`random_mlp_values` -- random MLPs ``2 -> width -> ... -> 1`` evaluated on ``grid(R)``.
* :func:`unbiased_values` / :func:`unbiased_reference` -- the "unbiased" white-noise reference.
* :func:`complexity_sweep` -- measures over (activation, scale, depth, width, variant, seed) as an
  ``xarray.Dataset``; :func:`normalise_by_unbiased` rescales it so that the reference is 1.
* :func:`summod_dataset` / :func:`train_summod` -- the sum-mod-M task.

Random weights. Every weight and bias is ``A * u`` with ``u ~ U(-1, 1)`` i.i.d., i.e.
``U(-A, A)``. The base draws ``u`` of network ``j`` of seed ``s`` come from a numpy
``SeedSequence([s, j, depth, width, crc32(variant)])``, so a value never depends on the order
or batching of evaluation. The activation and the scale ``A`` are deliberately *not* part of the
seed: all activations and magnitudes of one (seed, depth, width, variant) share the same base
draws (common random numbers), which makes each seed's curve over ``A`` smooth and the
comparison between activations paired.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from .complexity import MEASURES, compute_measures, fourier_complexity, grid
from .threads import pinned_threads

__all__ = [
    "ACTIVATIONS",
    "VARIANTS",
    "random_mlp_values",
    "unbiased_values",
    "unbiased_reference",
    "complexity_sweep",
    "normalise_by_unbiased",
    "paper_scales",
    "summod_labels",
    "summod_dataset",
    "scale_inputs",
    "train_summod",
    "summod_sweep",
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
# stays cache-resident; measured ~2x faster than 32 networks per batched matmul on the 2-core
# dev machine (elementwise ops on big tensors are memory-bound and cost as much as the matmuls).
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


def _base_params(seed: int, index: int, depth: int, width: int, variant: str) -> list[np.ndarray]:
    """U(-1, 1) draws of one network, in a fixed order (see module docstring for the seeding).

    Order: (W, b) of each hidden layer (the first maps 2 -> width), then for "gating" the gate
    (W', b') of each hidden layer, then the output (W, b).
    """
    ss = np.random.SeedSequence([int(seed), int(index), int(depth), int(width), zlib.crc32(variant.encode())])
    rng = np.random.default_rng(ss)

    def u(*shape):
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)

    shapes = [(2, width)] + [(width, width)] * (depth - 1)
    params = []
    for fan_in, fan_out in shapes:
        params += [u(fan_in, fan_out), u(fan_out)]
    if variant == "gating":
        for fan_in, fan_out in shapes:
            params += [u(fan_in, fan_out), u(fan_out)]
    params += [u(width, 1), u(1)]
    return params


def _forward(params: list[torch.Tensor], x: torch.Tensor, activation: str, variant: str, depth: int) -> torch.Tensor:
    """Forward pass; params[i] carry a leading network axis B (1 in practice); x is (P, 2) -> (B, P)."""
    phi = ACTIVATIONS[activation]
    gates = params[2 * depth : 4 * depth] if variant == "gating" else None
    h = x.expand(params[0].shape[0], *x.shape)  # (B, P, 2)
    for layer in range(depth):
        W, b = params[2 * layer], params[2 * layer + 1]
        z = torch.baddbmm(b.unsqueeze(1), h, W)  # (B, P, width)
        if variant == "layernorm":
            z = F.layer_norm(z, z.shape[-1:])  # no affine parameters
        a = phi(z)
        if variant == "gating":
            Wg, bg = gates[2 * layer], gates[2 * layer + 1]
            a = a * torch.sigmoid(torch.baddbmm(bg.unsqueeze(1), h, Wg))
        # residual only where shapes allow it: hidden -> hidden layers
        h = h + a if (variant == "residual" and layer > 0) else a
    Wo, bo = params[-2], params[-1]
    return torch.baddbmm(bo.unsqueeze(1), h, Wo).squeeze(-1)


def _evaluate(base: list[list[np.ndarray]], scales: np.ndarray, R: int, activation: str, variant: str, depth: int,
              device=None) -> np.ndarray:
    """Values (B, R, R) of networks with parameters ``scales[b] * base[b]`` on ``grid(R)``.

    Runs in float32; a network whose output is not finite (overflow for huge scales and
    depths) is re-run in float64. Networks are evaluated one at a time: batched matmuls over
    several networks change float32 round-off with the batch, and a network's values must not
    depend on what it is evaluated with.
    """
    B = len(base)
    width = base[0][0].shape[1]
    out = np.empty((B, R * R), dtype=np.float64)
    pt_chunk = max(1, _CHUNK_ELEMENTS // width)
    pts = grid(R)
    with torch.no_grad():
        for b in range(B):
            for dtype in (torch.float32, torch.float64):
                params = [torch.as_tensor(a, dtype=dtype, device=device)[None] * float(scales[b]) for a in base[b]]
                x = torch.as_tensor(pts, dtype=dtype, device=device)
                y = torch.cat([_forward(params, x[p0 : p0 + pt_chunk], activation, variant, depth) for p0 in range(0, R * R, pt_chunk)], dim=1)
                if bool(torch.isfinite(y).all()):
                    break
            out[b] = y[0].double().cpu().numpy()
    return out.reshape(B, R, R)


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
    torch_threads: int | None = 1,
    device=None,
) -> np.ndarray:
    """Values ``(n_functions, R, R)`` of random MLPs on ``grid(R)`` (``values[:, i, j] = f(x_i, y_j)``).

    MLP ``2 -> width (x depth hidden layers) -> 1`` with weights and biases ``U(-scale, scale)``.
    Variants: "plain" ``h <- phi(W h + b)``; "layernorm" ``h <- phi(LN(W h + b))`` (LN without
    affine, before every activation); "residual" ``h <- h + phi(W h + b)`` on hidden -> hidden
    layers; "gating" ``h <- phi(W h + b) * sigmoid(W' h + b')`` on every hidden layer. Network
    ``j`` is seeded from ``(seed, j, depth, width, variant)`` only (module docstring).
    ``torch_threads``: intra-op threads during the call (None = torch's current setting).
    ``device``: where the networks run (default the CPU); values come back as numpy either way.
    """
    _check(activation, variant, depth, width)
    base = [_base_params(seed, j, depth, width, variant) for j in range(n_functions)]
    with pinned_threads(torch_threads):
        return _evaluate(base, np.full(n_functions, float(scale)), R, activation, variant, depth, device)


# -------------------------------------------------------------------- unbiased reference


def unbiased_values(R: int, seed: int = 0, n_functions: int = 1) -> np.ndarray:
    """The "unbiased" model: i.i.d. ``U(-1, 1)`` values at every grid point, ``(n_functions, R, R)``.

    White noise: every non-zero frequency has the same expected DFT magnitude (a uniform
    spectrum), and the median-binarised sequence is a fair-coin sequence, so it is the
    reference of maximal expected complexity for all three measures.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0B1A5]))
    return rng.uniform(-1.0, 1.0, size=(n_functions, R, R))


def unbiased_reference(R: int = 64, measures: Sequence[str] = ("fourier", "chebyshev", "lz"), *, n_functions: int = 32, seed: int = 0) -> dict[str, float]:
    """Mean of each measure over ``n_functions`` unbiased (white-noise) functions."""
    vals = compute_measures(unbiased_values(R, seed, n_functions), measures)
    return {m: float(v.mean()) for m, v in vals.items()}


def normalise_by_unbiased(ds: xr.Dataset, reference: dict[str, float] | None = None, *, n_functions: int = 32, seed: int = 0) -> xr.Dataset:
    """Divide every measure of a sweep by the unbiased model's mean value (unbiased -> 1).

    ``reference`` defaults to :func:`unbiased_reference` on the sweep's grid size ``ds.attrs["R"]``.
    """
    measures = [m for m in ds.data_vars if m in MEASURES]
    if reference is None:
        reference = unbiased_reference(int(ds.attrs["R"]), measures, n_functions=n_functions, seed=seed)
    out = ds.copy()
    for m in measures:
        out[m] = ds[m] / reference[m]
        out[m].attrs = {**ds[m].attrs, "normalised_by": "unbiased (white-noise) reference", "reference_value": reference[m]}
    out.attrs = {**ds.attrs, "normalised": 1}
    return out


# ------------------------------------------------------------------------------- sweep


def _sweep_task(activation, depth, width, variant, scales, seeds, R, measures, torch_threads):
    """Measures (n_scales, n_seeds) of one (activation, depth, width, variant) group, and timings."""
    if torch_threads:
        torch.set_num_threads(torch_threads)  # only passed to process workers
    t0 = time.perf_counter()
    bases = [_base_params(s, 0, depth, width, variant) for s in seeds]
    base = [b for _ in scales for b in bases]  # scale-major, seed-minor
    sc = np.repeat(np.asarray(scales, dtype=np.float64), len(seeds))
    values = _evaluate(base, sc, R, activation, variant, depth)
    timings = {"network": time.perf_counter() - t0}
    results = {}
    for m in measures:
        t = time.perf_counter()
        results[m] = np.asarray(MEASURES[m](values), dtype=np.float64).reshape(len(scales), len(seeds))
        timings[m] = time.perf_counter() - t
    return (activation, depth, width, variant), results, timings


def complexity_sweep(
    *,
    activations: Sequence[str],
    scales: Sequence[float],
    depths: Sequence[int],
    widths: Sequence[int] = (64,),
    variants: Sequence[str] = ("plain",),
    seeds: Sequence[int] = (0,),
    R: int = 64,
    measures: Sequence[str] = ("fourier", "chebyshev", "lz"),
    n_jobs: int = 1,
    scheduler: str = "processes",
    torch_threads: int = 1,
) -> xr.Dataset:
    """Complexity of random MLPs over a grid of settings, as an ``xarray.Dataset``.

    One data variable per measure, dims ``(activation, scale, depth, width, variant, seed)``;
    each cell is the measure of seed ``s``'s network (index 0 of :func:`random_mlp_values`).
    Work is split into one dask task per (activation, depth, width, variant), each evaluating
    all scales x seeds. ``n_jobs > 1`` runs the tasks on ``n_jobs`` dask workers; ``scheduler``
    = "processes" (default: the LZ parse holds the GIL, so only processes can overlap it) or
    "threads". Measured on the shared 2-core dev machine (load ~3.5 from other jobs), the
    paper-size sweep took 45 s with ``n_jobs=1``, 61 s with 2 processes (spawn + contention);
    threads were no faster than serial -- use ``n_jobs > 1`` only where cores are idle.
    ``torch_threads`` = intra-op threads during the sweep (restored afterwards); 1 was fastest
    there, the cores being better used by dask workers. ``attrs`` record the settings and the
    seconds spent per stage, summed over tasks.
    """
    import dask

    for a in activations:
        for v in variants:
            _check(a, v, 1, 1)
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown measures {sorted(unknown)}")
    activations, variants, measures = list(activations), list(variants), list(measures)
    scales = [float(s) for s in scales]
    depths, widths, seeds = [int(d) for d in depths], [int(w) for w in widths], [int(s) for s in seeds]

    # Process workers set their own thread count; here it applies to the calling process.
    worker_threads = torch_threads if (n_jobs > 1 and scheduler == "processes") else 0
    task = dask.delayed(_sweep_task, pure=True)
    tasks = [
        task(a, d, w, v, scales, seeds, R, measures, worker_threads)
        for a in activations
        for d in depths
        for w in widths
        for v in variants
    ]
    t0 = time.perf_counter()
    with pinned_threads(torch_threads):
        if n_jobs <= 1:
            outs = dask.compute(*tasks, scheduler="synchronous")
        else:
            outs = dask.compute(*tasks, scheduler=scheduler, num_workers=n_jobs)
    wall = time.perf_counter() - t0

    shape = (len(activations), len(scales), len(depths), len(widths), len(variants), len(seeds))
    data = {m: np.full(shape, np.nan) for m in measures}
    stage = {k: 0.0 for k in ["network", *measures]}
    for (a, d, w, v), res, timings in outs:
        ia, idd, iw, iv = activations.index(a), depths.index(d), widths.index(w), variants.index(v)
        for m in measures:
            data[m][ia, :, idd, iw, iv, :] = res[m]
        for k, t in timings.items():
            stage[k] += t
    dims = ("activation", "scale", "depth", "width", "variant", "seed")
    coords = {"activation": activations, "scale": scales, "depth": depths, "width": widths, "variant": variants, "seed": seeds}
    ds = xr.Dataset({m: (dims, data[m]) for m in measures}, coords=coords)
    for m in measures:
        ds[m].attrs["long_name"] = f"{m} complexity"
    ds.attrs = {
        "description": "Complexity of random MLPs (Neural Redshift); weights and biases U(-scale, scale)",
        "R": R,
        "grid": "x_i = -1 + 2 i / R, i = 0..R-1, per axis",
        "n_functions": int(np.prod(shape)),
        "n_jobs": n_jobs,
        "scheduler": "synchronous" if n_jobs <= 1 else scheduler,
        "wall_seconds": wall,
        **{f"stage_seconds_{k}": v for k, v in stage.items()},
    }
    return ds


# ------------------------------------------------------------------------ sum-mod-M task


def summod_labels(x_int, M: int) -> np.ndarray:
    """Label 1 where ``(sum_i x_i) mod M < M / 2``, else 0 (last axis = input dimensions)."""
    x = np.asarray(x_int)
    return ((x.sum(axis=-1) % M) < M / 2).astype(np.int64)


def scale_inputs(x_int, N: int = 16) -> np.ndarray:
    """Map integers ``0..N-1`` linearly onto ``[-1, 1]`` (float32)."""
    return (-1.0 + 2.0 * np.asarray(x_int, dtype=np.float64) / (N - 1)).astype(np.float32)


def summod_dataset(n: int, *, d: int = 2, N: int = 16, M: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` integer inputs ``(n, d)`` in ``[0, N-1]`` and their sum-mod-M labels ``(n,)``.

    Points are drawn uniformly *without replacement* from the ``N**d`` lattice when ``n`` fits
    (so a train/test split of one draw is disjoint), otherwise i.i.d. Default ``d = 2``: the
    whole input space (16 x 16 points) lives in the same 2-D square as the random-network
    grid, so the learnt function and its Fourier complexity can be evaluated and shown
    directly; the target is a diagonal stripe pattern whose frequency grows as M shrinks.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(d), int(N), int(M), 0x5A3]))
    total = N**d
    if n <= total and total <= 1 << 24:
        flat = rng.choice(total, size=n, replace=False)
        x = np.stack(np.unravel_index(flat, (N,) * d), axis=1).astype(np.int64)
    else:
        x = rng.integers(0, N, size=(n, d), dtype=np.int64)
    return x, summod_labels(x, M)


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


def _slice_fourier(model: torch.nn.Module, d: int, R: int) -> float:
    """Fourier complexity of the model on ``grid(R)`` in the (x1, x2) plane, other inputs 0."""
    pts = np.zeros((R * R, d), dtype=np.float32)
    pts[:, :2] = grid(R)
    with torch.no_grad():
        vals = model(torch.as_tensor(pts)).double().numpy().reshape(R, R)
    return float(fourier_complexity(vals))


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
    R: int = 64,
    torch_threads: int | None = 1,
) -> dict:
    """Train an MLP with prefactor ``alpha`` on sum-mod-M; return accuracies and complexities.

    Full-batch Adam on binary cross-entropy (logits). With ``d = 2`` all ``N**2`` lattice points
    are split into a random train set (``train_fraction``) and the test set (the rest); for
    larger ``d`` 2048 points are drawn and split the same way. Complexity: Fourier complexity of
    the network on ``grid(R)`` at initialisation and after training; for ``d > 2`` it is taken on
    the 2-D slice through the centre of the input cube spanned by the first two inputs (all
    other inputs 0), since the measures are defined for 2-D functions. Default init is
    PyTorch's ``nn.Linear`` init, seeded by ``seed``; ``torch_threads`` as in
    :func:`random_mlp_values`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    with pinned_threads(torch_threads):
        return _train_summod(M, activation, alpha, d, N, width, depth, train_fraction, steps, lr, seed, R)


def _train_summod(M, activation, alpha, d, N, width, depth, train_fraction, steps, lr, seed, R) -> dict:
    n_total = min(N**d, 2048)
    x_int, y = summod_dataset(n_total, d=d, N=N, M=M, seed=seed)
    n_train = int(round(train_fraction * n_total))
    x = torch.as_tensor(scale_inputs(x_int, N))
    yt = torch.as_tensor(y, dtype=torch.float32)
    xtr, ytr, xte, yte = x[:n_train], yt[:n_train], x[n_train:], yt[n_train:]

    with torch.random.fork_rng(devices=[]):  # leave the global RNG untouched
        torch.manual_seed(seed)
        model = _PrefactorMLP(d, width, depth, activation, alpha)
    init_c = _slice_fourier(model, d, R)

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
        "trained_fourier_complexity": _slice_fourier(model, d, R),
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
    trained_fourier_complexity; ``options`` go to :func:`train_summod` and into ``attrs``.
    """
    keys = ("test_accuracy", "train_accuracy", "init_fourier_complexity", "trained_fourier_complexity")
    shape = (len(activations), len(alphas), len(Ms), len(seeds))
    out = {k: np.full(shape, np.nan) for k in keys}
    for i, a in enumerate(activations):
        for j, alpha in enumerate(alphas):
            for k, M in enumerate(Ms):
                for s, seed in enumerate(seeds):
                    r = train_summod(M=int(M), activation=a, alpha=float(alpha), seed=int(seed), **options)
                    for key in keys:
                        out[key][i, j, k, s] = r[key]
    dims = ("activation", "alpha", "M", "seed")
    coords = {"activation": list(activations), "alpha": [float(a) for a in alphas],
              "M": [int(m) for m in Ms], "seed": [int(s) for s in seeds]}
    return xr.Dataset({k: (dims, v) for k, v in out.items()}, coords=coords,
                      attrs={"task": "sum-mod-M, label = (sum x_i mod M) < M/2, x_i in [0, N)",
                             **{k: v for k, v in options.items() if isinstance(v, (int, float, str))}})


def function_images(R: int, *, activations: Sequence[str], scales: Sequence[float], depth: int,
                    width: int = 64, variant: str = "plain", seed: int = 0) -> xr.DataArray:
    """Values of one random MLP per (activation, scale): DataArray (activation, scale, x, y)."""
    data = np.stack([
        np.stack([random_mlp_values(R, activation=a, scale=float(s), depth=depth, width=width,
                                    variant=variant, seed=seed)[0] for s in scales])
        for a in activations
    ])
    axis = grid(R)[::R, 0]
    return xr.DataArray(data, dims=("activation", "scale", "x", "y"),
                        coords={"activation": list(activations), "scale": [float(s) for s in scales],
                                "x": axis, "y": axis},
                        attrs={"depth": depth, "width": width, "variant": variant, "seed": seed})
