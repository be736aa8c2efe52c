import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import xarray as xr

from repatlas import errors, models
from repatlas.checkpoints import save_checkpoint
from repatlas.data import save_npz
from repatlas.steps import widedeep as widedeep_steps

K = 3  # classes in the synthetic tests


def predictions(wrong: np.ndarray, labels: np.ndarray, rng=None) -> np.ndarray:
    """Integer predictions that are wrong exactly where `wrong` (models × examples) is True."""
    shift = 1 if rng is None else rng.integers(1, K, size=wrong.shape)
    return np.where(wrong, (labels + shift) % K, labels).astype(np.int64)


def exchangeable(rng, s_a, s_b, n):
    """Models drawn from one distribution: each errs independently with the example's difficulty."""
    labels = rng.integers(0, K, size=n)
    difficulty = rng.beta(0.5, 2.0, size=n)
    wrong = rng.random((s_a + s_b, n)) < difficulty
    pred = predictions(wrong, labels, rng)
    return pred[:s_a], pred[s_a:], labels


# ----------------------------------------------------------------------------- an independent reference


def reference(pred_a, pred_b, labels):
    """The whole analysis by direct loops in exact rational arithmetic."""
    pooled = [list(r) for r in pred_a] + [list(r) for r in pred_b]
    s_a, s = len(pred_a), len(pred_a) + len(pred_b)
    n = len(labels)
    classes = sorted({int(v) for v in labels})

    def rates(rows):
        return [Fraction(sum(r[i] != labels[i] for r in rows), len(rows)) for i in range(n)]

    def stats(rows_a, rows_b):
        ea, eb = rates(rows_a), rates(rows_b)
        t = sum((x - y) ** 2 for x, y in zip(ea, eb)) / n
        per_class = []
        for c in classes:
            idx = [i for i in range(n) if labels[i] == c]
            per_class.append((sum(ea[i] for i in idx) / len(idx), sum(eb[i] for i in idx) / len(idx)))
        return ea, eb, t, per_class

    ea, eb, t, per_class = stats(pooled[:s_a], pooled[s_a:])
    hits, class_hits, total = 0, [0] * len(classes), 0
    for chosen in itertools.combinations(range(s), s_a):
        rest = [j for j in range(s) if j not in chosen]
        _, _, t_star, pc_star = stats([pooled[j] for j in chosen], [pooled[j] for j in rest])
        total += 1
        hits += t_star >= t
        for c, ((xa, xb), (ya, yb)) in enumerate(zip(per_class, pc_star)):
            class_hits[c] += abs(ya - yb) >= abs(xa - xb)

    def disagreement(pairs):
        fr = [Fraction(sum(u != v for u, v in zip(p, q)), n) for p, q in pairs]
        return sum(fr) / len(fr) if fr else None

    a_rows, b_rows = pooled[:s_a], pooled[s_a:]
    return {
        "error_a": ea, "error_b": eb, "t": t, "p": Fraction(hits, total), "total": total,
        "classes": classes, "class": per_class, "class_p": [Fraction(h, total) for h in class_hits],
        "accuracy": [Fraction(sum(r[i] == labels[i] for i in range(n)), n) for r in pooled],
        "between": disagreement([(p, q) for p in a_rows for q in b_rows]),
        "within": disagreement(list(itertools.combinations(a_rows, 2))
                               + list(itertools.combinations(b_rows, 2))),
        "within_a": disagreement(list(itertools.combinations(a_rows, 2))),
    }


