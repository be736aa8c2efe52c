"""Complexity measures against closed forms and independent computations."""

import math

import numpy as np
import pytest
from numpy.polynomial import chebyshev as npcheb

from repatlas.complexity import (
    MeasureSettings,
    chebyshev_coefficients,
    chebyshev_complexity,
    chebyshev_grid,
    chebyshev_nodes,
    compute_measures,
    fourier_complexity,
    grid,
    grid_axis,
    longest_previous_factor,
    lz76_phrase_count,
    lz76_phrase_count_reference,
    lz_complexity,
)


def _on_grid(f, R):
    """values[i, j] = f(x_i, y_j), built independently of grid()."""
    x = grid_axis(R)
    return np.array([[f(xi, yj) for yj in x] for xi in x])


def _on_nodes(f, M):
    """values[i, j] = f(x_i, x_j) at Chebyshev points of the first kind, written out here."""
    x = [math.cos(math.pi * (k + 0.5) / M) for k in range(M)]
    return np.array([[f(xi, yj) for yj in x] for xi in x])


def _cheb_T(n, x):
    """T_n(x) = cos(n arccos x), evaluated directly."""
    return math.cos(n * math.acos(max(-1.0, min(1.0, x))))


# ----------------------------------------------------------------------------- grid


def test_grid_axis_definition():
    R = 8
    np.testing.assert_allclose(grid_axis(R), [-1 + 2 * i / R for i in range(R)], atol=0)
    assert grid_axis(R)[0] == -1.0 and grid_axis(R)[-1] < 1.0


def test_grid_with_endpoint_is_linspace():
    # the paper's grid: linspace(-1, 1, R) per axis, both ends included
    R = 7
    np.testing.assert_allclose(grid_axis(R, endpoint=True), [-1 + 2 * i / (R - 1) for i in range(R)],
                               atol=1e-15)
    pts = grid(R, endpoint=True)
    assert pts.shape == (R * R, 2)
    assert pts[0].tolist() == [-1.0, -1.0] and pts[-1].tolist() == [1.0, 1.0]
    assert pts[1].tolist() == [-1.0, grid_axis(R, True)[1]]  # y varies fastest


def test_chebyshev_grid_layout():
    M = 5
    x = chebyshev_nodes(M)
    np.testing.assert_allclose(x, [math.cos(math.pi * (k + 0.5) / M) for k in range(M)], atol=1e-15)
    pts = chebyshev_grid(M)
    assert pts.shape == (M * M, 2)
    f = lambda a, b: 3 * a + 7 * b**2  # noqa: E731
    np.testing.assert_allclose(f(pts[:, 0], pts[:, 1]).reshape(M, M), _on_nodes(f, M), atol=1e-14)


def test_grid_is_row_major_with_x_first():
    R = 5
    pts = grid(R)
    assert pts.shape == (R * R, 2)
    f = lambda x, y: 3 * x + 7 * y**2  # noqa: E731
    via_grid = f(pts[:, 0], pts[:, 1]).reshape(R, R)
    np.testing.assert_allclose(via_grid, _on_grid(f, R), atol=1e-15)


# -------------------------------------------------------------------------- Fourier


def _paper_fourier_loops(v):
    """The paper's Fourier measure written out with loops (references.md section 3), independent
    of the library: explicit DFT sums for k_x, k_y >= 0, integer radial bins, mean radius / r_max."""
    R = v.shape[0]
    half = R // 2
    S = {}
    for kx in range(half + 1):
        for ky in range(half + 1):
            if kx == 0 and ky == 0:
                continue
            re = im = 0.0
            for i in range(R):
                for j in range(R):
                    phase = -2 * math.pi * (kx * i + ky * j) / R
                    re += v[i, j] * math.cos(phase)
                    im += v[i, j] * math.sin(phase)
            r = round(math.hypot(kx, ky))
            S[r] = S.get(r, 0.0) + math.hypot(re, im)
    r_max = round(math.hypot(half, half))
    return sum(r * s for r, s in S.items()) / (r_max * sum(S.values()))


