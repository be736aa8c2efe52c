"""Figures of the Neural Redshift study, on hand-made Datasets with the documented structure;
expected plotted values are computed here from the planted inputs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from repatlas.plots import redshift as plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _sweep():
    rng = np.random.default_rng(0)
    dims = ("activation", "scale", "depth", "width", "variant", "seed")
    coords = {"activation": ["relu", "sin", "tanh"], "scale": [0.1, 1.0, 10.0], "depth": [1, 2],
              "width": [64], "variant": ["plain"], "seed": [0, 1]}
    shape = tuple(len(v) for v in coords.values())
    ds = xr.Dataset({m: (dims, rng.uniform(0, 0.5, shape)) for m in ("fourier", "lz")}, coords=coords)
    ds.fourier.attrs = {"description": "Fourier (paper convention), 8x8 grid", "unbiased_reference": 0.54}
    ds.lz.attrs = {"description": "Lempel-Ziv (LZ76), 8x8 grid", "unbiased_reference": 1.0}
    return ds


def test_heatmaps_show_seed_means_up_to_the_white_noise_level():
    ds = _sweep()
    fig = plots.complexity_heatmaps(ds, measure="fourier", select={"width": 64, "variant": "plain"})
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    for img, a in zip(images, ["relu", "sin", "tanh"]):
        expected = (ds.fourier.sel(activation=a).isel(width=0, variant=0).mean("seed")
                    .transpose("scale", "depth").values)
        np.testing.assert_allclose(np.asarray(img.get_array()), expected)
        assert img.get_clim() == (0, 0.54)


def test_lines_draw_each_measures_reference_and_name_its_grid():
    ds = _sweep()
    fig = plots.complexity_lines(ds, x="scale", hue="activation",
                                 select={"depth": 2, "width": 64, "variant": "plain"}, logx=True, title="t")
    by_title = {ax.get_title(): ax for ax in fig.axes}
    assert set(by_title) == {"Fourier (paper convention), 8x8 grid", "Lempel-Ziv (LZ76), 8x8 grid"}
    for title, ref in [("Fourier (paper convention), 8x8 grid", 0.54), ("Lempel-Ziv (LZ76), 8x8 grid", 1.0)]:
        dotted = [line for line in by_title[title].get_lines() if line.get_linestyle() == ":"]
        assert [tuple(line.get_ydata()) for line in dotted] == [(ref, ref)]


def test_summod_x_axis_is_the_targets_complexity():
    coords = {"activation": ["relu"], "alpha": [1.0, 10.0], "M": [10, 4], "seed": [0, 1]}
    dims = tuple(coords)
    acc = np.array([[[[0.9, 0.8], [0.5, 0.6]], [[0.7, 0.7], [0.8, 0.9]]]])
    ds = xr.Dataset({"test_accuracy": (dims, acc), "init_fourier_complexity": (dims, np.full(acc.shape, 0.2)),
                     "target_fourier_complexity": (("M",), [0.42, 0.55])}, coords=coords)
    fig = plots.summod_scatter(ds)
    ax = fig.axes[0]
    # one line per prefactor through (target complexity of M, seed-mean accuracy): M = 10 left of M = 4
    curves = {tuple(np.round(line.get_ydata(), 6)) for line in ax.get_lines()
              if list(line.get_xdata()) == [0.42, 0.55]}
    assert curves == {(0.85, 0.55), (0.7, 0.85)}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.42\nM=10", "0.55\nM=4"]
