"""Figures of the wide-vs-deep analyses: blocks, first PC, probes, pruning, per-example errors.

Inputs come from the real library functions where cheap (block_table, first_pc_analysis,
error_analysis) or are hand-made Datasets with the documented structure; expected plotted values
are computed here from the planted inputs, not read back from the library.
"""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_rgb
from synthetic_cka import heatmap

from repatlas import activations
from repatlas.blocks import block_table, first_pc_analysis
from repatlas.errors import error_analysis
from repatlas.io import write_netcdf
from repatlas.plots import widedeep as plots
from repatlas.plots.common import save_figure
from repatlas.steps import cka_figures, widedeep_figures
from repatlas.steps.widedeep import block_table_to_file


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def layer_da(values):
    names = [f"layer{i}" for i in range(len(values))]
    return xr.DataArray(values, dims=("layer_a", "layer_b"), coords={"layer_a": names, "layer_b": names})


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


# ----------------------------------------------------------------------------- blocks


# (n, depth, width) -> planted largest block per seed; n_layers = 2 * depth + 2
PLANTED = {
    (100, 2, 1): [(1, 3), (1, 4)],
    (100, 2, 4): [(0, 4), (0, 4)],
    (100, 4, 1): [(2, 4), (2, 4)],
    (100, 4, 4): [(1, 8), (0, 8)],
    (400, 2, 1): [None, None],  # no block at all
    (400, 2, 4): [(1, 3), (1, 3)],
    (400, 4, 1): [None, (3, 5)],
    (400, 4, 4): [(0, 4), (2, 7)],
}
INSIDE_CKA, OUTSIDE_CKA, ONE_SIDED_CKA = 0.2, 0.8, 0.5


def planted_table(*, seeds=True):
    within, pairs = {}, []
    for (n, depth, width), spans in PLANTED.items():
        n_layers = 2 * depth + 2
        ids = [f"digits-n{n}-resnet-d{depth}-w{width}-s{s}" for s in range(len(spans))]
        masks = []
        for model_id, span in zip(ids, spans):
            within[model_id] = layer_da(heatmap(n_layers, [span] if span else []))
            mask = np.zeros(n_layers, bool)
            if span:
                mask[span[0] : span[1] + 1] = True
            masks.append(mask)
        # diagonal: INSIDE where both seeds are in a block, OUTSIDE where neither, else ONE_SIDED
        both, neither = masks[0] & masks[1], ~masks[0] & ~masks[1]
        diagonal = np.where(both, INSIDE_CKA, np.where(neither, OUTSIDE_CKA, ONE_SIDED_CKA))
        across = np.full((n_layers, n_layers), 0.1)
        np.fill_diagonal(across, diagonal)
        pairs.append((ids[0], ids[1], layer_da(across)))
    return block_table(within, threshold=0.9, min_length=3, seed_pairs=pairs if seeds else ())


def expected_fraction(n, depth, width):
    n_layers = 2 * depth + 2
    return np.mean([(s[1] - s[0] + 1) / n_layers if s else 0.0 for s in PLANTED[(n, depth, width)]])


