"""Representation-mitosis metrics against independent computations, planted clones, bad input."""

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from repatlas import mitosis
from repatlas.steps import mitosis as mitosis_steps


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


@pytest.mark.parametrize("rescale", [True, False])
def test_chunk_accuracy_matches_direct_computation(rescale):
    f, w, b, y = random_layer()
    width = f.shape[1]
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 3, 7, width], repeats=8, seed=3, keep_repeats=True,
                               rescale=rescale)
    assert ds.attrs["rescale"] == int(rescale)
    for ci in range(ds.sizes["chunk_size"]):
        c = int(ds["chunk_size"].values[ci])
        scale = width / c if rescale else 1.0  # the paper's (width / c) F_S W_S^T + b
        direct = [((scale * (f[:, s] @ w[:, s].T) + b).argmax(1) == y).mean() for s in subsets(ds, ci)]
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
    f, w, b, y = mitosis.planted_clones(4000, d, k, noise=noise, n_classes=5, seed=0, rotate=False,
                                        permute=False)
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
    est = [mitosis.estimate_clones(*mitosis.planted_clones(1000, 12, k, noise=0.1, seed=0), seed=0)
           for k in (2, 4, 8)]
    assert np.all(np.diff(est) > 0)
    np.testing.assert_allclose(est, [2, 4, 8], rtol=0.3)
    # literal copies (no per-clone rotation): random chunks miss latent coordinates, so the
    # estimate is biased low (measured 1.37, 2.22, 3.75) but still grows with k
    lit = [mitosis.estimate_clones(*mitosis.planted_clones(1000, 16, k, noise=0.1, seed=0, rotate=False))
           for k in (2, 4, 8)]
    assert np.all(np.diff(lit) > 0)
    assert np.all(np.array(lit) < 0.8 * np.array([2, 4, 8]))


def test_critical_chunk_size_interpolates_in_log_size():
    ds = xr.Dataset({"r2_mean": ("chunk_size", [0.5, 0.8, 1.0])}, coords={"chunk_size": [1, 2, 4]})
    assert mitosis.critical_chunk_size(ds, 0.9) == pytest.approx(2 * np.sqrt(2))
    assert mitosis.critical_chunk_size(ds, 0.8) == pytest.approx(2)
    assert mitosis.critical_chunk_size(ds, 0.3) == 1
    assert np.isnan(mitosis.critical_chunk_size(ds.assign(r2_mean=ds.r2_mean * 0.5), 0.9))


def test_pca_chunk_size_closed_form():
    # orthogonal centred ±1 columns scaled to variances 4, 3, 2, 1: explained ratios .4 .7 .9 1
    from scipy.linalg import hadamard

    f = hadamard(8)[:, 1:5] * np.sqrt([4.0, 3, 2, 1])
    assert np.allclose(np.cov(f.T, bias=True), np.diag([4.0, 3, 2, 1]))
    assert ([mitosis.pca_chunk_size(f, t) for t in (0.3, 0.4, 0.65, 0.7, 0.9, 0.95, 1.0)]
            == [1, 1, 2, 2, 3, 4, 4])
    # a rank-3 layer of 20 neurons needs at most 3 components, whatever the threshold
    rng = np.random.default_rng(0)
    low = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 20)) + 5.0
    assert mitosis.pca_chunk_size(low, 1.0) == 3
    with pytest.raises(ValueError, match="threshold"):
        mitosis.pca_chunk_size(low, 0)
    with pytest.raises(ValueError, match="constant"):
        mitosis.pca_chunk_size(np.ones((5, 3)))


def test_chunk_r2_never_beats_principal_components():
    # Eckart–Young: in-sample R² of any c-neuron chunk ≤ explained-variance ratio of the top c PCs
    f, w, b, y = random_layer(width=16)
    ds = mitosis.chunk_metrics(f, w, b, y, [1, 2, 4, 8, 16], repeats=15, keep_repeats=True)
    ev = np.linalg.eigvalsh(np.cov(f.T))[::-1]
    top = np.cumsum(ev) / ev.sum()
    for ci, c in enumerate(ds["chunk_size"].values):
        assert np.all(ds["r2"].values[ci] <= top[c - 1] + 1e-9)
    # so the first chunk size whose mean R² reaches 0.9 is at least the rank floor
    first = ds["chunk_size"].values[np.argmax(ds["r2_mean"].values >= 0.9)]
    assert first >= mitosis.pca_chunk_size(f) > 1


