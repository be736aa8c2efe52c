"""Tests for repatlas.infinite against independent computations (hand formulas, quadrature, Monte Carlo,
autograd, matrix exponentials, finite networks)."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from scipy import integrate
from torch.func import functional_call, stack_module_state, vmap

from repatlas import infinite as inf
from repatlas.infinite import (
    empirical_ntk,
    kernels,
    ntk_mlp,
    predict_from_kernels,
    predict_gd_mse,
    sine_dataset,
    train_ensemble_gd,
)

W, B = 1.4, 0.3


def _unit(d, i):
    e = np.zeros(d)
    e[i] = 1.0
    return e


# ---------------------------------------------------------------- closed forms worked by hand (depth 1)


def test_relu_depth1_by_hand():
    d = 4
    x = np.stack([_unit(d, 0), _unit(d, 1)])  # orthogonal unit vectors
    nngp, ntk = kernels(x, depth=1, activation="relu", w_std=W, b_std=B)
    q = W**2 / d + B**2  # pre-activation variance of each point after the first Dense
    # identical points: E[relu(u)^2] = q/2, E[relu'^2] = 1/2
    assert nngp[0, 0] == pytest.approx(W**2 * q / 2 + B**2, rel=1e-12)
    assert ntk[0, 0] == pytest.approx((W**2 * q / 2 + B**2) + W**2 * (q * 0.5), rel=1e-12)
    # orthogonal points: q12 = b^2, angle = arccos(b^2/q) (arc-cosine kernel of degree 1 and 0)
    q12 = B**2
    ang = math.acos(q12 / q)
    e = (q * math.sin(ang) + (math.pi - ang) * q12) / (2 * math.pi)
    ed = (math.pi - ang) / (2 * math.pi)
    k_out = W**2 * e + B**2
    assert nngp[0, 1] == pytest.approx(k_out, rel=1e-12)
    assert ntk[0, 1] == pytest.approx(k_out + W**2 * q12 * ed, rel=1e-12)
    # b = 0: the textbook values q/(2 pi) and NTK == NNGP off the diagonal
    nngp0, ntk0 = kernels(x, depth=1, activation="relu", w_std=W, b_std=0.0)
    assert nngp0[0, 1] == pytest.approx(W**4 / d / (2 * math.pi), rel=1e-12)
    assert ntk0[0, 1] == pytest.approx(nngp0[0, 1], rel=1e-12)


def test_erf_depth1_by_hand():
    d = 3
    x = np.stack([_unit(d, 0), _unit(d, 2)])
    nngp, ntk = kernels(x, depth=1, activation="erf", w_std=W, b_std=B)
    q = W**2 / d + B**2
    k_same = W**2 * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)) + B**2
    assert nngp[1, 1] == pytest.approx(k_same, rel=1e-12)
    assert ntk[1, 1] == pytest.approx(k_same + W**2 * q * (4 / math.pi) / math.sqrt(1 + 4 * q), rel=1e-12)
    q12 = B**2
    k_orth = W**2 * (2 / math.pi) * math.asin(2 * q12 / (1 + 2 * q)) + B**2
    ed = (4 / math.pi) / math.sqrt((1 + 2 * q) ** 2 - 4 * q12**2)
    assert nngp[0, 1] == pytest.approx(k_orth, rel=1e-12)
    assert ntk[0, 1] == pytest.approx(k_orth + W**2 * q12 * ed, rel=1e-12)


def test_depth0_is_linear_kernel():
    x = np.random.default_rng(0).standard_normal((4, 5))
    nngp, ntk = kernels(x, depth=0, w_std=W, b_std=B)
    np.testing.assert_allclose(nngp, W**2 * x @ x.T / 5 + B**2, rtol=1e-12)
    np.testing.assert_allclose(ntk, nngp, rtol=1e-12)


# ---------------------------------------------------------------- single nonlinearity maps vs integration

COVS = [(1.0, 2.0, 0.5), (0.3, 0.7, -0.4), (2.0, 2.0, 1.999), (0.5, 1.5, 0.0)]


@pytest.mark.parametrize("q11,q22,q12", COVS)
def test_erf_maps_vs_gauss_hermite(q11, q22, q12):
    nodes, wts = np.polynomial.hermite_e.hermegauss(80)  # weight exp(-z^2/2)
    wts = wts / wts.sum()
    c = np.linalg.cholesky(np.array([[q11, q12], [q12, q22]]) + 1e-15 * np.eye(2))
    z1, z2 = np.meshgrid(nodes, nodes, indexing="ij")
    u = c[0, 0] * z1
    v = c[1, 0] * z1 + c[1, 1] * z2
    ww = np.outer(wts, wts)
    from scipy.special import erf

    def derf(z):
        return 2 / math.sqrt(math.pi) * np.exp(-z * z)

    e, ed = inf._erf_cross(q11, q22, q12)
    assert e == pytest.approx(np.sum(ww * erf(u) * erf(v)), abs=1e-9)
    assert ed == pytest.approx(np.sum(ww * derf(u) * derf(v)), rel=1e-6)


@pytest.mark.parametrize("q11,q22,q12", COVS)
def test_relu_maps_vs_conditional_integral(q11, q22, q12):
    # E[relu(u) relu(v)] = int_0^inf u E[relu(v) | u] p(u) du with v | u ~ N(q12/q11 u, q22 - q12^2/q11)
    s = math.sqrt(max(q22 - q12**2 / q11, 1e-300))

    def integrand(u):
        mu = q12 / q11 * u
        m = mu * scipy.stats.norm.cdf(mu / s) + s * scipy.stats.norm.pdf(mu / s)
        return u * m * scipy.stats.norm.pdf(u, scale=math.sqrt(q11))

    ref = integrate.quad(integrand, 0, np.inf, epsabs=1e-13)[0]
    # E[1(u>0) 1(v>0)] is an orthant probability
    orth = scipy.stats.multivariate_normal(mean=[0, 0], cov=[[q11, q12], [q12, q22]],
                                           allow_singular=True).cdf([0, 0])
    e, ed = inf._relu_cross(q11, q22, q12)
    assert e == pytest.approx(ref, rel=1e-6, abs=1e-10)
    assert ed == pytest.approx(orth, abs=1e-4)


# ---------------------------------------------------------------- blocking


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("architecture", ["mlp", "resnet"])
def test_blocked_equals_unblocked(activation, architecture):
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((11, 2, 3))  # flattened to 6 features
    x2 = rng.standard_normal((7, 6))
    opts = dict(depth=3, activation=activation, w_std=W, b_std=B, architecture=architecture)
    for a, b in [(x1, x2), (x1, None)]:
        full = kernels(a, b, **opts)
        for bs in (1, 3, 4, 100):
            blocked = kernels(a, b, batch_size=bs, **opts)
            for u, v in zip(full, blocked):
                np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
    # x2=None is x2=x1, and the symmetric path is exactly symmetric
    for u, v in zip(kernels(x1, None, batch_size=4, **opts), kernels(x1, x1, **opts)):
        np.testing.assert_allclose(u, v, rtol=1e-12)
        np.testing.assert_array_equal(u, u.T)
    # diagonals are the per-point self-kernels, computed one point at a time
    nd, td = kernels(x1, batch_size=5, **opts)
    for i in (0, 6, 10):
        ns, ts = kernels(x1[i:i + 1], **opts)
        assert nd[i, i] == ns[0, 0] and td[i, i] == ts[0, 0]


# ---------------------------------------------------------------- Monte-Carlo NNGP from finite networks


def _mc_outputs(x, *, width, depth, activation, architecture, n_draws, w_std=W, b_std=B, chunk=100):
    """Outputs (n_draws, n) of independently initialised ntk_mlp networks, vectorised with vmap."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    outs = []
    for c in range(0, n_draws, chunk):
        models = [ntk_mlp(x.shape[1], width, depth, activation=activation, w_std=w_std, b_std=b_std,
                          seed=10_000 + s, architecture=architecture, dtype=torch.float64)
                  for s in range(c, min(c + chunk, n_draws))]
        params, buffers = stack_module_state(models)
        base = models[0]
        with torch.no_grad():
            outs.append(vmap(lambda p, b: functional_call(base, (p, b), (xt,)))(params, buffers))
    return torch.cat(outs).numpy()