def test_blocks_figure_plots_largest_block_fraction_per_n_and_seed_similarity():
    fig = plots.blocks_figure(planted_table(), title="planted")
    assert len(fig.axes) == 3  # n = 100, n = 400, seed-similarity panel
    for ax, n in zip(fig.axes[:2], (100, 400)):
        assert ax.get_xscale() == "log"
        np.testing.assert_array_equal(ax.get_xticks(), [1, 4])
        lines = lines_by_label(ax)
        assert set(lines) == {"depth 2", "depth 4"}
        for depth in (2, 4):
            np.testing.assert_array_equal(lines[f"depth {depth}"].get_xdata(), [1, 4])
            np.testing.assert_allclose(lines[f"depth {depth}"].get_ydata(),
                                       [expected_fraction(n, depth, w) for w in (1, 4)])
        seed_points = [c for c in ax.collections if isinstance(c, PathCollection)]
        ys = np.sort(np.concatenate([c.get_offsets()[:, 1] for c in seed_points]))
        per_seed = [(s[1] - s[0] + 1) / (2 * d + 2) if s else 0.0
                    for (nn, d, w), spans in PLANTED.items() if nn == n for s in spans]
        np.testing.assert_allclose(ys, np.sort(per_seed))
    seeds_ax = fig.axes[2]
    # seaborn leaves an empty (zero or NaN) bar for a missing value; no planted CKA is 0
    heights = np.array([p.get_height() for p in seeds_ax.patches if p.get_height() > 0])
    # inside is undefined for the architectures where the seeds share no block layer
    shared = [(n, d, w) for (n, d, w), spans in PLANTED.items()
              if spans[0] and spans[1] and max(spans[0][0], spans[1][0]) <= min(spans[0][1], spans[1][1])]
    assert sorted(heights.round(12)) == sorted([INSIDE_CKA] * len(shared) + [OUTSIDE_CKA] * len(PLANTED))
    assert [t.get_text() for t in seeds_ax.get_xticklabels()] == [f"d{d}-w{w}" for (n, d, w) in PLANTED]


def test_blocks_figure_without_seed_similarity():
    table = planted_table(seeds=False)
    assert len(plots.blocks_figure(table).axes) == 2
    nan_seeds = planted_table().assign(seed_cka_inside=np.nan, seed_cka_outside=np.nan)
    assert len(plots.blocks_figure(nan_seeds).axes) == 2  # all NaN: no seed panel


def test_blocks_figure_one_model_without_blocks():
    table = block_table({"digits-n50-mlp-d3-w8-s0": layer_da(heatmap(4, []))}, threshold=0.9, min_length=3)
    fig = plots.blocks_figure(table)
    (ax,) = fig.axes
    line = lines_by_label(ax)["depth 3"]
    np.testing.assert_array_equal(line.get_xdata(), [8])
    np.testing.assert_array_equal(line.get_ydata(), [0.0])
    left, right = ax.get_xlim()
    assert left < 8 < right


def test_blocks_figure_bad_table():
    with pytest.raises(KeyError, match="largest_length"):
        plots.blocks_figure(planted_table().drop(columns="largest_length"))
    with pytest.raises(ValueError, match="no rows"):
        plots.blocks_figure(planted_table().iloc[:0])


# ----------------------------------------------------------------------------- first principal component


def write_store(path, layers: dict):
    """An activation store in dump_activations' layout."""
    group = zarr.open_group(store=str(path), mode="w", zarr_format=3)
    for name, values in layers.items():
        arr = group.create_array(name, shape=values.shape, chunks=(16, values.shape[1]), dtype="float32",
                                 dimension_names=["example", activations.unit_dim(name)])
        arr[:] = values.astype(np.float32)
    group.attrs.update({"layers": list(layers), "n_examples": len(next(iter(layers.values())))})
    return path


def pc1_ratio(x):
    s = np.linalg.svd(np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(0), compute_uv=False)
    return s[0] ** 2 / (s**2).sum()


@pytest.fixture
def first_pc_store(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 1))
    layers = {
        "layer0": rng.standard_normal((40, 6)),
        "layer1": base @ rng.standard_normal((1, 8)) + 0.3 * rng.standard_normal((40, 8)),
        "layer2": base @ rng.standard_normal((1, 5)) + 0.3 * rng.standard_normal((40, 5)),
        "layer3": base @ rng.standard_normal((1, 4)),  # rank one: nothing left without PC1 (NaN)
    }
    return write_store(tmp_path / "acts.zarr", layers), layers


