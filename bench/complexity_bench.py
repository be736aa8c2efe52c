"""Benchmark: the paper-size Neural Redshift sweep.

8 activations x 15 log-spaced magnitudes A in [0.1, 100] x depths 1..7 x 5 seeds, width 64,
64 x 64 grid, Fourier + Chebyshev + LZ complexity (4,200 functions per variant).

    python bench/complexity_bench.py                 # full sweep, plain MLPs
    python bench/complexity_bench.py --quick         # a fraction (smoke run)
    python bench/complexity_bench.py --variants plain residual layernorm gating
    python bench/complexity_bench.py --quick --compare-schedulers

Prints the wall time, per-function seconds of each stage (network evaluation and each measure,
summed over workers), each stage's share, and the Fourier complexity normalised by the
unbiased (white-noise) reference at the largest magnitude per activation.
"""

from __future__ import annotations

import argparse
import time

from repatlas.redshift import ACTIVATIONS, complexity_sweep, normalise_by_unbiased, paper_scales, unbiased_reference

MEASURES = ("fourier", "chebyshev", "lz")


def _settings(quick: bool, variants) -> dict:
    if quick:
        return dict(activations=list(ACTIVATIONS), scales=paper_scales(5), depths=[1, 4, 7], widths=[64], variants=variants, seeds=range(2))
    return dict(activations=list(ACTIVATIONS), scales=paper_scales(15), depths=range(1, 8), widths=[64], variants=variants, seeds=range(5))


def _report_timing(ds, wall: float) -> None:
    n = ds.attrs["n_functions"]
    stages = {k.removeprefix("stage_seconds_"): v for k, v in ds.attrs.items() if k.startswith("stage_seconds_")}
    busy = sum(stages.values())
    print(f"functions: {n}   wall: {wall:.1f} s   ({wall / n * 1e3:.2f} ms per function)   "
          f"scheduler: {ds.attrs['scheduler']}, n_jobs={ds.attrs['n_jobs']}")
    print(f"{'stage':<10} {'total s':>9} {'ms/function':>12} {'share':>7}")
    for k, v in stages.items():
        print(f"{k:<10} {v:9.2f} {v / n * 1e3:12.3f} {v / busy:7.1%}")
    print(f"{'sum':<10} {busy:9.2f} {busy / n * 1e3:12.3f}   (busy/wall = {busy / wall:.2f}: "
          f"the parallel speed-up actually obtained, incl. contention)")


def _report_values(norm, depth: int) -> None:
    A = float(norm.scale.max())
    print(f"\nnormalised complexity (unbiased = 1) at A = {A:g}, depth {depth}, mean +- sd over seeds:")
    print(f"{'activation':<10} {'variant':<10} " + " ".join(f"{m:>16}" for m in MEASURES if m in norm))
    for v in norm.variant.values:
        for a in norm.activation.values:
            cell = norm.sel(activation=a, scale=A, depth=depth, variant=v).isel(width=0)
            cols = [f"{float(cell[m].mean()):7.3f} +- {float(cell[m].std()):5.3f}" for m in MEASURES if m in norm]
            print(f"{a:<10} {v:<10} " + " ".join(f"{c:>16}" for c in cols))


def _report_curves(norm, depth: int) -> None:
    print(f"\nnormalised Fourier complexity vs A (depth {depth}, plain if present, seed mean):")
    v = "plain" if "plain" in norm.variant.values else norm.variant.values[0]
    f = norm.fourier.sel(depth=depth, variant=v).isel(width=0).mean("seed")
    print(f"{'A':<10} " + " ".join(f"{a:>8}" for a in f.activation.values))
    for A in f.scale.values:
        print(f"{A:<10.3g} " + " ".join(f"{float(f.sel(scale=A, activation=a)):8.3f}" for a in f.activation.values))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5 scales x depths 1,4,7 x 2 seeds")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--scheduler", default="processes", choices=["processes", "threads"])
    p.add_argument("--variants", nargs="+", default=["plain"])
    p.add_argument("--R", type=int, default=64)
    p.add_argument("--compare-schedulers", action="store_true", help="time synchronous / threads / processes")
    p.add_argument("--out", default=None, help="write the sweep (raw) to this netCDF file")
    args = p.parse_args()

    settings = _settings(args.quick, args.variants)
    if args.compare_schedulers:
        for n_jobs, sched in [(1, "processes"), (2, "threads"), (2, "processes")]:
            t = time.perf_counter()
            complexity_sweep(R=args.R, measures=MEASURES, n_jobs=n_jobs, scheduler=sched, **settings)
            print(f"n_jobs={n_jobs} {sched if n_jobs > 1 else 'synchronous':<12} wall {time.perf_counter() - t:6.1f} s")
        return

    t0 = time.perf_counter()
    ds = complexity_sweep(R=args.R, measures=MEASURES, n_jobs=args.n_jobs, scheduler=args.scheduler, **settings)
    wall = time.perf_counter() - t0
    t = time.perf_counter()
    ref = unbiased_reference(args.R, MEASURES, n_functions=32, seed=0)
    t_ref = time.perf_counter() - t
    _report_timing(ds, wall)
    print(f"unbiased reference (32 white-noise functions): {t_ref:.2f} s; values "
          + ", ".join(f"{m} {v:.4g}" for m, v in ref.items()))
    print(f"total incl. reference: {wall + t_ref:.1f} s")

    norm = normalise_by_unbiased(ds, ref)
    for depth in sorted({1, int(ds.depth.max())}):
        _report_values(norm, depth)
    _report_curves(norm, 1)
    if args.out:
        ds.to_netcdf(args.out)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
