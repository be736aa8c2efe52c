import math

import numpy as np
import pytest
import torch
from torch import nn

from repatlas import ensembles as ens
from repatlas.models import mlp

# ----------------------------------------------------------------------------- ensemble predictions

# Three members' probabilities on four two-class examples (logits = log p, so softmax gives p back).
P = np.array(
    [
        [[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]],  # predicts 0 0 1 1 -> 2/4 correct
        [[0.7, 0.3], [0.3, 0.7], [0.45, 0.55], [0.55, 0.45]],  # 0 1 1 0 -> 2/4
        [[0.2, 0.8], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7]],  # 1 1 0 1 -> 3/4
    ]
)
LABELS = np.array([0, 1, 0, 1])
# By hand: pairs AB, AC, BC get 3/4, 4/4, 3/4 right; all three get 4/4 right.
CURVE = [(0.5 + 0.5 + 0.75) / 3, (0.75 + 1.0 + 0.75) / 3, 1.0]


def test_ensemble_probs_is_the_mean_of_member_probabilities():
    logits = [np.log(p) for p in P]
    got = ens.ensemble_probs(logits)
    np.testing.assert_allclose(got[:, 0], [1.8 / 3, 1.0 / 3, 1.65 / 3, 1.05 / 3], atol=1e-12)
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-12)
    # the same from an (M, N, C) tensor, and logits shifted per row (softmax is shift-invariant)
    shifted = torch.tensor(np.log(P)) + torch.arange(4.0)[None, :, None]
    np.testing.assert_allclose(ens.ensemble_probs(shifted), got, atol=1e-12)
    assert ens.ensemble_accuracy(logits, LABELS) == 1.0
    # combine="logits": softmax of the mean log-probabilities = normalised geometric mean
    geo = np.prod(P, axis=0) ** (1 / 3)
    np.testing.assert_allclose(
        ens.ensemble_probs(logits, combine="logits"), geo / geo.sum(1, keepdims=True), atol=1e-12
    )


def test_ensemble_accuracy_curve_matches_hand_computation():
    logits = [np.log(p) for p in P]
    exact = ens.ensemble_accuracy_curve(logits, LABELS, orders="all")
    assert list(exact["size"].values) == [1, 2, 3]
    np.testing.assert_allclose(exact.values, CURVE, atol=1e-12)
    sampled = ens.ensemble_accuracy_curve(logits, LABELS, orders=3000, seed=1)
    np.testing.assert_allclose(sampled.values, CURVE, atol=0.02)
    assert sampled.values[-1] == 1.0  # the full ensemble is the same for every ordering
    one = ens.ensemble_accuracy_curve(logits, LABELS, orders=1, seed=0).values
    assert one[0] in (0.5, 0.75) and one[1] in (0.75, 1.0)


# ----------------------------------------------------------------------------- KD loss


def _np_softmax(z, t=1.0):
    z = np.asarray(z, np.float64) / t
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_kd(s, t, y, temperature, alpha):
    p, q = _np_softmax(t, temperature), _np_softmax(s, temperature)
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    ce = -np.mean(np.log(_np_softmax(s)[np.arange(len(y)), y]))
    return alpha * temperature**2 * kl + (1 - alpha) * ce, kl, ce


@pytest.fixture
def kd_inputs():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(6, 5)) * 2
    t = rng.normal(size=(6, 5)) * 2
    y = rng.integers(0, 5, 6)
    return s, t, y


def test_kd_loss_matches_numpy(kd_inputs):
    s, t, y = kd_inputs
    for temperature, alpha in [(4.0, 0.9), (3.0, 0.7), (1.0, 0.5)]:
        want, _, _ = _np_kd(s, t, y, temperature, alpha)
        got = ens.kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y),
                          temperature=temperature, alpha=alpha)
        assert got.item() == pytest.approx(want, rel=1e-10)
    # default T=4, alpha=0.9
    got = ens.kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y))
    assert got.item() == pytest.approx(_np_kd(s, t, y, 4.0, 0.9)[0], rel=1e-10)