def test_pca_figure_splits_cka_heatmaps_and_draws_pc1_share_lines(first_pc_store):
    path, layers = first_pc_store
    ds = first_pc_analysis(path)
    assert np.isnan(ds.cka_without_pc1.values).any()
    # two widths at depth 1 (with blocks / without), one width at depth 3: 2 rows × (2 heatmaps + lines)
    cells = [{"depth": 1, "width": 2}, {"depth": 1, "width": 8}, {"depth": 3, "width": 2}]
    planted = [[(0, 0), (1, 3)], [], [(1, 2)]]
    fig = plots.pca_figure([ds, ds, ds], planted, cells, title="pc1")
    assert len(fig.axes) == 2 * 3 + 1  # + the one shared colour bar
    heat = {(0, 0): fig.axes[0], (0, 1): fig.axes[1], (1, 0): fig.axes[3]}
    assert not fig.axes[4].axison  # no model at depth 3, width 8: an empty slot
    # above the diagonal (layer_a deeper than layer_b) CKA, on and below it CKA without PC1;
    # built here by loops, drawn upside down (layer 0 at the bottom left)
    k, k0 = ds.cka.values, ds.cka_without_pc1.values
    split = np.array([[k[i, j] if i > j else k0[i, j] for j in range(4)] for i in range(4)])
    expected_ratio = [pc1_ratio(x.astype(np.float32)) for x in layers.values()]  # as stored
    for (r, c), spans in zip(heat, planted):
        ax = heat[(r, c)]
        np.testing.assert_allclose(ax.collections[0].get_array().reshape(4, 4), split[::-1])
        outlines = [p for p in ax.patches if p.get_gid() == "block"]  # layer i is drawn at height 3 − i
        assert sorted((p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in outlines) == \
            sorted((s, 3 - e, e - s + 1, e - s + 1) for s, e in spans)
        assert [t.get_text() for t in ax.get_xticklabels()] == list(layers)  # short names: shown as they are
    depth1_lines, depth3_lines = fig.axes[2], fig.axes[5]
    for ax, spans_list in ((depth1_lines, planted[:2]), (depth3_lines, planted[2:])):
        assert len(ax.get_lines()) == len(spans_list)
        for line, spans in zip(ax.get_lines(), spans_list):
            np.testing.assert_allclose(line.get_ydata(), expected_ratio, rtol=1e-9)
            inside = [i for s, e in spans for i in range(s, e + 1)]
            filled = [c for c in ax.collections if c.get_gid() == "block"][spans_list.index(spans)]
            np.testing.assert_array_equal(filled.get_offsets()[:, 0], inside)
    labels = [t.get_text() for t in depth1_lines.get_legend().get_texts()]
    assert labels == [f"w2: {np.mean(expected_ratio):.2f}, all in blocks", "w8: no block"]
    r3 = np.asarray(expected_ratio)
    assert [t.get_text() for t in depth3_lines.get_legend().get_texts()] == \
        [f"w2: {r3[1:3].mean():.2f} in / {r3[[0, 3]].mean():.2f} out"]
    assert fig.get_suptitle() == "pc1"


def test_pca_figure_bad_input(first_pc_store):
    ds = first_pc_analysis(first_pc_store[0])
    cell = {"depth": 1, "width": 2}
    with pytest.raises(ValueError, match="pair up"):
        plots.pca_figure([ds], [[], []], [cell])
    with pytest.raises(ValueError, match="blocks\\[0\\]"):
        plots.pca_figure([ds], [[(2, 4)]], [cell])  # only 4 layers
    with pytest.raises(KeyError, match="pc1_ratio"):
        plots.pca_figure([ds.drop_vars("pc1_ratio")], [[]], [cell])
    with pytest.raises(ValueError, match="one model per"):
        plots.pca_figure([ds, ds], [[], []], [cell, cell])


# ----------------------------------------------------------------------------- probes


def probe_ds(accuracy, n_classes=10):
    layers = len(accuracy)
    return xr.Dataset(
        {"test_accuracy": ("layer", np.asarray(accuracy, float)),
         "train_accuracy": ("layer", np.ones(layers))},
        coords={"layer": [f"layer{i}" for i in range(layers)],
                "relative_depth": ("layer", np.arange(layers) / max(layers - 1, 1))},
        attrs={"n_classes": n_classes},
    )


def probe_inputs(ns=(100,), seeds=3):
    rng = np.random.default_rng(0)
    datasets, cells, raw = [], [], {}
    for n in ns:
        for depth in (2, 4):
            for width in (1, 8):
                acc = rng.uniform(0.1, 1.0, (seeds, depth + 2))
                raw[(n, depth, width)] = acc
                for seed in range(seeds):
                    datasets.append(probe_ds(acc[seed]))
                    cells.append({"depth": depth, "width": width, "n": n, "seed": seed})
    return datasets, cells, raw


def test_probes_figure_mean_and_band_over_seeds():
    datasets, cells, raw = probe_inputs()
    fig = plots.probes_figure(datasets, cells)
    assert len(fig.axes) == 2  # one column per depth, one row (one n)
    for ax, depth in zip(fig.axes, (2, 4)):
        lines = lines_by_label(ax)
        assert set(lines) == {"width 1", "width 8", "chance"}
        np.testing.assert_allclose(lines["chance"].get_ydata(), [0.1, 0.1])
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        for width in (1, 8):
            acc = raw[(100, depth, width)]
            np.testing.assert_allclose(lines[f"width {width}"].get_xdata(), np.linspace(0, 1, depth + 2))
            np.testing.assert_allclose(lines[f"width {width}"].get_ydata(), acc.mean(0))
        tops = sorted(b.get_paths()[0].vertices[:, 1].max() for b in bands)
        expected = sorted((raw[(100, depth, w)].mean(0) + raw[(100, depth, w)].std(0, ddof=1)).max()
                          for w in (1, 8))
        np.testing.assert_allclose(tops, expected)


def test_probes_figure_rows_per_n_and_single_seed():
    datasets, cells, _ = probe_inputs(ns=(100, 400))
    assert len(plots.probes_figure(datasets, cells).axes) == 4
    one = plots.probes_figure([probe_ds([0.2, 0.9])], [{"depth": 1, "width": 2, "n": 10, "seed": 0}])
    (ax,) = one.axes
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]  # no band from one seed
    np.testing.assert_allclose(lines_by_label(ax)["width 2"].get_ydata(), [0.2, 0.9])