@pytest.mark.parametrize("R", [8, 9, 12])
def test_paper_fourier_matches_loop_implementation(R):
    rng = np.random.default_rng(R)
    x = grid_axis(R, endpoint=True)
    smooth = np.sin(2.3 * x)[:, None] * np.exp(x)[None, :] + 0.3 * x[:, None]
    for v in [rng.normal(size=(R, R)), smooth, rng.normal(size=(R, R)).cumsum(axis=0)]:
        assert fourier_complexity(v, "paper") == pytest.approx(_paper_fourier_loops(v), rel=1e-12)
    # the default convention is the paper's
    assert fourier_complexity(smooth) == fourier_complexity(smooth, "paper")


@pytest.mark.parametrize("R", [300, 64, 33])
def test_paper_fourier_cosine_lands_in_its_radial_bin(R):
    # cos(2 pi m i / R) is periodic on the DFT grid: all its energy sits at k_x = +-m, k_y = 0,
    # of which rfft2 keeps (m, 0), in radial bin m; r_max = rint(hypot(R//2, R//2)) (212 at R = 300).
    r_max = round(math.hypot(R // 2, R // 2))
    TOL = 1e-9  # FFT round-off leaks ~1e-13 of each peak into each of ~R^2/4 other bins
    i = np.arange(R)
    for m in [1, 2, 5, 11, (R - 1) // 2]:
        wave = np.cos(2 * np.pi * m * i / R)
        assert fourier_complexity(np.outer(wave, np.ones(R))) == pytest.approx(m / r_max, abs=TOL)
        assert fourier_complexity(np.outer(np.ones(R), wave)) == pytest.approx(m / r_max, abs=TOL)
    # a product of two waves lands at (m, n), bin rint(hypot(m, n)); a diagonal wave at (m, m)
    for m, n in [(1, 1), (3, 4), (7, 2), (R // 2 - 1, 9)]:  # frequencies below the Nyquist R/2
        v = np.outer(np.cos(2 * np.pi * m * i / R), np.cos(2 * np.pi * n * i / R))
        assert fourier_complexity(v) == pytest.approx(round(math.hypot(m, n)) / r_max, abs=TOL)
        diag = np.cos(2 * np.pi * m * (i[:, None] + i[None, :]) / R) + 5.0  # offset: dropped with k = 0
        assert fourier_complexity(diag) == pytest.approx(round(m * math.sqrt(2)) / r_max, abs=TOL)


def test_paper_fourier_white_noise_and_bounds():
    # Measured: 0.5421 +- 0.0004 (sd of one draw) at R = 300; the mean of 4 draws within 0.003.
    rng = np.random.default_rng(11)
    c = fourier_complexity(rng.uniform(-1, 1, size=(4, 300, 300)))
    assert abs(c.mean() - 0.542) < 0.003
    assert ((0 <= c) & (c <= 1)).all()
    assert fourier_complexity(np.full((300, 300), 7.0)) == 0.0


def test_fourier_unknown_convention():
    with pytest.raises(ValueError, match="convention"):
        fourier_complexity(np.zeros((8, 8)), convention="radians")


@pytest.mark.parametrize("R", [32, 64, 33])
def test_fourier_cosine_fixed_point(R):
    for m in [1, 2, 5, 11, (R - 1) // 2]:
        vx = _on_grid(lambda x, y: math.cos(math.pi * m * x), R)
        vy = _on_grid(lambda x, y: math.cos(math.pi * m * y), R)
        assert fourier_complexity(vx, "cycles") == pytest.approx(m, abs=1e-9)
        assert fourier_complexity(vy, "cycles") == pytest.approx(m, abs=1e-9)


def test_fourier_separable_product_gives_frequency_norm():
    # cos(pi m x) cos(pi n y) has all its energy at (+-m, +-n): C_F = sqrt(m^2 + n^2).
    R = 64
    for m, n in [(1, 1), (3, 4), (7, 2)]:
        v = _on_grid(lambda x, y: math.cos(math.pi * m * x) * math.cos(math.pi * n * y), R)
        assert fourier_complexity(v, "cycles") == pytest.approx(math.hypot(m, n), abs=1e-9)


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
    assert fourier_complexity(v, "cycles") == pytest.approx(expected, rel=1e-12)


def test_fourier_constant_is_exactly_zero():
    for convention in ("paper", "cycles"):
        for c in [0.0, 1.0, -3.7, 1e6, 0.1]:
            assert fourier_complexity(np.full((32, 32), c), convention) == 0.0
        batch = np.stack([np.full((16, 16), 0.1), np.full((16, 16), 2.0)])
        np.testing.assert_array_equal(fourier_complexity(batch, convention), [0.0, 0.0])


def test_white_noise_fourier_is_mean_frequency_norm():
    # Uniform expected spectrum: C_F ~ mean ||k|| over all k != 0.
    R = 64
    rng = np.random.default_rng(1)
    k = np.fft.fftfreq(R) * R
    norms = np.hypot(k[:, None], k[None, :]).ravel()[1:]
    c = fourier_complexity(rng.uniform(-1, 1, size=(8, R, R)), "cycles")
    assert np.mean(c) == pytest.approx(norms.mean(), rel=0.02)


# ------------------------------------------------------------------------ Chebyshev


def test_chebyshev_fixed_points():
    M = 32
    T3 = _on_nodes(lambda x, y: _cheb_T(3, x), M)
    T2T1 = _on_nodes(lambda x, y: _cheb_T(2, x) * y, M)
    T5y = _on_nodes(lambda x, y: _cheb_T(5, y), M)
    assert chebyshev_complexity(T3) == pytest.approx(3.0, abs=1e-12)
    assert chebyshev_complexity(T2T1) == pytest.approx(math.sqrt(5), abs=1e-12)
    assert chebyshev_complexity(T5y) == pytest.approx(5.0, abs=1e-12)
    assert chebyshev_complexity(T3 + 4.0) == pytest.approx(3.0, abs=1e-12)  # the offset is T_0
    assert chebyshev_complexity(np.full((M, M), 2.5)) == 0.0
    # a degree above D is not counted: T_25 alone leaves nothing in n <= 20
    T3_T25 = _on_nodes(lambda x, y: _cheb_T(3, x) + _cheb_T(25, y), M)
    assert chebyshev_complexity(T3_T25, degree=20) == pytest.approx(3.0, abs=1e-12)
    assert chebyshev_complexity(T3_T25, degree=30) == pytest.approx(14.0, abs=1e-12)  # (3 + 25) / 2


def test_chebyshev_coefficients_recover_a_known_expansion():
    # values built by direct evaluation of sum c T_n1(x) T_n2(y) at the nodes -> c exactly (n < M)
    M = 9
    rng = np.random.default_rng(2)
    c = rng.normal(size=(M, M))
    v = _on_nodes(lambda x, y: sum(c[a, b] * _cheb_T(a, x) * _cheb_T(b, y)
                                   for a in range(M) for b in range(M)), M)
    np.testing.assert_allclose(chebyshev_coefficients(v), c, atol=1e-12)


def test_chebyshev_coefficients_match_float64_solve_at_nodes():
    # interpolation = solving the (square) Vandermonde system V c V^T = values at the nodes
    M = 16
    rng = np.random.default_rng(3)
    v = rng.normal(size=(2, M, M))
    V = npcheb.chebvander(chebyshev_nodes(M), M - 1)
    for b in range(2):
        expected = np.linalg.solve(V, np.linalg.solve(V, v[b]).T).T
        np.testing.assert_allclose(chebyshev_coefficients(v)[b], expected, atol=1e-12)
        a = np.abs(expected[:11, :11])
        a[0, 0] = 0
        n = np.arange(11)
        w = np.hypot(n[:, None], n[None, :])
        assert chebyshev_complexity(v[b], degree=10) == pytest.approx((a * w).sum() / a.sum(), rel=1e-12)


def test_chebyshev_degree_bounds():
    with pytest.raises(ValueError, match="degree"):
        chebyshev_complexity(np.zeros((8, 8)), degree=8)
    assert chebyshev_complexity(np.zeros((8, 8)), degree=7) == 0.0


def test_chebyshev_interpolation_rates_a_kink_low():
    # |x| (a ReLU-like kink) has Chebyshev coefficients decaying like n^-2: interpolated at the
    # nodes its complexity stays far below white noise (~15.6 at D = 20, measured), unlike an
    # equispaced least-squares fit (Runge).
    M = 128
    kink = _on_nodes(lambda x, y: abs(x - 0.1) + 0.5 * y, M)
    noise = np.random.default_rng(4).uniform(-1, 1, size=(8, M, M))
    white = chebyshev_complexity(noise).mean()
    assert 15.0 < white < 16.2
    assert chebyshev_complexity(kink) < 0.4 * white


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


def test_fast_lz_parse_on_long_repeats_and_large_alphabets():
    # long repeats force many prefix-doubling rounds (matches of thousands of symbols); large
    # alphabets pack fewer symbols per 64-bit code
    rng = np.random.default_rng(8)
    n = 3000
    one = np.zeros(n, dtype=int)
    one[[17, 1500]] = 1
    seqs = [one, np.resize(rng.integers(0, 2, 37), n), np.repeat(rng.integers(0, 2, 40), 75),
            np.resize(rng.integers(0, 200, 50), 2000), rng.integers(0, 256, 1000), rng.integers(0, 5, 2000),
            np.concatenate([rng.integers(0, 2, 500), np.zeros(2000, int), rng.integers(0, 2, 500)])]
    for s in seqs:
        assert lz76_phrase_count(s) == lz76_phrase_count_reference(s.tolist())
    # any hashable order-free labels: negative or float symbols are relabelled
    s = rng.integers(-3, 3, 500)
    assert lz76_phrase_count(s) == lz76_phrase_count_reference(s.tolist())
    assert lz76_phrase_count(s.astype(float) / 7) == lz76_phrase_count_reference(s.tolist())


def test_longest_previous_factor_brute_force():
    rng = np.random.default_rng(10)
    for n, k in [(1, 2), (2, 2), (70, 2), (150, 2), (200, 3), (130, 17)]:
        for s in [rng.integers(0, k, n), np.resize(rng.integers(0, k, 5), n)]:
            expected = []
            for i in range(n):
                best = 0
                for p in range(i):
                    m = 0
                    while i + m < n and s[p + m] == s[i + m]:
                        m += 1
                    best = max(best, m)
                expected.append(best)
            assert longest_previous_factor(s).tolist() == expected


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


def test_measure_settings_sample_sets_and_compute():
    # LZ on the Fourier grid
    s = MeasureSettings(grid_size=12, chebyshev_nodes=10, chebyshev_degree=5, lz_grid_size=None)
    sets = s.sample_sets()
    assert list(sets) == ["grid", "chebyshev"]
    np.testing.assert_array_equal(sets["grid"], grid(12, endpoint=True))
    np.testing.assert_array_equal(sets["chebyshev"], chebyshev_grid(10))
    rng = np.random.default_rng(9)
    samples = {"grid": rng.normal(size=(3, 12, 12)), "chebyshev": rng.normal(size=(3, 10, 10))}
    out = s.compute(samples)
    np.testing.assert_array_equal(out["fourier"], fourier_complexity(samples["grid"], "paper"))
    np.testing.assert_array_equal(out["chebyshev"], chebyshev_complexity(samples["chebyshev"], 5))
    np.testing.assert_array_equal(out["lz"], lz_complexity(samples["grid"]))
    # one evaluation at points() splits back into each set's (R, R) layout
    f = lambda xy: np.sin(3 * xy[..., 0]) + xy[..., 1] ** 2  # noqa: E731
    split = s.split(np.stack([f(s.points()), 2 * f(s.points())]))
    np.testing.assert_allclose(split["grid"][1], 2 * f(grid(12, endpoint=True)).reshape(12, 12))
    np.testing.assert_allclose(split["chebyshev"][0], f(chebyshev_grid(10)).reshape(10, 10))
    with pytest.raises(ValueError, match="expected 244 values"):
        s.split(np.zeros(245))
    coarse = MeasureSettings(grid_size=12, lz_grid_size=6, grid_endpoint=False)
    assert list(coarse.sample_sets()) == ["grid", "chebyshev", "lz_grid"]
    np.testing.assert_array_equal(coarse.sample_sets()["lz_grid"], grid(6))
    with pytest.raises(ValueError, match="chebyshev_degree"):
        MeasureSettings(chebyshev_nodes=16, chebyshev_degree=20)
    with pytest.raises(ValueError, match="unknown measures"):
        MeasureSettings(measures=("fourier", "wavelet"))


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
    out = compute_measures(batch, [name], degree=10)[name]
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert out[i, j] == pytest.approx(compute_measures(batch[i, j], [name], degree=10)[name],
                                              rel=1e-12, abs=1e-15)
    assert isinstance(compute_measures(batch[0, 0], [name], degree=10)[name].item(), float)
