"""Representation-mitosis metrics against independent computations, planted clones, bad input."""

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from repatlas import mitosis


def random_layer(n=240, width=14, classes=4, seed=0):
    """Correlated features with an offset (so the intercept matters), a random last layer."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, width)) @ rng.standard_normal((width, width)) + rng.normal(3, 1, width)
    w = rng.standard_normal((classes, width))
    b = rng.standard_normal(classes)
    y = rng.integers(0, classes, n)
    return f, w, b, y


def subsets(ds, ci):
    return [np.flatnonzero(m) for m in ds["subset"].values[ci]]


def explicit_fit(f, s, alpha, fit_rows, score_rows):
    """Ridge with unpenalised intercept by the centred normal equations, float64."""
    x, t = f[fit_rows][:, s], f[fit_rows]
    mx, mt = x.mean(0), t.mean(0)
    coef = np.linalg.solve((x - mx).T @ (x - mx) + alpha * np.eye(len(s)), (x - mx).T @ (t - mt))
    return f[score_rows] - (mt + (f[score_rows][:, s] - mx) @ coef)


# ----------------------------------------------------------------------------- chunk accuracy


def test_chunk_accuracy_hand_made():
    # one neuron alone: neuron 0 predicts [0, 0, 1, 1], neuron 1 [0, 1, 1, 0]; both: [0, 0, 1, 0]
    f = np.array([[1.0, -1.0], [2.0, 1.0], [-1.0, 2.0], [-2.0, -3.0]])
    w = np.eye(2)
    b = np.array([0.0, 0.5])
    y = np.array([0, 1, 1, 0])
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 2], repeats=12, keep_repeats=True)
    by_neuron = {0: 0.5, 1: 1.0}
    for s, acc in zip(subsets(ds, 0), ds["accuracy"].values[0]):
        assert acc == by_neuron[int(s[0])]
    assert len({int(s[0]) for s in subsets(ds, 0)}) == 2  # both neurons drawn
    assert float(ds["full_accuracy"]) == ds.attrs["full_accuracy"] == 0.75
    assert np.all(ds["accuracy"].values[1] == 0.75)
    np.testing.assert_allclose(ds["error_mean"], 1 - ds["accuracy_mean"])


def test_chunk_accuracy_matches_direct_computation():
    f, w, b, y = random_layer()
    width = f.shape[1]
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 3, 7, width], repeats=8, seed=3, keep_repeats=True)
    for ci in range(ds.sizes["chunk_size"]):
        direct = [((f[:, s] @ w[:, s].T + b).argmax(1) == y).mean() for s in subsets(ds, ci)]
        np.testing.assert_array_equal(ds["accuracy"].values[ci], direct)
        assert all(len(s) == ds["chunk_size"].values[ci] for s in subsets(ds, ci))
        np.testing.assert_allclose(ds["accuracy_mean"].values[ci], np.mean(direct), rtol=0, atol=1e-15)
        np.testing.assert_allclose(ds["accuracy_std"].values[ci], np.std(direct), rtol=0, atol=1e-15)
    full = ((f @ w.T + b).argmax(1) == y).mean()
    assert ds["accuracy_mean"].sel(chunk_size=width) == full == float(ds["full_accuracy"])
    assert ds["accuracy_std"].sel(chunk_size=width) == 0


# ----------------------------------------------------------------------------- R²


@pytest.mark.parametrize("ridge", [1e-8, 5.0])
def test_r2_matches_sklearn_ridge(ridge):
    f, w, b, y = random_layer()
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 4, 9], repeats=3, seed=1, ridge=ridge, keep_repeats=True)
    for ci in range(3):
        for r, s in enumerate(subsets(ds, ci)):
            reg = Ridge(alpha=ridge, fit_intercept=True, solver="cholesky").fit(f[:, s], f)
            expected = r2_score(f, reg.predict(f[:, s]), multioutput="variance_weighted")
            np.testing.assert_allclose(ds["r2"].values[ci, r], expected, rtol=0, atol=1e-10)
            resid = explicit_fit(f, s, ridge, slice(None), slice(None))
            by_hand = 1 - (resid**2).sum() / ((f - f.mean(0)) ** 2).sum()
            np.testing.assert_allclose(ds["r2"].values[ci, r], by_hand, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ds["r2_mean"].values[ci], ds["r2"].values[ci].mean())
        np.testing.assert_allclose(ds["r2_std"].values[ci], ds["r2"].values[ci].std())


def test_r2_heldout_matches_sklearn():
    f, w, b, y = random_layer(n=300)
    ds = mitosis.chunk_metrics(f, w, b, y, [2, 6], repeats=2, seed=4, heldout=0.25, keep_repeats=True)
    # the split is a seeded permutation: 75 held-out rows, all rows used once
    fit_rows, score_rows = mitosis._heldout_split(len(f), 0.25, 4)
    assert len(score_rows) == 75 and len(np.union1d(fit_rows, score_rows)) == 300
    for ci in range(2):
        for r, s in enumerate(subsets(ds, ci)):
            reg = Ridge(alpha=1e-8).fit(f[fit_rows][:, s], f[fit_rows])
            pred = reg.predict(f[score_rows][:, s])
            expected = r2_score(f[score_rows], pred, multioutput="variance_weighted")
            np.testing.assert_allclose(ds["r2"].values[ci, r], expected, rtol=0, atol=1e-10)
    assert ds.attrs["heldout"] == 0.25


def test_full_width_chunk_reconstructs_exactly():
    f, w, b, y = random_layer()
    ds = mitosis.chunk_metrics(f, w, b, y, [f.shape[1]], repeats=4)
    np.testing.assert_allclose(ds["r2_mean"], 1.0, rtol=0, atol=1e-9)
    assert ds["r2_std"].item() == 0
    assert np.isnan(ds["residual_corr_mean"].item())  # no active residual columns


# ----------------------------------------------------------------------------- residual correlation


@pytest.mark.parametrize("heldout", [None, 0.3])
def test_residual_corr_matches_corrcoef(heldout):
    f, w, b, y = random_layer()
    n, width = f.shape
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 5, 11], repeats=3, seed=2, heldout=heldout, keep_repeats=True)
    if heldout is None:
        fit_rows = score_rows = np.arange(n)
    else:
        fit_rows, score_rows = mitosis._heldout_split(n, heldout, 2)
    for ci, c in enumerate([1, 5, 11]):
        for r, s in enumerate(subsets(ds, ci)):
            resid = explicit_fit(f, s, 1e-8, fit_rows, score_rows)
            active = resid.var(0) > 1e-6 * f[score_rows].var(0)
            assert active.sum() == width - c  # exactly the chunk's own neurons drop out
            assert not active[s].any()
            corr = np.corrcoef(resid[:, active], rowvar=False)
            off = ~np.eye(len(corr), dtype=bool)
            np.testing.assert_allclose(ds["residual_corr"].values[ci, r], np.abs(corr[off]).mean(), rtol=1e-9)
        np.testing.assert_allclose(ds["residual_corr_mean"].values[ci], ds["residual_corr"].values[ci].mean())


def test_residual_corr_skips_dead_and_duplicate_neurons():
    f, w, b, y = random_layer(width=8)
    f = np.c_[f, np.zeros(len(f)), f[:, 0]]  # a dead neuron and a copy of neuron 0
    w = np.c_[w, np.ones((len(w), 2))]
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 4], repeats=20, seed=0, keep_repeats=True)
    assert np.isfinite(ds["residual_corr"]).all() and np.isfinite(ds["r2"]).all()
    for r, s in enumerate(subsets(ds, 0)):
        resid = explicit_fit(f, s, 1e-8, slice(None), slice(None))
        active = resid.var(0) > 1e-6 * f.var(0)
        assert not active[8]  # dead neuron never active
        assert active[[0, 9]].sum() == (0 if s[0] in (0, 9) else 2)
        corr = np.corrcoef(resid[:, active], rowvar=False)
        off = ~np.eye(len(corr), dtype=bool)
        np.testing.assert_allclose(ds["residual_corr"].values[0, r], np.abs(corr[off]).mean(), rtol=1e-8)


# ----------------------------------------------------------------------------- planted clones


def test_planted_clones_structure():
    d, k, noise = 6, 3, 0.2
    f, w, b, y = mitosis.planted_clones(4000, d, k, noise=noise, n_classes=5, seed=0, rotate=False, permute=False)
    assert f.shape == (4000, d * k) and w.shape == (5, d * k) and b.shape == (5,) and y.shape == (4000,)
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(5))
    # literal copies differ only by independent noise of variance 2·noise²
    np.testing.assert_allclose((f[:, :d] - f[:, d : 2 * d]).std(0), noise * np.sqrt(2), rtol=0.05)
    np.testing.assert_allclose(w[:, :d], w[:, d : 2 * d])
    # the last layer reads the class from the averaged clones: close to perfect
    assert ((f @ w.T + b).argmax(1) == y).mean() > 0.9
    fr, wr, br, yr = mitosis.planted_clones(4000, d, k, noise=noise, n_classes=5, seed=0)
    assert ((fr @ wr.T + br).argmax(1) == yr).mean() > 0.9


def test_trends_on_planted_clones():
    x = mitosis.planted_clones(1000, 12, 4, noise=0.1, seed=0)
    ds = mitosis.chunk_metrics(*x, mitosis.default_chunk_sizes(48), repeats=20)
    assert list(ds["chunk_size"].values) == [1, 2, 4, 8, 16, 32, 48]
    assert np.all(np.diff(ds["r2_mean"].values) > 0)      # 0.08 … 0.65 (c=8), 0.97 (16), 1
    assert np.all(np.diff(ds["error_mean"].values) < 0)   # 0.80 … 0.05 (full layer)
    # residuals are uncorrelated noise once a chunk holds a clone's worth of neurons
    rc = ds["residual_corr_mean"].sel(chunk_size=[8, 32]).values
    assert rc[1] < 0.5 * rc[0]


def test_clone_estimate_grows_linearly_with_clones():
    # d = 12 (not on the power-of-two chunk grid), noise 0.1: measured 1.80, 3.51, 6.91
    # (0.90k, 0.88k, 0.86k); with d = 16 the same gives 2.08, 3.87, 8.00.
    est = [mitosis.estimate_clones(*mitosis.planted_clones(1000, 12, k, noise=0.1, seed=0), seed=0) for k in (2, 4, 8)]
    assert np.all(np.diff(est) > 0)
    np.testing.assert_allclose(est, [2, 4, 8], rtol=0.3)
    # literal copies (no per-clone rotation): random chunks miss latent coordinates, so the
    # estimate is biased low (measured 1.37, 2.22, 3.75) but still grows with k
    lit = [mitosis.estimate_clones(*mitosis.planted_clones(1000, 16, k, noise=0.1, seed=0, rotate=False)) for k in (2, 4, 8)]
    assert np.all(np.diff(lit) > 0)
    assert np.all(np.array(lit) < 0.8 * np.array([2, 4, 8]))


def test_critical_chunk_size_interpolates_in_log_size():
    ds = xr.Dataset({"r2_mean": ("chunk_size", [0.5, 0.8, 1.0])}, coords={"chunk_size": [1, 2, 4]})
    assert mitosis.critical_chunk_size(ds, 0.9) == pytest.approx(2 * np.sqrt(2))
    assert mitosis.critical_chunk_size(ds, 0.8) == pytest.approx(2)
    assert mitosis.critical_chunk_size(ds, 0.3) == 1
    assert np.isnan(mitosis.critical_chunk_size(ds.assign(r2_mean=ds.r2_mean * 0.5), 0.9))


def test_default_chunk_sizes():
    assert list(mitosis.default_chunk_sizes(48)) == [1, 2, 4, 8, 16, 32, 48]
    assert list(mitosis.default_chunk_sizes(8)) == [1, 2, 4, 8]
    assert list(mitosis.default_chunk_sizes(1)) == [1]


# ----------------------------------------------------------------------------- determinism, input


def test_deterministic_with_seed():
    f, w, b, y = random_layer()
    a = mitosis.chunk_metrics(f, w, b, y, [2, 5], repeats=6, seed=7, keep_repeats=True)
    xr.testing.assert_identical(a, mitosis.chunk_metrics(f, w, b, y, [2, 5], repeats=6, seed=7, keep_repeats=True))
    other = mitosis.chunk_metrics(f, w, b, y, [2, 5], repeats=6, seed=8, keep_repeats=True)
    assert not np.array_equal(a["subset"].values, other["subset"].values)
    # subsets of one chunk size do not depend on the other sizes requested
    alone = mitosis.chunk_metrics(f, w, b, y, [5], repeats=6, seed=7, keep_repeats=True)
    np.testing.assert_array_equal(alone["subset"].values[0], a["subset"].values[1])
    assert a.attrs["seed"] == 7 and a.attrs["repeats"] == 6
    x = mitosis.planted_clones(300, 4, 2, noise=0.1, seed=5)
    np.testing.assert_array_equal(x[0], mitosis.planted_clones(300, 4, 2, noise=0.1, seed=5)[0])
    assert mitosis.estimate_clones(*x, seed=3) == mitosis.estimate_clones(*x, seed=3)


def test_torch_inputs_match_numpy():
    f, w, b, y = random_layer(n=100, width=6)
    a = mitosis.chunk_metrics(f, w, b, y, [1, 3, 6], repeats=4)
    t = mitosis.chunk_metrics(*(torch.as_tensor(v) for v in (f, w, b, y)), [1, 3, 6], repeats=4)
    xr.testing.assert_identical(a, t)


@pytest.mark.parametrize(
    "change, name",
    [
        (dict(features=np.ones(10)), "features"),
        (dict(features=np.full((40, 6), np.nan)), "features"),
        (dict(weight=np.ones((3, 5))), "weight"),
        (dict(bias=np.ones(4)), "bias"),
        (dict(labels=np.zeros(39, int)), "labels"),
        (dict(labels=np.full(40, 3)), "labels"),
        (dict(labels=np.full(40, 0.5)), "labels"),
        (dict(chunk_sizes=[0, 2]), "chunk_sizes"),
        (dict(chunk_sizes=[2, 7]), "chunk_sizes"),
        (dict(chunk_sizes=[]), "chunk_sizes"),
        (dict(chunk_sizes=[1.5]), "chunk_sizes"),
        (dict(repeats=0), "repeats"),
        (dict(ridge=-1.0), "ridge"),
        (dict(heldout=1.0), "heldout"),
    ],
)
def test_bad_input(change, name):
    rng = np.random.default_rng(0)
    args = dict(features=rng.standard_normal((40, 6)), weight=np.ones((3, 6)), bias=np.zeros(3),
                labels=np.zeros(40, int), chunk_sizes=[1, 2])
    kw = {}
    for key, v in change.items():
        (args if key in args else kw)[key] = v
    with pytest.raises(ValueError, match=name):
        mitosis.chunk_metrics(*args.values(), **kw)


def test_bad_input_estimate_and_planted():
    x = mitosis.planted_clones(100, 4, 2, noise=0.1, seed=0)
    with pytest.raises(ValueError, match="chunk_sizes"):
        mitosis.estimate_clones(*x, chunk_sizes=[1, 9])
    with pytest.raises(ValueError, match="threshold"):
        mitosis.estimate_clones(*x, threshold=1.5)
    with pytest.raises(ValueError, match="weight"):
        mitosis.estimate_clones(x[0], x[1][:, :3], x[2], x[3])
    with pytest.raises(ValueError, match="noise"):
        mitosis.planted_clones(100, 4, 2, noise=-1.0)
    with pytest.raises(ValueError, match="k"):
        mitosis.planted_clones(100, 4, 0)
