"""Block detection, block summaries, seed similarity and the first-principal-component analysis."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from synthetic_cka import heatmap

from repatlas import activations, blocks, models
from repatlas.blocks import detect_blocks
from repatlas.cka import as_dataarray, linear_cka
from repatlas.io import write_netcdf
from repatlas.steps import cka as cka_steps
from repatlas.steps import widedeep as widedeep_steps


def brute_force_blocks(k, threshold, min_length):
    """Reference: from each start, the longest run whose whole square clears the threshold."""
    sym = np.minimum(k, k.T)
    np.fill_diagonal(sym, 1.0)  # a layer with itself is not a pair
    found, i, n = [], 0, len(k)
    while i < n:
        # every sub-square of a clearing square clears, so the valid ends form one run from i
        end = max(j for j in range(i, n) if (sym[i : j + 1, i : j + 1] >= threshold).all())
        if end - i + 1 >= min_length:
            found.append((i, end))
            i = end + 1
        else:
            i += 1
    return found


# ----------------------------------------------------------------------------- detect_blocks


def test_one_and_two_blocks():
    assert detect_blocks(heatmap(10, [(2, 5)])) == [(2, 5)]
    assert detect_blocks(heatmap(12, [(0, 2), (5, 8)])) == [(0, 2), (5, 8)]
    # two adjacent planted blocks that are dissimilar to each other stay two blocks
    assert detect_blocks(heatmap(8, [(0, 3), (4, 7)])) == [(0, 3), (4, 7)]


def test_run_broken_by_a_non_adjacent_pair():
    k = heatmap(6, [(0, 5)])
    k[1, 4] = k[4, 1] = 0.5  # neighbours all similar; layers 1 and 4 are not
    # from 0 the run stops before 4; 4..5 is too short
    assert detect_blocks(k, threshold=0.9, min_length=3) == [(0, 3)]
    assert detect_blocks(k, threshold=0.9, min_length=2) == [(0, 3), (4, 5)]


def test_asymmetric_matrix_uses_the_weaker_direction():
    k = heatmap(6, [(1, 4)])
    k[1, 3] = 0.85  # k[3, 1] stays 0.95
    # from 1 the run stops before 3 (too short); from 2 it reaches 4
    assert detect_blocks(k, threshold=0.9) == detect_blocks(k.T, threshold=0.9) == [(2, 4)]
    assert detect_blocks(k, threshold=0.9, min_length=2) == [(1, 2), (3, 4)]
    assert detect_blocks(k, threshold=0.8) == [(1, 4)]


def test_min_length_and_threshold_edges():
    k = heatmap(7, [(2, 4)], inside=0.875)  # exactly representable
    assert detect_blocks(k, threshold=0.875, min_length=3) == [(2, 4)]  # ≥ threshold counts
    assert detect_blocks(k, threshold=np.nextafter(0.875, 1.0), min_length=3) == []
    assert detect_blocks(k, threshold=0.875, min_length=4) == []
    assert detect_blocks(k, threshold=1.0, min_length=2) == []
    assert detect_blocks(heatmap(3, [(0, 2)]), min_length=3) == [(0, 2)]  # block = whole model


def test_no_block():
    assert detect_blocks(heatmap(9, [])) == []
    assert detect_blocks(np.eye(1)) == []


def test_matches_brute_force_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(4, 14))
        k = rng.uniform(0.7, 1.0, size=(n, n))
        k = np.where(rng.random((n, n)) < 0.1, k.T, k)  # asymmetric, a few entries mirrored
        for threshold, min_length in ((0.8, 2), (0.85, 3), (0.75, 4)):
            assert detect_blocks(k, threshold=threshold, min_length=min_length) == \
                brute_force_blocks(k, threshold, min_length)


def test_dataarray_input():
    k = heatmap(8, [(1, 3), (5, 7)])
    names = [f"block{i}" for i in range(8)]
    assert detect_blocks(as_dataarray(k, names, names)) == detect_blocks(k) == [(1, 3), (5, 7)]


@pytest.mark.parametrize(
    "matrix, options, match",
    [
        (np.ones((3, 4)), {}, "cka_matrix"),
        (np.ones((2, 2, 2)), {}, "cka_matrix"),
        (np.ones(4), {}, "cka_matrix"),
        (np.where(np.eye(3) > 0, np.nan, 1.0), {}, "cka_matrix"),
        (np.ones((3, 3)), {"threshold": 0}, "threshold"),
        (np.ones((3, 3)), {"threshold": 1.5}, "threshold"),
        (np.ones((3, 3)), {"threshold": "0.9"}, "threshold"),
        (np.ones((3, 3)), {"min_length": 1}, "min_length"),
        (np.ones((3, 3)), {"min_length": 2.5}, "min_length"),
        (np.ones((3, 3)), {"min_length": True}, "min_length"),
    ],
)
def test_detect_blocks_bad_input(matrix, options, match):
    with pytest.raises(ValueError, match=match):
        detect_blocks(matrix, **options)


def brute_force_pc1_blocks(k, threshold, min_length, share, min_share):
    """Reference with the PC1 criterion: from each start, the longest run whose whole square clears
    the threshold and whose layers' mean PC1 share (summed by a plain loop) reaches min_share."""
    sym = np.minimum(k, k.T)
    np.fill_diagonal(sym, 1.0)
    found, i, n = [], 0, len(k)
    while i < n:
        ends = [j for j in range(i + min_length - 1, n)
                if (sym[i : j + 1, i : j + 1] >= threshold).all()
                and sum(float(share[m]) for m in range(i, j + 1)) / (j - i + 1) >= min_share]
        if ends:
            found.append((i, max(ends)))
            i = max(ends) + 1
        else:
            i += 1
    return found