def _zscores(f, k):
    """Standardised errors of the empirical second moments E[f_i f_j] (E f = 0 exactly) vs k."""
    prods = f[:, :, None] * f[:, None, :]
    se = prods.std(0, ddof=1) / math.sqrt(f.shape[0])
    iu = np.triu_indices(f.shape[1])
    return ((prods.mean(0) - k) / se)[iu]


@pytest.mark.parametrize(
    "activation,depth,width,architecture",
    [("relu", 1, 2048, "mlp"), ("erf", 1, 2048, "mlp"), ("erf", 2, 512, "mlp"), ("relu", 1, 512, "resnet")],
)
def test_monte_carlo_nngp(activation, depth, width, architecture):
    x = np.random.default_rng(2).standard_normal((5, 3))
    f = _mc_outputs(x, width=width, depth=depth, activation=activation, architecture=architecture,
                    n_draws=300)
    k, _ = kernels(x, depth=depth, activation=activation, w_std=W, b_std=B, architecture=architecture)
    z = _zscores(f, k)
    assert np.abs(z).max() < 4.5, z  # 15 correlated entries; finite-width bias O(1/width) << 1 SE
    # power check: a kernel with w_std 15% off is rejected by the same statistic
    k_bad, _ = kernels(x, depth=depth, activation=activation, w_std=1.15 * W, b_std=B,
                       architecture=architecture)
    assert np.abs(_zscores(f, k_bad)).max() > 5


