"""CKA against independent float64 textbook computations, invariances and bad input."""

import numpy as np
import pytest
import torch

from repatlas import cka, cka_models


def hsic0(k, l):
    """Biased HSIC with explicit centring matrix H (Gretton et al.)."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def hsic1(k, l):
    """Song et al. (2012) unbiased HSIC, written out term by term (float64)."""
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term3 = 2 / (n - 2) * (one @ kt @ lt @ one)
    return (term1 + term2 - term3) / (n * (n - 3))


def textbook_cka(x, y, hsic):
    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20))
    y = x @ rng.normal(size=(20, 30)) + 0.5 * rng.normal(size=(60, 30))
    return x, y


def test_linear_cka_matches_textbook_biased(xy):
    x, y = xy
    assert cka.linear_cka(x, y) == pytest.approx(textbook_cka(x, y, hsic0), rel=1e-12)
    # the Gram path (features wider than examples) agrees too
    wide = np.repeat(y, 3, axis=1)
    assert cka.linear_cka(x, wide) == pytest.approx(textbook_cka(x, wide, hsic0), rel=1e-12)


def test_linear_cka_matches_textbook_debiased(xy):
    x, y = xy
    expected = textbook_cka(x, y, hsic1)
    assert cka.linear_cka(x, y, debiased=True) == pytest.approx(expected, rel=1e-10)


def test_ucentred_inner_product_is_scaled_hsic1(xy):
    x, y = xy
    k, l = x @ x.T, y @ y.T
    n = len(k)
    assert (cka.ucentre(k) * cka.ucentre(l)).sum() == pytest.approx(n * (n - 3) * hsic1(k, l), rel=1e-10)


def test_rbf_cka_matches_textbook(xy):
    x, y = xy

    def gram(z, t):
        d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * t**2 * np.median(d2)))

    k, l = gram(x, 0.5), gram(y, 0.5)
    expected = hsic0(k, l) / np.sqrt(hsic0(k, k) * hsic0(l, l))
    assert cka.rbf_cka(x, y, sigma_frac=0.5) == pytest.approx(expected, rel=1e-10)
    expected_u = hsic1(k, l) / np.sqrt(hsic1(k, k) * hsic1(l, l))
    assert cka.rbf_cka(x, y, sigma_frac=0.5, debiased=True) == pytest.approx(expected_u, rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_invariances(xy, debiased):
    x, y = xy
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    base = cka.linear_cka(x, y, debiased=debiased)
    assert cka.linear_cka(x @ q, y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    assert cka.linear_cka(7.5 * x, 0.01 * y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    assert cka.linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    # an arbitrary invertible linear map does change CKA
    a = rng.normal(size=(20, 20)) @ np.diag(np.logspace(0, 2, 20))
    assert abs(cka.linear_cka(x @ a, y, debiased=debiased) - base) > 1e-3


def test_torch_input_and_extra_axes_are_flattened():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3, 4, 4))
    y = rng.normal(size=(30, 10))
    expected = textbook_cka(x.reshape(30, -1), y, hsic0)
    assert cka.linear_cka(torch.from_numpy(x).float(), y) == pytest.approx(expected, rel=1e-5)


def test_independent_gaussians_closed_form():
    rng = np.random.default_rng(3)
    n, p1, p2 = 400, 50, 80
    x, y = rng.normal(size=(n, p1)), rng.normal(size=(n, p2))
    approx = np.sqrt(p1 * p2 / ((n + p1) * (n + p2)))
    assert cka.linear_cka(x, y) == pytest.approx(approx, rel=0.1)
    assert abs(cka.linear_cka(x, y, debiased=True)) < 0.02


def test_minibatch_single_batch_equals_debiased(xy):
    x, y = xy
    mb = cka.MinibatchCKA(2)
    mb.update([torch.from_numpy(x), torch.from_numpy(y)])
    out = mb.compute()
    assert out[0, 1] == pytest.approx(textbook_cka(x, y, hsic1), rel=1e-10)
    assert np.allclose(np.diag(out), 1.0)
    assert np.allclose(out, out.T)


def test_minibatch_accumulates_all_batches(xy):
    x, y = xy
    mb = cka.MinibatchCKA(2)
    for s in range(0, 60, 20):
        mb.update([x[s : s + 20], y[s : s + 20]])
    # independent: sum n(n-3) HSIC1 over the three batches
    num = sum(textbook_num(x[s : s + 20], y[s : s + 20]) for s in range(0, 60, 20))
    kk = sum(textbook_num(x[s : s + 20], x[s : s + 20]) for s in range(0, 60, 20))
    ll = sum(textbook_num(y[s : s + 20], y[s : s + 20]) for s in range(0, 60, 20))
    assert mb.compute()[0, 1] == pytest.approx(num / np.sqrt(kk * ll), rel=1e-10)
    assert mb.batches == 3


def textbook_num(x, y):
    n = len(x)
    return n * (n - 3) * hsic1(x @ x.T, y @ y.T)


def test_minibatch_approximates_full_debiased_for_large_n():
    rng = np.random.default_rng(4)
    n = 4000
    z = rng.normal(size=(n, 10))
    x = z @ rng.normal(size=(10, 40)) + rng.normal(size=(n, 40))
    y = np.tanh(z @ rng.normal(size=(10, 30))) + 0.5 * rng.normal(size=(n, 30))
    full = cka.linear_cka(x, y, debiased=True)
    mb = cka.MinibatchCKA(2)
    for s in range(0, n, 250):
        mb.update([x[s : s + 250].astype(np.float32), y[s : s + 250].astype(np.float32)])
    assert mb.compute()[0, 1] == pytest.approx(full, abs=0.01)
    # averaging *biased* per-batch CKA is batch-size dependent: it overshoots the full value here
    biased_avg = np.mean([cka.linear_cka(x[s : s + 50], y[s : s + 50]) for s in range(0, n, 50)])
    assert biased_avg - full > 0.02


def test_float32_stable_under_large_offset():
    rng = np.random.default_rng(5)
    n = 256
    x = rng.normal(size=(n, 64))
    y = x[:, :32] + 0.3 * rng.normal(size=(n, 32))
    exact = textbook_cka(x, y, hsic1)
    x32, y32 = (x + 100).astype(np.float32), (y + 100).astype(np.float32)
    mb = cka.MinibatchCKA(2)
    mb.update([torch.from_numpy(x32), torch.from_numpy(y32)])
    assert mb.compute()[0, 1] == pytest.approx(exact, abs=1e-4)

    # the naive Song formula on uncentred float32 Grams cancels catastrophically
    def naive32(a, b):
        k, l = torch.from_numpy(a @ a.T), torch.from_numpy(b @ b.T)
        k.fill_diagonal_(0)
        l.fill_diagonal_(0)
        one = torch.ones(n, 1)
        t1 = (k * l).sum()
        t2 = k.sum() * l.sum() / ((n - 1) * (n - 2))
        t3 = 2 / (n - 2) * (one.T @ k @ l @ one).squeeze()
        return float(t1 + t2 - t3)

    with np.errstate(divide="ignore", invalid="ignore"):
        naive = naive32(x32, y32) / np.sqrt(naive32(x32, x32) * naive32(y32, y32))
    assert not np.isfinite(naive) or abs(naive - exact) > 1e-2


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.0, 2.0, 2.6, 3.0, 10.0, 100.0])
def test_float32_accurate_on_both_sides_of_the_centring_switch(offset):
    """Uncentred float32 Grams are used only while the offset is small enough; either way the
    result matches the float64 textbook value. Here y switches to explicit centring between
    offsets 2 and 2.6, x between 3 and 10; uncentred, offset 100 would be off by 2e-5."""
    rng = np.random.default_rng(11)
    n = 128
    z = rng.normal(size=(n, 8))
    x = np.maximum(z @ rng.normal(size=(8, 900)), 0) + offset  # ReLU-like, wide
    y = np.tanh(z @ rng.normal(size=(8, 300))) + 0.2 * rng.normal(size=(n, 300)) + offset
    exact = textbook_cka(x, y, hsic1)
    mb = cka.MinibatchCKA(2)
    mb.update([torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))])
    assert mb.compute()[0, 1] == pytest.approx(exact, abs=2e-6)


@pytest.mark.parametrize("offset", [0.0, 3.0, 100.0])
def test_always_centred_route_matches_textbook(offset):
    """centre="always" (the GPU route: no value read back per batch) agrees with the float64
    textbook CKA as closely as the adaptive CPU route, with and without a large offset."""
    rng = np.random.default_rng(11)
    n = 128
    z = rng.normal(size=(n, 8))
    x = np.maximum(z @ rng.normal(size=(8, 900)), 0) + offset
    y = np.tanh(z @ rng.normal(size=(8, 300))) + 0.2 * rng.normal(size=(n, 300)) + offset
    exact = textbook_cka(x, y, hsic1)
    acts = [torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))]
    mb = cka.MinibatchCKA(2)
    mb.add_grams(cka.ucentred_grams(acts, centre="always"))
    assert mb.compute()[0, 1] == pytest.approx(exact, abs=2e-6)
    with pytest.raises(ValueError, match="centre must be one of"):
        cka.ucentred_grams(acts, centre="sometimes")


def test_always_centred_route_reports_nan_at_compute():
    rng = np.random.default_rng(7)
    bad = rng.normal(size=(10, 3)).astype(np.float32)
    bad[2, 1] = np.nan
    mb = cka.MinibatchCKA(2, names_a=["conv", "fc"])
    mb.add_grams(cka.ucentred_grams([rng.normal(size=(10, 3)), bad], centre="always"))  # no host read here
    with pytest.raises(ValueError, match=r"\['fc'\] contain NaN"):
        mb.compute()


class Drift(torch.nn.Module):
    """Adds `step` × (number of earlier calls) to every output: an offset that grows batch by batch."""

    def __init__(self, step):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x):
        self.calls += 1
        return x + self.step * (self.calls - 1)


def test_cka_heatmap_centres_a_layer_whose_offset_grows_after_the_first_batch():
    """cka_heatmap decides from the first batch which layers to centre and checks every later
    batch on the device: a layer whose offset grows to 1000s (float32 Grams would lose ~all
    digits) is found at the end and redone centred. U-centred HSIC ignores per-batch shifts, so
    the result must equal the same model without the drift."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 20)
    x = torch.randn(64, 5)
    drifting = torch.nn.Sequential(lin, torch.nn.Tanh(), Drift(1000.0))
    steady = torch.nn.Sequential(lin, torch.nn.Tanh(), Drift(0.0))
    got = cka_models.cka_heatmap(drifting, x, layers_a=["0", "2"], batch_size=16)
    expected = cka_models.cka_heatmap(steady, x, layers_a=["0", "2"], batch_size=16)
    np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=2e-6)
    # independent: the float64 textbook value of the one-batch case
    with pytest.warns(UserWarning, match="fewer than two batches"):
        one = cka_models.cka_heatmap(torch.nn.Sequential(lin, torch.nn.Tanh(), Drift(1000.0)), x[:16],
                                     layers_a=["0", "2"], batch_size=16)
    with torch.no_grad():
        h0 = lin(x[:16]).double().numpy()
        h2 = np.tanh(h0)
    assert float(one.values[0, 1]) == pytest.approx(textbook_cka(h0, h2, hsic1), abs=2e-6)