def test_high_cka_without_a_dominant_pc1_is_no_block():
    k = np.full((8, 8), 0.95)  # uniformly high CKA: one CKA run over every layer
    assert detect_blocks(k) == [(0, 7)]
    assert detect_blocks(k, pc1_share=np.full(8, 0.2)) == []  # stage-level similarity, not a block
    assert detect_blocks(k, pc1_share=np.full(8, 0.8)) == [(0, 7)]  # PC1-dominated run: a block
    assert detect_blocks(k, pc1_share=np.full(8, 0.5), min_pc1_share=0.5) == [(0, 7)]  # ≥ counts
    assert detect_blocks(k, pc1_share=np.full(8, 0.5), min_pc1_share=np.nextafter(0.5, 1.0)) == []


def test_pc1_criterion_takes_the_longest_dominated_prefix():
    k = heatmap(10, [(1, 8)])
    share = np.array([0.9, 0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1, 0.9])
    # from 1 the CKA run is 1..8; its longest prefix with mean share ≥ 0.5 is 1..6
    # (mean 0.457 for 1..7); 7..8 left over is too short
    assert detect_blocks(k, pc1_share=share) == [(1, 6)]
    assert detect_blocks(k, pc1_share=share, min_pc1_share=0.7) == [(1, 4)]
    assert detect_blocks(k, pc1_share=share, min_pc1_share=0.95) == []


def test_pc1_criterion_matches_brute_force_on_random_matrices():
    rng = np.random.default_rng(10)
    for _ in range(40):
        n = int(rng.integers(4, 14))
        k = rng.uniform(0.75, 1.0, size=(n, n))
        share = rng.uniform(0.0, 1.0, n)
        for threshold, min_length, min_share in ((0.8, 2, 0.5), (0.78, 3, 0.4), (0.76, 3, 0.6)):
            assert detect_blocks(k, threshold=threshold, min_length=min_length, pc1_share=share,
                                 min_pc1_share=min_share) == \
                brute_force_pc1_blocks(k, threshold, min_length, share, min_share)


@pytest.mark.parametrize(
    "share, options, match",
    [
        (np.full(3, 0.6), {}, "pc1_share"),  # one per layer (4)
        (np.array([0.6, 0.6, np.nan, 0.6]), {}, "pc1_share"),
        (np.array([0.6, 0.6, 1.2, 0.6]), {}, "pc1_share"),
        (np.full(4, 0.6), {"min_pc1_share": 1.5}, "min_pc1_share"),
        (np.full(4, 0.6), {"min_pc1_share": True}, "min_pc1_share"),
    ],
)
def test_pc1_share_bad_input(share, options, match):
    with pytest.raises(ValueError, match=match):
        detect_blocks(np.ones((4, 4)), pc1_share=share, **options)


# ----------------------------------------------------------------------------- summaries