# ---------------------------------------------------------------- empirical NTK


def test_empirical_ntk_equals_autograd_gradients():
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for arch in ("mlp", "resnet"):
        model = ntk_mlp(3, 7, 2, activation="erf", w_std=W, b_std=B, seed=3, architecture=arch,
                        dtype=torch.float64)
        grads = []
        for i in range(5):
            g = torch.autograd.grad(model(x[i:i + 1]).sum(), list(model.parameters()))
            grads.append(torch.cat([t.reshape(-1) for t in g]))
        jm = torch.stack(grads).numpy()
        ref = jm @ jm.T
        np.testing.assert_allclose(empirical_ntk(model, x), ref, rtol=1e-12)
        np.testing.assert_allclose(empirical_ntk(model, x, x[:2], batch_size=2), ref[:, :2], rtol=1e-12)


def _rel_err(x, depth, activation, architecture, width, seeds=(0, 1, 2)):
    _, th = kernels(x, depth=depth, activation=activation, w_std=W, b_std=B, architecture=architecture)
    errs = []
    for s in seeds:
        m = ntk_mlp(x.shape[1], width, depth, activation=activation, w_std=W, b_std=B, seed=s,
                    architecture=architecture, dtype=torch.float64)
        errs.append(np.linalg.norm(empirical_ntk(m, x) - th) / np.linalg.norm(th))
    return float(np.mean(errs))


@pytest.mark.parametrize(
    "activation,depth,architecture,big,bound",
    [("relu", 1, "mlp", 4096, 0.1), ("erf", 2, "mlp", 1024, 0.12), ("relu", 1, "resnet", 1024, 0.12)],
)
def test_empirical_ntk_converges_to_analytic(activation, depth, architecture, big, bound):
    x = np.random.default_rng(0).standard_normal((6, 3))
    small_err = _rel_err(x, depth, activation, architecture, 64)
    big_err = _rel_err(x, depth, activation, architecture, big)
    # fluctuations scale like 1/sqrt(width): expect ~sqrt(64/big) of the small-width error
    assert big_err < bound
    assert big_err < 0.5 * small_err


# ---------------------------------------------------------------- gradient-flow predictions


def _problem(k_out=1, n=6, m=4, seed=0):
    rng = np.random.default_rng(seed)
    xd = rng.standard_normal((n, 2))
    xt = rng.standard_normal((m, 2))
    y = rng.standard_normal((n, k_out)) if k_out > 1 else rng.standard_normal(n)
    opts = dict(depth=2, activation="erf", w_std=W, b_std=B)
    kdd, tdd = kernels(xd, **opts)
    ktd, ttd = kernels(xt, xd, **opts)
    ktt, _ = kernels(xt, **opts)
    return xd, xt, y, opts, (kdd, ktd, ktt, tdd, ttd)


@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_infinite_time_interpolates_training_targets(get):
    xd, _, y, opts, _ = _problem()
    mean, cov = predict_gd_mse(xd, y, xd, t=None, get=get, diag_reg=1e-8, **opts)
    np.testing.assert_allclose(mean, y, atol=1e-5)
    assert np.abs(cov).max() < 1e-5  # no uncertainty left on the training points
    # with a sizeable ridge the fit is visibly not interpolating (the check can fail)
    mean_r, _ = predict_gd_mse(xd, y, xd, t=np.inf, get=get, diag_reg=0.3, **opts)
    assert np.abs(mean_r - y).max() > 1e-2


@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_covariances_symmetric_psd(get):
    _, _, y, _, ks = _problem(m=12)
    for t in (0.0, 0.3, 5.0, 1e3, None):
        _, cov = predict_from_kernels(*ks, y, t=t, get=get, diag_reg=1e-4)
        np.testing.assert_array_equal(cov, cov.T)
        assert np.linalg.eigvalsh(cov).min() >= -1e-8 * np.abs(cov).max()


