"""Figure steps of the Neural Redshift study (rules figure_redshift_lines, figure_redshift_heatmap,
figure_redshift_functions, figure_chebyshev_degrees, figure_summod): read the sweep .nc files (or
draw the random functions), plot, save PNG + PDF."""

from __future__ import annotations

import xarray as xr

from repatlas.plots.common import save_figure
from repatlas.plots.redshift import (
    chebyshev_degrees_figure,
    complexity_heatmaps,
    complexity_lines,
    function_panel,
    summod_scatter,
)
from repatlas.redshift import function_images


def lines_figure(sweep_path, out_paths, *, x: str, hue: str, col: str = "measure", select: dict | None = None,
                 logx: bool = False, title: str | None = None) -> None:
    """A complexity sweep .nc (repatlas.redshift) → `complexity_lines` at each out path."""
    with xr.open_dataset(sweep_path) as ds:
        fig = complexity_lines(ds.load(), x=x, hue=hue, col=col, select=select, logx=logx, title=title)
    save_figure(fig, *out_paths)


def heatmap_figure(sweep_path, out_paths, *, select: dict | None = None, title: str | None = None) -> None:
    """The magnitude × depth sweep .nc → Fourier `complexity_heatmaps` at each out path."""
    with xr.open_dataset(sweep_path) as ds:
        fig = complexity_heatmaps(ds.load(), measure="fourier", select=select, title=title)
    save_figure(fig, *out_paths)


def chebyshev_figure(path, out_paths, *, title: str | None = None) -> None:
    """The Chebyshev degree-sensitivity .nc → `chebyshev_degrees_figure` at each out path."""
    with xr.open_dataset(path) as ds:
        fig = chebyshev_degrees_figure(ds.load(), title=title)
    save_figure(fig, *out_paths)


def summod_figure(path, out_paths, *, title: str | None = None) -> None:
    """The sum-mod-M .nc → `summod_scatter` at each out path."""
    with xr.open_dataset(path) as ds:
        fig = summod_scatter(ds.load(), title=title)
    save_figure(fig, *out_paths)


def functions_figure(out_paths, *, grid_size: int, activations, scales, depth: int, endpoint: bool,
                     title: str | None = None) -> None:
    """Random MLPs' functions on a `grid_size`² grid (`repatlas.redshift.function_images`, one per
    activation × weight magnitude) → `function_panel` at each out path. Reads no file."""
    images = function_images(grid_size, activations=activations, scales=scales, depth=depth,
                             endpoint=endpoint)
    save_figure(function_panel(images, title=title), *out_paths)