def test_block_summary_by_hand():
    k = heatmap(10, [(1, 3)], inside=0.92)
    k[5:10, 5:10] = 0.96
    np.fill_diagonal(k, 1.0)
    names = [f"block{i}" for i in range(9)] + ["pool"]
    summary = blocks.block_summary(as_dataarray(k, names, names), [(1, 3), (5, 9)])
    assert summary == {
        "n_layers": 10,
        "n_blocks": 2,
        "block_layers": 8,
        "largest_length": 5,
        "largest_start": pytest.approx(5 / 9),
        "largest_end": 1.0,
        # 3·2 ordered pairs at 0.92 and 5·4 at 0.96
        "mean_in_block_cka": pytest.approx((6 * 0.92 + 20 * 0.96) / 26),
        "blocks": "block1-block3;block5-pool",
    }
    assert blocks.block_summary(k, [(1, 3), (5, 9)])["blocks"] == "1-3;5-9"
    # equal lengths: the first (shallowest) block is the largest
    tie = blocks.block_summary(k, [(0, 2), (6, 8)])
    assert (tie["largest_start"], tie["largest_end"]) == (0.0, pytest.approx(2 / 9))


def test_block_summary_without_blocks_and_bad_blocks():
    summary = blocks.block_summary(heatmap(5, []), [])
    assert summary["n_blocks"] == summary["block_layers"] == summary["largest_length"] == 0
    assert np.isnan(summary["largest_start"]) and np.isnan(summary["mean_in_block_cka"])
    assert summary["blocks"] == ""
    for bad in ([(3, 5)], [(2, 1)], [(0, 2), (2, 3)], [(3,)]):
        with pytest.raises(ValueError, match="blocks"):
            blocks.block_summary(heatmap(5, []), bad)


def test_seed_similarity_by_hand():
    n = 6
    across = np.full((n, n), 0.1)
    np.fill_diagonal(across, [0.9, 0.5, 0.3, 0.4, 0.6, 0.7])
    names = [f"l{i}" for i in range(n)]
    da = as_dataarray(across, names, names)
    # both seeds: layers 2, 3; neither: 0, 5; one only: 1, 4
    sim = blocks.seed_similarity(da, [(1, 3)], [(2, 4)])
    assert sim == {"inside": pytest.approx(0.35), "outside": pytest.approx(0.8)}
    none = blocks.seed_similarity(across, [], [(0, 5)])
    assert np.isnan(none["inside"]) and np.isnan(none["outside"])
    with pytest.raises(ValueError, match="same layers"):
        blocks.seed_similarity(as_dataarray(across, names, names[::-1]), [], [])
    with pytest.raises(ValueError, match="blocks_b"):
        blocks.seed_similarity(across, [], [(4, 6)])


def _within(n, planted, names=None, inside=0.95):
    names = names or [f"l{i}" for i in range(n)]
    return as_dataarray(heatmap(n, planted, inside=inside), names, names)


def test_block_table_parses_ids_and_averages_seed_pairs():
    ids = ["digits-n500-resnet-d26-w1-s0", "digits-n500-resnet-d26-w1-s1",
           "digits-n500-resnet-d26-w1-s2", "fashion_mnist-n1000-mlp-d4-w64-s3"]
    within = {ids[0]: _within(8, [(1, 3), (5, 7)]), ids[1]: _within(8, [(2, 4)]),
              ids[2]: _within(8, []), ids[3]: _within(5, [(0, 4)])}
    diag01, diag02 = np.linspace(0.2, 0.9, 8), np.linspace(0.5, 0.8, 8)
    pairs = [(ids[0], ids[1], as_dataarray(np.diag(diag01), *[[f"l{i}" for i in range(8)]] * 2)),
             (ids[0], ids[2], as_dataarray(np.diag(diag02), *[[f"l{i}" for i in range(8)]] * 2))]
    table = blocks.block_table(within, threshold=0.9, min_length=3, seed_pairs=pairs)
    assert list(table.model) == ids
    assert table.loc[3, ["dataset", "n", "arch", "depth", "width", "seed"]].tolist() == \
        ["fashion_mnist", 1000, "mlp", 4, 64, 3]
    for column in ("n", "depth", "width", "seed", "n_layers", "n_blocks"):
        assert pd.api.types.is_integer_dtype(table[column]), column
    assert table.n_blocks.tolist() == [2, 1, 0, 1]
    assert table.blocks.tolist() == ["l1-l3;l5-l7", "l2-l4", "", "l0-l4"]
    # pair 0-1: inside both = layers 2, 3; neither = 0; pair 0-2: inside both = none; neither = 0, 4
    inside_01, outside_01 = diag01[[2, 3]].mean(), diag01[0]
    outside_02 = diag02[[0, 4]].mean()
    row = table.set_index("model")
    assert row.loc[ids[0], "seed_cka_inside"] == pytest.approx(inside_01)  # NaN of pair 0-2 skipped
    assert row.loc[ids[0], "seed_cka_outside"] == pytest.approx((outside_01 + outside_02) / 2)
    assert row.loc[ids[1], "seed_cka_outside"] == pytest.approx(outside_01)
    assert np.isnan(row.loc[ids[2], "seed_cka_inside"])
    assert np.isnan(row.loc[ids[3], "seed_cka_inside"]) and row.loc[ids[3], "n_seed_pairs"] == 0
    assert row.n_seed_pairs.tolist() == [2, 1, 1, 0]
    assert "seed_cka_inside" not in blocks.block_table(within, threshold=0.9, min_length=3).columns