def test_default_chunk_sizes():
    assert list(mitosis.default_chunk_sizes(48)) == [1, 2, 4, 8, 16, 32, 48]
    assert list(mitosis.default_chunk_sizes(8)) == [1, 2, 4, 8]
    assert list(mitosis.default_chunk_sizes(1)) == [1]


# ----------------------------------------------------------------------------- determinism, input


def test_deterministic_with_seed():
    f, w, b, y = random_layer()
    a = mitosis.chunk_metrics(f, w, b, y, [2, 5], repeats=6, seed=7, keep_repeats=True)
    xr.testing.assert_identical(a, mitosis.chunk_metrics(f, w, b, y, [2, 5], repeats=6, seed=7,
                                                         keep_repeats=True))
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


# ---------------------------------------------------------------------------- pipeline steps (ResNet and MLP)


def test_last_layer_units():
    assert mitosis.last_layer_units("mlp", 48) == 48
    assert [mitosis.last_layer_units("resnet", k) for k in (1, 2, 8)] == [64, 128, 512]
    with pytest.raises(ValueError, match="arch"):
        mitosis.last_layer_units("vit", 2)
    with pytest.raises(ValueError, match="width"):
        mitosis.last_layer_units("resnet", 0)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    from repatlas.steps.data import write_full, write_subset

    root = tmp_path_factory.mktemp("digits")
    write_full("digits", root / "full.npz")
    write_subset(root / "full.npz", root / "sub.npz", 60, 0)
    return root / "full.npz", root / "sub.npz"