def test_everything_matches_a_direct_loop():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, K, size=40)
    wrong = rng.random((7, 40)) < np.linspace(0.05, 0.6, 40)
    wrong[4:, :8] = True  # a mild planted difference, so p is neither 0 nor 1
    pred = predictions(wrong, labels, rng)
    pred_a, pred_b = pred[:4], pred[4:]
    ds = errors.error_analysis(pred_a, pred_b, labels)
    ref = reference(pred_a, pred_b, labels)

    np.testing.assert_allclose(ds["error_a"], [float(v) for v in ref["error_a"]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ds["error_b"], [float(v) for v in ref["error_b"]], rtol=0, atol=1e-15)
    assert ds.attrs["statistic"] == pytest.approx(float(ref["t"]), rel=1e-12)
    assert ds.attrs["p_value"] == float(ref["p"])
    assert 0 < ds.attrs["p_value"] < 1
    assert ds.attrs["n_permutations"] == ref["total"] == math.comb(7, 4)
    assert ds.attrs["exact"] == 1 and ds.attrs["min_p"] == pytest.approx(1 / 35)

    assert list(ds["class"].values) == ref["classes"]
    np.testing.assert_allclose(ds["class_error_a"], [float(a) for a, _ in ref["class"]], atol=1e-15)
    np.testing.assert_allclose(ds["class_error_b"], [float(b) for _, b in ref["class"]], atol=1e-15)
    np.testing.assert_allclose(ds["class_error_diff"], [float(a - b) for a, b in ref["class"]], atol=1e-15)
    assert list(ds["class_p_value"].values) == [float(p) for p in ref["class_p"]]
    assert list(ds["class_count"].values) == [int((labels == c).sum()) for c in ref["classes"]]

    np.testing.assert_allclose(ds["accuracy"], [float(a) for a in ref["accuracy"]], atol=1e-15)
    assert list(ds["group"].values) == ["a"] * 4 + ["b"] * 3
    assert float(ds["mean_accuracy_a"]) == pytest.approx(float(sum(ref["accuracy"][:4]) / 4))
    assert float(ds["mean_accuracy_b"]) == pytest.approx(float(sum(ref["accuracy"][4:]) / 3))
    assert float(ds["disagreement_between"]) == pytest.approx(float(ref["between"]))
    assert float(ds["disagreement_within"]) == pytest.approx(float(ref["within"]))
    assert float(ds["disagreement_within_a"]) == pytest.approx(float(ref["within_a"]))


def test_identical_groups_give_zero_statistic_and_p_one():
    rng = np.random.default_rng(0)
    pred_a, _, labels = exchangeable(rng, 3, 3, 50)
    ds = errors.error_analysis(pred_a, pred_a.copy(), labels)
    assert ds.attrs["statistic"] == 0.0
    assert ds.attrs["p_value"] == 1.0
    assert np.all(ds["class_p_value"].values == 1.0)
    assert np.all(ds["class_error_diff"].values == 0.0)
    # The same models on both sides: between-group pairs include each model with itself.
    assert float(ds["disagreement_between"]) < float(ds["disagreement_within"])


def test_planted_difference_reaches_the_smallest_attainable_p():
    rng = np.random.default_rng(1)
    n, planted = 200, np.arange(40)
    labels = rng.integers(0, K, size=n)
    wrong = rng.random((12, n)) < 0.1
    wrong[:6, planted] = False  # A's six seeds all get the planted examples right
    wrong[6:, planted] = True  # B's six seeds all get them wrong
    pred = predictions(wrong, labels, rng)
    ds = errors.error_analysis(pred[:6], pred[6:], labels)
    assert ds.attrs["exact"] == 1 and ds.attrs["n_permutations"] == math.comb(12, 6)
    # Only the identity and its mirror image (groups swapped) reach the observed statistic.
    assert ds.attrs["min_p"] == pytest.approx(2 / 924)
    assert ds.attrs["p_value"] == ds.attrs["min_p"]
    np.testing.assert_array_equal(ds["error_b"].values[planted], 1.0)
    np.testing.assert_array_equal(ds["error_a"].values[planted], 0.0)


def test_exchangeable_models_do_not_pile_p_values_near_zero():
    rng = np.random.default_rng(2)
    p = np.array([errors.error_analysis(*exchangeable(rng, 5, 5, 60)).attrs["p_value"] for _ in range(30)])
    assert np.mean(p < 0.05) <= 0.25
    assert np.median(p) > 0.25  # under H0 p is (super-)uniform: median near 0.5


@pytest.mark.parametrize("s_a, s_b, min_p", [(2, 2, 1 / 3), (3, 2, 1 / 10), (1, 1, 1.0), (1, 4, 1 / 5)])
def test_exact_enumeration_counts_every_assignment(s_a, s_b, min_p):
    rng = np.random.default_rng(3)
    pred_a, pred_b, labels = exchangeable(rng, s_a, s_b, 20)
    ds = errors.error_analysis(pred_a, pred_b, labels)
    assert ds.attrs["exact"] == 1
    assert ds.attrs["n_permutations"] == math.comb(s_a + s_b, s_a)
    assert ds.attrs["min_p"] == pytest.approx(min_p)
    assert ds.attrs["min_p"] <= ds.attrs["p_value"] <= 1
    assert ds.attrs["seeds_a"] == s_a and ds.attrs["seeds_b"] == s_b
    if s_a < 2 or s_b < 2:
        assert np.isnan(float(ds["disagreement_within"]))


def test_random_assignments_approximate_the_exact_p():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, K, size=80)
    difficulty = rng.beta(0.5, 2.0, size=80)
    wrong = rng.random((16, 80)) < difficulty
    wrong[8:, :3] = rng.random((8, 3)) < 0.8  # a weak difference: p away from 0 and 1
    pred = predictions(wrong, labels, rng)
    exact = errors.error_analysis(pred[:8], pred[8:], labels, permutations=20000)
    sampled = errors.error_analysis(pred[:8], pred[8:], labels, permutations=12000, seed=5)
    assert exact.attrs["exact"] == 1 and exact.attrs["n_permutations"] == math.comb(16, 8) == 12870
    assert sampled.attrs["exact"] == 0 and sampled.attrs["n_permutations"] == 12000
    assert sampled.attrs["min_p"] == pytest.approx(1 / 12001)
    assert 0.02 < exact.attrs["p_value"] < 0.98
    assert abs(sampled.attrs["p_value"] - exact.attrs["p_value"]) < 0.03
    np.testing.assert_allclose(sampled["class_p_value"], exact["class_p_value"], atol=0.03)
    # Same seed, same draws.
    again = errors.error_analysis(pred[:8], pred[8:], labels, permutations=12000, seed=5)
    assert again.attrs["p_value"] == sampled.attrs["p_value"]


