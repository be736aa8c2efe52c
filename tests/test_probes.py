import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

from repatlas import checkpoints, data, models, probes
from repatlas.steps import widedeep as widedeep_steps

# ----------------------------------------------------------------------------- linear probes


class Columns(nn.Module):
    """Columns [start, stop) of the input, optionally reshaped (to exercise flattening)."""

    def __init__(self, start, stop, shape=None):
        super().__init__()
        self.start, self.stop, self.shape = start, stop, shape

    def forward(self, x):
        out = x[:, self.start : self.stop]
        return out.reshape(len(x), *self.shape) if self.shape else out


class Toy(nn.Module):
    """Three views of the input: separable signal (as a 3×2×2 map), label-free noise, hard classes."""

    def __init__(self):
        super().__init__()
        self.signal = Columns(0, 12, shape=(3, 2, 2))
        self.noise = Columns(12, 32)
        self.hard = Columns(32, 40)

    def forward(self, x):
        return self.signal(x), self.noise(x), self.hard(x)


def toy_data(n, seed, n_classes=3):
    """Columns 0–11: classes 8 units apart (separable); 12–31: noise independent of the label;
    32–39: overlapping Gaussian classes (Bayes accuracy well below 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = np.zeros((n_classes, 12))
    centres[np.arange(n_classes), np.arange(n_classes)] = 8.0
    signal = centres[y] + rng.standard_normal((n, 12))
    noise = rng.standard_normal((n, 20)) * rng.uniform(0.1, 10, 20)
    hard_centres = np.random.default_rng(99).standard_normal((n_classes, 8)) * 0.6
    hard = hard_centres[y] + rng.standard_normal((n, 8))
    return np.concatenate([signal, noise, hard], 1).astype(np.float32), y


@pytest.fixture(scope="module")
def toy_result():
    x_tr, y_tr = toy_data(1500, seed=1)
    x_te, y_te = toy_data(1500, seed=2)
    ds = probes.linear_probes(Toy(), x_tr, y_tr, x_te, y_te, layers=["signal", "noise", "hard"],
                              epochs=8, seed=0)
    return ds, (x_tr, y_tr, x_te, y_te)


def test_probe_structure_and_flattened_units(toy_result):
    ds, _ = toy_result
    assert ds.test_accuracy.dims == ("layer",)
    assert list(ds.layer.values) == ["signal", "noise", "hard"]
    np.testing.assert_allclose(ds.relative_depth.values, [0.0, 0.5, 1.0])
    assert ds.units.values.tolist() == [3 * 2 * 2, 20, 8]
    assert ds.attrs["lr"] == 0.01 and ds.attrs["batch_size"] == 128 and ds.attrs["n_classes"] == 3


def test_probe_finds_separable_layer_and_not_noise(toy_result):
    ds, (_, _, _, y_te) = toy_result
    acc = ds.test_accuracy.to_series()
    assert acc["signal"] >= 0.95
    assert ds.train_accuracy.sel(layer="signal") >= 0.95
    # label-free noise: chance is the share of the most frequent test class at best
    chance = np.bincount(y_te).max() / len(y_te)
    assert abs(acc["noise"] - 1 / 3) < 0.06 and acc["noise"] <= chance + 0.04


def test_probe_agrees_with_sklearn_logistic_regression(toy_result):
    from sklearn.linear_model import LogisticRegression

    ds, (x_tr, y_tr, x_te, y_te) = toy_result
    for layer, cols in (("hard", slice(32, 40)), ("signal", slice(0, 12))):
        clf = LogisticRegression(max_iter=5000).fit(x_tr[:, cols].astype(np.float64), y_tr)
        ref = clf.score(x_te[:, cols].astype(np.float64), y_te)
        assert abs(float(ds.test_accuracy.sel(layer=layer)) - ref) <= 0.03, (layer, ref)
    # the hard layer is genuinely hard, so agreement there is informative
    assert float(ds.test_accuracy.sel(layer="hard")) < 0.9


def test_probe_is_invariant_to_affine_rescaling_of_a_layer():
    """Per-unit mean and one per-layer scale: x → 2¹⁰·x + b per unit leaves the probe unchanged."""

    class Scaled(nn.Module):
        def __init__(self, scale, shift):
            super().__init__()
            self.hard = nn.Identity()
            self.scale, self.shift = scale, shift

        def forward(self, x):
            return self.hard(x[:, 32:40] * self.scale + self.shift)

    x_tr, y_tr = toy_data(400, seed=3)
    x_te, y_te = toy_data(400, seed=4)
    shift = torch.linspace(-50, 50, 8)
    a = probes.linear_probes(Scaled(1.0, 0.0), x_tr, y_tr, x_te, y_te, layers=["hard"], epochs=3)
    b = probes.linear_probes(Scaled(1024.0, shift), x_tr, y_tr, x_te, y_te, layers=["hard"], epochs=3)
    # float rounding of the shifted features may move at most one borderline example
    assert abs(float(a.test_accuracy[0] - b.test_accuracy[0])) <= 1 / len(y_te)
    assert abs(float(a.train_accuracy[0] - b.train_accuracy[0])) <= 1 / len(y_tr)


def test_probe_is_deterministic_for_a_seed():
    x_tr, y_tr = toy_data(300, seed=5)
    x_te, y_te = toy_data(300, seed=6)
    run = lambda seed: probes.linear_probes(  # noqa: E731
        Toy(), x_tr, y_tr, x_te, y_te, epochs=2, batch_size=32, seed=seed, layers=["hard", "noise"])
    xr.testing.assert_identical(run(7), run(7))


def test_probe_bad_input_errors():
    x, y = toy_data(50, seed=0)
    with pytest.raises(KeyError, match="no_such_layer"):
        probes.linear_probes(Toy(), x, y, x, y, layers=["signal", "no_such_layer"], epochs=1)
    with pytest.raises(ValueError, match="y_train"):
        probes.linear_probes(Toy(), x, y[:-1], x, y, layers=["signal"], epochs=1)
    with pytest.raises(ValueError, match="y_test"):
        probes.linear_probes(Toy(), x, y, x[:-3], y, layers=["signal"], epochs=1)


def test_probe_leaves_a_batchnorm_network_frozen():
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(40, 1, 6, 6)
    y = np.arange(40) % 3
    ds = probes.linear_probes(model, x, y, x, y, epochs=1, batch_size=16)
    assert list(ds.layer.values) == models.representation_layers(model)
    assert model.training  # mode restored
    for k, v in model.state_dict().items():  # BN running statistics untouched: eval mode throughout
        assert torch.equal(v, before[k]), k


# ----------------------------------------------------------------------------- block pruning


def small_resnet(seed=0):
    """Depth 14: blocks 1, 2 (stage 1), 3 (↓), 4 (stage 2), 5 (↓), 6 (stage 3); random BN state."""
    torch.manual_seed(seed)
    model = models.resnet(14, 1, in_channels=1, n_classes=4)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def manual_accuracy(model, x, y, skip=()):
    """Forward through the top-level children by hand, skipping `skip`; one batch, numpy argmax."""
    with torch.no_grad():
        h = x
        for name, child in model.named_children():
            if name not in skip:
                h = child(h)
    return float((h.numpy().argmax(1) == np.asarray(y)).mean())


def test_removable_blocks_are_the_stride_one_identity_shortcut_blocks():
    assert probes.removable_blocks(small_resnet()) == ["block1", "block2", "block4", "block6"]
    assert probes.removable_blocks(models.mlp(2, 8, in_features=4, n_classes=2)) == []


def test_removing_a_block_with_zero_residual_branch_keeps_the_logits():
    model = small_resnet()
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        intact = model(x)
        without = probes.prune(model, ["block4"])(x)
        model.block4.bn2.weight.zero_()
        model.block4.bn2.bias.zero_()
        full = model(x)
        pruned_model = probes.prune(model, ["block4"])
        pruned = pruned_model(x)
    assert isinstance(pruned_model.block4, nn.Identity)
    assert isinstance(model.block4, models.BasicBlock)  # the original is untouched
    torch.testing.assert_close(pruned, full)
    # with its residual branch intact the same block does change the logits
    torch.testing.assert_close(without, pruned)
    assert not torch.allclose(intact, without, atol=1e-3)


def test_prune_refuses_downsampling_and_unknown_blocks():
    model = small_resnet()
    with pytest.raises(ValueError, match="block3"):
        probes.prune(model, ["block1", "block3"])
    with pytest.raises(KeyError, match="block99"):
        probes.prune(model, ["block99"])


@pytest.fixture(scope="module")
def planted_labels():
    """Labels = the model's own predictions, so the unpruned accuracy is exactly 1."""
    model = small_resnet(seed=1)
    x = torch.randn(120, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    return model, x, y


def test_inside_outside_labels_on_hand_made_blocks(planted_labels):
    model, x, y = planted_labels
    layers = models.representation_layers(model)  # stem, block1..block6, pool → indices 0..7
    ds = probes.pruning_experiment(model, x, y, layers, [(0, 2), (4, 6)])
    assert list(ds.removed.values) == ["block1", "block2", "block4", "block6"]
    # block4's input is block3 (index 3), outside (4, 6); the others sit with their input in a block
    assert ds.inside.values.tolist() == [True, True, False, True]
    assert list(ds.input_layer.values) == ["stem", "block1", "block3", "block5"]
    ds = probes.pruning_experiment(model, x, y, layers, [(1, 2)])
    assert ds.inside.values.tolist() == [False, True, False, False]  # block1's input (stem) is outside
    assert np.isnan(probes.pruning_experiment(model, x, y, layers, []).attrs["mean_change_inside"])


def test_accuracy_change_matches_independent_evaluation(planted_labels):
    model, x, y = planted_labels
    layers = models.representation_layers(model)
    ds = probes.pruning_experiment(model, x, y, layers, [(0, 2), (4, 6)], batch_size=50)
    assert ds.attrs["base_accuracy"] == 1.0
    expected = {b: manual_accuracy(model, x, y, skip={b}) - 1.0
                for b in ("block1", "block2", "block4", "block6")}
    for block, change in expected.items():
        assert float(ds.accuracy_change.sel(removed=block)) == pytest.approx(change, abs=1e-12)
    assert any(c < 0 for c in expected.values())  # removal does hurt somewhere: the check has teeth
    inside = [expected[b] for b in ("block1", "block2", "block6")]
    assert ds.attrs["mean_change_inside"] == pytest.approx(np.mean(inside), abs=1e-12)
    assert ds.attrs["mean_change_outside"] == pytest.approx(expected["block4"], abs=1e-12)
    assert "no" in ds.attrs["fine_tuning"].lower() or "none" in ds.attrs["fine_tuning"].lower()


def test_pruning_experiment_bad_blocks(planted_labels):
    model, x, y = planted_labels
    layers = models.representation_layers(model)
    with pytest.raises(ValueError, match="block"):
        probes.pruning_experiment(model, x, y, layers, [(3, 8)])
    with pytest.raises(ValueError, match="block2"):
        probes.pruning_experiment(model, x, y, ["stem", "block1"], [])


# ----------------------------------------------------------------------------- pipeline steps


@pytest.fixture()
def tiny_files(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (48, 1, 6, 6), dtype=np.uint8)
    y_train = np.arange(48) % 3
    x_test = rng.integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)
    y_test = np.arange(30) % 3
    meta = {"dataset": "tiny", "checksum": "abc", "n_classes": 3, "shape": [1, 6, 6],
            "mean": [0.4], "std": [0.3]}
    data.save_npz(tmp_path / "full.npz", meta, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data.save_npz(tmp_path / "sub.npz", {**meta, "checksum": "sub"}, x=x_train[:24], y=y_train[:24],
                  index=np.arange(24))
    # full-scale residual branches: removing a block of this untrained model changes its output
    spec = {"arch": "resnet", "depth": 8, "width": 1, "input_shape": [1, 6, 6], "n_classes": 3,
            "residual_bn_init": "one"}
    torch.manual_seed(0)
    model = models.build_model(**spec)
    checkpoints.save_checkpoint(tmp_path / "model.pt", model, spec)
    return tmp_path, model.eval(), (x_test, y_test)


def test_probes_to_file(tiny_files):
    d, _, (x_test, _) = tiny_files
    widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "probes.nc",
                          epochs=2, lr=0.01, batch_size=8, seed=0)
    ds = xr.open_dataset(d / "probes.nc")
    assert list(ds.layer.values) == ["stem", "block1", "block2", "block3", "pool"]
    # 6×6 maps: 16 channels, then stride 2 → 3×3 with 32, then → 2×2 with 64; pool 64
    assert ds.units.values.tolist() == [16 * 36, 16 * 36, 32 * 9, 64 * 4, 64]
    assert ds.attrs["n_train"] == 24 and ds.attrs["n_test"] == len(x_test)
    assert json.loads(ds.attrs["model"])["depth"] == 8
    assert ((ds.test_accuracy >= 0) & (ds.test_accuracy <= 1)).all()
    # random pixels: the input probe is far below the ceiling, so the layers were probed
    assert ds.attrs["status"] == "probed" and ds.attrs["input_test_accuracy"] < 0.9