def test_block_table_bad_input():
    with pytest.raises(ValueError, match="model id 'digits-resnet-s0'"):
        blocks.block_table({"digits-resnet-s0": _within(4, [])}, threshold=0.9, min_length=3)
    within = {"digits-n500-resnet-d26-w1-s0": _within(4, []), "digits-n500-resnet-d20-w1-s1": _within(4, [])}
    with pytest.raises(ValueError, match="not two seeds of one architecture"):
        blocks.block_table(within, threshold=0.9, min_length=3,
                           seed_pairs=[(*within, _within(4, []))])
    with pytest.raises(KeyError, match="digits-n500-resnet-d26-w1-s9"):
        blocks.block_table(within, threshold=0.9, min_length=3,
                           seed_pairs=[("digits-n500-resnet-d26-w1-s0", "digits-n500-resnet-d26-w1-s9",
                                        _within(4, []))])


def test_block_table_to_file(tmp_path):
    within = {f"digits-n500-resnet-d14-w2-s{s}": _within(6, [(s, s + 2)]) for s in range(2)}
    across = _within(6, [], inside=0.0)
    paths = {}
    for model_id, da in within.items():
        paths[model_id] = tmp_path / f"{model_id}.nc"
        write_netcdf(da, paths[model_id])
    write_netcdf(across, tmp_path / "across.nc")
    out = tmp_path / "tables" / "blocks.csv"
    pairs = [(*within, tmp_path / "across.nc")]
    widedeep_steps.block_table_to_file(paths, out, threshold=0.9, min_length=3, seed_pairs=pairs)
    expected = blocks.block_table(within, threshold=0.9, min_length=3, seed_pairs=[(*within, across)])
    pd.testing.assert_frame_equal(pd.read_csv(out), expected)
    assert [p.name for p in out.parent.iterdir()] == ["blocks.csv"]  # no temporary left
    names = [f"l{i}" for i in range(6)]
    first_pc = {m: _first_pc(names, [0.9] * 3 + [0.1] * 3) for m in within}
    pc_paths = {}
    for model_id, pc in first_pc.items():
        pc_paths[model_id] = tmp_path / f"{model_id}-pc.nc"
        write_netcdf(pc, pc_paths[model_id])
    metrics = {}
    for k, model_id in enumerate(within):
        metrics[model_id] = tmp_path / f"{model_id}-metrics.json"
        metrics[model_id].write_text(json.dumps({"final": {"test_acc": 0.8 + k / 10, "train_acc": 1.0}}))
    widedeep_steps.block_table_to_file(paths, out, threshold=0.9, min_length=3, seed_pairs=pairs,
                                       first_pc_paths=pc_paths, min_pc1_share=0.65, metrics_paths=metrics)
    expected = blocks.block_table(within, threshold=0.9, min_length=3, seed_pairs=[(*within, across)],
                                  first_pc=first_pc, min_pc1_share=0.65, test_accuracy={
                                      m: 0.8 + k / 10 for k, m in enumerate(within)})
    assert expected.test_accuracy.tolist() == [0.8, 0.9]
    text = ("blocks", "block_pc1_share", "block_cka", "block_cka_without_pc1")  # ";"-joined lists
    written = pd.read_csv(out, dtype={c: "str" for c in text}).fillna({c: "" for c in text})
    pd.testing.assert_frame_equal(written, expected)
    assert expected.n_blocks.tolist() == [1, 0]  # s1's run l1..l3 has mean share 0.63, s0's l0..l2 0.9