def test_cka_heatmap_centres_a_layer_with_a_large_offset_from_the_start():
    torch.manual_seed(1)
    lin = torch.nn.Linear(6, 30)
    x = torch.randn(48, 6)
    with torch.no_grad():  # the float32 activations themselves, then float64 arithmetic
        h = lin(x)
        # (minus the exact offset: the textbook HSIC₁ formula itself cancels with a large offset)
        h0, h2 = h.double().numpy(), (torch.relu(h) + 300.0).double().numpy() - 300.0
    shifted = torch.nn.Sequential(lin, torch.nn.ReLU(), Drift(0.0))
    shifted[2].forward = lambda t: t + 300.0  # a constant offset: float32 Grams would cancel
    with pytest.warns(UserWarning, match="fewer than two batches"):
        da = cka_models.cka_heatmap(shifted, x, layers_a=["0", "2"], batch_size=48)
    assert float(da.values[0, 1]) == pytest.approx(textbook_cka(h0, h2, hsic1), abs=2e-6)


def test_ucentre_of_a_stack_centres_each_matrix():
    rng = np.random.default_rng(3)
    grams = [(lambda a: a @ a.T)(rng.normal(size=(9, 4))) for _ in range(3)]
    stacked = cka.ucentre(torch.from_numpy(np.stack(grams)))
    for g, u in zip(grams, stacked):
        np.testing.assert_allclose(u.numpy(), cka.ucentre(g), rtol=1e-12, atol=1e-12)