def test_probes_figure_input_line_and_ceiling():
    probed = probe_ds([0.5, 0.9])
    probed.attrs.update(status="probed", input_test_accuracy=0.8)
    ceiling = probe_ds([np.nan, np.nan])
    ceiling.attrs.update(status="ceiling", input_test_accuracy=0.96)
    cells = [{"depth": 1, "width": 2, "n": 10, "seed": 0}, {"depth": 2, "width": 2, "n": 10, "seed": 0}]
    left, right = plots.probes_figure([probed, ceiling], cells).axes
    np.testing.assert_allclose(lines_by_label(left)["input probe"].get_ydata(), [0.8, 0.8])
    assert not [t for t in left.texts if "ceiling" in t.get_text()]
    assert [t.get_text() for t in right.texts if "ceiling" in t.get_text()] == \
        ["ceiling: input probe 0.960\n(layers not probed)"]
    assert not np.isfinite(lines_by_label(right)["width 2"].get_ydata()).any()  # no curve drawn


def test_probes_figure_where_every_model_hit_the_ceiling():
    """Nothing probed (the default digits study): the axes still span relative depth [0, 1] and
    reach up to 1 above the input probes, and the legend lists no widths it did not draw."""
    datasets, cells = [], []
    for depth, accuracy in ((1, 0.91), (2, 0.93)):
        ds = probe_ds([np.nan] * (depth + 2))
        ds.attrs.update(status="ceiling", input_test_accuracy=accuracy)
        datasets.append(ds)
        cells.append({"depth": depth, "width": 2, "n": 10, "seed": 0})
    fig = plots.probes_figure(datasets, cells)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert lo < 0 and hi > 1 and hi - lo < 1.2
        lo, hi = ax.get_ylim()
        assert lo < 0.91 and 1.0 <= hi <= 1.02
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert "input probe" in texts and "2" not in texts and "± 1 sd over seeds" not in texts