@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_t0_is_prior(get):
    _, _, y, _, ks = _problem()
    mean, cov = predict_from_kernels(*ks, y, t=0.0, get=get)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_allclose(cov, ks[2], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize("k_out", [1, 2])
def test_finite_time_vs_expm(get, k_out):
    _, _, y, _, (kdd, ktd, ktt, tdd, ttd) = _problem(k_out=k_out)
    t, lr, reg = 3.7, 0.8, 1e-3
    n = y.size
    te = lr * t
    y2 = y.reshape(len(y), -1)
    mean, cov = predict_from_kernels(kdd, ktd, ktt, tdd, ttd, y, t=t, get=get, diag_reg=reg, learning_rate=lr)
    m = tdd if get == "ntk" else kdd
    m = m + reg * np.trace(m) / len(m) * np.eye(len(m))
    eye = np.eye(len(m))
    if get == "ntk":
        a = np.linalg.solve(m, eye - scipy.linalg.expm(-m * te / n))
        ref_mean = ttd @ a @ y2
        ref_cov = ktt + ttd @ a @ kdd @ a.T @ ttd.T - (ttd @ a @ ktd.T + ktd @ a.T @ ttd.T)
    else:
        a = np.linalg.solve(m, eye - scipy.linalg.expm(-m * te / n))
        a2 = np.linalg.solve(m, eye - scipy.linalg.expm(-2 * m * te / n))
        ref_mean = ktd @ a @ y2
        ref_cov = ktt - ktd @ a2 @ ktd.T
    np.testing.assert_allclose(mean.reshape(ref_mean.shape), ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-8, atol=1e-10)
    assert mean.shape == ((4,) if k_out == 1 else (4, k_out))


def test_time_grid_matches_scalar_calls_and_wrapper():
    xd, xt, y, opts, ks = _problem()
    ts = [0.0, 0.5, 7.0, np.inf]
    means, covs = predict_from_kernels(*ks, y, t=ts, get="ntk", diag_reg=1e-4)
    for i, t in enumerate(ts):
        m, c = predict_from_kernels(*ks, y, t=t, get="ntk", diag_reg=1e-4)
        np.testing.assert_allclose(means[i], m, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(covs[i], c, rtol=1e-13, atol=1e-15)
    m, c = predict_gd_mse(xd, y, xt, t=7.0, diag_reg=1e-4, **opts)
    np.testing.assert_allclose(m, means[2], rtol=1e-12)
    np.testing.assert_allclose(c, covs[2], rtol=1e-12)


# ---------------------------------------------------------------- finite ensembles


@pytest.mark.parametrize("architecture,depth", [("mlp", 2), ("resnet", 2), ("mlp", 0)])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_ensemble_members_equal_autograd_sgd(architecture, depth, activation):
    xtr, ytr, xte, yte = sine_dataset(n_train=4, n_test=6, seed=3)
    cfg = dict(activation=activation, w_std=1.5, b_std=0.05, architecture=architecture)
    res = train_ensemble_gd(xtr, ytr, xte, n_models=3, width=12, depth=depth, lr=0.02, steps=9,
                            record_every=4, seed=5, y_test=yte, chunk_size=2, dtype=torch.float64, **cfg)
    assert res["f_test"].shape == (4, 3, 6)
    np.testing.assert_array_equal(res["step"], [0, 4, 8, 9])
    np.testing.assert_allclose(res["t"], [0, 0.08, 0.16, 0.18])
    X, Y, XT = (torch.tensor(a) for a in (xtr, ytr, xte))
    for i, s in enumerate(res["seeds"]):
        model = ntk_mlp(1, 12, depth, seed=int(s), dtype=torch.float64, **cfg)
        opt = torch.optim.SGD(model.parameters(), lr=0.02)
        for step in range(9):
            if step in (0, 4, 8):
                r = [0, 4, 8].index(step)
                with torch.no_grad():
                    np.testing.assert_allclose(res["f_test"][r, i], model(XT).numpy(), rtol=1e-10, atol=1e-12)
            opt.zero_grad()
            loss = 0.5 * ((model(X) - Y) ** 2).mean()
            if step in (0, 4, 8):
                assert res["train_loss"][[0, 4, 8].index(step), i] == pytest.approx(loss.item(), rel=1e-10)
            loss.backward()
            opt.step()
        with torch.no_grad():
            np.testing.assert_allclose(res["f_test"][-1, i], model(XT).numpy(), rtol=1e-10, atol=1e-12)
            assert res["test_loss"][-1, i] == pytest.approx(
                0.5 * ((model(XT) - torch.tensor(yte)) ** 2).mean().item(), rel=1e-10)


def test_antithetic_pairs_cancel_initial_function():
    xtr, ytr, xte, _ = sine_dataset(seed=0)
    res = train_ensemble_gd(xtr, ytr, xte, n_models=4, width=16, depth=1, activation="erf", w_std=1.5,
                            b_std=0.05, lr=0.1, steps=0, record_every=1, seed=0, antithetic=True)
    f0 = res["f_test"][0]
    np.testing.assert_allclose(f0[0::2], -f0[1::2], atol=1e-6)
    assert np.abs(f0).max() > 0.1


def test_ensemble_mean_approaches_infinite_width_prediction():
    # Antithetic pairs remove the init-function noise, leaving the finite-width effects, which shrink
    # with width; the comparison at t = step * lr also checks the loss/time normalisation.
    xtr, ytr, xte, _ = sine_dataset(n_train=5, n_test=20, seed=1)
    cfg = dict(depth=1, activation="erf", w_std=1.5, b_std=0.05)
    gaps = {}
    for width in (64, 1024):
        res = train_ensemble_gd(xtr, ytr, xte, n_models=16, width=width, lr=0.1, steps=300, record_every=50,
                                seed=0, antithetic=True, dtype=torch.float64, **cfg)
        mean, _ = predict_gd_mse(xtr, ytr, xte, t=res["t"], **cfg)
        gaps[width] = np.abs(res["f_test"].mean(1) - mean).max()
    assert gaps[1024] < 0.3 * gaps[64]
    assert gaps[1024] < 0.03
    # the same ensemble compared on a wrong clock (t = 2 * step * lr) is far off
    mean_wrong, _ = predict_gd_mse(xtr, ytr, xte, t=2 * res["t"], **cfg)
    assert np.abs(res["f_test"].mean(1) - mean_wrong).max() > 3 * gaps[1024]


def test_sine_dataset():
    xtr, ytr, xte, yte = sine_dataset(seed=4)
    assert xtr.shape == (5, 1) and ytr.shape == (5,) and xte.shape == (50, 1) and yte.shape == (50,)
    assert np.all(np.abs(xtr) <= np.pi)
    np.testing.assert_allclose(xte[:, 0], np.linspace(-np.pi, np.pi, 50))
    np.testing.assert_allclose(yte, np.sin(xte[:, 0]))
    assert 0 < np.abs(ytr - np.sin(xtr[:, 0])).max() < 0.5
    np.testing.assert_array_equal(sine_dataset(seed=4)[1], ytr)
    np.testing.assert_allclose(sine_dataset(noise=0.0, seed=4)[1], np.sin(xtr[:, 0]))


# ------------------------------------------------------- convolutional kernels (CNN + global average pooling)


class FiniteCNN(torch.nn.Module):
    """[Conv(k x k, SAME zeros), phi] x depth -> global average pool -> Dense(1), NTK parameterisation:
    every weight and bias N(0, 1), a layer computes w_std / sqrt(fan_in) conv(x, W) + b_std b with
    fan_in = channels_in * k * k. Written here, independently of the kernel recursion it checks."""

    def __init__(self, c_in, channels, depth, *, k, activation, w_std, b_std, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.k, self.w_std, self.b_std = k, w_std, b_std
        self.phi = torch.relu if activation == "relu" else torch.erf
        dims = [c_in] + [channels] * depth
        self.convs = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(o, i, k, k, generator=g, dtype=torch.float64))
             for i, o in zip(dims, dims[1:])])
        self.conv_b = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(o, generator=g, dtype=torch.float64)) for o in dims[1:]])
        self.head = torch.nn.Parameter(torch.randn(channels, 1, generator=g, dtype=torch.float64))
        self.head_b = torch.nn.Parameter(torch.randn(1, generator=g, dtype=torch.float64))

    def features(self, x):
        for w, b in zip(self.convs, self.conv_b):
            scale = self.w_std / math.sqrt(w.shape[1] * self.k * self.k)
            x = self.phi(torch.nn.functional.conv2d(x, w, padding=self.k // 2) * scale
                         + self.b_std * b[:, None, None])
        return x.mean(dim=(2, 3))  # global average pooling

    def forward(self, x):
        g = self.features(x)
        return (g @ self.head * (self.w_std / math.sqrt(g.shape[1])) + self.b_std * self.head_b)[:, 0]


def _images(n=4, c=2, h=4, w=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w))


