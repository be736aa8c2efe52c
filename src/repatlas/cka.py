"""Centered kernel alignment (Kornblith et al. 2019) and minibatch CKA (Nguyen et al. 2021).

Full-data estimators (`linear_cka`, `rbf_cka`) work in float64 on centred features.
`MinibatchCKA` accumulates the unbiased HSIC of Song et al. (2012) over minibatches through
U-centred Gram matrices: per batch, ⟨K_u, L_u⟩ = n(n−3)·HSIC₁(K, L), and
CKA_ij = Σ⟨K_u,L_u⟩ / √(Σ⟨K_u,K_u⟩ · Σ⟨L_u,L_u⟩). U-centred HSIC is unchanged by a shift of
the features, so where a large offset would make the float32 Gram product cancel
catastrophically, features are centred per batch before it (`layer_gram`).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Sequence

import numpy as np
import torch
import xarray as xr

MIN_BATCH = 4  # U-centring divides by n − 2 and the HSIC₁ normaliser by n − 3


# ----------------------------------------------------------------------------- helpers


def _as_matrix(x, name: str) -> np.ndarray:
    """numpy/torch → float64 (n, p), extra axes flattened after the first."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (examples, features...); got shape {x.shape}")
    x = x.reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def _check_pair(x, y):
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of examples; got {len(x)} and {len(y)}")
    return x, y


def ucentre(k):
    """U-centre a Gram matrix (Székely & Rizzo 2014): ⟨K_u, L_u⟩ = n(n−3)·HSIC₁(K, L).

    Works on numpy arrays and torch tensors (also a (..., n, n) stack, on its own device);
    does not modify its input.
    """
    n = k.shape[-1]
    if n < MIN_BATCH:
        raise ValueError(f"U-centring needs at least {MIN_BATCH} examples; got {n}")
    if isinstance(k, torch.Tensor):  # also a stack (..., n, n), centred matrix by matrix
        k = k.clone()
        k.diagonal(dim1=-2, dim2=-1).zero_()
        m = k.sum(-2) / (n - 2)
        m = m - m.sum(-1, keepdim=True) / (2 * (n - 1))
        k = k - m[..., :, None] - m[..., None, :]
        k.diagonal(dim1=-2, dim2=-1).zero_()
        return k
    k = np.array(k, dtype=np.float64)
    np.fill_diagonal(k, 0)
    m = k.sum(0) / (n - 2)
    m -= m.sum() / (2 * (n - 1))
    k -= m[:, None] + m[None, :]
    np.fill_diagonal(k, 0)
    return k


def _cka_from_grams(k: np.ndarray, l: np.ndarray, debiased: bool) -> float:
    if debiased:
        k, l = ucentre(k), ucentre(l)
    else:
        n = len(k)
        h = np.eye(n) - 1.0 / n
        k, l = h @ k @ h, h @ l @ h
    kl, kk, ll = (k * l).sum(), (k * k).sum(), (l * l).sum()
    return float(kl / np.sqrt(kk * ll))


# ----------------------------------------------------------------------------- full-data CKA