def test_probes_figure_bad_input():
    datasets, cells, _ = probe_inputs()
    with pytest.raises(ValueError, match="pair up"):
        plots.probes_figure(datasets, cells[:-1])
    with pytest.raises(KeyError, match="cells\\[0\\].*width"):
        plots.probes_figure(datasets[:1], [{"depth": 2, "n": 100, "seed": 0}])
    with pytest.raises(KeyError, match="test_accuracy"):
        plots.probes_figure([datasets[0].drop_vars("test_accuracy")], cells[:1])


# ----------------------------------------------------------------------------- pruning


def pruning_ds(changes, inside, base=0.9):
    return xr.Dataset({"accuracy_change": ("removed", np.asarray(changes, float)),
                       "accuracy": ("removed", base + np.asarray(changes, float)),
                       "inside": ("removed", np.asarray(inside, bool))},
                      coords={"removed": [f"block{i}" for i in range(len(changes))]},
                      attrs={"base_accuracy": base})


def test_pruning_figure_points_means_and_zero_line():
    specs = [  # (depth, width, seed, changes, inside)
        (2, 4, 0, [-0.01, -0.20, -0.02], [True, False, True]),
        (2, 4, 1, [0.00, -0.10, -0.04], [True, False, True]),
        (8, 1, 0, [-0.30, -0.05], [False, False]),  # no block: all outside
    ]
    datasets = [pruning_ds(c, i) for *_, c, i in specs]
    cells = [{"depth": d, "width": w, "n": 500, "seed": s} for d, w, s, *_ in specs]
    fig = plots.pruning_figure(datasets, cells)
    (ax,) = fig.axes
    points = {}
    for c in ax.collections:
        colour = tuple(np.round(c.get_facecolor()[0][:3], 3)) if len(c.get_offsets()) else None
        points[colour] = c.get_offsets()
    inside = points[tuple(np.round(to_rgb("C3"), 3))]
    outside = points[tuple(np.round(to_rgb("C0"), 3))]
    np.testing.assert_allclose(np.sort(inside[:, 1]), [-0.04, -0.02, -0.01, 0.0])
    np.testing.assert_allclose(np.sort(outside[:, 1]), [-0.30, -0.20, -0.10, -0.05])
    assert (np.round(inside[:, 0]) == 0).all()  # d2-w4 is the first position
    assert sorted(np.round(outside[:, 0]).tolist()) == [0, 0, 1, 1]
    means = sorted(float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_marker() == "_")
    np.testing.assert_allclose(means, sorted([np.mean([-0.01, -0.02, 0.0, -0.04]), np.mean([-0.2, -0.1]),
                                              np.mean([-0.3, -0.05])]))
    assert any(np.allclose(line.get_ydata(), 0.0) and line.get_marker() != "_" for line in ax.get_lines())
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["d2-w4", "d8-w1"]


def test_pruning_figure_one_panel_per_n():
    datasets = [pruning_ds([-0.1], [False]), pruning_ds([-0.2, 0.0], [False, True])]
    cells = [{"depth": 2, "width": 1, "n": 100, "seed": 0}, {"depth": 2, "width": 1, "n": 200, "seed": 0}]
    fig = plots.pruning_figure(datasets, cells)
    assert len(fig.axes) == 2
    assert sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections) == 3
    with pytest.raises(KeyError, match="base_accuracy"):
        no_attrs = datasets[0].copy()
        no_attrs.attrs = {}
        plots.pruning_figure([no_attrs], cells[:1])


# ----------------------------------------------------------------------------- errors


def planted_predictions(seeds_a=4, seeds_b=4, n=60):
    """Random predictions; class 0 always wrong under A and always right under B."""
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), n // 3)
    pred_a = np.where(rng.random((seeds_a, n)) < 0.8, labels, (labels + 1) % 3)
    pred_b = np.where(rng.random((seeds_b, n)) < 0.8, labels, (labels + 2) % 3)
    pred_a[:, labels == 0] = 1
    pred_b[:, labels == 0] = 0
    return pred_a, pred_b, labels