def _rotations(rng, z, count):
    """`count` layers that are random rotations of the same features z: linear CKA 1 between them."""
    return [z @ np.linalg.qr(rng.standard_normal((z.shape[1], z.shape[1])))[0] for _ in range(count)]


def test_block_table_with_first_pc_planted_stores(tmp_path):
    """End to end from activations: a stage-like run of rotated isotropic features (CKA 1, PC1 share
    ~0.1) is no block; a run sharing one dominant direction over independent noise is one, and its
    CKA collapses once PC1 is removed."""
    rng = np.random.default_rng(11)
    n, p = 300, 12
    names = [f"l{i}" for i in range(6)]
    iso = _rotations(rng, rng.standard_normal((n, p)), 6)
    shared = rng.standard_normal(n)
    dominated = [6 * np.outer(shared, rng.standard_normal(p)) + rng.standard_normal((n, p)) for _ in range(6)]
    within, first_pc = {}, {}
    for seed, layers in enumerate((iso, dominated)):
        model_id = f"digits-n500-resnet-d8-w1-s{seed}"
        path = write_store(tmp_path / f"{seed}.zarr", dict(zip(names, layers)), chunk=100)
        first_pc[model_id] = blocks.first_pc_analysis(path)
        within[model_id] = as_dataarray(first_pc[model_id]["cka"].values, names, names)
    table = blocks.block_table(within, threshold=0.9, min_length=3, first_pc=first_pc, min_pc1_share=0.5)
    iso_row, dom_row = table.iloc[0], table.iloc[1]
    assert iso_row.n_cka_runs == 1 and iso_row.n_blocks == 0 and iso_row.mean_pc1_share < 0.25
    assert np.isnan(iso_row.largest_pc1_share) and iso_row.block_pc1_share == ""
    assert dom_row.n_cka_runs == 1 and dom_row.n_blocks == 1 and dom_row.largest_length == 6
    share = first_pc["digits-n500-resnet-d8-w1-s1"]["pc1_ratio"].values
    assert dom_row.largest_pc1_share == pytest.approx(share.mean()) and share.min() > 0.8
    without = first_pc["digits-n500-resnet-d8-w1-s1"]["cka_without_pc1"].values
    assert dom_row.largest_cka_without_pc1 == pytest.approx(without[~np.eye(6, dtype=bool)].mean())
    assert dom_row.largest_cka > 0.9 and abs(dom_row.largest_cka_without_pc1) < 0.1
    assert float(dom_row.block_cka_without_pc1) == pytest.approx(dom_row.largest_cka_without_pc1, abs=1e-4)
    assert (table.min_pc1_share == 0.5).all()
    # the same CKA without the PC1 criterion calls both runs blocks
    assert blocks.block_table(within, threshold=0.9, min_length=3).n_blocks.tolist() == [1, 1]
    with pytest.raises(KeyError, match="first_pc"):
        blocks.block_table(within, threshold=0.9, min_length=3,
                           first_pc={"digits-n500-resnet-d8-w1-s0": first_pc["digits-n500-resnet-d8-w1-s0"]})
    other = {m: ds.assign_coords(layer=[f"x{i}" for i in range(6)]) for m, ds in first_pc.items()}
    with pytest.raises(ValueError, match="same model"):
        blocks.block_table(within, threshold=0.9, min_length=3, first_pc=other)


def test_first_pc_summary_by_hand():
    names = [f"l{i}" for i in range(5)]
    cka = heatmap(5, [(0, 2)], inside=0.9)
    without = np.full((5, 5), 0.2)
    without[0, 1] = without[1, 0] = np.nan  # a rank-one layer pair: skipped
    np.fill_diagonal(without, 1.0)
    ds = xr.Dataset({"pc1_ratio": ("layer", [0.7, 0.6, 0.5, 0.1, 0.1]),
                     "cka": (("layer_a", "layer_b"), cka),
                     "cka_without_pc1": (("layer_a", "layer_b"), without)},
                    coords={"layer": names, "layer_a": names, "layer_b": names})
    out = blocks.first_pc_summary(ds, [(0, 2), (3, 4)])
    assert out["block_pc1_share"] == "0.6000;0.1000"
    assert out["largest_pc1_share"] == pytest.approx(0.6) and out["largest_cka"] == pytest.approx(0.9)
    assert out["largest_cka_without_pc1"] == pytest.approx(0.2)
    assert out["block_cka"] == "0.9000;0.3000" and out["mean_pc1_share"] == pytest.approx(0.4)
    assert np.isnan(blocks.first_pc_summary(ds, [])["largest_cka"])