def test_probes_to_file_stops_at_the_input_ceiling(tiny_files):
    d, _, _ = tiny_files
    options = dict(epochs=2, lr=0.01, batch_size=8, seed=0)
    widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "probes.nc", **options)
    x_train, y_train, x_test, y_test = data.load_classification(d / "full.npz", d / "sub.npz")
    reference = probes.input_probe(x_train, y_train, x_test, y_test, **options)
    accuracy = float(reference.test_accuracy.values[0])
    with xr.open_dataset(d / "probes.nc") as ds:
        assert ds.attrs["input_test_accuracy"] == accuracy
    # a ceiling at (or below) the input probe's accuracy: the layers are not probed
    widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "ceiling.nc",
                                  input_ceiling=accuracy, **options)
    with xr.open_dataset(d / "ceiling.nc") as ds:
        assert ds.attrs["status"] == "ceiling" and ds.attrs["input_ceiling"] == accuracy
        assert list(ds.layer.values) == ["stem", "block1", "block2", "block3", "pool"]
        assert np.isnan(ds.test_accuracy.values).all() and ds.attrs["n_classes"] == 3
    with pytest.raises(ValueError, match="input_ceiling"):
        widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "x.nc",
                                      input_ceiling=0, **options)


def test_input_probe_is_a_probe_on_the_flattened_input():
    rng = np.random.default_rng(3)
    y = np.arange(900) % 3
    x = rng.standard_normal((900, 1, 4, 4)).astype(np.float32)
    x[:, 0, 0, 0] += 4.0 * y  # pixel 0 separates the classes linearly (Bayes accuracy ~0.97)
    ds = probes.input_probe(x[:600], y[:600], x[600:], y[600:], epochs=5, lr=0.01, batch_size=32)
    assert list(ds.layer.values) == ["input"] and ds.units.values.tolist() == [16]
    assert ds.test_accuracy.values[0] > 0.9
    x[:, 0, 0, 0] = rng.standard_normal(900)  # now nothing separates them: chance
    ds = probes.input_probe(x[:600], y[:600], x[600:], y[600:], epochs=5, lr=0.01, batch_size=32)
    assert ds.test_accuracy.values[0] < 0.45