def test_errors_figure_bars_stars_count_table_and_title():
    pred_a, pred_b, labels = planted_predictions()
    ds = error_analysis(pred_a, pred_b, labels, permutations=1000)  # C(8, 4) = 70: exact
    fig = plots.errors_figure(ds, label_a="deep", label_b="wide")
    ax_c, ax_e = fig.axes[:2]
    wrong_a, wrong_b = pred_a != labels, pred_b != labels

    def rate(wrong):
        return [wrong[:, labels == c].mean() for c in range(3)]

    heights = [p.get_height() for p in ax_c.patches]
    np.testing.assert_allclose(heights, rate(wrong_a) + rate(wrong_b))
    stars = [t for t in ax_c.texts if t.get_text() == "*"]
    assert len(stars) == int((ds.class_p_value.values < 0.05).sum()) >= 1
    assert any(round(t.get_position()[0]) == 0 for t in stars)  # the planted class
    # count table: text at (k_a + 0.5, S_b − k_b + 0.5) holds the number of examples
    expected = pd.crosstab(wrong_b.sum(0), wrong_a.sum(0))
    shown = {(int(t.get_position()[0] - 0.5), 4 - int(t.get_position()[1] - 0.5)): int(t.get_text())
             for t in ax_e.texts if t.get_text()}
    assert shown == {(ka, kb): int(expected.loc[kb, ka]) for kb in expected.index for ka in expected.columns
                     if expected.loc[kb, ka] > 0}
    assert sum(shown.values()) == len(labels)
    head = fig.get_suptitle()
    assert f"p = {ds.attrs['p_value']:.3g}" in head and "4 seeds of deep, 4 of wide" in head
    assert f"{(1 - wrong_a.mean()):.3f} vs {(1 - wrong_b.mean()):.3f}" in head
    assert "70 all reassignments" in head and f"{2 / 70:.2g}" in head


def test_errors_figure_one_seed_each_and_bad_input():
    pred_a, pred_b, labels = planted_predictions(1, 1, 30)
    ds = error_analysis(pred_a, pred_b, labels)
    fig = plots.errors_figure(ds, label_a="A", label_b="B", title="one seed")
    assert "n/a" in fig.get_suptitle() and fig.get_suptitle().startswith("one seed")
    assert sum(int(t.get_text()) for t in fig.axes[1].texts if t.get_text()) == 30
    with pytest.raises(KeyError, match="class_p_value"):
        plots.errors_figure(ds.drop_vars("class_p_value"), label_a="A", label_b="B")


# ----------------------------------------------------------------------------- files


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = plots.pruning_figure([pruning_ds([-0.1, 0.0], [False, True])],
                               [{"depth": 2, "width": 1, "n": 100, "seed": 0}])
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"