def test_bad_input_raises_naming_the_argument():
    pred = np.zeros((2, 5), dtype=np.int64)
    labels = np.zeros(5, dtype=np.int64)
    cases = [
        ((pred[0], pred, labels), "pred_a"),  # 1-D
        ((pred, pred.astype(float), labels), "pred_b"),  # not integer
        ((pred, pred, labels.astype(float)), "labels"),
        ((pred, pred[:, :4], labels), "pred_b"),  # other number of examples
        ((pred, pred, labels[:4]), "pred_a"),
        ((pred[:0], pred, labels), "pred_a"),  # no seeds
        ((pred, pred, labels[None]), "labels"),  # 2-D labels
    ]
    for args, name in cases:
        with pytest.raises(ValueError, match=name):
            errors.error_analysis(*args)
    with pytest.raises(ValueError, match="permutations"):
        errors.error_analysis(pred, pred, labels, permutations=0)


# ----------------------------------------------------------------------------- predictions and files


def test_predict_matches_the_models_argmax_in_batches():
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=6, n_classes=4)
    model.train()
    x = torch.randn(11, 6)
    pred = errors.predict(model, x, batch_size=3)
    with torch.no_grad():
        expected = model(x).argmax(1).numpy()
    assert pred.dtype == np.int64 and pred.shape == (11,)
    np.testing.assert_array_equal(pred, expected)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="x must be standardised"):
        errors.predict(model, torch.zeros(3, 6, dtype=torch.uint8))


@pytest.fixture
def tiny_study(tmp_path):
    """A tiny full.npz and four tiny ResNet checkpoints (two per group)."""
    rng = np.random.default_rng(0)
    x_test = rng.integers(0, 256, size=(12, 1, 8, 8)).astype(np.uint8)
    y_test = np.arange(12) % 3
    meta = {"dataset": "tiny", "checksum": "abc", "mean": [0.4], "std": [0.25], "n_classes": 3,
            "shape": [1, 8, 8]}
    full = tmp_path / "full.npz"
    save_npz(full, meta, x_train=x_test, y_train=y_test, x_test=x_test, y_test=y_test)
    spec = {"arch": "resnet", "depth": 8, "width": 1, "input_shape": [1, 8, 8], "n_classes": 3}
    paths = []
    for seed in range(4):
        torch.manual_seed(seed)
        model = models.resnet(8, 1, in_channels=1, n_classes=3)
        with torch.no_grad():
            model.fc.bias.copy_(torch.randn(3))  # so seeds differ visibly in their predictions
        paths.append(tmp_path / f"m{seed}" / "model.pt")
        save_checkpoint(paths[-1], model, spec)
    return full, paths, x_test, y_test


