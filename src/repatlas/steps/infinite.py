"""Steps of rules/infinite.smk: the cookbook experiments, NTK convergence, kernel regression on the
study data (fully connected and convolutional), and the finite-width gap table."""

from __future__ import annotations

import sys

import xarray as xr

from repatlas.data import load_npz, probe_set
from repatlas.infinite import (
    conv_regression,
    cookbook_experiment,
    cookbook_gap,
    cookbook_gap_table,
    ntk_convergence,
    pooled_images,
    regression_experiment,
)
from repatlas.io import write_netcdf
from repatlas.threads import pinned_threads


def _write(ds: xr.Dataset, out_path, shown: xr.Dataset | None = None) -> None:
    print(ds if shown is None else shown, file=sys.stderr)
    write_netcdf(ds, out_path)


def infinite_cookbook(architecture: str, cookbook: dict, out_path, *, threads: int) -> None:
    """`cookbook_experiment` of one architecture → netCDF."""
    with pinned_threads(threads):
        ds = cookbook_experiment(architecture=architecture, **cookbook)
    _write(ds, out_path)


def infinite_cookbook_gap(width: int, pairs, diag_reg: float, cookbook: dict, out_path, *,
                          threads: int) -> None:
    """`cookbook_gap` at one width → netCDF."""
    with pinned_threads(threads):
        ds = cookbook_gap(width=int(width), pairs=pairs, diag_reg=diag_reg, **cookbook)
    _write(ds, out_path)


def infinite_cookbook_gap_table(width_paths, out_path) -> None:
    """`cookbook_gap_table` of the per-width gap files → netCDF."""
    _write(cookbook_gap_table([xr.open_dataset(path).load() for path in width_paths]), out_path)


def infinite_ntk_convergence(ntk: dict, out_path, *, threads: int) -> None:
    """`ntk_convergence` → netCDF."""
    with pinned_threads(threads):
        ds = ntk_convergence(**ntk)
    _write(ds, out_path)


def infinite_regression(full_path, subset_path, out_path, *, probe_size: int, regression: dict,
                        threads: int) -> None:
    """`regression_experiment`: trained on the subset, tested on the probe set; pixels in [0, 1],
    flattened (the kernels' input layer is x·x'/d) → netCDF."""
    with pinned_threads(threads):
        full, _ = load_npz(full_path)
        train, _ = load_npz(subset_path)
        x_test, y_test, _ = probe_set(full, probe_size)
        ds = regression_experiment(train["x"] / 255.0, train["y"], x_test / 255.0, y_test, **regression)
    _write(ds, out_path)


def infinite_conv_regression(full_path, subset_path, out_path, *, dataset: str, pool: int, n_test: int,
                             conv: dict, threads: int) -> None:
    """`conv_regression` on `pool`-pooled images (subset → the first `n_test` probe examples);
    attrs name the dataset and the pooling → netCDF (the per-example `correct` left out of the log)."""
    full, _ = load_npz(full_path)
    train, _ = load_npz(subset_path)
    x_test, y_test, _ = probe_set(full, n_test)
    ds = conv_regression(pooled_images(train["x"], pool), train["y"], pooled_images(x_test, pool), y_test,
                         **conv, threads=threads)
    ds.attrs.update(dataset=dataset, pool=pool)
    _write(ds, out_path, ds.drop_vars("correct"))