def test_to_file_functions(tmp_path, first_pc_store):
    def png(name):
        return [tmp_path / f"{name}.png"]

    within = {}
    for model_id, spans in (("digits-n10-resnet-d1-w2-s0", [(0, 2)]), ("digits-n10-resnet-d1-w2-s1", [])):
        within[model_id] = tmp_path / f"{model_id}.nc"
        write_netcdf(layer_da(heatmap(4, spans)), within[model_id])
    block_table_to_file(within, tmp_path / "blocks.csv", threshold=0.9, min_length=3)
    widedeep_figures.blocks_figure_to_file(tmp_path / "blocks.csv", png("blocks"))

    store, _ = first_pc_store
    write_netcdf(first_pc_analysis(store), tmp_path / "pc.nc")
    widedeep_figures.pca_figure_to_file([tmp_path / "pc.nc"], [within["digits-n10-resnet-d1-w2-s0"]],
                                        [{"depth": 1, "width": 2}], png("pca"), threshold=0.9, min_length=3)

    write_netcdf(probe_ds([0.3, 0.8]), tmp_path / "probe.nc")
    cell = {"depth": 1, "width": 2, "n": 10, "seed": 0}
    widedeep_figures.probes_figure_to_file([tmp_path / "probe.nc"], [cell], png("probes"))
    unlabelled = pruning_ds([-0.1, -0.2], [False, False]).drop_vars("inside").assign_coords(
        removed=["layer1", "layer3"])
    unlabelled.attrs["layers"] = json.dumps([f"layer{i}" for i in range(4)])
    write_netcdf(unlabelled, tmp_path / "prune.nc")
    widedeep_figures.pruning_figure_to_file([tmp_path / "prune.nc"], [within["digits-n10-resnet-d1-w2-s0"]],
                                            [cell], png("pruning"), threshold=0.9, min_length=3)
    write_netcdf(error_analysis(*planted_predictions(2, 2, 30)), tmp_path / "errors.nc")
    widedeep_figures.errors_figure_to_file(tmp_path / "errors.nc", png("errors"), label_a="A", label_b="B")
    for name in ("blocks", "pca", "probes", "pruning", "errors"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    write_netcdf(layer_da(heatmap(3, [])), tmp_path / "short.nc")
    with pytest.raises(ValueError, match="same model"):  # pruning labelled with another model's CKA
        widedeep_figures.pruning_figure_to_file([tmp_path / "prune.nc"], [tmp_path / "short.nc"], [cell],
                                                png("x"), threshold=0.9, min_length=3)
    with pytest.raises(ValueError, match="differ"):  # the CKA file must cover the first-PC layers
        widedeep_figures.pca_figure_to_file([tmp_path / "pc.nc"], [tmp_path / "short.nc"],
                                            [{"depth": 1, "width": 2}], png("x"), threshold=0.9, min_length=3)


# ----------------------------------------------------------------------------- data-size grid with blocks


def test_cka_grid_figure_outlines_pc1_blocks(tmp_path, monkeypatch):
    names = [f"l{i}" for i in range(8)]
    cells, paths, pcs = [], [], []
    # n = 100: a PC1-dominated run l1..l5; n = 400: the same CKA run without a dominant PC1
    for n, share in ((100, [0.1, 0.8, 0.8, 0.7, 0.9, 0.6, 0.1, 0.1]), (400, [0.2] * 8)):
        k = heatmap(8, [(1, 5)])
        paths.append(tmp_path / f"cka{n}.nc")
        write_netcdf(xr.DataArray(k, dims=("layer_a", "layer_b"),
                                  coords={"layer_a": names, "layer_b": names}), paths[-1])
        pcs.append(tmp_path / f"pc{n}.nc")
        write_netcdf(xr.Dataset({"pc1_ratio": ("layer", share), "cka": (("layer_a", "layer_b"), k),
                                 "cka_without_pc1": (("layer_a", "layer_b"), np.eye(8))},
                                coords={"layer": names, "layer_a": names, "layer_b": names}), pcs[-1])
        cells.append({"n": n, "width": 2})
    saved = []
    monkeypatch.setattr(cka_figures, "save_figure", lambda fig, *out: saved.append(fig))
    cka_figures.cka_grid_figure(paths, cells, ["x.png"], row="n", col="width", first_pc_paths=pcs,
                                min_pc1_share=0.5)
    top, bottom = saved[0].axes[:2]  # rows sorted by n: 100 first
    outlines = [p for p in top.patches if p.get_gid() == "block"]
    assert len(outlines) == 1 and outlines[0].get_xy() == (1, 8 - 1 - 5) and outlines[0].get_width() == 5
    assert top.get_title().endswith("1 block(s), largest 5/8 layers")
    assert not [p for p in bottom.patches if p.get_gid() == "block"]
    assert bottom.get_title().endswith("0 block(s), largest 0/8 layers")
    # without first-PC files: no outlines and the plain titles
    cka_figures.cka_grid_figure(paths, cells, ["y.png"], row="n", col="width")
    plain = saved[1].axes[0]
    assert plain.get_title() == "n 100, width 2" and not [p for p in plain.patches if p.get_gid() == "block"]