# ----------------------------------------------------------------------------- pruning labels


def _pruning(changes, layers):
    """An unlabelled pruning result (repatlas.probes.pruning_experiment's structure)."""
    return xr.Dataset({"accuracy_change": ("removed", np.asarray(list(changes.values()), float))},
                      coords={"removed": list(changes)}, attrs={"layers": json.dumps(layers)})


def test_label_pruning_with_cka_uses_the_detected_blocks():
    names = [f"l{i}" for i in range(7)]
    ds = _pruning({"l1": -0.1, "l3": -0.2, "l4": 0.0, "l6": -0.4}, names)
    within = _within(7, [(2, 4), (5, 6)], names)  # detected blocks: l2..l4 and l5..l6
    out = blocks.label_pruning_with_cka(ds, within, threshold=0.9, min_length=2)
    # l1's input l0 is in no block; l3 (input l2) and l4 (input l3) sit in (2, 4); l6 (input l5) in (5, 6)
    assert out["inside"].values.tolist() == [False, True, True, True]
    assert out.attrs["mean_change_inside"] == pytest.approx(np.mean([-0.2, 0.0, -0.4]))
    assert out.attrs["mean_change_outside"] == pytest.approx(-0.1)
    assert json.loads(out.attrs["blocks"]) == [[2, 4], [5, 6]] and out.attrs["min_length"] == 2
    # a longer minimum length drops the (5, 6) block: l6 is outside now
    out = blocks.label_pruning_with_cka(ds, within, threshold=0.9, min_length=3)
    assert out["inside"].values.tolist() == [False, True, True, False]
    assert "inside" not in ds  # the input is not modified


def _first_pc(names, share):
    n = len(names)
    return xr.Dataset({"pc1_ratio": ("layer", np.asarray(share, float)),
                       "cka": (("layer_a", "layer_b"), np.eye(n)),
                       "cka_without_pc1": (("layer_a", "layer_b"), np.eye(n))},
                      coords={"layer": names, "layer_a": names, "layer_b": names})


def test_label_pruning_with_first_pc_counts_only_pc1_dominated_blocks():
    names = [f"l{i}" for i in range(7)]
    ds = _pruning({"l1": -0.1, "l3": -0.2, "l4": 0.0, "l6": -0.4}, names)
    within = _within(7, [(2, 4), (5, 6)], names)
    share = [0.1, 0.1, 0.2, 0.3, 0.2, 0.9, 0.8]  # (2, 4) is high CKA without a dominant PC1
    out = blocks.label_pruning_with_cka(ds, within, threshold=0.9, min_length=2,
                                        first_pc=_first_pc(names, share))
    assert json.loads(out.attrs["blocks"]) == [[5, 6]] and out.attrs["min_pc1_share"] == 0.5
    assert out["inside"].values.tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="same model"):
        blocks.label_pruning_with_cka(ds, within, threshold=0.9, min_length=2,
                                      first_pc=_first_pc([f"x{i}" for i in range(7)], share))


def test_label_pruning_refuses_another_models_cka():
    names = [f"l{i}" for i in range(4)]
    ds = _pruning({"l1": -0.1}, names)
    with pytest.raises(ValueError, match="same model"):
        blocks.label_pruning_with_cka(ds, _within(5, []), threshold=0.9, min_length=2)
    with pytest.raises(ValueError, match="blocks"):
        blocks.label_pruning(ds, [(2, 4)])
    assert np.isnan(blocks.label_pruning(ds, []).attrs["mean_change_inside"])


# ----------------------------------------------------------------------------- first principal component


def write_store(path, layers: dict, chunk: int):
    """An activation store in `dump_activations`' layout, from given float32 arrays."""
    group = zarr.open_group(store=str(path), mode="w", zarr_format=3)
    for name, values in layers.items():
        arr = group.create_array(name, shape=values.shape, chunks=(chunk, values.shape[1]), dtype="float32",
                                 dimension_names=["example", activations.unit_dim(name)])
        arr[:] = values.astype(np.float32)
    group.attrs.update({"layers": list(layers), "n_examples": len(next(iter(layers.values())))})
    return path