@pytest.mark.parametrize("activation,depth,k", [("relu", 1, 3), ("erf", 2, 3), ("relu", 2, 1)])
def test_conv_nngp_matches_wide_random_cnns(activation, depth, k):
    # One wide network gives `channels` draws of the pooled features (exactly independent at the
    # first layer, up to O(1/channels) beyond): E[f f'] = w² mean_c g_c g'_c + b²
    # (networks are independent: their spread gives the standard error of the mean estimate).
    x = _images()
    nngp, _ = inf.conv_kernels(x, depth=depth, activation=activation, w_std=W, b_std=B, filter_size=k)
    est = []
    for seed in range(8):
        net = FiniteCNN(2, 1024, depth, k=k, activation=activation, w_std=W, b_std=B, seed=seed)
        with torch.no_grad():
            g = net.features(torch.as_tensor(x)).numpy()
        est.append(W**2 * g @ g.T / g.shape[1] + B**2)
    est = np.array(est)
    se = est.std(0, ddof=1) / np.sqrt(len(est))
    iu = np.triu_indices(len(x))
    z = ((est.mean(0) - nngp) / se)[iu]
    assert np.abs(z).max() < 4.5, z  # 10 correlated entries; finite-width bias O(1/channels) << 1 SE
    # power check: the same estimate rejects the kernel of a 10% larger w_std
    bad, _ = inf.conv_kernels(x, depth=depth, activation=activation, w_std=1.1 * W, b_std=B, filter_size=k)
    assert np.abs(((est.mean(0) - bad) / se)[iu]).max() > 6


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_conv_ntk_matches_empirical_ntk_of_wide_cnns(activation):
    x = _images(n=3, h=4, w=4)
    _, theta = inf.conv_kernels(x, depth=2, activation=activation, w_std=W, b_std=B)

    class Flat(torch.nn.Module):  # empirical_ntk feeds flattened inputs
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return self.net(z.reshape(-1, 2, 4, 4))

    def rel_err(channels):
        errs = [np.linalg.norm(inf.empirical_ntk(Flat(FiniteCNN(2, channels, 2, k=3, activation=activation,
                                                                w_std=W, b_std=B, seed=s)),
                                                 torch.as_tensor(x)) - theta)
                / np.linalg.norm(theta) for s in range(3)]
        return float(np.mean(errs))

    small, big = rel_err(16), rel_err(512)
    assert big < 0.08 and big < 0.5 * small, (small, big)  # fluctuations ~ 1/sqrt(channels)


