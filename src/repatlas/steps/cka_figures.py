"""Figure steps of the CKA grids (rules figure_cka_within_grid, figure_cka_across_seeds,
figure_cka_across_archs, figure_cka_data_grid): read the CKA .nc files, draw, save PNG + PDF."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from repatlas.blocks import model_blocks
from repatlas.plots.cka import cka_heatmap_grid
from repatlas.plots.common import save_figure


def cka_grid_figure(nc_paths, cells, out_paths, *, row, col, title=None, xlabel="layer",
                    ylabel="layer", first_pc_paths=None, threshold: float = 0.9, min_length: int = 3,
                    min_pc1_share: float = 0.5) -> None:
    """CKA .nc files + one facet label dict per file → `cka_heatmap_grid` at each out path.

    With `first_pc_paths` (one first-PC .nc per within-model CKA file) each facet outlines the
    blocks of `repatlas.blocks.model_blocks` (the block table's) and counts them in its title.
    """
    first_pc = [None] * len(nc_paths) if first_pc_paths is None else list(first_pc_paths)
    rows = []
    for path, cell, pc_path in zip(nc_paths, cells, first_pc, strict=True):
        with xr.open_dataarray(path) as da:
            rows.append({**cell, "cka": da.load()})
        if pc_path is not None:
            rows[-1]["blocks"] = model_blocks(rows[-1]["cka"], xr.load_dataset(pc_path), threshold=threshold,
                                              min_length=min_length, min_pc1_share=min_pc1_share,
                                              source=f"{path} (for {pc_path})")
    fig = cka_heatmap_grid(pd.DataFrame(rows), row=row, col=col, title=title, xlabel=xlabel, ylabel=ylabel)
    save_figure(fig, *out_paths)