def test_pruning_to_file(tiny_files):
    d, model, (x_test, y_test) = tiny_files
    widedeep_steps.pruning_to_file(d / "model.pt", d / "full.npz", d / "pruning.nc")
    ds = xr.open_dataset(d / "pruning.nc")
    assert list(ds.removed.values) == ["block1"] and "inside" not in ds  # labelled later, from the CKA
    assert json.loads(ds.attrs["layers"]) == models.representation_layers(model)
    x = torch.as_tensor((x_test / 255.0 - 0.4) / 0.3, dtype=torch.float32)
    base = manual_accuracy(model, x, y_test)
    assert ds.attrs["base_accuracy"] == pytest.approx(base, abs=1e-12)
    pruned = manual_accuracy(model, x, y_test, skip={"block1"})
    assert float(ds.accuracy.values[0]) == pytest.approx(pruned, abs=1e-12)


def test_pruning_to_file_on_the_probe_subset(tiny_files):
    d, model, _ = tiny_files
    widedeep_steps.pruning_to_file(d / "model.pt", d / "full.npz", d / "pruning.nc", examples=12)
    ds = xr.open_dataset(d / "pruning.nc")
    full, _ = data.load_npz(d / "full.npz")
    images, labels, _ = data.probe_set(full, 12)
    assert ds.attrs["n_test"] == 12
    x = torch.as_tensor((images / 255.0 - 0.4) / 0.3, dtype=torch.float32)
    assert ds.attrs["base_accuracy"] == pytest.approx(manual_accuracy(model, x, labels), abs=1e-12)