def test_conv_kernels_symmetry_blocks_threads_and_diagonal():
    x1, x2 = _images(n=7, seed=1), _images(n=5, seed=2)
    opts = dict(depth=2, activation="relu", w_std=W, b_std=B)
    k12, t12 = inf.conv_kernels(x1, x2, **opts)
    k21, t21 = inf.conv_kernels(x2, x1, **opts, batch_size=2, threads=2)
    np.testing.assert_allclose(k12, k21.T, rtol=1e-13)
    np.testing.assert_allclose(t12, t21.T, rtol=1e-13)
    k11, t11 = inf.conv_kernels(x1, **opts, batch_size=3, threads=2)
    np.testing.assert_array_equal(k11, k11.T)
    np.testing.assert_allclose(k11, inf.conv_kernels(x1, x1, **opts)[0], rtol=1e-13)
    for i in (0, 4, 6):  # the diagonal is the image's own kernel, computed alone
        ks, ts = inf.conv_kernels(x1[i:i + 1], **opts)
        assert k11[i, i] == ks[0, 0] and t11[i, i] == ts[0, 0]
    assert np.linalg.eigvalsh(k11).min() > 0 and np.linalg.eigvalsh(t11).min() > 0
    # single-channel (n, H, W) input is (n, 1, H, W)
    x = x1[:, 0]
    np.testing.assert_array_equal(inf.conv_kernels(x, **opts)[0], inf.conv_kernels(x[:, None], **opts)[0])