def reference(features, debiased=True):
    """pc1 ratio, CKA and CKA without PC1 from the features themselves (SVD, linear_cka)."""
    stripped = []
    ratios = []
    for x in features:
        x = np.asarray(x, dtype=np.float64)
        x = x - x.mean(0)
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        ratios.append(s[0] ** 2 / (s**2).sum())
        stripped.append(x - s[0] * np.outer(u[:, 0], vt[0]))
    pairs = [[linear_cka(a, b, debiased=debiased) for b in features] for a in features]
    pairs_stripped = [[linear_cka(a, b, debiased=debiased) for b in stripped] for a in stripped]
    return np.array(ratios), np.array(pairs), np.array(pairs_stripped)


def random_layers(rng, n, widths, *, offset=0.0):
    """Layers with a distinct leading direction (a clear spectral gap) plus noise, some correlated."""
    base = rng.standard_normal((n, 6))
    out = {}
    for i, p in enumerate(widths):
        mix = rng.standard_normal((6, p))
        x = base @ mix + 0.5 * rng.standard_normal((n, p))
        x += 3.0 * rng.standard_normal(n)[:, None] * rng.standard_normal(p)  # a leading component
        out[f"layer{i}"] = (x + offset).astype(np.float32)
    return out


def test_first_pc_matches_svd_and_linear_cka(tmp_path):
    rng = np.random.default_rng(1)
    layers = random_layers(rng, 45, [7, 12, 30])
    path = write_store(tmp_path / "acts.zarr", layers, chunk=8)
    for debiased in (True, False):
        ds = blocks.first_pc_analysis(path, debiased=debiased, window=2)  # 16-row reads, a ragged last one
        ratios, cka, stripped = reference(list(layers.values()), debiased=debiased)
        np.testing.assert_allclose(ds.pc1_ratio.values, ratios, rtol=1e-10)
        np.testing.assert_allclose(ds.cka.values, cka, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ds.cka_without_pc1.values, stripped, rtol=1e-9, atol=1e-11)
        assert ds.cka.dims == ("layer_a", "layer_b") and list(ds.layer.values) == list(layers)
        assert ds.attrs["debiased"] == int(debiased) and ds.attrs["n_examples"] == 45
        assert ("unbiased" in ds.attrs["estimator"]) == debiased


def test_first_pc_streams_row_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    layers = random_layers(rng, 50, [9, 4])
    path = write_store(tmp_path / "acts.zarr", layers, chunk=5)
    reads = []

    class Recording:
        def __init__(self, array):
            self.array, self.shape, self.chunks = array, array.shape, array.chunks

        def __getitem__(self, key):
            reads.append(key.stop - key.start)
            return self.array[key]

    real = activations.layer_arrays
    monkeypatch.setattr(activations, "layer_arrays", lambda p: {k: Recording(v) for k, v in real(p).items()})
    streamed = blocks.first_pc_analysis(path, window=3)
    assert max(reads) == 15 and len(reads) > 2 * 4  # windows of 3 chunks, never a whole layer
    monkeypatch.undo()
    whole = blocks.first_pc_analysis(path, window=100)
    for name in ("pc1_ratio", "cka", "cka_without_pc1"):
        np.testing.assert_allclose(streamed[name].values, whole[name].values, rtol=1e-12, atol=1e-14)