@pytest.mark.parametrize("arch, width, units", [("resnet", 1, 64), ("resnet", 2, 128), ("mlp", 24, 24)])
def test_features_to_file_matches_the_model(tmp_path, digits_files, arch, width, units):
    from repatlas.checkpoints import save_checkpoint
    from repatlas.data import load_npz, standardise
    from repatlas.models import build_model

    full_path, sub_path = digits_files
    full, meta = load_npz(full_path)
    sub, _ = load_npz(sub_path)
    spec = {"arch": arch, "depth": 8 if arch == "resnet" else 2, "width": width,
            "input_shape": meta["shape"], "n_classes": meta["n_classes"]}
    torch.manual_seed(0)
    model = build_model(**spec)
    x_test = standardise(torch.as_tensor(full["x_test"]), meta["mean"], meta["std"])
    x_train = standardise(torch.as_tensor(sub["x"]), meta["mean"], meta["std"])
    with torch.no_grad():  # move BatchNorm running statistics away from (0, 1): eval mode must matter
        model.train()
        for _ in range(3):
            model(x_train)
        head = list(model.children())[-1]
        head.bias.copy_(torch.linspace(-1, 1, meta["n_classes"]))
    save_checkpoint(tmp_path / "model.pt", model, spec)

    info = mitosis_steps.features_to_file(tmp_path / "model.pt", full_path, sub_path, tmp_path / "f.npz")
    arrays, saved = load_npz(tmp_path / "f.npz")
    model.eval()
    with torch.no_grad():
        body = torch.nn.Sequential(*list(model.children())[:-1])  # everything but the final linear layer
        f_test, f_train = body(x_test).flatten(1).double().numpy(), body(x_train).flatten(1).double().numpy()
        out_test, out_train = model(x_test).double().numpy(), model(x_train).double().numpy()
    assert arrays["features_test"].shape == (len(full["y_test"]), units)
    assert arrays["features_train"].shape == (len(sub["y"]), units)
    np.testing.assert_allclose(arrays["features_test"], f_test, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays["features_train"], f_train, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays["logits_test"], out_test, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(arrays["weight"], head.weight.detach().double().numpy())
    np.testing.assert_array_equal(arrays["bias"], head.bias.detach().double().numpy())
    np.testing.assert_array_equal(arrays["labels_test"], full["y_test"])
    assert info["units"] == saved["units"] == units == mitosis.last_layer_units(arch, width)
    assert info["layer"] == ("pool" if arch == "resnet" else "layer2")
    assert info["test_accuracy"] == pytest.approx((out_test.argmax(1) == full["y_test"]).mean())
    assert info["train_accuracy"] == pytest.approx((out_train.argmax(1) == sub["y"]).mean())


def write_features(path, features, weight, bias, labels, spec):
    from repatlas.data import save_npz

    save_npz(path, {"model": spec,
                    "test_accuracy": float(((features @ weight.T + bias).argmax(1) == labels).mean()),
                    "train_accuracy": 1.0},
             features_test=features, labels_test=labels, weight=weight, bias=bias)


def test_chunks_to_file_counts_planted_clones(tmp_path):
    # 64 pooled features = 4 clones of a 16-dimensional representation (a "ResNet width 1" layer)
    x = mitosis.planted_clones(600, 16, 4, noise=0.1, seed=1)
    spec = {"arch": "resnet", "depth": 8, "width": 1}
    write_features(tmp_path / "f.npz", *x, spec)
    ds = mitosis_steps.chunks_to_file(tmp_path / "f.npz", tmp_path / "c.nc", repeats=10, seed=2,
                                      attrs={"regime": "converged", "model_seed": 2, "dataset": "synthetic",
                                             "n": 600})
    saved = xr.open_dataset(tmp_path / "c.nc").load()
    assert list(saved["chunk_size"].values) == [1, 2, 4, 8, 16, 32, 64]
    # critical chunk: where the mean R² crosses 0.9, linear in log(chunk size), recomputed here
    r2, c = saved["r2_mean"].values, saved["chunk_size"].values
    j = int(np.argmax(r2 >= 0.9))
    assert j > 0 and r2[j - 1] < 0.9 <= r2[j]
    c_star = np.exp(np.interp(0.9, r2[j - 1 : j + 1], np.log(c[j - 1 : j + 1])))
    assert saved.attrs["critical_chunk"] == pytest.approx(c_star)
    # rank floor ≤ one clone
    assert saved.attrs["pca_chunk"] == mitosis.pca_chunk_size(x[0]) <= 16 <= 2 * c_star
    assert saved.attrs["clones"] == pytest.approx(64 / c_star)
    np.testing.assert_allclose(saved.attrs["clones"], 4, rtol=0.3)
    assert ((saved.attrs["arch"], saved.attrs["depth"], saved.attrs["model_width"], saved.attrs["width"])
            == ("resnet", 8, 1, 64))
    assert (saved.attrs["regime"] == "converged" and saved.attrs["model_seed"] == 2
            and saved.attrs["seed"] == 2)
    assert saved.attrs["test_accuracy"] == pytest.approx(float(saved["full_accuracy"]))
    xr.testing.assert_allclose(saved[["r2_mean", "accuracy_mean"]], ds[["r2_mean", "accuracy_mean"]])


def test_chunks_to_file_bad_input(tmp_path):
    from repatlas.data import save_npz

    save_npz(tmp_path / "f.npz", {}, features_train=np.ones((4, 2)))
    with pytest.raises(KeyError, match="features_test"):
        mitosis_steps.chunks_to_file(tmp_path / "f.npz", tmp_path / "c.nc")
    write_features(tmp_path / "g.npz", *mitosis.planted_clones(50, 2, 2, seed=0), {"arch": "mlp"})
    with pytest.raises(ValueError, match="threshold"):
        mitosis_steps.chunks_to_file(tmp_path / "g.npz", tmp_path / "c.nc", threshold=0.0)
    assert not (tmp_path / "c.nc").exists()


def test_summary_table_one_row_per_model(tmp_path):
    paths, expected = [], []
    for arch, width, k in [("resnet", 1, 4), ("mlp", 32, 2)]:
        x = mitosis.planted_clones(300, 16 * 4 // k if arch == "resnet" else 16, k, noise=0.1, seed=k)
        write_features(tmp_path / f"{arch}.npz", *x, {"arch": arch, "depth": 2, "width": width})
        for regime in ("epoch2", "converged"):
            path = tmp_path / f"{arch}-{regime}.nc"
            mitosis_steps.chunks_to_file(tmp_path / f"{arch}.npz", path, repeats=4,
                                         attrs={"regime": regime, "model_seed": 0, "dataset": "synthetic",
                                                "n": 300})
            paths.append(path)
            expected.append((arch, regime, x[0].shape[1], xr.open_dataset(path).attrs["clones"]))
    mitosis_steps.summary_to_file(paths, tmp_path / "summary.csv")
    import pandas as pd

    table = pd.read_csv(tmp_path / "summary.csv")
    assert list(table.columns[: len(mitosis.SUMMARY_COLUMNS)]) == list(mitosis.SUMMARY_COLUMNS)
    assert {"clones_r2_0.8", "clones_r2_0.95", "clones_heldout_r2_0.9", "residual_corr_at_2critical",
            "chunk_accuracy_at_critical", "claim_constant_critical_chunk",
            "claim_mitosis_needs_zero_error"} <= set(table)
    # runs in order (arch, width, seed), each run's models by epoch (these files carry none: -1)
    assert list(table["arch"]) == ["mlp", "mlp", "resnet", "resnet"]
    for arch, regime, units, clones in expected:
        row = table[(table["arch"] == arch) & (table["regime"] == regime)].iloc[0]
        assert row["width"] == units and row["clones"] == pytest.approx(clones, rel=1e-5)
        assert row["clones_r2_0.9"] == pytest.approx(clones, rel=1e-5)
        assert row["train_error"] == pytest.approx(1 - row["train_accuracy"])
    assert table["claim_constant_critical_chunk"].isna().all()  # one width per arch: untestable
    assert set(table["model_width"]) == {1, 32}
    with pytest.raises(ValueError, match="datasets"):
        mitosis.clones_table([])


def test_figures_show_both_archs():
    from repatlas.plots import mitosis as plots

    datasets, cells = [], []
    for arch, widths, per_unit in [("mlp", [16, 64], 1), ("resnet", [1, 2], 64)]:
        for regime in ("converged", "early"):
            for w in widths:
                units = w * per_unit
                ds = xr.Dataset({v: ("chunk_size", np.linspace(0.1, 1, 3)) for v in
                                 ("error_mean", "r2_mean", "residual_corr_mean")},
                                coords={"chunk_size": [1, units // 2, units]})
                ds.attrs.update(width=units, test_accuracy=0.95, clones=units / 8)
                datasets.append(ds)
                cells.append({"arch": arch, "regime": regime, "width": w, "seed": 0})
    fig = plots.mitosis_chunks_figure(datasets, cells, title="t")
    assert len(fig.axes) == 6  # one row of three panels per architecture
    assert [ax.get_title(loc="left") for ax in fig.axes[::3]] == ["mlp", "resnet"]
    fig = plots.mitosis_clones_figure(datasets, cells)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("last hidden layer width")
    # the ResNet points sit at 64·k units: x data of the drawn lines include 64 and 128
    xs = {float(v) for line in ax.get_lines() for v in line.get_xdata()}
    assert {16.0, 64.0, 128.0} <= xs
    for ds, cell in zip(datasets, cells):  # snapshots: epoch and training error
        ds.attrs.update(train_accuracy=1.0 if cell["regime"] == "converged" else 0.9,
                        epoch=10 if cell["regime"] == "converged" else 2)
    fig = plots.mitosis_training_figure(datasets, cells, title="t")
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["mlp", "resnet"]
    xs = {round(float(v), 6) for line in fig.axes[0].get_lines() for v in line.get_xdata()}
    assert xs == {0.0, 0.1}


def test_config_schema_mitosis_archs():
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    from repatlas.config import ConfigError, check_schema

    schema_path = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    config = {"studies": ["mitosis"], "mitosis": {"archs": {"resnet": {"widths": [1, 2]}}}}
    check_schema(config, schema)
    validate(config, schema=str(schema_path))
    archs = config["mitosis"]["archs"]
    assert list(archs) == ["resnet"]  # an arch left out is not swept
    assert (archs["resnet"]["depth"] == 8 and archs["resnet"]["crop_pad"] == 1
            and archs["resnet"]["flip"] is False)
    default = {"studies": ["mitosis"]}
    validate(default, schema=str(schema_path))
    assert set(default["mitosis"]["archs"]) == {"mlp", "resnet"}
    assert (default["mitosis"]["archs"]["mlp"]["epochs"] == 150
            and default["mitosis"]["ensemble"]["arch"] == "mlp")
    assert default["mitosis"]["archs"]["mlp"]["early_epochs"] == [1, 2, 4, 8, 16, 32]
    assert default["mitosis"]["r2_thresholds"] == [0.8, 0.9, 0.95] and default["mitosis"]["heldout"] == 0.5
    with pytest.raises(ConfigError, match="early_epochs"):  # the old one-integer form (a separate run)
        check_schema({"mitosis": {"archs": {"mlp": {"early_epochs": 3}}}}, schema)
    with pytest.raises(ConfigError, match="mitosis.widths"):  # the pre-archs layout names the moved key
        check_schema({"mitosis": {"widths": [8, 16]}}, schema)
    with pytest.raises(ConfigError, match="mitosis.archs.cnn"):
        check_schema({"mitosis": {"archs": {"cnn": {}}}}, schema)


# ---------------------------------------------------------------------------- the paper's measures and claims


def test_rescaled_chunk_accuracy_keeps_the_bias_in_proportion():
    # a bias towards class 0 that the full layer outweighs: unscaled chunks (logits ~ c / width of the
    # full ones) mostly answer class 0; the paper's (width / c) rescaling restores the proportion
    f, w, _, y = mitosis.planted_clones(1000, 12, 4, noise=0.1, seed=0)
    b = np.zeros(10)
    b[0] = (f @ w.T).std()  # measured: full layer 0.72; chunk of 12: rescaled 0.46, unscaled 0.17
    kw = dict(repeats=20, compute_regression=False, keep_repeats=True)
    scaled = mitosis.chunk_metrics(f, w, b, y, [12, 48], **kw)
    plain = mitosis.chunk_metrics(f, w, b, y, [12, 48], rescale=False, **kw)
    assert (float(scaled["accuracy_mean"].sel(chunk_size=12))
            > float(plain["accuracy_mean"].sel(chunk_size=12)) + 0.2)
    s = subsets(plain, 0)[0]
    assert np.mean((f[:, s] @ w[:, s].T + b).argmax(1) == 0) > 0.5  # the bias decides
    # the full layer is unchanged, and without a bias rescaling cannot change any argmax
    assert (float(scaled["accuracy_mean"].sel(chunk_size=48))
            == float(plain["accuracy_mean"].sel(chunk_size=48)))
    no_bias = [mitosis.chunk_metrics(f, w, np.zeros(10), y, [3, 12], rescale=r, **kw)["accuracy"].values
               for r in (True, False)]
    np.testing.assert_array_equal(*no_bias)


def test_chunks_to_file_heldout_and_threshold_sensitivity(tmp_path):
    x = mitosis.planted_clones(600, 16, 4, noise=0.1, seed=3)
    write_features(tmp_path / "f.npz", *x, {"arch": "mlp", "depth": 2, "width": 64})
    ds = mitosis_steps.chunks_to_file(tmp_path / "f.npz", tmp_path / "c.nc", repeats=6, seed=1,
                                thresholds=(0.8, 0.95), heldout=0.4)
    held = mitosis.chunk_metrics(*x, mitosis.default_chunk_sizes(64), repeats=6, seed=1, heldout=0.4)
    np.testing.assert_array_equal(ds["r2_heldout_mean"], held["r2_mean"])
    np.testing.assert_array_equal(ds["residual_corr_heldout_mean"], held["residual_corr_mean"])
    assert (list(ds["threshold"].values) == [0.8, 0.9, 0.95]
            and list(ds["r2"].values) == ["in_sample", "heldout"])
    for kind, var in (("in_sample", "r2_mean"), ("heldout", "r2_heldout_mean")):
        for t in (0.8, 0.9, 0.95):
            c = mitosis.critical_chunk_size(ds, t, variable=var)
            assert float(ds["critical_chunk"].sel(r2=kind, threshold=t)) == pytest.approx(c)
            assert float(ds["clones"].sel(r2=kind, threshold=t)) == pytest.approx(64 / c)
    # a higher bar needs a bigger chunk; held-out R² (no fitting of noise) needs at least as big a one
    cc = ds["critical_chunk"]
    assert (cc.diff("threshold") > 0).all()
    assert (cc.sel(r2="heldout") >= cc.sel(r2="in_sample")).all()
    assert (ds["r2_heldout_mean"] <= ds["r2_mean"] + 1e-12).all()
    assert ds.attrs["clones"] == pytest.approx(float(ds["clones"].sel(r2="in_sample", threshold=0.9)))
    row = mitosis.chunk_summary(ds)
    c_star = ds.attrs["critical_chunk"]
    at = ds.sel(chunk_size=ds["chunk_size"].values[ds["chunk_size"].values >= c_star][0])
    assert row["residual_corr_at_critical"] == float(at["residual_corr_mean"])
    at2 = ds.sel(chunk_size=ds["chunk_size"].values[ds["chunk_size"].values >= 2 * c_star][0])
    assert row["residual_corr_at_2critical"] == float(at2["residual_corr_mean"])
    assert row["residual_corr_heldout_at_2critical"] == float(at2["residual_corr_heldout_mean"])
    assert row["chunk_accuracy_at_critical"] == float(at["accuracy_mean"])
    assert row["accuracy_gap_at_critical"] == pytest.approx(
        ds.attrs["test_accuracy"] - float(at["accuracy_mean"]))
    assert row["accuracy_gap_at_2critical"] == pytest.approx(
        ds.attrs["test_accuracy"] - float(at2["accuracy_mean"]))


def test_rank_d_mixture_has_the_critical_chunk_of_planted_clones():
    # no designed copies, rank 16 plus independent noise: c* ≈ 16 like 16-dimensional clones
    # (measured 15.7-15.9 vs 15.8-16.7 at widths 64-256): clones = width / effective dimension
    for width in (64, 256):
        mix = mitosis.chunk_metrics(*mitosis.planted_mixture(1000, 16, width, seed=0),
                                    mitosis.default_chunk_sizes(width), repeats=8)
        clones = mitosis.chunk_metrics(*mitosis.planted_clones(1000, 16, width // 16, seed=1),
                                       mitosis.default_chunk_sizes(width), repeats=8)
        c_mix, c_clones = mitosis.critical_chunk_size(mix), mitosis.critical_chunk_size(clones)
        assert c_mix == pytest.approx(16, rel=0.2) and c_mix == pytest.approx(c_clones, rel=0.2)
    f, w, b, y = mitosis.planted_mixture(500, 6, 30, noise=0.0, seed=2)
    assert np.linalg.matrix_rank(f) == 6 and ((f @ w.T + b).argmax(1) == y).mean() == 1.0
    with pytest.raises(ValueError, match="width"):
        mitosis.planted_mixture(10, 2, 0)


def summary_rows(widths, c_star, *, arch="mlp", residual=0.05, gap=0.0, train_error=0.0):
    """Converged summary rows with a given critical chunk per width (other columns plausible)."""
    import pandas as pd

    return pd.DataFrame([{"arch": arch, "regime": "converged", "width": w, "model_seed": 0,
                          "critical_chunk": c, "clones": w / c, "residual_corr_at_2critical": residual,
                          "accuracy_gap_at_critical": gap, "train_error": train_error, "epoch": 100}
                         for w, c in zip(widths, c_star)])


def test_claims_known_answers():
    import pandas as pd

    widths = [16, 32, 64, 128, 256]
    # c* follows the width up to 64, then stays at 40-50: onset 64, clones ∝ width above it
    t = mitosis.mitosis_claims(summary_rows(widths, [16, 30, 45, 40, 50]))
    assert (t["onset_width"] == 64).all() and (t["claim_constant_critical_chunk"] == 1).all()
    slope = np.polyfit(np.log([64, 128, 256]), np.log(np.array([64, 128, 256]) / [45, 40, 50]), 1)[0]
    assert t["clones_width_slope"].iloc[0] == pytest.approx(slope)
    assert (t["claim_clones_proportional_to_width"] == 1).all()
    assert list(t["above_onset"]) == [0, 0, 1, 1, 1]
    assert (t["claim_low_residual_corr"] == 1).all() and (t["claim_chunk_accuracy_matches_full"] == 1).all()
    # c* growing like sqrt(width): no onset, clones ~ width^0.5
    t = mitosis.mitosis_claims(summary_rows(widths, np.sqrt(widths) * 4))
    assert t["onset_width"].isna().all() and (t["claim_constant_critical_chunk"] == 0).all()
    assert t["clones_width_slope"].iloc[0] == pytest.approx(0.5)
    assert (t["claim_clones_proportional_to_width"] == 0).all() and t["claim_low_residual_corr"].isna().all()
    # one wide model with correlated residuals or a chunk far below the full layer fails its claim
    t = mitosis.mitosis_claims(summary_rows(widths, [16] * 5).assign(
        residual_corr_at_2critical=[0.05, 0.05, 0.05, 0.05, 0.3],
        accuracy_gap_at_critical=[0, 0, 0, 0.05, 0]))
    assert (t["claim_low_residual_corr"] == 0).all() and (t["claim_chunk_accuracy_matches_full"] == 0).all()
    # fewer than 3 widths: the width claims are untestable (empty)
    assert mitosis.mitosis_claims(
        summary_rows([16, 32], [8, 8]))["claim_constant_critical_chunk"].isna().all()
    # early stopping along one run: snapshots with training error > 0 have fewer clones
    conv = summary_rows([64, 128, 256], [16, 16, 16])
    snaps = pd.DataFrame([{"arch": "mlp", "regime": f"epoch{e}", "width": w, "model_seed": 0,
                           "critical_chunk": c, "clones": w / c, "train_error": err, "epoch": e}
                          for w in (64, 128, 256)
                          for e, c, err in ((2, 64, 0.3), (8, 32, 0.02), (32, 16, 0.0))])
    t = mitosis.mitosis_claims(pd.concat([conv, snaps], ignore_index=True))
    c = t[t["regime"] == "converged"]
    assert (c["clones_before_zero_error"] == c["width"] / 32).all()  # epoch 8, the last with error > 0
    assert (c["claim_mitosis_needs_zero_error"] == 1).all()
    assert t.loc[t["regime"] != "converged", "claim_mitosis_needs_zero_error"].isna().all()
    # "zero" allows an image or two (eval-mode BatchNorm): an error of 0.001 is zero, 0.01 is not
    snaps.loc[snaps["epoch"] == 32, "train_error"] = 0.001
    t = mitosis.mitosis_claims(pd.concat([conv.assign(train_error=0.001), snaps], ignore_index=True))
    assert (t.loc[t["regime"] == "converged", "clones_before_zero_error"] == c["width"].values / 32).all()
    assert (t.loc[t["regime"] == "converged", "claim_mitosis_needs_zero_error"] == 1).all()
    t = mitosis.mitosis_claims(pd.concat([conv.assign(train_error=0.01), snaps], ignore_index=True))
    assert (t.loc[t["regime"] == "converged", "claim_mitosis_needs_zero_error"] == 0).all()
    snaps.loc[snaps["epoch"] == 8, "critical_chunk"] = 20  # as many clones before zero error: fails
    snaps["clones"] = snaps["width"] / snaps["critical_chunk"]
    t = mitosis.mitosis_claims(pd.concat([conv, snaps], ignore_index=True))
    assert (t.loc[t["regime"] == "converged", "claim_mitosis_needs_zero_error"] == 0).all()


def test_claims_hold_on_planted_clones_of_fixed_size(tmp_path):
    # clones of a 16-dimensional latent at every width: the paper's picture, end to end through files
    datasets = []
    for width in (32, 64, 128):
        write_features(tmp_path / f"f{width}.npz", *mitosis.planted_clones(800, 16, width // 16, seed=width),
                       {"arch": "mlp", "depth": 2, "width": width})
        datasets.append(mitosis_steps.chunks_to_file(tmp_path / f"f{width}.npz", tmp_path / f"c{width}.nc",
                                                     repeats=6,
                                                     attrs={"regime": "converged", "model_seed": 0}))
    t = mitosis.clones_table(datasets)
    assert (t["claim_constant_critical_chunk"] == 1).all() and (t["onset_width"] == 32).all()
    assert (t["claim_clones_proportional_to_width"] == 1).all() and (t["claim_low_residual_corr"] == 1).all()
    np.testing.assert_allclose(t["clones"], [2, 4, 8], rtol=0.3)


def test_features_to_file_reads_a_snapshot_and_records_its_epoch(tmp_path, digits_files):
    from repatlas.checkpoints import save_checkpoint, snapshot_path
    from repatlas.data import load_npz
    from repatlas.models import build_model

    full_path, sub_path = digits_files
    _, meta = load_npz(full_path)
    spec = {"arch": "mlp", "depth": 2, "width": 8, "input_shape": meta["shape"],
            "n_classes": meta["n_classes"]}
    torch.manual_seed(0)
    save_checkpoint(snapshot_path(tmp_path / "snapshots", 3), build_model(**spec), spec, {"epoch": 3})
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "model.pt", build_model(**spec), spec, {"final": {"epoch": 7}})
    snap = mitosis_steps.features_to_file(tmp_path / "snapshots", full_path, sub_path, tmp_path / "a.npz",
                                          epoch=3)
    final = mitosis_steps.features_to_file(tmp_path / "model.pt", full_path, sub_path, tmp_path / "b.npz")
    assert snap["epoch"] == 3 and final["epoch"] == 7 and load_npz(tmp_path / "a.npz")[1]["epoch"] == 3
    assert not np.array_equal(load_npz(tmp_path / "a.npz")[0]["features_test"],
                              load_npz(tmp_path / "b.npz")[0]["features_test"])