def test_probe_table_rows_and_ceiling(tiny_files):
    d, _, _ = tiny_files
    options = dict(epochs=2, lr=0.01, batch_size=8, seed=0)
    widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "probed.nc", **options)
    widedeep_steps.probes_to_file(d / "model.pt", d / "full.npz", d / "sub.npz", d / "ceiling.nc",
                                  input_ceiling=1e-9, **options)
    ids = ["tiny-n24-resnet-d8-w1-s0", "tiny-n24-resnet-d8-w1-s1"]
    widedeep_steps.probe_table_to_file({ids[0]: d / "probed.nc", ids[1]: d / "ceiling.nc"}, d / "probes.csv")
    table = pd.read_csv(d / "probes.csv", dtype={"best_layer": "str"}).fillna({"best_layer": ""})
    with xr.open_dataset(d / "probed.nc") as ds:
        acc = ds.test_accuracy.values
        names = list(ds.layer.values)
        input_accuracy = ds.attrs["input_test_accuracy"]
    assert table.status.tolist() == ["probed", "ceiling"] and table.seed.tolist() == [0, 1]
    assert table.input_test_accuracy.tolist() == pytest.approx([input_accuracy] * 2)
    row = table.iloc[0]
    assert (row.first_layer_accuracy, row.last_layer_accuracy) == pytest.approx((acc[0], acc[-1]))
    assert (row.best_layer_accuracy == pytest.approx(acc.max())
            and row.best_layer == names[int(np.argmax(acc))])
    assert np.isnan(table.best_layer_accuracy[1]) and table.best_layer[1] == ""