def linear_cka(x, y, *, debiased: bool = False) -> float:
    """Linear CKA of x (n, p1) and y (n, p2); numpy or torch; float64 throughout.

    Biased: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred X, Y (Kornblith et al. 2019).
    Debiased: the same ratio with HSIC₁ (U-centred Grams); may be slightly negative.
    """
    x, y = _check_pair(x, y)
    x = x - x.mean(0)
    y = y - y.mean(0)
    if debiased:
        return _cka_from_grams(x @ x.T, y @ y.T, debiased=True)
    n = len(x)
    if x.shape[1] + y.shape[1] > n:  # Gram form is cheaper for wide features
        return _cka_from_grams(x @ x.T, y @ y.T, debiased=False)
    xy = np.linalg.norm(y.T @ x) ** 2
    return float(xy / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _rbf_gram(x: np.ndarray, sigma_frac: float) -> np.ndarray:
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    median = np.median(d2)  # over all n² entries, as in Kornblith et al.'s code
    if median <= 0:
        raise ValueError("RBF bandwidth is zero: more than half of all pairwise distances are 0")
    return np.exp(-d2 / (2 * sigma_frac**2 * median))


def rbf_cka(x, y, *, sigma_frac: float = 0.5, debiased: bool = False) -> float:
    """CKA with RBF kernels exp(−D²/(2·t²·median(D²))), t = `sigma_frac` (Kornblith's threshold)."""
    if sigma_frac <= 0:
        raise ValueError(f"sigma_frac must be > 0; got {sigma_frac}")
    x, y = _check_pair(x, y)
    return _cka_from_grams(_rbf_gram(x, sigma_frac), _rbf_gram(y, sigma_frac), debiased)


# ----------------------------------------------------------------------------- minibatch CKA


def ucentred_grams(acts: Sequence, names: Sequence[str] | None = None, *,
                   centre: str | None = None) -> torch.Tensor:
    """Stack of U-centred linear Gram matrices of one minibatch: float64 (layers, b·b).

    Each layer is multiplied in its own precision (float32 activations keep float32 GEMM speed)
    and centred per feature first where an offset would cancel (`layer_gram`); the stack is
    U-centred in float64, on the activations' device.
    """
    names = list(names) if names is not None else [str(i) for i in range(len(acts))]
    b = None
    grams = []
    for name, a in zip(names, acts):
        a = torch.as_tensor(a)
        a = a.flatten(1) if a.ndim > 1 else a[:, None]
        if b is None:
            b = len(a)
        if len(a) != b:
            raise ValueError(f"layer {name!r} has {len(a)} examples in this batch; others have {b}")
        if b < MIN_BATCH:
            raise ValueError(f"minibatch CKA needs batches of at least {MIN_BATCH} examples; got {b}")
        grams.append(layer_gram(a, name, centre))
    return ucentre(torch.stack(grams).double()).reshape(len(grams), -1)


# The rounding error of an uncentred Gram X Xᵀ, relative to the centred one, is about
# ε · tr(K) / tr(HKH). Centring costs a full extra pass over the activations, so on the CPU it is
# done only when that ratio says the product would lose precision (a large offset, e.g. +100);
# typical ReLU activations have a ratio of 2-3. U-centring makes both routes equal in exact
# arithmetic. Deciding needs the Gram's value on the host, which on a GPU would stall the
# pipeline once per layer and batch: there every layer is centred (`layer_gram`'s centre="always"),
# and NaN/Inf surface when the CKA is computed (MinibatchCKA.compute) instead of per batch.
MAX_OFFSET_RATIO = 8.0
CENTRE_MODES = ("auto", "always", "never")


def _default_centre(device: torch.device) -> str:
    return "auto" if device.type == "cpu" else "always"


def layer_gram(a: torch.Tensor, name: str, centre: str | None = None) -> torch.Tensor:
    """Gram of one layer's (b, p) batch (float32, or the input's precision if higher).

    centre="auto" (default on the CPU) centres the features explicitly only where precision
    needs it, and raises at once for NaN/Inf; "always" (default elsewhere) centres every layer
    and never reads a value back to the host; "never" is the plain product, for callers that
    have checked the offset themselves (`_GramCapture`).
    """
    if not a.is_floating_point() or a.dtype in (torch.float16, torch.bfloat16):
        a = a.float()  # half-precision stores: multiply in float32
    centre = centre or _default_centre(a.device)
    if centre == "always":
        # any per-feature shift leaves U-centred HSIC unchanged: the float32 mean removes the offset
        centred = a - a.mean(0, keepdim=True)
        return centred @ centred.T
    if centre == "never":
        return a @ a.T
    if centre != "auto":
        raise ValueError(f"centre must be one of {CENTRE_MODES}; got {centre!r}")
    gram = a @ a.T
    g64 = gram.double()
    # NaN/Inf in the activations reach the Gram; checking b×b entries instead of b×p
    # saves a full pass over the activations
    if not torch.isfinite(g64).all():
        raise ValueError(f"layer {name!r} contains NaN or Inf (or values too large for {a.dtype})")
    total = g64.trace()
    centred_total = total - g64.sum() / len(g64)
    if centred_total > 0 and total <= MAX_OFFSET_RATIO * centred_total:
        return gram
    centred = a - a.mean(0, keepdim=True, dtype=torch.float64).to(a.dtype)
    return centred @ centred.T


class MinibatchCKA:
    """Accumulate unbiased (U-centred) linear CKA over minibatches.

    Within one model: `MinibatchCKA(n)`, `.update(acts)`; across two: `MinibatchCKA(n_a, n_b)`,
    `.update(acts_a, acts_b)`. `acts` are lists of (b, ...) tensors or arrays, one per layer, for
    the same b examples. `.compute()` returns the (n_a, n_b) CKA matrix. Self-HSIC accumulators
    are kept per model, so cross-model CKA equals the cross block of a joint accumulation.

    The float64 accumulators live on `device`, by default the device of the first batch's
    terms (a CUDA model's Grams are summed on its GPU); later terms are brought to them.
    Nothing is read back to the host before `compute()`.
    """

    def __init__(self, n_a: int, n_b: int | None = None, *, names_a=None, names_b=None, device=None):
        self.n_a, self.n_b = n_a, n_b
        self.names_a = list(names_a) if names_a is not None else [f"a{i}" for i in range(n_a)]
        self.names_b = list(names_b) if names_b is not None else [f"b{i}" for i in range(n_b or 0)]
        self.device = None if device is None else torch.device(device)
        self.cross = self.self_a = self.self_b = None  # created on the accumulation device
        self.batches = 0

    def _check(self, acts, n, which):
        if len(acts) != n:
            raise ValueError(f"expected {n} layers for model {which}; got {len(acts)}")

    def update(self, acts_a, acts_b=None) -> None:
        self._check(acts_a, self.n_a, "a")
        ga = ucentred_grams(acts_a, self.names_a)
        if self.n_b is None:
            if acts_b is not None:
                raise ValueError("acts_b given to a within-model MinibatchCKA (n_b=None)")
            self.add_grams(ga)
            return
        if acts_b is None:
            raise ValueError("acts_b is required for a cross-model MinibatchCKA")
        self._check(acts_b, self.n_b, "b")
        gb = ucentred_grams(acts_b, self.names_b)
        if ga.shape[1] != gb.shape[1]:
            raise ValueError(
                f"models a and b saw different batch sizes ({int(ga.shape[1] ** 0.5)} vs "
                f"{int(gb.shape[1] ** 0.5)}); both must see the same examples"
            )
        self.add_grams(ga, gb)

    def add_grams(self, ga, gb=None) -> None:
        """Add one batch given its U-centred Gram stacks (layers, b·b) from `ucentred_grams`."""
        if gb is None:
            cross = ga @ ga.T
            self.add(cross, cross.diagonal())
        else:
            self.add(ga @ gb.T, ga.pow(2).sum(1), gb.pow(2).sum(1))

    def add(self, cross, self_a, self_b=None) -> None:
        """Add precomputed accumulator terms (used by the streaming and parallel paths)."""
        cross = torch.as_tensor(cross)
        if self.cross is None:
            dev = self.device or cross.device
            n_b = self.n_b if self.n_b is not None else self.n_a
            self.cross = torch.zeros(self.n_a, n_b, dtype=torch.float64, device=dev)
            self.self_a = torch.zeros(self.n_a, dtype=torch.float64, device=dev)
            self.self_b = torch.zeros(self.n_b or 0, dtype=torch.float64, device=dev)

        def term(t):
            return torch.as_tensor(t).to(device=self.cross.device, dtype=torch.float64)

        self.cross += term(cross)
        self.self_a += term(self_a)
        if self_b is not None:
            self.self_b += term(self_b)
        self.batches += 1

    def compute(self) -> np.ndarray:
        if self.batches == 0:
            raise ValueError("MinibatchCKA.compute() before any update()")
        self_b = self.self_a if self.n_b is None else self.self_b
        names_b = self.names_a if self.n_b is None else self.names_b
        self_a_host, self_b_host = self.self_a.cpu().numpy(), self_b.cpu().numpy()  # the one host sync
        for names, s in ((self.names_a, self_a_host), (names_b, self_b_host)):
            bad = [names[i] for i in np.flatnonzero(~np.isfinite(s))]
            if bad:
                raise ValueError(f"layer(s) {bad} contain NaN or Inf (or values too large for float32)")
            dead = [names[i] for i in np.flatnonzero(s <= 0)]
            if dead:
                raise ValueError(f"layer(s) {dead} are constant over the data: CKA is undefined")
        return (self.cross / torch.sqrt(self.self_a[:, None] * self_b[None, :])).cpu().numpy()


# ----------------------------------------------------------------------------- outputs


def as_dataarray(matrix: np.ndarray, layers_a, layers_b, **attrs):
    """A CKA matrix as an xarray.DataArray with dims (layer_a, layer_b) and layer-name coords."""
    return xr.DataArray(
        np.asarray(matrix, dtype=np.float64),
        dims=("layer_a", "layer_b"),
        coords={"layer_a": list(layers_a), "layer_b": list(layers_b)},
        name="cka",
        attrs={k: v for k, v in attrs.items() if v is not None},
    )


def warn_single_batch(n: int, batch_size: int, source, stacklevel: int = 3) -> None:
    """Minibatch CKA averages HSIC over batches; from fewer than two it is a single-batch estimate
    (noisier, and not the quantity a file's batch_size would suggest)."""
    if n < 2 * batch_size:
        warnings.warn(
            f"CKA of {source} from {n} examples with batch_size {batch_size}: fewer than two batches, "
            f"so the minibatch estimate is one batch of {min(n, batch_size)} examples; use at least "
            f"{2 * batch_size} examples or batch_size <= {n // 2}", stacklevel=stacklevel,
        )


# ----------------------------------------------------------------------------- moved public names

# The model-hook and store-streaming CKA live in sibling modules, which import this one; the
# public names repatlas.cka.cka_heatmap / cka_from_stores (design.md) still resolve, on first use.
_MOVED = {"cka_heatmap": "repatlas.cka_models", "cka_from_stores": "repatlas.cka_stores"}


def __getattr__(name: str):
    if name in _MOVED:
        # importlib, not an import statement: no pipeline code uses these aliases, so the rules'
        # derived library inputs (rules/common.smk) need not follow them
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
