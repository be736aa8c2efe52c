import numpy as np
import pytest
import torch

from repatlas.multiview import (
    PatchCNN,
    multiview_features,
    multiview_patches,
    smoothed_relu,
    views_learned,
)

# ----------------------------------------------------------------------------- smoothed ReLU


def _closed_form(z, q, knot):
    """The paper's three pieces, written out in float64."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z <= 0, 0.0, np.where(z <= knot, z**q / (q * knot ** (q - 1)), z - (1 - 1 / q) * knot))


@pytest.mark.parametrize("q,knot", [(3, 0.5), (4, 0.1), (2, 1.0)])
def test_smoothed_relu_matches_the_closed_form(q, knot):
    z = np.linspace(-2, 3, 2001)
    got = smoothed_relu(torch.tensor(z), q, knot).numpy()
    np.testing.assert_allclose(got, _closed_form(z, q, knot), rtol=0, atol=1e-15)
    # fixed points: zero at 0, knot/q at the knot, slope 1 beyond it
    assert smoothed_relu(torch.tensor(knot, dtype=torch.float64), q, knot).item() == pytest.approx(knot / q)
    assert smoothed_relu(torch.tensor(knot + 1.0, dtype=torch.float64), q, knot).item() == pytest.approx(
        1 + knot / q)


@pytest.mark.parametrize("q,knot", [(3, 0.5), (4, 0.1)])
def test_smoothed_relu_is_continuous_with_a_continuous_derivative_at_the_knots(q, knot):
    eps = 1e-7
    for k in (0.0, knot):
        left, right = _closed_form([k - eps, k + eps], q, knot)
        assert abs(right - left) < 3 * eps  # continuous: the jump vanishes with eps
    z = torch.tensor([-1.0, 0.0, knot / 2, knot, 2 * knot, 5.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(smoothed_relu(z, q, knot).sum(), z)
    expected = np.clip(z.detach().numpy() / knot, 0, 1) ** (q - 1)  # (z/ϱ)^(q−1), 0 below 0, 1 above ϱ
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-12)
    # the derivative agrees with central differences on both sides of each knot
    for k in (0.0, knot):
        for at in (k - 1e-3, k + 1e-3):
            fd = (_closed_form(at + 1e-7, q, knot) - _closed_form(at - 1e-7, q, knot)) / 2e-7
            x = torch.tensor(at, dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(smoothed_relu(x, q, knot), x)
            assert g.item() == pytest.approx(float(fd), abs=1e-6)


def test_smoothed_relu_rejects_bad_parameters():
    with pytest.raises(ValueError):
        smoothed_relu(torch.zeros(1), q=3, knot=0.0)


# ----------------------------------------------------------------------------- data

K, V, D, P, CP, S = 5, 3, 40, 12, 2, 2


def _sample(n=203, mu=0.3, **kw):
    args = dict(n_classes=K, views_per_class=V, dim=D, patches=P, patches_per_view=CP, other_views=S,
                single_view_fraction=mu, seed=3, feature_seed=9)
    return multiview_patches(n, **{**args, **kw})


def test_features_are_orthonormal_and_fixed_by_their_seed():
    f = multiview_features(K, V, D, seed=9)
    flat = f.reshape(K * V, D)
    np.testing.assert_allclose(flat @ flat.T, np.eye(K * V), atol=1e-12)
    np.testing.assert_array_equal(f, multiview_features(K, V, D, seed=9))
    with pytest.raises(ValueError, match="dim"):
        multiview_features(K, V, K * V - 1)


def test_labels_balanced_and_single_view_fraction_exact():
    data = _sample()
    assert data.x.shape == (203, P, D) and data.x.dtype == np.float32
    counts = np.bincount(data.y, minlength=K)
    assert counts.sum() == 203 and counts.max() - counts.min() <= 1
    assert data.single.sum() == round(0.3 * 203)
    per_class = np.bincount(data.y[data.single], minlength=K)
    assert per_class.max() - per_class.min() <= 1
    assert (data.view[~data.single] == -1).all() and set(data.view[data.single]) <= set(range(V))
    assert not _sample(mu=0.0).single.any() and _sample(mu=1.0).single.all()
    with pytest.raises(ValueError, match="single_view_fraction"):
        _sample(mu=1.5)


def test_view_counts_and_weights_follow_the_paper():
    data = _sample(n=300)
    n = len(data.y)
    own = data.weight[np.arange(n), data.y]  # (n, V)
    other = data.weight.copy()
    other[np.arange(n), data.y] = 0
    other = other.reshape(n, -1)
    multi = ~data.single
    # multi-view: every view of the class with weight in [1, 2]; S other features in [0.2, 0.4]
    assert ((own[multi] >= 1) & (own[multi] <= 2)).all()
    assert ((other[multi] > 0).sum(1) == S).all()
    assert ((other[multi][other[multi] > 0] >= 0.2) & (other[multi][other[multi] > 0] <= 0.4)).all()
    # single-view: the strong view in [1, 2], the class's other views weak, S others in [0.2, 0.3]
    sv = np.flatnonzero(data.single)
    strong = own[sv, data.view[sv]]
    assert ((strong >= 1) & (strong <= 2)).all()
    weak = own[sv][np.arange(V)[None, :] != data.view[sv][:, None]]
    assert ((weak >= 0.05) & (weak <= 0.1)).all() and len(weak) == len(sv) * (V - 1)
    o = other[sv]
    assert ((o > 0).sum(1) == S).all() and ((o[o > 0] >= 0.2) & (o[o > 0] <= 0.3)).all()


def test_patch_layout_and_signal_without_noise():
    data = _sample(noise=0.0, feature_noise=0.0)
    flat = multiview_features(K, V, D, seed=9).reshape(K * V, D)
    n = len(data.y)
    for i in range(n):
        w = data.weight[i].reshape(-1)
        present = np.flatnonzero(w > 0)
        # every present feature owns exactly CP patches; the others are noise patches
        assert sorted(np.unique(data.owner[i][data.owner[i] >= 0])) == sorted(present)
        assert all((data.owner[i] == f).sum() == CP for f in present)
        assert (data.owner[i] == -1).sum() == P - CP * len(present)
        # brute force: a feature patch is (weight / CP)·v, a noise patch is zero
        for p in range(P):
            f = data.owner[i, p]
            expected = w[f] / CP * flat[f] if f >= 0 else np.zeros(D)
            np.testing.assert_allclose(data.x[i, p], expected, atol=1e-6)


def test_noise_is_off_the_features_and_only_on_noise_patches():
    data = _sample(n=400, noise=0.5, feature_noise=0.0)
    clean = _sample(n=400, noise=0.0, feature_noise=0.0)
    flat = multiview_features(K, V, D, seed=9).reshape(K * V, D)
    noise_patch = data.owner == -1
    np.testing.assert_array_equal(data.x[~noise_patch], clean.x[~noise_patch])  # feature patches: no ξ
    xi = data.x[noise_patch].astype(np.float64)
    assert np.abs(xi @ flat.T).max() < 1e-5  # projected off every feature
    # N(0, σ²) per coordinate projected onto the (D − K·V)-dim complement: E‖ξ‖² = σ²(D − K·V)
    assert np.mean((xi**2).sum(1)) == pytest.approx(0.25 * (D - K * V), rel=0.05)
    on_features = _sample(n=400, noise=0.0, feature_noise=0.0, feature_patch_noise=0.3)
    assert not np.allclose(on_features.x[~noise_patch], clean.x[~noise_patch])
    np.testing.assert_array_equal(on_features.x[noise_patch], 0)


def test_feature_noise_adds_every_feature_with_small_weight():
    gamma = 0.01
    data = _sample(noise=0.0, feature_noise=gamma)
    clean = _sample(noise=0.0, feature_noise=0.0)
    flat = multiview_features(K, V, D, seed=9).reshape(K * V, D)
    alpha = (data.x - clean.x).astype(np.float64) @ flat.T  # (n, P, K·V)
    assert (alpha >= -1e-6).all() and (alpha <= gamma + 1e-6).all() and alpha.mean() == pytest.approx(
        gamma / 2, rel=0.05)


def test_train_and_test_sets_share_views_and_differ_in_samples():
    a, b = _sample(seed=1), _sample(seed=2)
    assert not np.array_equal(a.x, b.x)
    flat = multiview_features(K, V, D, seed=9).reshape(K * V, D)
    for data in (a, b):  # both carry these views where the owner says so (noise is off-span)
        proj = np.einsum("npd,fd->npf", data.x.astype(np.float64), flat)
        i, p = np.nonzero(data.owner >= 0)
        f = data.owner[i, p]
        weight = data.weight.reshape(len(data.y), -1)[i, f] / CP
        assert np.abs(proj[i, p, f] - weight).max() <= 0.0005 + 1e-6  # up to the feature noise γ


def test_generator_rejects_too_few_patches():
    with pytest.raises(ValueError, match="patches"):
        _sample(patches=CP * (V + S) - 1)


# ----------------------------------------------------------------------------- the CNN


def _net(seed=0, **kw):
    torch.manual_seed(seed)
    return PatchCNN(K, D, neurons_per_class=3, init_std=0.3, **kw).double()


def test_cnn_is_a_sum_over_patches_and_neurons():
    net = _net(q=3, knot=0.5)
    x = torch.tensor(_sample(n=7).x, dtype=torch.float64)
    out = net(x).detach().numpy()
    w = net.weights().detach().numpy()  # (K, m, D)
    brute = np.zeros((7, K))
    for n in range(7):
        for i in range(K):
            for r in range(3):
                for p in range(P):
                    brute[n, i] += _closed_form(w[i, r] @ x[n, p].numpy(), 3, 0.5)
    np.testing.assert_allclose(out, brute, rtol=1e-12, atol=1e-12)
    # channel i·m + r of the shared patch map is w_{i,r}
    torch.testing.assert_close(net.neurons.weight[2 * 3 + 1], net.weights()[2, 1])


def test_permuting_patches_leaves_the_output_unchanged():
    net = _net()
    x = torch.tensor(_sample(n=9).x, dtype=torch.float64)
    perm = torch.randperm(P, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(net(x[:, perm]), net(x), rtol=1e-12, atol=1e-12)
    # but the output does depend on the patches' content
    assert not torch.allclose(net(x[:, :, torch.randperm(D)]), net(x))


def test_act_layer_exposes_neurons_for_dropping():
    from repatlas.ensembles import drop_units

    net = _net()
    x = torch.tensor(_sample(n=4).x, dtype=torch.float64)
    seen = {}
    handle = net.act.register_forward_hook(lambda m, i, o: seen.__setitem__("h", o))
    net(x)
    handle.remove()
    assert seen["h"].shape == (4, K * 3, P)
    with drop_units(net, "act", 1.0), torch.no_grad():
        assert (net(x) == 0).all()


def test_views_learned_reads_the_class_neurons_correlations():
    f = multiview_features(K, V, D, seed=0)
    w = np.zeros((K, 2, D))
    w[0, 1] = 2.0 * f[0, 2]  # class 0 learned view 2 with one neuron
    w[3, 0] = 0.3 * f[3, 0] + 1.0 * f[3, 1]  # class 3: view 1 above the knot, view 0 below
    w[4, 0] = 2.0 * f[1, 0]  # class 4's neuron on class 1's view counts for neither
    learned = views_learned(torch.tensor(w), f, knot=0.5)
    expected = np.zeros((K, V), dtype=bool)
    expected[0, 2] = expected[3, 1] = True
    np.testing.assert_array_equal(learned, expected)
