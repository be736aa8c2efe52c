"""Figures: seaborn grids of CKA heatmaps. Functions take data and return a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def cka_heatmap_grid(cells: pd.DataFrame, *, row: str, col: str, title: str | None = None,
                     xlabel: str = "layer", ylabel: str = "layer"):
    """A grid of CKA heatmaps: one facet per row of `cells`.

    `cells` has columns `row`, `col` and `cka` (an xarray.DataArray (layer_a, layer_b) each);
    layer_a runs up the y axis, layer_b along the x axis. All facets share one colour scale
    [0, 1] and one colourbar; layer 0 is at the bottom left, as in Nguyen et al.'s figures.
    """
    cells = cells.sort_values([row, col]).reset_index(drop=True)
    grid = sns.FacetGrid(cells, row=row, col=col, height=2.4, aspect=1.0, sharex=False,
                         sharey=False, despine=False)
    cbar_ax = grid.figure.add_axes([0.9, 0.3, 0.015, 0.4])

    def draw(data, **_):
        sns.heatmap(np.asarray(data["cka"].iloc[0])[::-1], ax=plt.gca(), vmin=0.0, vmax=1.0,
                    cmap="magma", square=True, cbar_ax=cbar_ax, xticklabels=False,
                    yticklabels=False)

    grid.map_dataframe(draw)
    grid.set_titles(template=f"{row} {{row_name}}, {col} {{col_name}}", size=9)
    grid.set_axis_labels(xlabel, ylabel)
    cbar_ax.set_ylabel("linear CKA (minibatch, unbiased)")
    # FacetGrid's own tight layout ignores the colourbar axes: make room for it afterwards.
    grid.figure.subplots_adjust(right=0.86)
    if title:
        grid.figure.suptitle(title, y=1.02)
    return grid.figure


def cka_grid_figure(nc_paths, cells, out_paths, *, row, col, title=None, xlabel="layer",
                    ylabel="layer") -> None:
    """The figure step: CKA .nc files + one facet label dict per file → heatmap grid files."""
    import xarray as xr

    rows = []
    for path, cell in zip(nc_paths, cells, strict=True):
        with xr.open_dataarray(path) as da:
            rows.append({**cell, "cka": da.load()})
    fig = cka_heatmap_grid(pd.DataFrame(rows), row=row, col=col, title=title, xlabel=xlabel,
                           ylabel=ylabel)
    save_figure(fig, *out_paths)


def save_figure(fig, *paths) -> None:
    """Save a figure to each path atomically (format from the suffix) and close it."""
    from repatlas.io import atomic_path

    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=150)
    plt.close(fig)

