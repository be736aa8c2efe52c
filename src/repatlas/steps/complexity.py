"""Steps of rules/complexity.smk (Neural Redshift): the complexity sweep of random MLPs, the Chebyshev
degree sensitivity, and the sum-mod training runs."""

from __future__ import annotations

import sys

import xarray as xr

from repatlas.complexity import MeasureSettings
from repatlas.io import write_netcdf
from repatlas.redshift import chebyshev_degree_sweep, complexity_sweep, summod_sweep


def _write(ds: xr.Dataset, out_path) -> None:
    print(ds, file=sys.stderr)
    write_netcdf(ds, out_path)


def sweep_to_file(sweep: dict, settings: dict, out_path, *, n_jobs: int) -> None:
    """`complexity_sweep` over the config's `sweep` axes (activation, scale, depth, width,
    variant, seed) with `MeasureSettings(**settings)`, on `n_jobs` workers → netCDF."""
    _write(complexity_sweep(
        activations=sweep["activation"], scales=sweep["scale"], depths=sweep["depth"], widths=sweep["width"],
        variants=sweep["variant"], seeds=sweep["seed"], settings=MeasureSettings(**settings), n_jobs=n_jobs,
    ), out_path)


def chebyshev_degrees_to_file(sensitivity: dict, out_path, *, depth: int, nodes: int) -> None:
    """`chebyshev_degree_sweep` over the config's sensitivity axes (activation, scale, degree, seed)
    → netCDF."""
    _write(chebyshev_degree_sweep(
        activations=sensitivity["activation"], scales=sensitivity["scale"], depth=depth,
        degrees=sensitivity["degree"], seeds=sensitivity["seed"], nodes=nodes,
    ), out_path)


def summod_to_file(summod: dict, settings: dict, out_path) -> None:
    """`summod_sweep` over the config's axes (activation, alpha, M, seed; steps), its Fourier
    complexity with `MeasureSettings(measures=("fourier",), **settings)` → netCDF."""
    _write(summod_sweep(
        activations=summod["activation"], alphas=summod["alpha"], Ms=summod["M"], seeds=summod["seed"],
        steps=summod["steps"], settings=MeasureSettings(measures=("fourier",), **settings),
    ), out_path)