def test_conv_kernel_of_a_1x1_filter_by_hand():
    # A 1x1 conv mixes no positions: K1[i, j] = w² x_i x'_j / C + b², then ReLU's arc-cosine map per
    # position pair, then the mean over all pairs, then the readout
    x = _images(n=2, c=1, h=2, w=2, seed=3)[:, 0].reshape(2, 4)
    q = W**2 * x**2 + B**2
    k1 = W**2 * x[0][:, None] * x[1][None, :] + B**2
    cos = k1 / np.sqrt(q[0][:, None] * q[1][None, :])
    theta = np.arccos(np.clip(cos, -1, 1))
    e = (np.sqrt(q[0][:, None] * q[1][None, :]) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
         / (2 * np.pi))
    ed = (np.pi - theta) / (2 * np.pi)
    expected_k = W**2 * e.mean() + B**2
    expected_t = expected_k + W**2 * (k1 * ed).mean()
    k, t = inf.conv_kernels(x.reshape(2, 2, 2), depth=1, activation="relu", w_std=W, b_std=B, filter_size=1)
    assert k[0, 1] == pytest.approx(expected_k, rel=1e-12) and t[0, 1] == pytest.approx(expected_t, rel=1e-12)


def test_conv_kernels_bad_input():
    x = _images()
    with pytest.raises(ValueError, match="filter_size"):
        inf.conv_kernels(x, depth=1, w_std=W, b_std=B, filter_size=2)
    with pytest.raises(ValueError, match="depth"):
        inf.conv_kernels(x, depth=0, w_std=W, b_std=B)
    with pytest.raises(ValueError, match="image shapes"):
        inf.conv_kernels(x, _images(h=5), depth=1, w_std=W, b_std=B)
    with pytest.raises(ValueError, match="shape"):
        inf.conv_kernels(np.ones((3, 4)), depth=1, w_std=W, b_std=B)
    with pytest.raises(ValueError, match="activation"):
        inf.conv_kernels(x, depth=1, w_std=W, b_std=B, activation="tanh")


@pytest.mark.parametrize("activation,depth,k",
                         [("relu", 1, 3), ("relu", 2, 3), ("erf", 2, 3), ("relu", 2, 5)])
def test_conv_kernels_match_neural_tangents(activation, depth, k):
    nt = pytest.importorskip("neural_tangents")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    stax = nt.stax
    act = stax.Relu() if activation == "relu" else stax.Erf()
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(5, (k, k), padding="SAME", W_std=W, b_std=B), act]
    _, _, kernel_fn = stax.serial(*layers, stax.GlobalAvgPool(), stax.Dense(1, W_std=W, b_std=B))
    x1, x2 = _images(n=3, h=5, w=4, seed=4), _images(n=2, h=5, w=4, seed=5)
    nhwc = lambda a: np.transpose(a, (0, 2, 3, 1))  # noqa: E731  neural-tangents puts channels last
    for a, b in ((x1, x2), (x1, None)):
        ref = kernel_fn(nhwc(a), None if b is None else nhwc(b), ("nngp", "ntk"))
        ours = inf.conv_kernels(a, b, depth=depth, activation=activation, w_std=W, b_std=B, filter_size=k)
        np.testing.assert_allclose(ours[0], np.asarray(ref.nngp), rtol=1e-10, atol=0)
        np.testing.assert_allclose(ours[1], np.asarray(ref.ntk), rtol=1e-10, atol=0)


def test_pooled_images():
    x = np.arange(2 * 1 * 4 * 6, dtype=np.uint8).reshape(2, 1, 4, 6)
    p = inf.pooled_images(x, 2)
    assert p.shape == (2, 1, 2, 3)
    assert p[1, 0, 1, 2] == pytest.approx(np.mean(x[1, 0, 2:4, 4:6]) / 255.0)
    np.testing.assert_allclose(inf.pooled_images(x, 1), x / 255.0)
    with pytest.raises(ValueError, match="pool"):
        inf.pooled_images(x, 4)


