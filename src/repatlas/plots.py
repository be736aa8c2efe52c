"""Figures: seaborn grids of CKA heatmaps. Functions take data and return a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def cka_heatmap_grid(cells: pd.DataFrame, *, row: str, col: str, title: str | None = None):
    """A grid of CKA heatmaps: one facet per row of `cells`.

    `cells` has columns `row`, `col` and `cka` (an xarray.DataArray (layer_a, layer_b) each).
    All facets share one colour scale [0, 1] and one colourbar; layer 0 is at the bottom left,
    as in Nguyen et al.'s figures.
    """
    cells = cells.sort_values([row, col]).reset_index(drop=True)
    cells["_cell"] = np.arange(len(cells))
    grid = sns.FacetGrid(
        cells, row=row, col=col, height=2.4, aspect=1.0, sharex=False, sharey=False,
        despine=False,
    )
    grid.figure.subplots_adjust(right=0.86)
    cbar_ax = grid.figure.add_axes([0.89, 0.25, 0.02, 0.5])

    def draw(data, **_):
        matrix = data["cka"].iloc[0]
        sns.heatmap(
            np.asarray(matrix)[::-1], ax=plt.gca(), vmin=0.0, vmax=1.0, cmap="magma",
            square=True, cbar_ax=cbar_ax, xticklabels=False, yticklabels=False,
        )

    grid.map_dataframe(draw)
    grid.set_titles(template=f"{row} {{row_name}}, {col} {{col_name}}")
    grid.set_axis_labels("layer", "layer")
    cbar_ax.set_ylabel("linear CKA (minibatch, unbiased)")
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure


def save_figure(fig, *paths) -> None:
    """Save a figure to each path atomically (format from the suffix) and close it."""
    from repatlas.io import atomic_path

    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=150)
    plt.close(fig)


def cka_within_grid_figure(nc_paths, cells, out_paths, *, title=None) -> None:
    """The figure step: within-model CKA files + their (depth, width) → heatmap grid files."""
    import xarray as xr

    rows = []
    for path, cell in zip(nc_paths, cells, strict=True):
        with xr.open_dataarray(path) as da:
            rows.append({**cell, "cka": da.load()})
    fig = cka_heatmap_grid(pd.DataFrame(rows), row="depth", col="width", title=title)
    save_figure(fig, *out_paths)
