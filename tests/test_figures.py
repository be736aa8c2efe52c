"""Figures as a reader gets them: sizes within bounds, layer ticks on every heatmap, one labelled
colour bar per shared scale, PNG and PDF for each.

The fast tests draw hand-made matrices; the `workflow` tests redraw every figure of the ci-tiny
run (`tiny_run`, conftest.py) with its figure step (tests/figure_calls.py) and check the files
the workflow wrote.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from figure_calls import figure_calls
from matplotlib.collections import QuadMesh
from matplotlib.image import imread

from repatlas.plots.cka import cka_heatmap_grid
from repatlas.plots.common import DPI, layer_heatmap, layer_ticks, save_figure, tick_text
from repatlas.plots.infinite import conv_regression_figure, cookbook_gap_figure
from repatlas.steps import (
    cka_figures,
    ensembles_figures,
    infinite_figures,
    mitosis_ensemble_figures,
    mitosis_figures,
    redshift_figures,
    widedeep_figures,
)

MAX_PX = 2000  # long side at DPI (issue 21: unless a grid needs more; none of ci-tiny's does)
MIN_PX = 450  # short side: smaller is a thumbnail (cka_across_archs was 404 px)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def cka_da(n, names=None):
    names = names or [f"layer{i}" for i in range(n)]
    k = np.fromfunction(lambda i, j: 1 - abs(i - j) / n, (n, n))
    return xr.DataArray(k, dims=("layer_a", "layer_b"), coords={"layer_a": names, "layer_b": names})


def heatmap_axes(fig):
    """Axes showing a matrix (seaborn's QuadMesh or an image), colour bars excepted."""
    return [ax for ax in fig.axes if (ax.images or any(isinstance(c, QuadMesh) for c in ax.collections))
            and ax.get_label() != "<colorbar>"]


def tick_texts(ax, axis):
    return [t.get_text() for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())]


def labelled(ax, axis) -> bool:
    """Tick labels with text on `ax`, or on an axes sharing this axis (a shared y axis is labelled
    on the first column only)."""
    shared = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    return any(t for other in shared.get_siblings(ax) for t in tick_texts(other, axis))


# ----------------------------------------------------------------------------- fast: common helpers


@pytest.mark.parametrize("n", [1, 2, 5, 8, 9, 14, 30, 110])
def test_layer_ticks_label_every_kth_layer_and_never_crowd(n):
    ticks = layer_ticks(n)
    assert ticks[0] == 0 and len(ticks) <= 9 and (np.diff(ticks) > 0).all() and ticks[-1] <= n - 1
    steps = set(np.diff(ticks[:-1]).tolist()) if len(ticks) > 2 else set()
    assert len(steps) <= 1  # a constant step k, apart from the appended last layer
    if n <= 8:
        assert ticks.tolist() == list(range(n))  # few layers: every one


def test_tick_text_uses_names_only_when_short():
    assert tick_text(["stem", "block1", "pool"], [0, 2]) == ["stem", "pool"]
    assert tick_text(["stage1.block0.conv", "pool"], [0, 1]) == ["0", "1"]


def test_layer_heatmap_puts_layer_zero_bottom_left_with_named_ticks():
    names = ["stem"] + [f"block{i}" for i in range(1, 13)] + ["pool"]
    fig, ax = plt.subplots()
    values = cka_da(14, names).values
    mesh = layer_heatmap(ax, values, x_names=names, y_names=names)
    np.testing.assert_array_equal(mesh.get_array().reshape(14, 14), values[::-1])
    ticks = layer_ticks(14)
    assert tick_texts(ax, "x") == [names[i] for i in ticks]
    assert tick_texts(ax, "y") == [names[i] for i in ticks]
    # tick i sits on the centre of layer i's column, and of its row counted from the bottom
    np.testing.assert_allclose(ax.get_xticks(), ticks + 0.5)
    np.testing.assert_allclose(ax.get_yticks(), 14 - 1 - ticks + 0.5)


def test_cka_grid_one_colour_bar_and_no_thumbnail(tmp_path):
    cells = pd.DataFrame([{"seed": 0, "models": "d14-w1 (A) vs d8-w2 (B)", "cka": cka_da(8)}])
    fig = cka_heatmap_grid(cells, row="seed", col="models", title="cross-architecture CKA")
    (ax,) = heatmap_axes(fig)
    assert all(tick_texts(ax, "x")) and all(tick_texts(ax, "y"))
    bars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "CKA" in bars[0].get_ylabel()
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    h, w = imread(tmp_path / "f.png").shape[:2]
    assert MIN_PX <= min(h, w) and max(h, w) <= MAX_PX
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"


def test_cka_grid_facets_fit_the_size_limit():
    cells = pd.DataFrame([{"depth": d, "width": w, "cka": cka_da(2 * d)}
                          for d in (4, 7, 13) for w in (1, 2, 4, 8)])
    fig = cka_heatmap_grid(cells, row="depth", col="width", title="within-model CKA " * 12)
    assert max(fig.get_size_inches()) * DPI <= MAX_PX
    assert len(heatmap_axes(fig)) == 12
    assert "\n" in fig.get_suptitle()  # a long title is wrapped, not cut off


