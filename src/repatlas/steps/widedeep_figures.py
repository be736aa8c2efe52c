"""Figure steps of the wide-vs-deep study (rules figure_widedeep, figure_widedeep_errors): read the
block table, first-PC, probe, pruning and error-analysis files, label blocks, draw, save PNG + PDF."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from repatlas.blocks import label_pruning_with_cka, model_blocks
from repatlas.plots.common import save_figure
from repatlas.plots.widedeep import blocks_figure, errors_figure, pca_figure, probes_figure, pruning_figure


def blocks_figure_to_file(table_csv, out_paths, *, title: str | None = None) -> None:
    """`block_table` CSV (repatlas.steps.widedeep.block_table_to_file) → `blocks_figure` at each out path."""
    save_figure(blocks_figure(pd.read_csv(table_csv), title=title), *out_paths)


def pca_figure_to_file(first_pc_paths, within_paths, cells, out_paths, *, threshold: float, min_length: int,
                       min_pc1_share: float = 0.5, title: str | None = None) -> None:
    """First-PC .nc files + the within-model CKA .nc of the same models (`cells[i]` = model i's
    depth, width, …) → `pca_figure` at each out path.

    Blocks are those of the block table and pruning (`repatlas.blocks.model_blocks`: high
    within-model CKA and mean PC1 share ≥ `min_pc1_share`); the CKA's layers must be the
    first-PC file's.
    """
    datasets, blocks = [], []
    for path, within in zip(first_pc_paths, within_paths, strict=True):
        datasets.append(xr.load_dataset(path))
        blocks.append(model_blocks(xr.load_dataarray(within), datasets[-1], threshold=threshold,
                                   min_length=min_length, min_pc1_share=min_pc1_share,
                                   source=f"{within} (for {path})"))
    save_figure(pca_figure(datasets, blocks, list(cells), title=title), *out_paths)


def probes_figure_to_file(paths, cells, out_paths, *, title: str | None = None) -> None:
    """Probe .nc files (repatlas.steps.widedeep.probes_to_file) + one cell dict each → `probes_figure`."""
    save_figure(probes_figure([xr.load_dataset(p) for p in paths], list(cells), title=title), *out_paths)


def pruning_figure_to_file(paths, within_paths, cells, out_paths, *, threshold: float, min_length: int,
                           first_pc_paths=None, min_pc1_share: float = 0.5, title: str | None = None) -> None:
    """Pruning .nc files (repatlas.steps.widedeep.pruning_to_file), each labelled inside / outside the
    blocks of its model's within-model CKA file (`repatlas.blocks.label_pruning_with_cka`; with
    `first_pc_paths`, one first-PC .nc per model, only PC1-dominated runs are blocks), + one
    cell dict each → `pruning_figure`."""
    first_pc = [None] * len(paths) if first_pc_paths is None else [xr.load_dataset(p) for p in first_pc_paths]
    labelled = [label_pruning_with_cka(xr.load_dataset(path), xr.load_dataarray(within), threshold=threshold,
                                       min_length=min_length, first_pc=pc, min_pc1_share=min_pc1_share)
                for path, within, pc in zip(paths, within_paths, first_pc, strict=True)]
    save_figure(pruning_figure(labelled, list(cells), title=title), *out_paths)


def errors_figure_to_file(path, out_paths, *, label_a: str, label_b: str, title: str | None = None) -> None:
    """Error-analysis .nc (repatlas.steps.widedeep.error_analysis_to_file) → `errors_figure`."""
    save_figure(errors_figure(xr.load_dataset(path), label_a=label_a, label_b=label_b, title=title),
                *out_paths)


def widedeep_figure(figure: str, data, out_paths, *, cells, within=None, first_pc=None, threshold: float,
                    min_length: int, min_pc1_share: float, title: str | None = None) -> None:
    """One figure of rule figure_widedeep: "blocks" (data = [block table CSV]), "pca" (data =
    first-PC files, `within` = their models' CKA files), "probes" (data = probe files) or
    "pruning" (data = pruning files, `within` and `first_pc` label the blocks)."""
    blocks = dict(threshold=threshold, min_length=min_length, min_pc1_share=min_pc1_share, title=title)
    if figure == "blocks":
        blocks_figure_to_file(data[0], out_paths, title=title)
    elif figure == "pca":
        pca_figure_to_file(data, within, cells, out_paths, **blocks)
    elif figure == "pruning":
        pruning_figure_to_file(data, within, cells, out_paths, first_pc_paths=first_pc, **blocks)
    elif figure == "probes":
        probes_figure_to_file(data, cells, out_paths, title=title)
    else:
        raise ValueError(f"unknown wide-vs-deep figure {figure!r}; expected blocks, pca, probes or pruning")
