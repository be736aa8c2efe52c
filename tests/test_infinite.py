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
    orth = scipy.stats.multivariate_normal(mean=[0, 0], cov=[[q11, q12], [q12, q22]], allow_singular=True).cdf([0, 0])
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