def test_predictions_to_file_and_error_analysis_to_file(tiny_study, tmp_path):
    full, model_paths, x_test, y_test = tiny_study
    pred_paths = []
    for mp in model_paths:
        out = mp.with_name("predictions.nc")
        widedeep_steps.predictions_to_file(mp, full, out)
        pred_paths.append(out)

    from repatlas.checkpoints import load_checkpoint

    model, _, _ = load_checkpoint(model_paths[0])
    x = torch.as_tensor((x_test.astype(np.float64) / 255.0 - 0.4) / 0.25, dtype=torch.float32)
    with torch.no_grad():
        expected = model(x).argmax(1).numpy()
    with xr.open_dataset(pred_paths[0]) as ds:
        ds = ds.load()
    np.testing.assert_array_equal(ds["prediction"].values, expected)
    np.testing.assert_array_equal(ds["label"].values, y_test)
    np.testing.assert_array_equal(ds["example"].values, np.arange(12))
    assert ds.attrs["test_accuracy"] == pytest.approx(np.mean(expected == y_test))
    assert "'arch': 'resnet'" in ds.attrs["model"]

    out = tmp_path / "errors.nc"
    widedeep_steps.error_analysis_to_file(pred_paths[:2], pred_paths[2:], out, permutations=100)
    with xr.open_dataset(out) as res:
        res = res.load()
    stacked = []
    for p in pred_paths:
        with xr.open_dataset(p) as d:
            stacked.append(d["prediction"].values)
    direct = errors.error_analysis(np.stack(stacked[:2]), np.stack(stacked[2:]), y_test, permutations=100)
    assert res.attrs["p_value"] == direct.attrs["p_value"]
    np.testing.assert_array_equal(res["error_a"], direct["error_a"])
    assert json.loads(res.attrs["files_a"]) == [str(p) for p in pred_paths[:2]]
    assert json.loads(res.attrs["files_b"]) == [str(p) for p in pred_paths[2:]]
    assert list(res["source"].values) == [str(p) for p in pred_paths]

    # A predictions file with other labels is refused, naming it.
    with xr.open_dataset(pred_paths[3]) as d:
        bad = d.load()
    bad["label"] = ("example", (y_test + 1) % 3)
    bad_path = tmp_path / "bad.nc"
    bad.to_netcdf(bad_path)
    with pytest.raises(ValueError, match="bad.nc: has other labels"):
        widedeep_steps.error_analysis_to_file(pred_paths[:2], [pred_paths[2], bad_path], tmp_path / "x.nc")


# ----------------------------------------------------------------------------- the pair table


def _with_accuracy(rng, s, n, accuracy_a, accuracy_b):
    """Predictions of s + s models over n examples: A's models each err on a fixed count of examples
    so that their accuracy is exactly accuracy_a; likewise B."""
    labels = rng.integers(0, K, size=n)
    wrong = np.zeros((2 * s, n), dtype=bool)
    for m in range(2 * s):
        errs = round(n * (1 - (accuracy_a if m < s else accuracy_b)))
        wrong[m, rng.choice(n, errs, replace=False)] = True
    pred = predictions(wrong, labels, rng)
    return pred[:s], pred[s:], labels


def test_error_table_reports_both_accuracies_and_warns_when_unmatched(tmp_path):
    rng = np.random.default_rng(7)
    matched = errors.error_analysis(*_with_accuracy(rng, 5, 1000, 0.850, 0.845), permutations=300)
    unmatched = errors.error_analysis(*_with_accuracy(rng, 5, 1000, 0.85, 0.80), permutations=300)
    two_seeds = errors.error_analysis(*_with_accuracy(rng, 2, 1000, 0.85, 0.85))
    table = errors.error_table({("A", "B"): matched, ("C", "D"): unmatched, ("E", "F"): two_seeds})
    assert table[["arch_a", "arch_b"]].values.tolist() == [["A", "B"], ["C", "D"], ["E", "F"]]
    np.testing.assert_allclose(table.mean_accuracy_a, [0.85, 0.85, 0.85])
    np.testing.assert_allclose(table.mean_accuracy_b, [0.845, 0.80, 0.85])
    np.testing.assert_allclose(table.accuracy_gap, [0.005, 0.05, 0.0], atol=1e-12)
    assert table.matched.tolist() == [True, False, True]
    assert table.warning[0] == ""
    assert "differ by 5.0 points" in table.warning[1]
    assert "too few seeds" in table.warning[2] and "differ" not in table.warning[2]
    assert table.min_p[0] == pytest.approx(2 / 252) and table.min_p[2] == pytest.approx(1 / 3)
    assert table.seeds_a.tolist() == [5, 5, 2]
    # a tighter tolerance unmatches the first pair too
    assert not errors.error_table({("A", "B"): matched}, max_gap=0.001).matched[0]
    with pytest.raises(ValueError, match="max_gap"):
        errors.error_table({("A", "B"): matched}, max_gap=2)
    path = tmp_path / "ab.nc"
    matched.to_netcdf(path)
    widedeep_steps.error_table_to_file({("A", "B"): path}, tmp_path / "errors.csv")
    import pandas as pd

    written = pd.read_csv(tmp_path / "errors.csv", keep_default_na=False)
    assert written.mean_accuracy_b[0] == pytest.approx(0.845) and written.warning[0] == ""