def test_conv_regression_against_explicit_kernel_ridge():
    from repatlas.data import balanced_order, load_dataset

    d = load_dataset("digits")
    xtr, ytr = inf.pooled_images(d["x_train"][:80], 2), d["y_train"][:80]
    xte, yte = inf.pooled_images(d["x_test"][:30], 2), d["y_test"][:30]
    ds = inf.conv_regression(xtr, ytr, xte, yte, n_trains=[40, 20], depth=1, diag_reg=1e-3)
    assert list(ds["n_train"].values) == [20, 40] and ds["correct"].shape == (2, 2, 2, 30)
    order = balanced_order(ytr, 0)[:40]
    assert np.bincount(ytr[order[:20]], minlength=10).max() <= 2  # nested sets are class-balanced
    y = np.eye(10)[ytr[order]] - 0.1
    for arch, fn in (("fc", inf.kernels), ("conv", inf.conv_kernels)):
        k_dd, t_dd = fn(xtr[order], depth=1, activation="relu", w_std=1.5, b_std=0.05)
        k_td, t_td = fn(xte, xtr[order], depth=1, activation="relu", w_std=1.5, b_std=0.05)
        for kind, m, c in (("nngp", k_dd, k_td), ("ntk", t_dd, t_td)):
            reg = m + 1e-3 * np.trace(m) / 40 * np.eye(40)  # diag_reg * trace / n, as neural-tangents
            pred = c @ np.linalg.solve(reg, y)
            acc = float(ds["accuracy"].sel(architecture=arch, kernel=kind, n_train=40))
            assert acc == pytest.approx(np.mean(pred.argmax(1) == yte))
    diff = ds["correct"].sel(architecture="conv") - ds["correct"].sel(architecture="fc")
    np.testing.assert_allclose(ds["conv_minus_fc"], diff.mean("example"))
    np.testing.assert_allclose(ds["conv_minus_fc_se"], diff.std("example", ddof=1) / np.sqrt(30))


# ---------------------------------------------------------------- cookbook gap across widths


def test_gap_statistics_unbiased_and_calibrated():
    # rows = bias + correlated noise; the debiased gap² averages to the true mean(b²) and its spread
    # over replicates matches the reported standard error
    rng = np.random.default_rng(0)
    n, p = 12, 20
    bias = 0.05 * np.sin(np.linspace(0, 3, n))
    a = rng.standard_normal((n, n)) * 0.03
    est, ses = [], []
    for _ in range(3000):
        rows = bias + rng.standard_normal((p, n)) @ a
        s = inf.gap_statistics(rows, np.zeros(n))
        est.append(s["gap2"])
        ses.append(s["gap2_se"])
        assert s["gap_raw"] ** 2 == pytest.approx(s["gap2"] + s["noise_rms"] ** 2)
    est = np.array(est)
    assert abs(est.mean() - np.mean(bias**2)) < 3 * est.std() / np.sqrt(len(est))
    assert 0.8 < np.mean(ses) / est.std() < 1.25
    with pytest.raises(ValueError, match="2 independent"):
        inf.gap_statistics(np.ones((1, 3)), np.zeros(3))


def test_fit_gap_exponent_recovers_power_law():
    w = np.array([128, 256, 512, 1024, 2048.0])
    g2 = (3.0 / w) ** 2
    se = 0.1 * g2
    fit = inf.fit_gap_exponent(w, g2, se)
    assert (fit["exponent"] == pytest.approx(1.0, abs=1e-6)
            and fit["amplitude"] == pytest.approx(9.0, rel=1e-6))
    # noisy estimates (some gap² below 0) still give a fit whose error bar covers the truth
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        se = np.full(5, 2e-5)
        f = inf.fit_gap_exponent(w, (2.0 / w) ** 2 + se * rng.standard_normal(5), se)
        hits += abs(f["exponent"] - 1) <= 2 * f["exponent_se"]
    assert hits >= 170  # ~95 % coverage of a ±2 SE interval
    with pytest.raises(ValueError, match="3 widths"):
        inf.fit_gap_exponent(w[:2], g2[:2], g2[:2])


def test_cookbook_gap_and_table():
    ds = [inf.cookbook_gap(width=w, pairs=3, steps=30, seed=0) for w in (8, 16, 32)]
    one = ds[0]
    assert one["pair_mean"].shape == (3, 50) and one.attrs["t"] == pytest.approx(3.0)
    # the target is the NTK mean at the ensemble's final time
    xtr, ytr, xte, _ = sine_dataset(5, 50, 0.1, seed=0)
    mean, _ = predict_gd_mse(xtr, ytr, xte, t=3.0, depth=2, activation="erf", w_std=1.5, b_std=0.05,
                             compute_cov=False)
    np.testing.assert_allclose(one["ntk_mean"], mean)
    stats = inf.gap_statistics(one["pair_mean"].values, mean)
    assert float(one["gap2"]) == pytest.approx(stats["gap2"])
    # widths draw independent networks
    assert ds[0].attrs["width_seed"] != ds[1].attrs["width_seed"]
    table = inf.cookbook_gap_table(ds[::-1])
    assert list(table["width"].values) == [8, 16, 32]
    np.testing.assert_allclose(table["gap2"], [float(d["gap2"]) for d in ds])
    assert {"exponent", "exponent_se", "one_over_width"} <= set(table.attrs)
    with pytest.raises(ValueError, match="one result per width"):
        inf.cookbook_gap_table([ds[0], ds[0]])
