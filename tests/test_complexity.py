"""Complexity measures against closed forms and independent computations."""

import math

import numpy as np
import pytest
from numpy.polynomial import chebyshev as npcheb

from repatlas.complexity import (
    chebyshev_coefficients,
    chebyshev_complexity,
    compute_measures,
    default_chebyshev_degree,
    fourier_complexity,
    grid,
    grid_axis,
    lz76_phrase_count,
    lz76_phrase_count_reference,
    lz_complexity,
)


def _on_grid(f, R):
    """values[i, j] = f(x_i, y_j), built independently of grid()."""
    x = grid_axis(R)
    return np.array([[f(xi, yj) for yj in x] for xi in x])


# ----------------------------------------------------------------------------- grid


def test_grid_axis_definition():
    R = 8
    np.testing.assert_allclose(grid_axis(R), [-1 + 2 * i / R for i in range(R)], atol=0)
    assert grid_axis(R)[0] == -1.0 and grid_axis(R)[-1] < 1.0


def test_grid_is_row_major_with_x_first():
    R = 5
    pts = grid(R)
    assert pts.shape == (R * R, 2)
    f = lambda x, y: 3 * x + 7 * y**2  # noqa: E731
    via_grid = f(pts[:, 0], pts[:, 1]).reshape(R, R)
    np.testing.assert_allclose(via_grid, _on_grid(f, R), atol=1e-15)


# -------------------------------------------------------------------------- Fourier


