"""Figure steps of the ensembles and distillation study (rules figure_ensembles, figure_ensembles_mu):
read the summary table or the per-data .nc files, draw, save PNG + PDF."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from repatlas.plots.common import save_figure
from repatlas.plots.ensembles import (
    ensembles_dropping_figure,
    ensembles_methods_figure,
    ensembles_mu_figure,
    ensembles_size_figure,
)

FROM_SUMMARY = {"methods": ensembles_methods_figure, "mu": ensembles_mu_figure}
FROM_DATA = {"size": ensembles_size_figure, "dropping": ensembles_dropping_figure}


def ensembles_figure(figure: str, out_paths, *, summary_csv=None, data_paths=(), labels=(),
                     title: str | None = None) -> None:
    """One figure of the study: "methods" and "mu" from the summary CSV, "size" and "dropping"
    from the .nc files `data_paths`, keyed by `labels` (data name, or [data, regime] pairs)."""
    if figure in FROM_SUMMARY:
        fig = FROM_SUMMARY[figure](pd.read_csv(summary_csv), title=title)
    elif figure in FROM_DATA:
        keys = [tuple(k) if isinstance(k, list) else k for k in labels]
        datasets = {key: xr.load_dataset(path) for key, path in zip(keys, data_paths, strict=True)}
        fig = FROM_DATA[figure](datasets, title=title)
    else:
        raise ValueError(f"unknown ensembles figure {figure!r}; "
                         f"expected one of {sorted(FROM_SUMMARY | FROM_DATA)}")
    save_figure(fig, *out_paths)