def test_accumulators_follow_the_terms_device_and_dtype():
    """The accumulators are created where the first terms live (a CUDA model's Grams stay on its
    GPU), in float64, and later terms are brought to them."""
    terms = torch.ones(2, 2, dtype=torch.float32, device="meta")
    mb = cka.MinibatchCKA(2)
    mb.add(terms, terms[0])
    assert mb.cross.device.type == "meta" and mb.cross.dtype == torch.float64
    pinned = cka.MinibatchCKA(2, device="cpu")
    pinned.add(torch.eye(2), torch.ones(2))
    pinned.add(np.eye(2), np.ones(2))
    assert pinned.cross.device.type == "cpu" and pinned.batches == 2


def test_cross_model_equals_joint_accumulation():
    rng = np.random.default_rng(6)
    a = [rng.normal(size=(90, p)) for p in (5, 12, 7)]
    b = [a[0] @ rng.normal(size=(5, 9)) + rng.normal(size=(90, 9)), rng.normal(size=(90, 4))]
    joint = cka.MinibatchCKA(5)
    cross = cka.MinibatchCKA(3, 2)
    for s in range(0, 90, 30):
        joint.update([t[s : s + 30] for t in a + b])
        cross.update([t[s : s + 30] for t in a], [t[s : s + 30] for t in b])
    assert np.allclose(cross.compute(), joint.compute()[:3, 3:], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("b", [1, 2, 3])
def test_batches_of_three_or_fewer_are_rejected(b):
    mb = cka.MinibatchCKA(1)
    with pytest.raises(ValueError, match="at least 4"):
        mb.update([np.ones((b, 3))])


def test_bad_inputs_name_the_problem():
    rng = np.random.default_rng(7)
    mb = cka.MinibatchCKA(2, names_a=["conv", "fc"])
    with pytest.raises(ValueError, match="'fc' has 9 examples"):
        mb.update([rng.normal(size=(10, 3)), rng.normal(size=(9, 3))])
    bad = rng.normal(size=(10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="'fc' contains NaN"):
        mb.update([rng.normal(size=(10, 3)), bad])
    with pytest.raises(ValueError, match="same number of examples"):
        cka.linear_cka(np.ones((5, 2)), np.ones((6, 2)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        cka.linear_cka(np.full((5, 2), np.inf), np.ones((5, 2)))
    const = cka.MinibatchCKA(2, names_a=["alive", "dead"])
    const.update([rng.normal(size=(10, 3)), np.ones((10, 3))])
    with pytest.raises(ValueError, match="'dead'.*constant"):
        const.compute()


def test_cka_heatmap_equals_independent_full_batch_debiased():
    from repatlas import models

    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    x = torch.randn(64, 1, 8, 8)
    with pytest.warns(UserWarning, match="fewer than two batches"):
        da = cka_models.cka_heatmap(model, x, batch_size=64)  # one batch: minibatch CKA = debiased CKA
    assert da.dims == ("layer_a", "layer_b")
    assert list(da.layer_a.values) == ["stem", "block1", "block2", "block3", "pool"]
    model.eval()
    with torch.no_grad():
        stem = model.stem(x)
        b1 = model.block1(stem)
        pool = model.pool(model.block3(model.block2(b1)))
    expected = textbook_cka(stem.double().flatten(1).numpy(), pool.double().numpy(), hsic1)
    assert float(da.sel(layer_a="stem", layer_b="pool")) == pytest.approx(expected, rel=1e-6)


def test_cka_heatmap_two_models_and_epochs():
    from repatlas import models

    torch.manual_seed(1)
    a = models.mlp(2, 16, in_features=10, n_classes=3)
    b = models.mlp(1, 8, in_features=10, n_classes=3)
    x = torch.randn(90, 10)
    cross = cka_models.cka_heatmap(a, x, model_b=b, batch_size=30, epochs=2, seed=5)
    assert cross.shape == (2, 1) and list(cross.layer_b.values) == ["layer1"]
    # independent: the same shuffled batches through MinibatchCKA on captured activations
    gen = torch.Generator().manual_seed(5)
    mb = cka.MinibatchCKA(2, 1)
    with torch.no_grad():
        for _ in range(2):
            order = torch.randperm(90, generator=gen)
            for s in range(0, 90, 30):
                xb = x[order[s : s + 30]]
                h1 = a.layer1(a.flatten(xb))
                mb.update([h1, a.layer2(h1)], [b.layer1(b.flatten(xb))])
    np.testing.assert_allclose(cross.values, mb.compute(), rtol=1e-6)
    assert a.training and b.training  # modes restored


def test_cka_heatmap_keeps_repeated_calls_and_rejects_unknown_layers():
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.f(torch.tanh(self.f(x)))

    da = cka_models.cka_heatmap(Twice(), torch.randn(20, 4), layers_a=["f"], batch_size=10)
    assert list(da.layer_a.values) == ["f", "f@1"]
    with (pytest.raises(KeyError, match="unknown layer"),
          pytest.warns(UserWarning, match="fewer than two batches")):
        cka_models.cka_heatmap(Twice(), torch.randn(20, 4), layers_a=["g"])
    with pytest.raises(ValueError, match="batch_size"):
        cka_models.cka_heatmap(Twice(), torch.randn(20, 4), layers_a=["f"], batch_size=2)


def test_moved_public_names_still_resolve_from_cka():
    from repatlas import cka, cka_models, cka_stores

    assert cka.cka_heatmap is cka_models.cka_heatmap
    assert cka.cka_from_stores is cka_stores.cka_from_stores
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        cka.nonsense