def test_kd_loss_alpha_zero_is_cross_entropy_and_T_squared_scaling(kd_inputs):
    s, t, y = kd_inputs
    _, _, ce = _np_kd(s, t, y, 1.0, 0.0)
    for temperature in (1.0, 4.0):
        got = ens.kd_loss(torch.tensor(s), torch.tensor(t), y, temperature=temperature, alpha=0.0)
        assert got.item() == pytest.approx(ce, rel=1e-12)
    for temperature in (1.0, 2.0, 5.0):
        _, kl, _ = _np_kd(s, t, y, temperature, 1.0)
        got = ens.kd_loss(torch.tensor(s), torch.tensor(t), None, temperature=temperature, alpha=1.0)
        assert got.item() / temperature**2 == pytest.approx(kl, rel=1e-10)
    with pytest.raises(ValueError):
        ens.kd_loss(torch.tensor(s), torch.tensor(t), None, alpha=0.5)


def test_kd_loss_gradient_vanishes_when_student_equals_teacher(kd_inputs):
    s, t, y = kd_inputs
    student = torch.tensor(t, requires_grad=True)
    loss = ens.kd_loss(student, torch.tensor(t), y, temperature=4.0, alpha=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert student.grad.abs().max().item() < 1e-12
    other = torch.tensor(s, requires_grad=True)
    ens.kd_loss(other, torch.tensor(t), y, temperature=4.0, alpha=1.0).backward()
    assert other.grad.abs().max().item() > 1e-3


def test_kd_loss_teacher_forms_agree(kd_inputs):
    s, t, y = kd_inputs
    rng = np.random.default_rng(1)
    members = np.stack([t, t + rng.normal(size=t.shape), 2 * t])
    T = 3.0
    mixture = np.mean([_np_softmax(m, T) for m in members], axis=0)  # mean of tempered probs
    from_logits = ens.kd_loss(torch.tensor(s), torch.tensor(members), y, temperature=T, alpha=0.8)
    from_probs = ens.kd_loss(torch.tensor(s), mixture, y, temperature=T, alpha=0.8)  # auto -> probs
    assert from_logits.item() == pytest.approx(from_probs.item(), rel=1e-10)
    np.testing.assert_allclose(ens.teacher_distribution(members, T), mixture, atol=1e-12)
    # averaging logits instead is a different target
    mean_logit = ens.kd_loss(torch.tensor(s), torch.tensor(members.mean(0)), y, temperature=T, alpha=0.8)
    assert abs(mean_logit.item() - from_logits.item()) > 1e-4


# ----------------------------------------------------------------------------- training


def blobs(n=120, d=6, k=3, seed=0):
    centres = np.random.default_rng(123).normal(size=(k, d)) * 3  # the same for every seed
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def make_net(seed, depth=1, width=16, d=6, k=3, activation="relu"):
    torch.manual_seed(seed)
    return mlp(depth, width, in_features=d, n_classes=k, activation=activation)


def test_train_classifier_learns_and_is_deterministic():
    x, y = blobs()
    xt, yt = blobs(seed=1)

    def run(seed, **kw):
        model = make_net(seed)
        return ens.train_classifier(model, x, y, xt, yt, epochs=4, batch_size=16, lr=0.05, seed=seed, **kw)

    a, ha = run(1)
    b, hb = run(1)
    c, hc = run(2)
    assert ha == hb
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert ha != hc
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    assert [h["epoch"] for h in ha] == [1, 2, 3, 4]
    assert ha[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert ha[-1]["test_acc"] > 0.9 and ha[-1]["train_loss"] < ha[0]["train_loss"]
    # same init, different batch-order seed -> different weights
    model = make_net(1)
    d, _ = ens.train_classifier(model, x, y, epochs=2, batch_size=16, seed=5)
    e, _ = ens.train_classifier(make_net(1), x, y, epochs=2, batch_size=16, seed=6)
    assert not torch.equal(d.logits.weight, e.logits.weight)
    # the global RNG is left alone
    net = make_net(3)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    ens.train_classifier(net, x, y, epochs=1, seed=3)
    assert torch.equal(torch.rand(1), before)


def test_train_classifier_kd_targets_are_used_and_deterministic():
    x, y = blobs()
    teacher_logits = np.stack([ens.predict_logits(make_net(s), x) for s in (7, 8)])
    probs = ens.teacher_distribution(teacher_logits, 2.0)

    def run(**kw):
        return ens.train_classifier(make_net(0), x, y, epochs=2, batch_size=32, seed=0,
                                    temperature=2.0, alpha=1.0, **kw)

    m1, h1 = run(teacher_probs=probs)
    m2, h2 = run(teacher_logits=teacher_logits)
    m3, h3 = run()
    assert h1 == h2
    assert torch.equal(m1.logits.weight, m2.logits.weight)
    assert not torch.equal(m1.logits.weight, m3.logits.weight)
    with pytest.raises(ValueError):
        run(teacher_probs=probs[:-1])


def test_average_of_models_outputs_mean_logits():
    nets = [make_net(s) for s in range(3)]
    avg = ens.AverageOfModels(nets)
    x = torch.randn(5, 6)
    with torch.no_grad():
        want = (nets[0](x) + nets[1](x) + nets[2](x)) / 3
        torch.testing.assert_close(avg(x), want)
    assert len(list(avg.parameters())) == 3 * len(list(nets[0].parameters()))


# ----------------------------------------------------------------------------- NTK regime


def _tanh_net():
    return make_net(0, depth=2, width=12, d=5, k=4, activation="tanh").double()


def _perturbation(net, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: scale * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in net.named_parameters()}


def test_linearized_model_equals_network_at_init():
    net = make_net(0, depth=2, width=12, d=5, k=4)
    lin = ens.LinearizedModel(net)
    x = torch.randn(7, 5)
    with torch.no_grad():
        torch.testing.assert_close(lin(x), net(x), rtol=0, atol=1e-6)
    f_lin = ens.linearize(net)
    torch.testing.assert_close(f_lin(dict(net.named_parameters()), x), net(x), rtol=0, atol=1e-6)
    # only theta is trainable; it starts at theta0
    assert [p.shape for p in lin.parameters()] == [p.shape for p in net.parameters()]


def test_linearization_error_is_second_order_and_tangent_is_directional_derivative():
    from torch.func import functional_call

    net = _tanh_net()
    theta0 = {k: v.detach().clone() for k, v in net.named_parameters()}
    f_lin = ens.linearize(net)
    x = torch.randn(9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def f(params):
        with torch.no_grad():
            return functional_call(net, params, (x,))

    delta = _perturbation(net, 0.05)
    f0 = f(theta0)

    def err(scale):
        th = {k: theta0[k] + scale * delta[k] for k in theta0}
        with torch.no_grad():
            return (f_lin(th, x) - f(th)).norm().item()

    e1, e2, e3 = err(1.0), err(0.5), err(0.25)
    assert e1 > 1e-8
    assert 3.0 < e1 / e2 < 5.0 and 3.0 < e2 / e3 < 5.0

    # f_lin(theta0 + delta) - f(theta0) = J delta = central finite difference of f along delta
    with torch.no_grad():
        tangent = f_lin({k: theta0[k] + delta[k] for k in theta0}, x) - f0
    h = 1e-5
    fd = (f({k: theta0[k] + h * delta[k] for k in theta0})
          - f({k: theta0[k] - h * delta[k] for k in theta0})) / (2 * h)
    torch.testing.assert_close(tangent, fd, rtol=1e-6, atol=1e-9)

    # the trainable wrapper computes the same function of theta, and is linear in theta - theta0
    lin = ens.LinearizedModel(net)
    with torch.no_grad():
        for p, k in zip(lin.theta, lin.parameter_dict()):
            p.add_(delta[k])
        torch.testing.assert_close(lin(x), f0 + tangent)
        for p, k in zip(lin.theta, lin.parameter_dict()):
            p.add_(delta[k])
        torch.testing.assert_close(lin(x), f0 + 2 * tangent)


def test_linearized_model_trains_deterministically():
    x, y = blobs(n=60)

    def run(seed):
        lin = ens.LinearizedModel(make_net(0))
        return ens.train_classifier(lin, x, y, x, y, epochs=3, batch_size=20, lr=0.05, seed=seed)

    a, ha = run(0)
    b, hb = run(0)
    c, _ = run(1)
    assert ha == hb
    assert all(torch.equal(p, q) for p, q in zip(a.theta, b.theta))
    assert not all(torch.equal(p, q) for p, q in zip(a.theta, c.theta))
    assert ha[-1]["train_loss"] < ha[0]["train_loss"]
    # theta moved, theta0 did not
    assert any(not torch.equal(p, p0) for p, p0 in zip(a.theta, a.params0().values()))
    assert all(torch.equal(p0, q) for p0, q in zip(a.params0().values(), make_net(0).parameters()))


def test_random_features_trains_only_the_last_layer():
    x, y = blobs(n=60)
    net = make_net(0)
    rf = ens.RandomFeatures(net)
    ens.train_classifier(rf, x, y, epochs=2, batch_size=20, seed=0)
    assert torch.equal(rf.net.layer1[0].weight, net.layer1[0].weight)
    assert not torch.equal(rf.net.logits.weight, net.logits.weight)


# ----------------------------------------------------------------------------- dropping units


def test_drop_units_zero_fraction_changes_nothing_and_full_fraction_zeroes_layer():
    net = make_net(0, depth=2, width=10)
    x = torch.randn(8, 6)
    seen = {}
    with torch.no_grad():
        clean = net(x)
        with ens.drop_units(net, "layer1", 0.0, seed=0):
            torch.testing.assert_close(net(x), clean, rtol=0, atol=0)
        with ens.drop_units(net, "layer2", 1.0, seed=0):
            # the hidden layer outputs zeros, so the logits are the output bias for every input
            torch.testing.assert_close(net(x), net.logits.bias.expand(8, -1), rtol=0, atol=0)
        dropper = ens.drop_units(net, "layer1", 0.3, seed=1)
        hook = net.layer1.register_forward_hook(lambda m, i, o: seen.__setitem__("h", o.clone()))
        changed = net(x)
        hook.remove()
        dropper.remove()
        torch.testing.assert_close(net(x), clean, rtol=0, atol=0)  # removed
    assert not torch.equal(changed, clean)
    zero_cols = (seen["h"] == 0).all(0)
    assert set(np.flatnonzero(zero_cols.numpy())) >= set(dropper.dropped) and len(dropper.dropped) == 3


def test_drop_units_channels_of_conv_output():
    conv = nn.Sequential()
    conv.add_module("conv", nn.Conv2d(2, 8, 3, padding=1))
    x = torch.randn(2, 2, 5, 5)
    with torch.no_grad(), ens.drop_units(conv, "conv", 0.5, seed=0) as d:
        out = conv(x)
    dropped = torch.as_tensor(d.dropped)
    assert len(dropped) == 4
    assert (out[:, dropped] == 0).all()
    kept = torch.tensor([c for c in range(8) if c not in set(d.dropped.tolist())])
    torch.testing.assert_close(out[:, kept], conv(x)[:, kept].detach())


def test_dropped_accuracy_limits():
    x, y = blobs(n=90)
    models = [ens.train_classifier(make_net(s), x, y, epochs=3, batch_size=30, seed=s)[0] for s in (0, 1)]
    res = ens.dropped_accuracy(models, x, y, "layer1", [0.0, 1.0], seed=0)
    logits = [ens.predict_logits(m, x) for m in models]
    assert res[0.0]["single"] == [float((z.argmax(1) == y).mean()) for z in logits]
    assert res[0.0]["ensemble"] == ens.ensemble_accuracy(logits, y)
    # all hidden units dropped: each model predicts argmax of its output bias for every input
    for m, acc in zip(models, res[1.0]["single"]):
        assert acc == pytest.approx(np.mean(y == m.logits.bias.argmax().item()))
    # the linearised model's layers are reachable by the network's names
    lin = ens.LinearizedModel(make_net(0))
    with ens.drop_units(lin, "layer1", 1.0, seed=0), torch.no_grad():
        torch.testing.assert_close(lin(torch.tensor(x[:4])), lin.params0()["logits.bias"].expand(4, -1))


# ----------------------------------------------------------------------------- the comparison


def _blob_net():
    return mlp(1, 16, in_features=6, n_classes=3)  # _build seeds it


@pytest.mark.parametrize("regime", ["feature", "ntk", "rf"])
def test_compare_methods_smoke(regime):
    x, y = blobs(n=120, seed=0)
    xt, yt = blobs(n=60, seed=1)
    df = ens.compare_methods(x, y, xt, yt, _blob_net, n_seeds=2, regime=regime, epochs=2,
                             batch_size=32, seed=0)
    assert list(df["method"].value_counts().sort_index().items()) == [
        ("average", 1), ("ensemble", 1), ("kd", 2), ("self_kd", 2), ("single", 2)
    ]
    assert df["test_acc"].between(0, 1).all() and df["train_acc"].between(0, 1).all()
    assert np.isfinite(df["test_loss"]).all()
    assert df.attrs["regime"] == regime and df.attrs["member_test_logits"].shape == (2, 60, 3)
    # the members' logits are the single models': their ensemble is the ensemble row
    ens_acc = ens.ensemble_accuracy(df.attrs["member_test_logits"], yt)
    assert ens_acc == pytest.approx(df.loc[df.method == "ensemble", "test_acc"].item())
    summary = ens.summarise(df)
    assert list(summary.index) == list(ens.METHODS)
    assert math.isnan(summary.loc["ensemble", "std"])
    with pytest.raises(ValueError):
        ens.compare_methods(x, y, xt, yt, _blob_net, regime="bogus")


def test_compare_methods_students_subsets_and_describe():
    x, y = blobs(n=90, seed=0)
    xt, yt = blobs(n=40, seed=1)
    everything = np.ones(40, dtype=bool)
    first = np.arange(40) < 10
    df = ens.compare_methods(x, y, xt, yt, _blob_net, n_seeds=3, students=1, epochs=2,
                             batch_size=None, seed=0, test_subsets={"all": everything, "first": first},
                             describe=lambda m: {"n_params": float(sum(p.numel() for p in m.parameters()))})
    assert list(df["method"].value_counts().sort_index().items()) == [
        ("average", 1), ("ensemble", 1), ("kd", 1), ("self_kd", 1), ("single", 3)
    ]
    # a subset that is the whole test set has the test accuracy; any subset is an accuracy of its rows
    np.testing.assert_allclose(df["all_acc"], df["test_acc"])
    z = df.attrs["member_test_logits"][0]
    row = df[(df.method == "single") & (df.member == 0)].iloc[0]
    assert row["first_acc"] == pytest.approx(np.mean(z[first].argmax(1) == yt[first]))
    one = sum(p.numel() for p in make_net(0).parameters())
    assert df.loc[df.method == "single", "n_params"].eq(one).all()
    assert df.loc[df.method == "average", "n_params"].item() == 3 * one  # three sub-networks
    assert np.isnan(df.loc[df.method == "ensemble", "n_params"].item())
    with pytest.raises(ValueError, match="students"):
        ens.compare_methods(x, y, xt, yt, _blob_net, n_seeds=2, students=3, epochs=1)


# ----------------------------------------------------------------------------- pipeline: the μ sweep

TINY_MULTIVIEW = {
    "seeds": 3, "trials": 2, "students": 1, "temperature": 4.0, "alpha": 0.9, "mu": 0.2,
    "data": {"n_train": 40, "n_test": 50, "n_classes": 4, "views_per_class": 2, "dim": 16, "patches": 6,
             "patches_per_view": 1, "other_views": 2, "view_weight": [1, 2], "other_weight": [0.2, 0.4],
             "weak_weight": [0.05, 0.1], "single_other_weight": [0.2, 0.3], "feature_noise": 0.0005,
             "noise": 0.1, "feature_patch_noise": 0.0},
    "network": {"neurons_per_class": 2, "q": 3, "knot": 0.5, "init_std": 0.002, "ntk_init_std": 0.1},
    "train": {"epochs": 3, "kd_epochs": 2, "lr": 4.0, "ntk_lr": 1.0, "ntk_epochs": 2, "batch_size": None,
              "momentum": 0.0, "weight_decay": 0.0},
}


def test_methods_study_on_multiview_data_is_consistent():
    ds = ens.run_methods({}, TINY_MULTIVIEW, "feature")
    assert ds["test_error"].dims == ("method", "trial", "member")
    assert list(ds["method"].values) == list(ens.METHODS)
    assert dict(ds.sizes) == {"method": 5, "trial": 2, "member": 3, "size": 3}
    assert ds.attrs["mu"] == 0.2 and ds.attrs["network"] == "patch_cnn" and ds.attrs["test_single_view"] == 10
    err = ds["test_error"]
    # three members, then one ensemble, KD student, self-KD student and averaged network per trial
    for method, count in [("single", 3), ("ensemble", 1), ("kd", 1), ("self_kd", 1), ("average", 1)]:
        assert (np.isfinite(err.sel({"method": method})).sum("member") == count).all()
    # the ensemble-size curve comes from the members' logits: its ends are the single models'
    # mean error and the ensemble's error, computed by a different path
    np.testing.assert_allclose(ds["ensemble_error"].sel(size=1), err.sel({"method": "single"}).mean("member"))
    np.testing.assert_allclose(ds["ensemble_error"].sel(size=3),
                               err.sel({"method": "ensemble"}).isel(member=0))
    views = ds["views_learned"].sel({"method": "single"})
    assert ((views >= 0) & (views <= 8)).all()


def test_study_setup_ntk_uses_its_own_init_and_step():
    setup = ens.study_setup({}, TINY_MULTIVIEW, "ntk")
    torch.manual_seed(0)
    assert float(setup.factory().neurons.weight.detach().std()) == pytest.approx(0.1, rel=0.2)
    assert setup.train["lr"] == 1.0 and setup.train["epochs"] == setup.train["kd_epochs"] == 2
    assert "ntk_lr" not in setup.train and "ntk_epochs" not in setup.train
    feature = ens.study_setup({}, TINY_MULTIVIEW, "feature")
    assert (feature.train["lr"] == 4.0 and feature.train["epochs"] == 3
            and float(feature.factory().neurons.weight.detach().std()) < 0.01)
    assert feature.layer == "act" and feature.test_subsets["single_view"].sum() == 10


def test_patch_weights_through_wrappers():
    from repatlas.multiview import PatchCNN

    torch.manual_seed(0)
    nets = [PatchCNN(3, 8, neurons_per_class=2) for _ in range(2)]
    assert ens.patch_weights(nets[0]).shape == (3, 2, 8)
    torch.testing.assert_close(ens.patch_weights(ens.LinearizedModel(nets[0])), nets[0].weights())
    avg = ens.patch_weights(ens.AverageOfModels(nets))
    assert avg.shape == (3, 4, 8)
    torch.testing.assert_close(avg[:, 2:], nets[1].weights())


def test_tiny_mu_sweep_produces_the_summary(tmp_path):
    from repatlas.plots.common import save_figure
    from repatlas.plots.ensembles import ensembles_mu_figure

    datasets = {}
    for mu in (0.1, 0.3):
        for regime in ("feature", "ntk"):
            settings = {**TINY_MULTIVIEW, "mu": mu, "seeds": 2}
            datasets[(f"multiview-mu{mu}", regime)] = ens.run_methods({}, settings, regime)
    table = ens.summary_table(datasets)
    assert set(table["mu"]) == {0.1, 0.3} and set(table["regime"]) == {"feature", "ntk"}
    assert set(table["method"]) == {*ens.METHODS, "ensemble_of_2"} and len(table) == 2 * 2 * 6
    row = table[(table["mu"] == 0.1) & (table["regime"] == "feature") & (table["method"] == "single")].iloc[0]
    values = datasets[("multiview-mu0.1", "feature")]["test_error"].sel({"method": "single"}).values.ravel()
    assert row["count"] == 4 and row["test_error_mean"] == pytest.approx(values.mean())
    assert row["test_error_se"] == pytest.approx(values.std(ddof=1) / 2)
    assert row["predicted_error"] == pytest.approx(0.05)  # μ/2
    assert set(table["verdict"]) <= {"holds", "fails", "inconclusive", "no ensemble gain to transfer", ""}
    feature = table[table["regime"] == "feature"]
    assert (feature.loc[feature["method"] == "single", "prediction"].str.len() > 0).all()
    save_figure(ensembles_mu_figure(table, title="tiny"), tmp_path / "mu.png")
    assert (tmp_path / "mu.png").stat().st_size > 1000


def test_summary_table_selects_each_method():
    import xarray as xr

    from repatlas.ensembles import summary_table

    err = np.array([[[0.5, 0.3]], [[0.2, np.nan]]])  # (method, trial, member)
    ds = xr.Dataset({"test_error": (("method", "trial", "member"), err),
                     "ensemble_error": (("trial", "size"), np.array([[0.4, 0.2]]))},
                    coords={"method": ["single", "ensemble"], "trial": [0], "member": [0, 1], "size": [1, 2]})
    table = summary_table({("d", "feature"): ds}).set_index("method")
    assert table.loc["single", "test_error_mean"] == pytest.approx(0.4)
    assert table.loc["single", "test_error_se"] == pytest.approx(np.std([0.5, 0.3], ddof=1) / np.sqrt(2))
    assert table.loc["single", "count"] == 2
    assert table.loc["ensemble", "test_error_mean"] == pytest.approx(0.2)
    assert table.loc["ensemble", "count"] == 1 and np.isnan(table.loc["ensemble", "test_error_se"])
    assert table.loc["ensemble_of_2", "test_error_mean"] == pytest.approx(0.2)
    assert np.isnan(table.loc["single", "mu"])  # real data: no μ
    # a single ensemble has no standard error: no verdict either way
    assert table.loc["ensemble", "verdict"] == "inconclusive"
