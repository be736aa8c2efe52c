"""Benchmark: the paper-size Neural Redshift sweep, with the study's measure settings.

8 activations x 15 log-spaced magnitudes A in [0.1, 100] x depths 1..7 x 5 seeds, width 64
(4,200 functions per variant): Fourier (paper convention) on the 300 x 300 grid with endpoints,
Chebyshev (D = 20) at 128 x 128 Chebyshev points, LZ76 on a 128 x 128 grid -- the settings of
configs/redshift.yaml (repatlas.complexity.MeasureSettings defaults).

    python bench/complexity_bench.py                 # full sweep, plain MLPs
    python bench/complexity_bench.py --quick         # a fraction (smoke run)
    python bench/complexity_bench.py --baselines     # + ratios against the approaches replaced
    python bench/complexity_bench.py --variants plain residual layernorm gating

Prints the wall and CPU time, per-function CPU seconds of each stage (network evaluation and
each measure, summed over workers), each stage's share, the Fourier complexity (paper convention) at
A ~ 1, 10, 100 per activation and depth, and with --baselines, measured in the same run on a
sample of the sweep's networks: one pass through the deepest network for all depths vs one
network per depth, and the LZ parse on the 300 x 300 grid vs the study's LZ grid.
The whole study (sweeps, sum-mod-M, figures) is timed with snakemake itself:
    rm -rf results/complexity results/figures/redshift_*;
    time snakemake --cores 2 --configfile configs/redshift.yaml
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from repatlas.complexity import MeasureSettings, grid, lz_complexity
from repatlas.redshift import ACTIVATIONS, _base_params, _evaluate, complexity_sweep, paper_scales
from repatlas.threads import pinned_threads


def _settings(quick: bool, variants) -> dict:
    if quick:
        return dict(activations=list(ACTIVATIONS), scales=paper_scales(5), depths=[1, 4, 7], widths=[64],
                    variants=variants, seeds=range(2))
    return dict(activations=list(ACTIVATIONS), scales=paper_scales(15), depths=range(1, 8), widths=[64],
                variants=variants, seeds=range(5))


def _report_timing(ds, wall: float, cpu: float) -> None:
    n = ds.attrs["n_functions"]
    stages = {k.removeprefix("stage_seconds_"): v for k, v in ds.attrs.items()
              if k.startswith("stage_seconds_")}
    busy = sum(stages.values())
    print(f"functions: {n}   wall: {wall:.1f} s   CPU (this process): {cpu:.1f} s   "
          f"({wall / n * 1e3:.2f} ms wall per function)   "
          f"scheduler: {ds.attrs['scheduler']}, n_jobs={ds.attrs['n_jobs']}")
    print(f"{'stage':<10} {'CPU s':>9} {'ms/function':>12} {'share':>7}")
    for k, v in stages.items():
        print(f"{k:<10} {v:9.2f} {v / n * 1e3:12.3f} {v / busy:7.1%}")
    print(f"{'sum':<10} {busy:9.2f} {busy / n * 1e3:12.3f}")
    ref = {m: ds[m].attrs.get("unbiased_reference") for m in ds.data_vars}
    print("unbiased (white-noise) reference: " + ", ".join(f"{m} {v:.4g}" for m, v in ref.items() if v))


def _report_values(ds) -> None:
    f = ds.fourier.isel(width=0).sel(variant=ds.variant.values[0]).mean("seed")
    scales = [float(f.scale.sel(scale=A, method="nearest")) for A in (1.0, 10.0, 100.0)]
    depths = sorted({int(ds.depth.min()), 2, int(ds.depth.max())} & set(int(d) for d in ds.depth.values))
    print(f"\nFourier complexity (paper convention), seed mean, variant {ds.variant.values[0]}:")
    print(f"{'activation':<10} "
          + " ".join(f"{'A=' + format(A, '.3g') + ' d' + str(d):>13}" for A in scales for d in depths))
    for a in f.activation.values:
        print(f"{a:<10} " + " ".join(f"{float(f.sel(activation=a, scale=A, depth=d)):13.3f}"
                                     for A in scales for d in depths))


def _baselines(settings: MeasureSettings) -> None:
    """Ratios against the approaches replaced, measured now on a sample of the sweep's networks."""
    pts = np.concatenate(list(settings.sample_sets().values()))
    sample = [(a, A) for a in ("relu", "tanh", "sin", "gelu") for A in (0.27, 8.48)]
    t_one = t_each = 0.0
    with torch.no_grad():
        for a, A in sample:
            t = time.process_time()
            _evaluate(_base_params(0, 0, 7, 64, "plain"), A, pts, a, "plain", range(1, 8))
            t_one += time.process_time() - t
            t = time.process_time()
            for d in range(1, 8):  # the replaced scheme: an independent network per depth
                _evaluate(_base_params(0, 0, d, 64, "plain"), A, pts, a, "plain", [d])
            t_each += time.process_time() - t
    print(f"\nnetworks, depths 1-7 of one (activation, A, seed), {len(pts)} points, "
          f"CPU: one pass {t_one / len(sample) * 1e3:.0f} ms, "
          f"one network per depth {t_each / len(sample) * 1e3:.0f} ms  -> ratio {t_each / t_one:.2f}")
    R_lz = settings.lz_grid_size or settings.grid_size
    t_fine = t_coarse = 0.0
    with torch.no_grad():
        for a, A in sample:
            for R, acc in ((300, "fine"), (R_lz, "coarse")):
                v = _evaluate(_base_params(0, 0, 7, 64, "plain"), A, grid(R, True), a, "plain",
                              range(1, 8)).reshape(7, R, R)
                t = time.process_time()
                lz_complexity(v)
                dt = time.process_time() - t
                if acc == "fine":
                    t_fine += dt
                else:
                    t_coarse += dt
    n = 7 * len(sample)
    print(f"LZ76 per function, CPU: 300 x 300 grid {t_fine / n * 1e3:.1f} ms, "
          f"{R_lz} x {R_lz} grid {t_coarse / n * 1e3:.1f} ms "
          f"-> ratio {t_fine / t_coarse:.1f}; "
          f"x 4,200 functions: {t_fine / n * 4200:.0f} s vs {t_coarse / n * 4200:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5 scales x depths 1,4,7 x 2 seeds")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--scheduler", default="processes", choices=["processes", "threads"])
    p.add_argument("--variants", nargs="+", default=["plain"])
    p.add_argument("--baselines", action="store_true", help="also time the replaced approaches on a sample")
    p.add_argument("--out", default=None, help="write the sweep to this netCDF file")
    args = p.parse_args()

    settings = MeasureSettings()
    t0, c0 = time.perf_counter(), time.process_time()
    ds = complexity_sweep(settings=settings, n_jobs=args.n_jobs, scheduler=args.scheduler,
                          **_settings(args.quick, args.variants))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _report_timing(ds, wall, cpu)
    _report_values(ds)
    if args.baselines:
        with pinned_threads(1):  # as the sweep: one thread, so CPU time is work, not spinning
            _baselines(settings)
    if args.out:
        ds.to_netcdf(args.out)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
