"""Figure steps of the infinite-width study (rule figure_infinite): read one .nc, draw the figure
the rule names, save PNG + PDF."""

from __future__ import annotations

import xarray as xr

from repatlas.plots import infinite
from repatlas.plots.common import save_figure

# The rule names its figure by the builder's name (rules/common.smk, infinite_figures()).
FIGURES = {f.__name__: f for f in (infinite.cookbook_figure, infinite.ntk_convergence_figure,
                                   infinite.regression_figure, infinite.cookbook_gap_figure,
                                   infinite.conv_regression_figure)}


def infinite_figure(figure: str, data_path, out_paths, *, title: str | None = None) -> None:
    """The .nc of one infinite-width experiment → the builder `figure` (a key of `FIGURES`)."""
    if figure not in FIGURES:
        raise ValueError(f"unknown infinite-width figure {figure!r}; expected one of {sorted(FIGURES)}")
    with xr.open_dataset(data_path) as ds:
        fig = FIGURES[figure](ds.load(), title=title)
    save_figure(fig, *out_paths)
