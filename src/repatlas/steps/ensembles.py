"""Steps of rules/ensembles.smk: the methods and unit-dropping experiments of one setting, and the
summary table of all of them."""

from __future__ import annotations

import sys

import xarray as xr

from repatlas.data import load_classification
from repatlas.ensembles import run_dropping, run_methods, summary_table
from repatlas.io import atomic_path, write_netcdf
from repatlas.threads import pinned_threads


def _study_data(input_files: dict, settings: dict):
    """The study dataset's (x_train, y_train, x_test, y_test) for an MLP setting (`input_files`:
    "full", "subset"); None for the multi-view data, which is generated, not read."""
    if settings.get("mu") is not None:
        return None
    return load_classification(input_files["full"], input_files["subset"])


def ensembles_methods(input_files: dict, settings: dict, regime: str, out_path, *, threads: int) -> None:
    """`repatlas.ensembles.run_methods` of one setting and regime → netCDF."""
    with pinned_threads(threads):
        ds = run_methods(_study_data(input_files, settings), settings, regime)
    print(ds, file=sys.stderr)
    write_netcdf(ds, out_path)


def ensembles_dropping(input_files: dict, settings: dict, fractions, out_path, *, threads: int) -> None:
    """`repatlas.ensembles.run_dropping` of one setting → netCDF."""
    with pinned_threads(threads):
        ds = run_dropping(_study_data(input_files, settings), settings, fractions)
    print(ds, file=sys.stderr)
    write_netcdf(ds, out_path)


def ensembles_summary(labels, paths, out_csv) -> None:
    """`repatlas.ensembles.summary_table` of the methods files at `paths`, the k-th keyed by the
    tuple `labels[k]` → CSV."""
    datasets = {tuple(key): xr.open_dataset(path).load() for key, path in zip(labels, paths, strict=True)}
    table = summary_table(datasets)
    print(table, file=sys.stderr)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