def test_cookbook_gap_bound_marker_is_in_the_legend():
    """A width whose debiased gap² came out ≤ 0 is drawn as a +1 SE upper bound, and the legend says so
    (configs/infinite.yaml at width 2048 is such a case)."""
    w = np.array([128, 256, 512])
    g2, g2_se = np.array([1e-4, 2.5e-5, -1e-6]), np.array([2e-5, 1e-5, 4e-6])
    ds = xr.Dataset({"gap": ("width", np.sqrt(np.clip(g2, 0, None))), "gap2": ("width", g2),
                     "gap2_se": ("width", g2_se), "noise_rms": ("width", [3e-3, 2e-3, 1e-3])},
                    coords={"width": w})
    ax = cookbook_gap_figure(ds).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any("upper" in t or "bound" in t for t in labels)
    (bound,) = [ln for ln in ax.get_lines() if ln.get_marker() == "v"]
    np.testing.assert_allclose(bound.get_xydata(), [[512, np.sqrt(3e-6)]])  # sqrt(gap² + SE)


def test_conv_regression_axes_label_the_training_sizes():
    """Log-scaled size axes are labelled at the swept sizes in plain numbers (they read 6×10¹)."""
    n = [50, 100, 200, 300]
    acc = xr.DataArray(np.full((2, 2, 4), 0.7), dims=("architecture", "kernel", "n_train"),
                       coords={"architecture": ["fc", "conv"], "kernel": ["nngp", "ntk"], "n_train": n})
    diff = acc.isel(architecture=0, drop=True) * 0
    ds = xr.Dataset({"accuracy": acc, "conv_minus_fc": diff, "conv_minus_fc_se": diff + 0.01})
    fig = conv_regression_figure(ds)
    fig.canvas.draw()
    for ax in fig.axes:
        assert tick_texts(ax, "x") == ["50", "100", "200", "300"]


# ----------------------------------------------------------------------------- the ci-tiny run

STEPS = (cka_figures, widedeep_figures, redshift_figures, infinite_figures, mitosis_figures,
         mitosis_ensemble_figures, ensembles_figures)


@pytest.fixture(scope="module")
def tiny_figures(tiny_run, tmp_path_factory):
    """Every figure of the ci-tiny run redrawn by its step: name → (Figure, PNG it saved)."""
    workdir, _ = tiny_run
    out = tmp_path_factory.mktemp("figures")
    drawn, saved = {}, []

    def keep(fig, *paths):
        saved.append(fig)
        fig.savefig(paths[0], bbox_inches="tight", dpi=DPI)  # as save_figure does, but kept open

    with pytest.MonkeyPatch.context() as mp:
        for module in STEPS:
            mp.setattr(module, "save_figure", keep)
        for name, draw in figure_calls(workdir).items():
            draw([out / f"{name}.png", out / f"{name}.pdf"])
            drawn[name] = (saved.pop(), out / f"{name}.png")
    yield drawn
    plt.close("all")


@pytest.mark.workflow
def test_every_figure_of_the_run_is_redrawn(tiny_run, tiny_figures):
    workdir, _ = tiny_run
    written = {p.stem for p in (workdir / "results/figures").glob("*.png")}
    assert written == set(tiny_figures)


@pytest.mark.workflow
def test_figure_files_are_png_and_pdf_within_size_bounds(tiny_run):
    workdir, _ = tiny_run
    pngs = sorted((workdir / "results/figures").glob("*.png"))
    assert len(pngs) >= 30
    for png in pngs:
        h, w = imread(png).shape[:2]
        assert max(h, w) <= MAX_PX and min(h, w) >= MIN_PX, (png.name, w, h)
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", png.name


@pytest.mark.workflow
def test_redrawn_figures_have_sizes_and_heatmap_ticks(tiny_figures):
    heatmapped = set()
    for name, (fig, png) in tiny_figures.items():
        w, h = fig.get_size_inches() * DPI
        assert max(w, h) <= MAX_PX, (name, w, h)
        h_px, w_px = imread(png).shape[:2]
        assert max(h_px, w_px) <= MAX_PX and min(h_px, w_px) >= MIN_PX, (name, w_px, h_px)
        # images of f(x, y), not matrices
        for ax in heatmap_axes(fig) if name != "redshift_functions" else ():
            heatmapped.add(name)
            assert labelled(ax, "x") and labelled(ax, "y"), (name, ax.get_title())
        if name.startswith("cka_") or name == "widedeep_pca":  # one labelled colour bar per figure
            bars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
            assert len(bars) == 1 and "CKA" in (bars[0].get_ylabel() + bars[0].get_xlabel()), name
    assert {"cka_within_grid", "cka_across_seeds", "cka_across_archs", "cka_data_grid", "widedeep_pca",
            "redshift_heatmap"} <= heatmapped


@pytest.mark.workflow
def test_probe_axis_shows_the_data(tiny_figures):
    fig, _ = tiny_figures["widedeep_probes"]
    lo, hi = fig.axes[0].get_ylim()
    curves = np.concatenate([line.get_ydata() for ax in fig.axes for line in ax.get_lines()
                             if line.get_label().startswith("width")])
    curves = curves[np.isfinite(curves)]
    assert lo <= curves.min() and curves.max() <= hi
    assert hi - lo < 1.5 * (curves.max() - curves.min()) + 0.1  # not a 0–1 axis around a narrow range
