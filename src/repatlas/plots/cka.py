"""CKA figures: grids of layer × layer CKA heatmaps (within a model, across seeds, across
architectures, across training-set sizes)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from repatlas.plots.common import (
    CKA_LABEL,
    colour_bar,
    facet_inches,
    layer_heatmap,
    layer_names,
    outline_blocks,
    title_width,
    wrap,
)


def cka_heatmap_grid(cells: pd.DataFrame, *, row: str, col: str, title: str | None = None,
                     xlabel: str = "layer", ylabel: str = "layer"):
    """A grid of CKA heatmaps: one facet per row of `cells`, rows of the grid = values of `row`,
    columns = values of `col` (sorted).

    `cells` has columns `row`, `col` and `cka` (an xarray.DataArray (layer_a, layer_b) each);
    layer_a runs up the y axis, layer_b along the x axis, layer 0 at the bottom left as in Nguyen
    et al.'s figures; every k-th layer is labelled with its name (from the DataArray's coords) or
    index. All facets share one colour scale [0, 1] and one labelled colour bar on the right.
    An optional column `blocks` ((start, end) layer-index pairs per facet, e.g. from
    `repatlas.blocks.model_blocks`) outlines the blocks in cyan and adds their count and the
    largest block's share of the layers to the facet title.
    """
    cells = cells.sort_values([row, col]).reset_index(drop=True)
    row_values, col_values = list(dict.fromkeys(cells[row])), list(dict.fromkeys(sorted(cells[col])))
    nrow, ncol = len(row_values), len(col_values)
    side = facet_inches(nrow, ncol, preferred=4.0 if nrow * ncol <= 2 else 2.8)  # a lone facet: larger
    width = max(side * ncol + 1.6, 6.0)  # one facet still gets a readable figure, not a thumbnail
    fig, axes = plt.subplots(nrow, ncol, squeeze=False, figsize=(width, side * nrow + 1.2),
                             layout="constrained")
    used = set()
    for _, cell in cells.iterrows():
        i, j = row_values.index(cell[row]), col_values.index(cell[col])
        ax = axes[i, j]
        used.add((i, j))
        da = cell["cka"]
        values = np.asarray(da)
        n_a, n_b = values.shape
        layer_heatmap(ax, values, x_names=layer_names(da, "layer_b", n_b),
                      y_names=layer_names(da, "layer_a", n_a))
        facet_title = f"{row} {cell[row]}, {col} {cell[col]}"
        if "blocks" in cells:
            spans = list(cell["blocks"])
            outline_blocks(ax, spans, n_a)
            largest = max((e - s + 1 for s, e in spans), default=0)
            facet_title += f"\n{len(spans)} block(s), largest {largest}/{n_a} layers"
        ax.set_title(wrap(facet_title, title_width(side, 8)), fontsize=8)
        ax.set_xlabel(xlabel if i == nrow - 1 else "", fontsize=8)
        ax.set_ylabel(ylabel if j == 0 else "", fontsize=8)
    for i in range(nrow):
        for j in range(ncol):
            if (i, j) not in used:
                axes[i, j].axis("off")
    colour_bar(fig, axes, label=f"{CKA_LABEL} (minibatch, unbiased)", shrink=min(0.8, 0.4 + 0.2 * nrow))
    if title:
        fig.suptitle(wrap(title, title_width(width, 11)), fontsize=11)
    return fig