def test_planted_shared_component_disappears_with_pc1(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    shared = rng.standard_normal(n)
    a = 20 * np.outer(shared, rng.standard_normal(10)) + rng.standard_normal((n, 10))
    b = 20 * np.outer(shared, rng.standard_normal(15)) + rng.standard_normal((n, 15))
    path = write_store(tmp_path / "acts.zarr", {"a": a, "b": b}, chunk=64)
    ds = blocks.first_pc_analysis(path)
    assert (ds.pc1_ratio.values > 0.95).all()
    assert ds.cka.sel(layer_a="a", layer_b="b") > 0.95
    assert abs(ds.cka_without_pc1.sel(layer_a="a", layer_b="b")) < 0.05  # independent noise is left
    np.testing.assert_allclose(np.diagonal(ds.cka_without_pc1.values), 1.0, rtol=1e-12)


def test_float32_offset_is_stable(tmp_path):
    rng = np.random.default_rng(4)
    layers = random_layers(rng, 40, [6, 20], offset=100.0)
    path = write_store(tmp_path / "acts.zarr", layers, chunk=7)
    ds = blocks.first_pc_analysis(path, window=2)
    # reference on the stored float32 values, centred in float64
    ratios, cka, stripped = reference(list(layers.values()))
    np.testing.assert_allclose(ds.pc1_ratio.values, ratios, rtol=1e-10)
    np.testing.assert_allclose(ds.cka.values, cka, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ds.cka_without_pc1.values, stripped, rtol=1e-9, atol=1e-11)


def test_examples_layers_and_bad_input(tmp_path):
    rng = np.random.default_rng(5)
    layers = random_layers(rng, 40, [5, 8, 3])
    path = write_store(tmp_path / "acts.zarr", layers, chunk=16)
    ds = blocks.first_pc_analysis(path, layers=["layer2", "layer0"], examples=25)
    ratios, cka, stripped = reference([layers["layer2"][:25], layers["layer0"][:25]])
    np.testing.assert_allclose(ds.pc1_ratio.values, ratios, rtol=1e-10)
    np.testing.assert_allclose(ds.cka_without_pc1.values, stripped, rtol=1e-9, atol=1e-11)
    assert list(ds.layer_a.values) == ["layer2", "layer0"] and ds.attrs["n_examples"] == 25
    with pytest.raises(KeyError, match="nope"):
        blocks.first_pc_analysis(path, layers=["layer0", "nope"])
    for bad in (41, 3, 2.5):
        with pytest.raises(ValueError, match="examples"):
            blocks.first_pc_analysis(path, examples=bad)
    with pytest.raises(ValueError, match="window"):
        blocks.first_pc_analysis(path, window=0)
    constant = write_store(tmp_path / "constant.zarr",
                           {"flat": np.ones((10, 3)), "x": rng.standard_normal((10, 3))}, 5)
    with pytest.raises(ValueError, match="'flat' is constant"):
        blocks.first_pc_analysis(constant)


def test_rank_one_layer_has_nothing_left(tmp_path):
    rng = np.random.default_rng(6)
    rank_one = np.outer(rng.standard_normal(30), rng.standard_normal(4))
    path = write_store(tmp_path / "acts.zarr", {"line": rank_one, "x": rng.standard_normal((30, 5))}, 10)
    ds = blocks.first_pc_analysis(path)
    assert ds.pc1_ratio.sel(layer="line") == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(ds.cka_without_pc1.sel(layer_a="line")).all()
    assert np.isfinite(ds.cka_without_pc1.sel(layer_a="x", layer_b="x"))


def test_lanczos_path_for_many_examples(tmp_path):
    rng = np.random.default_rng(7)
    n = blocks.DENSE_EIGH_MAX + 40
    layers = random_layers(rng, n, [12, 6])
    path = write_store(tmp_path / "acts.zarr", layers, chunk=128)
    ds = blocks.first_pc_analysis(path, layers=["layer0", "layer1"])
    ratios, _, stripped = reference(list(layers.values()))
    np.testing.assert_allclose(ds.pc1_ratio.values, ratios, rtol=1e-10)
    np.testing.assert_allclose(ds.cka_without_pc1.values, stripped, rtol=1e-9, atol=1e-11)


def test_real_store_and_file_roundtrip(tmp_path):
    import torch

    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    images = np.random.default_rng(0).integers(0, 256, size=(24, 1, 8, 8), dtype=np.uint8)
    path = tmp_path / "acts.zarr"
    names = activations.dump_activations(model, images, np.arange(24) % 10, np.arange(24), path,
                                         mean=[0.5], std=[0.25], layers=models.representation_layers(model),
                                         batch_size=8)
    out = tmp_path / "pc1" / "first_pc.nc"
    cka_steps.first_pc_to_file(path, out, layers=names[-2:])
    ds = xr.load_dataset(out)
    data = [np.asarray(activations.layer_arrays(path)[name][:]) for name in names[-2:]]
    ratios, cka, _ = reference(data)
    np.testing.assert_allclose(ds.pc1_ratio.values, ratios, rtol=1e-10)
    np.testing.assert_allclose(ds.cka.values, cka, rtol=1e-10, atol=1e-12)
    assert ds.attrs["source"] == str(path) and ds.attrs["produced_by"] == "repatlas.blocks.first_pc_analysis"
