"""Allen-Zhu & Li's multi-view data and their learner network (arXiv 2012.09816, Sections 2–4).

The setting in which the paper proves its ensemble / distillation theorems, at a size a CPU
trains in seconds:

* `multiview_patches` draws the data. Every class c has V "views" (feature vectors v_{c,1..V},
  orthonormal across all classes; the paper has V = 2). An input is P patches x_1..x_P in R^d.
  Each feature present in an input occupies its own `patches_per_view` (the paper's C_p) patches,
  disjoint from every other feature's; the remaining patches are noise. A patch of feature v is
  z·v + feature noise + Gaussian noise, and the weights z of a feature's patches sum to its total
  weight in the input:
    - multi-view example (probability 1 − μ): all V views of its class with total weight
      U(view_weight) each (the paper: [1, O(1)]), plus `other_views` features of other classes
      with total weight U(other_weight) each (the paper: [Ω(1), 0.4]);
    - single-view example (probability μ, the "single-view fraction"): one view ℓ̂ of its
      class, uniform among V, with weight U(view_weight); the class's other views with the small
      weight U(weak_weight) (the paper's [ρ, O(ρ)]); `other_views` features of other classes with
      U(single_other_weight) (the paper's [Ω(Γ), Γ]);
    - every patch carries feature noise Σ_v α_{p,v} v over all K·V features, α ~ U(0,
      feature_noise) (the paper's γ), and Gaussian noise ξ_p (the paper's σ_p): N(0, noise²)
      per coordinate on noise patches, N(0, feature_patch_noise²) on feature patches.
  Two choices made here keep the paper's high-dimensional geometry at a d a CPU trains:
    - ξ is projected off the span of the K·V features. In the paper d = poly(k) and a noise
      vector's component along any feature is O(σ_p) = O(1/(√d·polylog k)), negligible; at
      d = 256 a trained neuron a·v (a ≈ 4) would see a·σ_p ≈ 0.7 of random pre-activation on
      every patch, above the knot.
    - feature patches carry no Gaussian noise by default (feature_patch_noise = 0): the paper's
      σ_p on them is negligible for the same reason, but at d = 512 the random pre-activation
      of a neuron that learned view 1 on view 2's patches lets the gradient grow view 2 at the
      linear rate, bypassing the winner-take-all race (measured: both views learned in 7–9 of
      10 classes; see docs/ensembles.md). Noise patches keep the noise the network memorises
      the single-view examples with.
  The paper includes each other-class feature with probability s/k; a fixed count keeps the
  patch budget fixed and the view counts exact (choice made here).
* `smoothed_relu` is the paper's activation (q ≥ 3, knot ϱ):
      ReLU~(z) = 0 for z ≤ 0,   z^q / (q ϱ^{q−1}) for 0 ≤ z ≤ ϱ,   z − (1 − 1/q) ϱ for z ≥ ϱ,
  continuous with a continuous first derivative (z/ϱ)^{q−1} ∈ [0, 1].
* `PatchCNN` is the paper's two-layer CNN: m neurons per class with weights shared over patches
  and a fixed second layer of ones,  F_i(X) = Σ_{r≤m} Σ_{p≤P} ReLU~(⟨w_{i,r}, x_p⟩),
  initialised w ~ N(0, init_std² I). A small init keeps ⟨w, x_p⟩ in the polynomial part of
  ReLU~, where the growth of a neuron's correlation with a view is ∝ (correlation)^{q−1}: the
  view that starts ahead wins the race ("each network learns a seed-dependent subset of views"),
  which is the paper's mechanism.
* `views_learned` reads off which views a trained network has picked up.

Under that mechanism (one view learned per class, chosen by the seed) the paper predicts, for
V = 2: a single network errs on about half of the single-view test examples, test error ≈ μ/2
(Theorem 1: [0.49μ, 0.51μ]); an ensemble of Ω̃(1) networks and the network distilled from it
err on ≤ 0.01μ (Theorems 2 and 3); self-distillation ≈ an ensemble of two, ≤ 0.26μ (Theorem 4).
`repatlas.ensembles.mu_predictions` turns these into numbers for general V.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from repatlas.data import balanced_order

# ----------------------------------------------------------------------------- data


def multiview_features(n_classes: int, views_per_class: int, dim: int, seed: int = 0) -> np.ndarray:
    """The views v_{c,ℓ}, (n_classes, views_per_class, dim), orthonormal across all classes.

    The Q factor of a Gaussian (dim, K·V) matrix with the sign convention diag(R) > 0, so a seed
    gives one set. Needs dim ≥ K·V (the paper's features are orthonormal).
    """
    k = n_classes * views_per_class
    if dim < k:
        raise ValueError(f"dim must be at least n_classes · views_per_class = {k} for orthonormal views; "
                         f"got {dim}")
    g = np.random.default_rng(seed).standard_normal((dim, k))
    q, r = np.linalg.qr(g)
    return (q * np.sign(np.diag(r))).T.reshape(n_classes, views_per_class, dim)


class MultiviewData(NamedTuple):
    """A multi-view sample.

    x: (n, P, d) float32 inputs; y: (n,) int64 labels; single: (n,) bool, single-view examples;
    view: (n,) int64, the one strong view of a single-view example (−1 for multi-view ones);
    weight: (n, K, V) float64, each feature's total weight Σ_p z_p in the example (0 if absent);
    owner: (n, P) int64, the feature c·V + ℓ a patch carries, −1 for a noise patch.
    """

    x: np.ndarray
    y: np.ndarray
    single: np.ndarray
    view: np.ndarray
    weight: np.ndarray
    owner: np.ndarray


def _uniform(rng, bounds, size=None):
    lo, hi = bounds
    return rng.uniform(lo, hi, size=size)


def multiview_patches(
    n: int,
    *,
    n_classes: int = 10,
    views_per_class: int = 2,
    dim: int = 256,
    patches: int = 10,
    patches_per_view: int = 1,
    single_view_fraction: float = 0.1,
    other_views: int = 4,
    view_weight: tuple[float, float] = (1.0, 2.0),
    other_weight: tuple[float, float] = (0.2, 0.4),
    weak_weight: tuple[float, float] = (0.05, 0.1),
    single_other_weight: tuple[float, float] = (0.2, 0.3),
    feature_noise: float = 0.0005,
    noise: float = 0.18,
    feature_patch_noise: float = 0.0,
    seed: int = 0,
    feature_seed: int = 0,
) -> MultiviewData:
    """`n` examples of the paper's multi-view distribution D = μ·D_s + (1 − μ)·D_m (module docstring).

    Labels cycle through the classes and are shuffled (class counts differ by at most one);
    exactly round(μ·n) examples are single-view, chosen class-balanced (the first ones of
    `repatlas.data.balanced_order(y, seed)`), each with its strong view uniform among V. A
    feature's total weight is split equally over its `patches_per_view` patches, which are drawn
    at random and disjoint from other features'. Train and test sets share `feature_seed` and
    differ in `seed`.
    """
    k, v_count, c_p = n_classes, views_per_class, patches_per_view
    if not 0 <= single_view_fraction <= 1:
        raise ValueError(f"single_view_fraction must be in [0, 1]; got {single_view_fraction}")
    if n < 1 or k < 2 or v_count < 1 or c_p < 1:
        raise ValueError("need n >= 1, n_classes >= 2, views_per_class >= 1 and patches_per_view >= 1")
    if not 0 <= other_views <= (k - 1) * v_count:
        raise ValueError(f"other_views must be between 0 and (n_classes − 1) · views_per_class = "
                         f"{(k - 1) * v_count}")
    if c_p * (v_count + other_views) > patches:
        raise ValueError(
            f"patches = {patches} cannot hold {v_count + other_views} features of {c_p} patches each; "
            f"need at least {c_p * (v_count + other_views)}"
        )
    features = multiview_features(k, v_count, dim, feature_seed)
    flat = features.reshape(k * v_count, dim)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    single = np.zeros(n, dtype=bool)
    single[balanced_order(y, seed)[: int(round(single_view_fraction * n))]] = True
    view = np.where(single, rng.integers(0, v_count, size=n), -1)

    weight = np.zeros((n, k, v_count))
    own = _uniform(rng, view_weight, (n, v_count))
    weak = _uniform(rng, weak_weight, (n, v_count))
    strong = np.arange(v_count)[None, :] == view[:, None]
    weight[np.arange(n), y] = np.where(single[:, None] & ~strong, weak, own)
    for i in range(n):
        others = np.flatnonzero(np.arange(k * v_count) // v_count != y[i])
        picked = rng.choice(others, size=other_views, replace=False)
        w = _uniform(rng, single_other_weight if single[i] else other_weight, other_views)
        weight[i].reshape(-1)[picked] = w

    owner = np.full((n, patches), -1, dtype=np.int64)
    z = np.zeros((n, patches))
    for i in range(n):
        present = np.flatnonzero(weight[i].reshape(-1) > 0)
        slots = rng.permutation(patches)[: c_p * len(present)].reshape(len(present), c_p)
        for f, s in zip(present, slots):
            owner[i, s] = f
            z[i, s] = weight[i].reshape(-1)[f] / c_p

    signal = np.where(owner[..., None] >= 0, z[..., None] * flat[np.maximum(owner, 0)], 0.0)
    alpha = rng.uniform(0, feature_noise, size=(n, patches, k * v_count))
    sigma = np.where(owner >= 0, feature_patch_noise, noise)[..., None]
    xi = sigma * rng.standard_normal((n, patches, dim))
    xi -= (xi @ flat.T) @ flat  # off the features' span: the high-d limit's geometry (docstring)
    x = signal + alpha @ flat + xi
    return MultiviewData(x.astype(np.float32), y, single, view, weight, owner)


# ----------------------------------------------------------------------------- the learner network


def smoothed_relu(z: torch.Tensor, q: int = 3, knot: float = 0.5) -> torch.Tensor:
    """The paper's smoothed ReLU: 0 (z ≤ 0), z^q / (q·knot^{q−1}) (0 ≤ z ≤ knot), z − (1 − 1/q)·knot.

    Written as poly(clamp(z, 0, knot)) + relu(z − knot), which equals the three pieces and lets
    autograd give the derivative (clamp(z, 0, knot)/knot)^{q−1} everywhere, the knots included
    (clamp passes the gradient at its bounds and relu' (0) = 0; clamp(z − knot, min=0) in place
    of the relu would count the slope twice at z = knot).
    """
    if knot <= 0 or q < 2:
        raise ValueError(f"need knot > 0 and q >= 2; got knot={knot}, q={q}")
    inner = z.clamp(0, knot)
    return inner**q / (q * knot ** (q - 1)) + torch.relu(z - knot)


class SmoothedReLU(nn.Module):
    def __init__(self, q: int = 3, knot: float = 0.5):
        super().__init__()
        self.q, self.knot = q, knot

    def forward(self, z):
        return smoothed_relu(z, self.q, self.knot)

    def extra_repr(self) -> str:
        return f"q={self.q}, knot={self.knot}"


class PatchCNN(nn.Module):
    """The paper's learner: F_i(X) = Σ_{r≤m} Σ_p ReLU~(⟨w_{i,r}, x_p⟩), inputs (B, P, d).

    `neurons` is a linear map applied to every patch (a 1×1 convolution: weights shared across
    patches, no bias) with n_classes · neurons_per_class outputs, class-major (i·m + r is w_{i,r});
    `act` is the smoothed ReLU, whose output (B, K·m, P) is the layer `repatlas.ensembles.
    drop_units` zeroes neurons of; the second layer is fixed: a sum over each class's neurons
    and over patches. Weights start N(0, init_std²).
    """

    def __init__(self, n_classes: int, dim: int, *, neurons_per_class: int = 8, q: int = 3,
                 knot: float = 0.5, init_std: float = 0.002):
        super().__init__()
        self.n_classes, self.neurons_per_class = n_classes, neurons_per_class
        self.neurons = nn.Linear(dim, n_classes * neurons_per_class, bias=False)
        self.act = SmoothedReLU(q, knot)
        nn.init.normal_(self.neurons.weight, std=init_std)

    def forward(self, x):
        # a linear layer on (B, P, d) is the 1×1 convolution, ~2.5× faster than Conv1d on CPU
        h = self.act(self.neurons(x).transpose(1, 2))  # (B, K·m, P)
        return h.unflatten(1, (self.n_classes, self.neurons_per_class)).sum((2, 3))

    def weights(self) -> torch.Tensor:
        """w as (n_classes, neurons_per_class, dim)."""
        return self.neurons.weight.unflatten(0, (self.n_classes, self.neurons_per_class))


def views_learned(weights, features, *, knot: float) -> np.ndarray:
    """Which views a trained `PatchCNN` has learned: (K, V) bool.

    View v_{c,ℓ} counts as learned when some neuron of class c has ⟨w_{c,r}, v_{c,ℓ}⟩ ≥ knot,
    i.e. a patch carrying that view with weight 1 reaches the linear part of ReLU~ — at
    initialisation every correlation is ~init_std ≪ knot. `weights`: (K, m, d) (see
    `PatchCNN.weights`; for a linearised network pass its current θ in that shape);
    `features`: (K, V, d) from `multiview_features`.
    """
    w = torch.as_tensor(weights).detach().double().cpu().numpy()
    corr = np.einsum("cmd,cvd->cmv", w, np.asarray(features, np.float64))
    return corr.max(axis=1) >= knot
