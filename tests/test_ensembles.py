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
    fd = (f({k: theta0[k] + h * delta[k] for k in theta0}) - f({k: theta0[k] - h * delta[k] for k in theta0})) / (2 * h)
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


# ----------------------------------------------------------------------------- multi-view data


def test_multiview_dataset_shapes_balance_and_single_view_fraction():
    x, y, single = ens.multiview_dataset(203, n_classes=7, views_per_class=3, dim=40,
                                         single_view_fraction=0.3, noise=0.1, seed=0,
                                         return_mask=True)
    assert x.shape == (203, 40) and x.dtype == np.float32 and y.shape == (203,)
    counts = np.bincount(y, minlength=7)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 203
    assert single.sum() == round(0.3 * 203)
    sv_counts = np.bincount(y[single], minlength=7)
    assert sv_counts.max() - sv_counts.min() <= 1
    assert len(ens.multiview_dataset(10, n_classes=2, dim=8, single_view_fraction=0.5, noise=0.1)) == 2


def test_multiview_signal_structure_without_noise():
    k, v, d = 5, 3, 32
    x, y, single = ens.multiview_dataset(100, n_classes=k, views_per_class=v, dim=d,
                                         single_view_fraction=0.4, noise=0.0, distractors=2,
                                         distractor_weight=0.3, seed=3, view_seed=9, return_mask=True)
    views = ens.multiview_views(k, v, d, seed=9)
    flat = views.reshape(k * v, d)
    np.testing.assert_allclose(flat @ flat.T, np.eye(k * v), atol=1e-10)  # orthonormal
    proj = (x.astype(np.float64) @ flat.T).reshape(-1, k, v)  # weight of every view in every example
    own = proj[np.arange(100), y]  # (n, V)
    present = own > 1e-5
    assert np.all(own[present] >= 1 - 1e-5) and np.all(own[present] <= 2 + 1e-5)
    assert np.all(present[~single].sum(1) == v)
    assert np.all(present[single].sum(1) == 1)
    other = proj.copy()
    other[np.arange(100), y] = 0
    assert np.all(other > -1e-5) and np.all(other < 0.3 + 1e-5)
    assert np.all((other > 1e-6).reshape(100, -1).sum(1) <= 2)
    # a test set drawn with another seed uses the same views
    xt, yt = ens.multiview_dataset(20, n_classes=k, views_per_class=v, dim=d, noise=0.0,
                                   single_view_fraction=0.0, distractors=0, seed=4, view_seed=9)
    own_t = (xt.astype(np.float64) @ flat.T).reshape(-1, k, v)[np.arange(20), yt]
    assert np.all(own_t >= 1 - 1e-5)


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


@pytest.mark.parametrize("regime", ["feature", "ntk", "rf"])
def test_compare_methods_smoke(regime):
    x, y = ens.multiview_dataset(120, n_classes=4, dim=16, single_view_fraction=0.3, noise=0.2, seed=0)
    xt, yt = ens.multiview_dataset(60, n_classes=4, dim=16, single_view_fraction=0.3, noise=0.2, seed=1)
    df = ens.compare_methods(x, y, xt, yt, lambda: mlp(1, 16, in_features=16, n_classes=4),
                             n_seeds=2, regime=regime, epochs=2, batch_size=32, seed=0)
    assert list(df["method"].value_counts().sort_index().items()) == [
        ("average", 1), ("ensemble", 1), ("kd", 2), ("self_kd", 2), ("single", 2)
    ]
    assert df["test_acc"].between(0, 1).all() and df["train_acc"].between(0, 1).all()
    assert np.isfinite(df["test_loss"]).all()
    assert df.attrs["regime"] == regime and len(df.attrs["ensemble_curve"]) == 2
    assert df.attrs["ensemble_curve"][-1] == pytest.approx(df.loc[df.method == "ensemble", "test_acc"].item())
    summary = ens.summarise(df)
    assert list(summary.index) == list(ens.METHODS)
    assert math.isnan(summary.loc["ensemble", "std"])
    with pytest.raises(ValueError):
        ens.compare_methods(x, y, xt, yt, lambda: mlp(1, 4, in_features=16, n_classes=4), regime="bogus")


def test_summary_table_selects_each_method():
    import xarray as xr

    from repatlas.ensembles import summary_table

    acc = np.array([[0.5, 0.7], [0.8, np.nan]])
    ds = xr.Dataset({"test_acc": (("method", "member"), acc)},
                    coords={"method": ["single", "ensemble"], "member": [0, 1]})
    table = summary_table({("d", "feature"): ds}).set_index("method")
    assert table.loc["single", "test_acc_mean"] == pytest.approx(0.6)
    assert table.loc["single", "count"] == 2
    assert table.loc["ensemble", "test_acc_mean"] == pytest.approx(0.8)
    assert table.loc["ensemble", "count"] == 1 and np.isnan(table.loc["ensemble", "test_acc_std"])