@pytest.mark.parametrize("R", [32, 64, 33])
def test_fourier_cosine_fixed_point(R):
    for m in [1, 2, 5, 11, (R - 1) // 2]:
        vx = _on_grid(lambda x, y: math.cos(math.pi * m * x), R)
        vy = _on_grid(lambda x, y: math.cos(math.pi * m * y), R)
        assert fourier_complexity(vx) == pytest.approx(m, abs=1e-9)
        assert fourier_complexity(vy) == pytest.approx(m, abs=1e-9)


def test_fourier_separable_product_gives_frequency_norm():
    # cos(pi m x) cos(pi n y) has all its energy at (+-m, +-n): C_F = sqrt(m^2 + n^2).
    R = 64
    for m, n in [(1, 1), (3, 4), (7, 2)]:
        v = _on_grid(lambda x, y: math.cos(math.pi * m * x) * math.cos(math.pi * n * y), R)
        assert fourier_complexity(v) == pytest.approx(math.hypot(m, n), abs=1e-9)


def test_fourier_matches_explicit_dft():
    # Independent DFT: explicit exponential matrices instead of np.fft.
    R = 16
    rng = np.random.default_rng(0)
    v = rng.normal(size=(R, R))
    idx = np.arange(R)
    E = np.exp(-2j * np.pi * np.outer(idx, idx) / R)
    Fm = np.abs(E @ (v - v.mean()) @ E.T)
    k = np.where(idx < R / 2, idx, idx - R)  # integer frequencies
    norms = np.hypot(k[:, None], k[None, :])
    Fm[0, 0] = 0
    expected = (Fm * norms).sum() / Fm.sum()
    assert fourier_complexity(v) == pytest.approx(expected, rel=1e-12)


def test_fourier_constant_is_exactly_zero():
    for c in [0.0, 1.0, -3.7, 1e6, 0.1]:
        assert fourier_complexity(np.full((32, 32), c)) == 0.0
    batch = np.stack([np.full((16, 16), 0.1), np.full((16, 16), 2.0)])
    np.testing.assert_array_equal(fourier_complexity(batch), [0.0, 0.0])


def test_white_noise_fourier_is_mean_frequency_norm():
    # Uniform expected spectrum: C_F ~ mean ||k|| over all k != 0.
    R = 64
    rng = np.random.default_rng(1)
    k = np.fft.fftfreq(R) * R
    norms = np.hypot(k[:, None], k[None, :]).ravel()[1:]
    c = fourier_complexity(rng.uniform(-1, 1, size=(8, R, R)))
    assert np.mean(c) == pytest.approx(norms.mean(), rel=0.02)


# ------------------------------------------------------------------------ Chebyshev


def test_chebyshev_fixed_points():
    R = 64
    T3 = _on_grid(lambda x, y: npcheb.chebval(x, [0, 0, 0, 1]), R)
    T2T1 = _on_grid(lambda x, y: npcheb.chebval(x, [0, 0, 1]) * y, R)
    T5y = _on_grid(lambda x, y: npcheb.chebval(y, [0, 0, 0, 0, 0, 1]), R)
    assert chebyshev_complexity(T3) == pytest.approx(3.0, abs=1e-8)
    assert chebyshev_complexity(T2T1) == pytest.approx(math.sqrt(5), abs=1e-8)
    assert chebyshev_complexity(T5y) == pytest.approx(5.0, abs=1e-8)
    assert chebyshev_complexity(np.full((R, R), 2.5)) == 0.0


def test_chebyshev_coefficients_match_full_least_squares():
    # Separable projector vs lstsq on the full (R^2, (D+1)^2) design matrix.
    R, D = 12, 4
    rng = np.random.default_rng(2)
    v = rng.normal(size=(R, R))
    V = npcheb.chebvander(grid_axis(R), D)
    A = np.kron(V, V)  # row i*R + j, column n1*(D+1) + n2
    coef, *_ = np.linalg.lstsq(A, v.ravel(), rcond=None)
    np.testing.assert_allclose(chebyshev_coefficients(v, degree=D), coef.reshape(D + 1, D + 1), atol=1e-10)
    c = np.abs(coef.reshape(D + 1, D + 1))
    n = np.arange(D + 1)
    w = np.hypot(n[:, None], n[None, :])
    c[0, 0] = 0
    assert chebyshev_complexity(v, degree=D) == pytest.approx((c * w).sum() / c.sum(), rel=1e-10)


def test_chebyshev_default_degree_and_bounds():
    assert default_chebyshev_degree(64) == 20
    assert default_chebyshev_degree(16) == 8
    with pytest.raises(ValueError):
        chebyshev_complexity(np.zeros((8, 8)), degree=8)


# ---------------------------------------------------------------------- Lempel-Ziv


def test_lz_reference_on_kaspar_schuster_example():
    # 0 | 001 | 10 | 100 | 1000 | 101  -> 6 phrases
    s = bytes(int(ch) for ch in "0001101001000101")
    assert lz76_phrase_count_reference(s) == 6
    assert lz76_phrase_count(s) == 6


def _sequences():
    rng = np.random.default_rng(3)
    seqs = []
    for n in [1, 2, 3, 7, 8, 9, 15, 16, 17, 40, 100, 257, 600]:
        seqs.append(rng.integers(0, 2, n))  # fair coin
        seqs.append((rng.random(n) < 0.1).astype(int))  # sparse
        seqs.append(np.resize(rng.integers(0, 2, rng.integers(1, 13)), n))  # periodic
        seqs.append(np.repeat(rng.integers(0, 2, n // 5 + 1), 5)[:n])  # runs
        seqs.append(np.zeros(n, dtype=int))
        seqs.append(rng.integers(0, 3, n))  # 3 symbols (generic path)
    # median-binarised smooth function, as in lz_complexity
    x = grid_axis(20)
    f = np.sin(3 * x)[:, None] + np.cos(5 * x)[None, :]
    seqs.append((f > np.median(f)).astype(int).ravel())
    return seqs


def test_fast_lz_parse_matches_reference():
    for s in _sequences():
        assert lz76_phrase_count(s) == lz76_phrase_count_reference(s.tolist()), s


def test_lz_complexity_matches_hand_binarisation():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(16, 16)).cumsum(axis=1)
    bits = (v > np.median(v)).astype(int).ravel()  # row-major
    n = bits.size
    expected = lz76_phrase_count_reference(bits.tolist()) * math.log2(n) / n
    assert lz_complexity(v) == pytest.approx(expected, rel=1e-15)


def test_lz_fair_coin_is_about_one():
    # c log2(n)/n -> 1 from above; for n = 4096 we measured mean 1.035, sd 0.008 over seeds
    # (finite-n excess ~ 1/log2(n) order). Tolerance 0.08 = excess + ~5 sd of an 8-sample mean.
    # i.i.d. continuous values binarised at their median are a fair-coin sequence.
    rng = np.random.default_rng(5)
    c = lz_complexity(rng.uniform(size=(8, 64, 64)))
    assert abs(c.mean() - 1.0) < 0.08
    assert c.min() > 0.9
    # and the parse itself on raw coin flips
    n = 4096
    bits = rng.integers(0, 2, n)
    assert abs(lz76_phrase_count(bits) * math.log2(n) / n - 1.0) < 0.08


def test_lz_constant_is_small():
    n = 64 * 64
    # everything equals the median -> all zeros -> phrases "0" + the rest = 2
    assert lz_complexity(np.full((64, 64), 3.0)) == pytest.approx(2 * math.log2(n) / n)
    assert lz_complexity(np.full((64, 64), 3.0)) < 0.01


# ---------------------------------------------------------------- invariance, batching


def _test_functions():
    rng = np.random.default_rng(6)
    x = grid_axis(32)
    smooth = np.sin(2.3 * x)[:, None] * np.exp(x)[None, :] + 0.3 * x[:, None]
    return [smooth, rng.normal(size=(32, 32))]


@pytest.mark.parametrize("name", ["fourier", "chebyshev", "lz"])
def test_invariance_to_offset_and_positive_scale(name):
    for v in _test_functions():
        base = compute_measures(v, [name])[name]
        for w in (v + 3.0, v - 0.25, 2.5 * v, 1e-3 * v, 7.0 * v + 1.0):
            assert compute_measures(w, [name])[name] == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("name", ["fourier", "chebyshev", "lz"])
def test_batch_equals_per_item(name):
    rng = np.random.default_rng(7)
    x = grid_axis(16)
    batch = rng.normal(size=(2, 3, 16, 16)) + np.sin(4 * x)[:, None]
    batch[0, 1] = 5.0  # a constant item inside a batch
    out = compute_measures(batch, [name])[name]
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert out[i, j] == pytest.approx(compute_measures(batch[i, j], [name])[name], rel=1e-12, abs=1e-15)
    assert isinstance(compute_measures(batch[0, 0], [name])[name].item(), float)
