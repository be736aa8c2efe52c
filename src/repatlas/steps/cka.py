"""Steps of rules/cka.smk: CKA of activation stores within a model, across models and across seeds."""

from __future__ import annotations

import sys

from repatlas.blocks import first_pc_analysis
from repatlas.cka_stores import cka_from_stores
from repatlas.io import write_netcdf


def cka_stores_to_file(path_a, out_path, path_b=None, **options) -> None:
    """The CKA step of the pipeline: one or two activation stores in, a `.nc` DataArray out."""
    write_netcdf(cka_from_stores(path_a, path_b, **options), out_path)


def first_pc_to_file(store_path, out_path, **options) -> None:
    """`first_pc_analysis` of an activation store, written to a netCDF Dataset at `out_path`."""
    write_netcdf(first_pc_analysis(store_path, **options), out_path)


def cka_within(store_path, out_path, *, cka: dict, threads: int, scheduler=None, pca_path=None,
               pca_examples: int | None = None) -> None:
    """Within-model CKA of one store; with `pca_path` also its first-PC analysis (same store, one
    job: a store read once). `cka` holds cka_from_stores' estimator options (its `window` is also
    the first-PC analysis's read window)."""
    cka_stores_to_file(store_path, out_path, threads=threads, scheduler=scheduler, **cka)
    if pca_path is not None:
        first_pc_to_file(store_path, pca_path, examples=pca_examples, window=cka["window"], threads=threads)


def cka_across_seeds(stores, pairs, out_paths, *, cka: dict, threads: int, scheduler=None) -> None:
    """Cross-model CKA of each (i, j) pair of `stores` (indices), the k-th pair to `out_paths[k]`."""
    for (i, j), out in zip(pairs, out_paths):
        print(f"{stores[i]} vs {stores[j]} -> {out}", file=sys.stderr)
        cka_stores_to_file(stores[i], out, stores[j], threads=threads, scheduler=scheduler, **cka)
