"""Centered kernel alignment (Kornblith et al. 2019) and minibatch CKA (Nguyen et al. 2021).

Full-data estimators (`linear_cka`, `rbf_cka`) work in float64 on centred features.
`MinibatchCKA` accumulates the unbiased HSIC of Song et al. (2012) over minibatches through
U-centred Gram matrices: per batch, ⟨K_u, L_u⟩ = n(n−3)·HSIC₁(K, L), and
CKA_ij = Σ⟨K_u,L_u⟩ / √(Σ⟨K_u,K_u⟩ · Σ⟨L_u,L_u⟩). U-centred HSIC is unchanged by a shift of
the features, so where a large offset would make the float32 Gram product cancel
catastrophically, features are centred per batch before it (`_gram`).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from repatlas.devices import module_device
from repatlas.threads import pinned_threads

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


def ucentred_grams(acts: Sequence, names: Sequence[str] | None = None, *, centre: str | None = None) -> torch.Tensor:
    """Stack of U-centred linear Gram matrices of one minibatch: float64 (layers, b·b).

    Each layer is multiplied in its own precision (float32 activations keep float32 GEMM speed)
    and centred per feature first where an offset would cancel (`_gram`); the stack is
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
        grams.append(_gram(a, name, centre))
    return ucentre(torch.stack(grams).double()).reshape(len(grams), -1)


# The rounding error of an uncentred Gram X Xᵀ, relative to the centred one, is about
# ε · tr(K) / tr(HKH). Centring costs a full extra pass over the activations, so on the CPU it is
# done only when that ratio says the product would lose precision (a large offset, e.g. +100);
# typical ReLU activations have a ratio of 2-3. U-centring makes both routes equal in exact
# arithmetic. Deciding needs the Gram's value on the host, which on a GPU would stall the
# pipeline once per layer and batch: there every layer is centred (`_gram`'s centre="always"),
# and NaN/Inf surface when the CKA is computed (MinibatchCKA.compute) instead of per batch.
MAX_OFFSET_RATIO = 8.0
CENTRE_MODES = ("auto", "always", "never")


def _default_centre(device: torch.device) -> str:
    return "auto" if device.type == "cpu" else "always"


def _gram(a: torch.Tensor, name: str, centre: str | None = None) -> torch.Tensor:
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
    import xarray as xr

    return xr.DataArray(
        np.asarray(matrix, dtype=np.float64),
        dims=("layer_a", "layer_b"),
        coords={"layer_a": list(layers_a), "layer_b": list(layers_b)},
        name="cka",
        attrs={k: v for k, v in attrs.items() if v is not None},
    )




# ----------------------------------------------------------------------------- streaming from zarr


def _warn_single_batch(n: int, batch_size: int, source, stacklevel: int = 3) -> None:
    """Minibatch CKA averages HSIC over batches; from fewer than two it is a single-batch estimate
    (noisier, and not the quantity a file's batch_size would suggest)."""
    if n < 2 * batch_size:
        warnings.warn(
            f"CKA of {source} from {n} examples with batch_size {batch_size}: fewer than two batches, "
            f"so the minibatch estimate is one batch of {min(n, batch_size)} examples; use at least "
            f"{2 * batch_size} examples or batch_size <= {n // 2}", stacklevel=stacklevel,
        )


def batch_plan(n: int, batch_size: int, chunk: int, *, shuffle: bool, rng, window: int):
    """Windows of batches covering all n examples once.

    Without shuffling, batches are consecutive. With shuffling, chunk order is permuted, chunks
    are grouped into windows of `window` chunks, and examples are permuted within each window,
    so each window is read once and memory stays bounded by the window, not by n. A trailing
    batch smaller than MIN_BATCH is merged into the previous batch of its window.
    """
    chunks = [np.arange(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if shuffle:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    plan = []
    for w in range(0, len(chunks), window):
        idx = np.concatenate(chunks[w : w + window])
        if shuffle:
            idx = idx[rng.permutation(len(idx))]
        batches = [idx[s : s + batch_size] for s in range(0, len(idx), batch_size)]
        if len(batches) > 1 and len(batches[-1]) < MIN_BATCH:
            batches[-2] = np.concatenate(batches[-2:])
            batches.pop()
        plan.append(batches)
    return plan


def _window_terms(arrays_a, arrays_b, batches, names_a, names_b):
    """Accumulator terms of one window: read the window once, then each batch's Gram stacks."""
    from repatlas.activations import read_rows

    # A shuffled window holds non-adjacent chunks: read each contiguous run of its examples,
    # never the span between them, so memory stays bounded by the window.
    rows = np.unique(np.concatenate(batches))
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, breaks)]

    def read(arrays):
        if len(runs) == 1:  # one contiguous run: no concatenation copy
            return [read_rows(a, *runs[0]) for a in arrays]
        return [np.concatenate([read_rows(a, lo, hi) for lo, hi in runs]) for a in arrays]

    def take(data, rel):
        # an unshuffled batch is a contiguous slice: a view, not a copy of the batch
        if rel[-1] - rel[0] == len(rel) - 1 and (np.diff(rel) == 1).all():
            rel = slice(int(rel[0]), int(rel[-1]) + 1)
        return [torch.from_numpy(d[rel]) for d in data]

    data_a = read(arrays_a)
    data_b = read(arrays_b) if arrays_b is not None else None
    acc = MinibatchCKA(len(names_a), None if arrays_b is None else len(names_b),
                       names_a=names_a, names_b=names_b)
    for batch in batches:
        rel = np.searchsorted(rows, batch)
        ga = ucentred_grams(take(data_a, rel), names_a)
        gb = None if data_b is None else ucentred_grams(take(data_b, rel), names_b)
        acc.add_grams(ga, gb)
    return acc.cross, acc.self_a, acc.self_b, acc.batches


def _remote_window_terms(path_a, layers_a, path_b, layers_b, batches):
    """`_window_terms` on a dask-distributed worker: it opens the stores itself (paths travel,
    not zarr objects) and pins torch/BLAS to one thread per task, as the local path does."""
    from repatlas.activations import layer_arrays

    stores = {path: layer_arrays(path) for path in {path_a, path_b} - {None}}  # each store opened once
    arrays_a = [stores[path_a][n] for n in layers_a]
    arrays_b = None if path_b is None else [stores[path_b][n] for n in layers_b]
    with pinned_threads(1):
        return _window_terms(arrays_a, arrays_b, batches, layers_a, None if path_b is None else layers_b)


def _compute_on_scheduler(address: str, tasks, timeout: str = "10s"):
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(f"cka.scheduler={address!r} needs dask's distributed package: "
                          "pip install distributed (the project's test extra has it)") from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except OSError as exc:
        raise OSError(f"cka.scheduler: no dask scheduler answers at {address!r} ({exc})") from None
    with client:
        return client.compute(tasks, sync=True)


def cka_from_stores(
    path_a,
    path_b=None,
    *,
    layers_a=None,
    layers_b=None,
    batch_size: int = 256,
    epochs: int = 1,
    shuffle: bool | None = None,
    seed: int = 0,
    threads: int = 1,
    window: int = 8,
    scheduler: str | None = None,
):
    """Minibatch CKA between the layers of one or two activation stores, streamed from zarr.

    Reads windows of `window` storage chunks at a time (never a whole store), computes their
    batches' U-centred Gram stacks in parallel with `threads` Dask threads (BLAS and torch pinned
    to one thread each), and accumulates. `epochs` passes; shuffled when `shuffle` (default: when
    epochs > 1), each epoch with its own permutation drawn from `seed`. With `scheduler` (the
    address of a running dask-distributed scheduler, e.g. "tcp://host:8786") the windows are
    computed by its workers instead, which must see the stores at the same paths; the result is
    the same to the last bit. Returns an xarray.DataArray (layer_a, layer_b).
    """
    import dask

    from repatlas.activations import layer_arrays

    if batch_size < MIN_BATCH:
        raise ValueError(f"batch_size must be >= {MIN_BATCH}; got {batch_size}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}")
    shuffle = epochs > 1 if shuffle is None else shuffle

    def select(path, layers):
        arrays = layer_arrays(path)
        layers = list(arrays) if layers is None else list(layers)
        unknown = [n for n in layers if n not in arrays]
        if unknown:
            raise KeyError(f"{path}: unknown layer(s) {unknown}; the store has {list(arrays)}")
        return layers, [arrays[n] for n in layers]

    names_a, arrays_a = select(path_a, layers_a)
    names_b, arrays_b = (names_a, None) if path_b is None else select(path_b, layers_b)
    n = arrays_a[0].shape[0]
    for path, arrays in ((path_a, arrays_a), (path_b, arrays_b)):
        for name, arr in zip(names_a if path == path_a else names_b, arrays or []):
            if arr.shape[0] != n:
                raise ValueError(f"{path}: layer {name!r} has {arr.shape[0]} examples; expected {n}")
    chunk = arrays_a[0].chunks[0]
    _warn_single_batch(n, batch_size, path_a)

    rng = np.random.default_rng(seed)
    plans = [b for _ in range(epochs) for b in batch_plan(n, batch_size, chunk, shuffle=shuffle, rng=rng, window=window)]
    if scheduler:
        remote = [str(path_a), names_a, None if path_b is None else str(path_b), names_b]
        tasks = [dask.delayed(_remote_window_terms, pure=False)(*remote, batches) for batches in plans]
        results = _compute_on_scheduler(scheduler, tasks)
    else:
        tasks = [dask.delayed(_window_terms)(arrays_a, arrays_b, batches, names_a, None if path_b is None else names_b)
                 for batches in plans]
        with pinned_threads(1):
            results = dask.compute(*tasks, scheduler="threads", num_workers=max(1, threads))
    acc = MinibatchCKA(len(names_a), None if path_b is None else len(names_b),
                       names_a=names_a, names_b=None if path_b is None else names_b)
    for cross, self_a, self_b, count in results:
        acc.add(cross, self_a, self_b if path_b is not None else None)
        acc.batches += count - 1
    return as_dataarray(
        acc.compute(),
        names_a,
        names_b,
        estimator="minibatch linear CKA, unbiased HSIC (U-centred)",
        batch_size=min(batch_size, n),  # what was used: a probe set smaller than one batch is one batch
        n_batches=acc.batches,
        epochs=epochs,
        shuffle=int(shuffle),
        seed=seed,
        source_a=str(path_a),
        source_b=str(path_b) if path_b is not None else None,
    )


def cka_stores_to_file(path_a, out_path, path_b=None, **options) -> None:
    """The CKA step of the pipeline: one or two activation stores in, a `.nc` DataArray out."""
    from repatlas.io import write_netcdf

    write_netcdf(cka_from_stores(path_a, path_b, **options), out_path)


# ----------------------------------------------------------------------------- models in memory


def _offset_ratios(grams: torch.Tensor) -> torch.Tensor:
    """tr(K) / tr(HKH) of each Gram in a float64 (layers, b, b) stack (inf where tr(HKH) <= 0)."""
    total = grams.diagonal(dim1=-2, dim2=-1).sum(-1)
    centred_total = total - grams.sum((-2, -1)) / grams.shape[-1]
    return torch.where(centred_total > 0, total / centred_total, torch.full_like(total, float("inf")))


class _GramCapture:
    """Hooks that keep only each named module's (b × b) Gram, never its activations, so memory
    does not grow with width; repeated calls of a module stay separate (`name@1`, ...).

    Which layers are centred before their Gram product (see MAX_OFFSET_RATIO) is decided once,
    from the first batch (one host read per layer): uncentred while the offset ratio is at most
    half of MAX_OFFSET_RATIO, typical of ReLU outputs, so the GPU does only the Gram GEMM; the
    others are centred. Later batches read nothing back: the uncentred layers' ratios are
    tracked on the device, and `exceeded()` (one read, at the end) names any layer whose ratio
    passed MAX_OFFSET_RATIO in some batch, for `cka_heatmap` to redo it centred.
    """

    def __init__(self, model, layers, centred=()):
        from repatlas.activations import LayerCapture

        self.centred = {name: True for name in centred}
        self.calls: dict[str, int] = {}
        self.worst = None  # running max offset ratio of each uncentred layer, on the device
        self.names = self.uncentred = None
        self.capture = LayerCapture(model, layers, transform=self._gram)

    def _gram(self, name, output):
        if len(output) < MIN_BATCH:
            raise ValueError(f"minibatch CKA needs batches of at least {MIN_BATCH} examples; got {len(output)}")
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        key = name if k == 0 else f"{name}@{k}"  # as LayerCapture names repeated calls
        a = output.flatten(1) if output.ndim > 1 else output[:, None]
        if self.centred.get(key):
            return _gram(a, key, "always")
        gram = _gram(a, key, "never")
        if key not in self.centred:  # first batch: decide, reading the ratio to the host once
            g64 = gram.double()
            finite, ratio = torch.stack([torch.isfinite(g64).all().double(), _offset_ratios(g64[None])[0]]).tolist()
            if not finite:
                raise ValueError(f"layer {key!r} contains NaN or Inf (or values too large for {a.dtype})")
            self.centred[key] = not ratio <= MAX_OFFSET_RATIO / 2
            if self.centred[key]:
                return _gram(a, key, "always")
        return gram

    def pop(self) -> tuple[list[str], torch.Tensor]:
        """Names and U-centred Gram stack (layers, b·b) of the batch just run, U-centred in one go."""
        self.calls.clear()
        grams = self.capture.pop()
        names = list(grams)
        stack = torch.stack(list(grams.values())).double()
        if names != self.names:  # the first batch (a host-to-device copy: not once per batch)
            self.names = names
            self.uncentred = torch.tensor([not self.centred[n] for n in names], device=stack.device)
        ratios = torch.where(self.uncentred, _offset_ratios(stack), 0.0)
        self.worst = ratios if self.worst is None else torch.maximum(self.worst, ratios)
        return names, ucentre(stack).reshape(len(names), -1)

    def exceeded(self) -> list[str]:
        """Uncentred layers whose offset ratio passed MAX_OFFSET_RATIO in some batch."""
        if self.worst is None:
            return []
        return [n for n, w in zip(self.names, self.worst.tolist()) if w > MAX_OFFSET_RATIO]

    def close(self) -> None:
        self.capture.close()


def _default_layers(model) -> list[str]:
    from repatlas.models import representation_layers

    layers = representation_layers(model)
    if not layers:
        raise ValueError("the model has no child modules to compare; pass layers=[...] explicitly")
    return layers


@torch.no_grad()
def cka_heatmap(
    model_a,
    inputs,
    *,
    model_b=None,
    layers_a=None,
    layers_b=None,
    batch_size: int = 256,
    epochs: int = 1,
    seed: int = 0,
):
    """Minibatch CKA between named modules of one model (or two) on `inputs`.

    `inputs` is a tensor/array of examples (N, ...) already on the models' device or movable to it.
    Each epoch visits the examples in a fresh random order drawn from `seed` (Nguyen et al.'s
    reshuffled passes); a last batch smaller than 4 examples is skipped. Layers default to the
    top-level children (for repatlas models: the representation layers). Returns an
    xarray.DataArray (layer_a, layer_b) with layer names as coordinates.
    """
    if batch_size < MIN_BATCH:
        raise ValueError(f"batch_size must be >= {MIN_BATCH}; got {batch_size}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}")
    x = torch.as_tensor(inputs)
    if len(x) < MIN_BATCH:
        raise ValueError(f"inputs must hold at least {MIN_BATCH} examples; got {len(x)}")
    _warn_single_batch(len(x), batch_size, "inputs", stacklevel=4)  # past torch.no_grad's wrapper
    x = x.to(module_device(model_a))
    layers_a = list(layers_a) if layers_a else _default_layers(model_a)
    layers_b = None if model_b is None else (list(layers_b) if layers_b else _default_layers(model_b))
    acc, redo_a, redo_b = _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, (), ())
    matrix = acc.compute()  # NaN/Inf and constant layers are reported before any redo
    if redo_a or redo_b:  # a layer's offset grew past the first batch's: redo with it centred
        acc, *_ = _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, redo_a, redo_b)
        matrix = acc.compute()
    names_b = acc.names_a if model_b is None else acc.names_b
    return as_dataarray(matrix, acc.names_a, names_b, batch_size=min(batch_size, len(x)),
                        n_batches=acc.batches, epochs=epochs, seed=seed,
                        estimator="minibatch linear CKA, unbiased HSIC (U-centred)")


def _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, centred_a, centred_b):
    """One minibatch-CKA pass of `cka_heatmap`: (accumulator, layers of a and b to redo centred)."""
    hooks_a = _GramCapture(model_a, layers_a, centred_a)
    hooks_b = None if model_b is None else _GramCapture(model_b, layers_b, centred_b)
    was_training = [m.training for m in (model_a, model_b) if m is not None]
    model_a.eval()
    if model_b is not None:
        model_b.eval()
    # the order is drawn on the CPU, so a seed visits the same batches on every device
    gen = torch.Generator().manual_seed(seed)
    acc = None
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen, device="cpu").to(x.device)
            for s in range(0, len(x), batch_size):
                idx = order[s : s + batch_size]
                if len(idx) < MIN_BATCH:
                    continue
                model_a(x[idx])
                names_a, ga = hooks_a.pop()
                if hooks_b is not None:
                    model_b(x[idx])
                    names_b, gb = hooks_b.pop()
                if acc is None:
                    acc = MinibatchCKA(len(names_a), None if hooks_b is None else len(names_b),
                                       names_a=names_a, names_b=None if hooks_b is None else names_b)
                acc.add_grams(ga, None if hooks_b is None else gb)
        return acc, hooks_a.exceeded(), [] if hooks_b is None else hooks_b.exceeded()
    finally:
        hooks_a.close()
        if hooks_b is not None:
            hooks_b.close()
        for m, mode in zip((model_a, model_b), was_training):
            m.train(mode)


# ----------------------------------------------------------------------------- block structure


def detect_blocks(cka_matrix, *, threshold: float = 0.9, min_length: int = 3, pc1_share=None,
                  min_pc1_share: float = 0.5) -> list[tuple[int, int]]:
    """Blocks of consecutive, mutually similar layers in a within-model CKA heatmap (Nguyen et al.).

    A block is a run of layers i..j (inclusive indices) whose CKA is ≥ `threshold` for *every*
    pair in the run, not only neighbours, with j − i + 1 ≥ `min_length`. Pairs are compared
    through min(K[i, j], K[j, i]), so a slightly asymmetric matrix counts its weaker direction.

    With `pc1_share` (one number per layer: the share of variance of the layer's first principal
    component, e.g. `repatlas.blocks.first_pc_analysis`'s pc1_ratio), a block must also be
    dominated by its first PC: the mean share over the run is ≥ `min_pc1_share`. That is the
    paper's block structure (its §4: blocks are a dominant first PC shared by the layers); high
    CKA alone also tiles ordinary networks into stage-aligned runs (digits ResNet-26: three runs
    covering all 14 layers, PC1 share 0.1–0.3), which is not it.

    The scan is greedy, left to right: from layer i the run grows while the next layer clears the
    threshold with every layer already in it; the longest prefix of that run which is long enough
    (and PC1-dominated, with `pc1_share`) is recorded and the scan resumes after its end,
    otherwise at i + 1. Blocks therefore never overlap. `cka_matrix` is a square numpy array or an
    xarray.DataArray (layer_a, layer_b).
    """
    values = cka_matrix.values if hasattr(cka_matrix, "dims") else cka_matrix
    k = np.asarray(values, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"cka_matrix must be a square 2-D (layer, layer) matrix; got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError("cka_matrix contains NaN or Inf")
    real = (int, float, np.integer, np.floating)
    if isinstance(threshold, bool) or not isinstance(threshold, real) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a number in (0, 1]; got {threshold!r}")
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 2:
        raise ValueError(f"min_length must be an integer >= 2; got {min_length!r}")
    n = len(k)
    if pc1_share is not None:
        share = np.asarray(pc1_share.values if hasattr(pc1_share, "dims") else pc1_share, dtype=np.float64)
        if share.shape != (n,) or not np.isfinite(share).all() or (share < 0).any() or (share > 1).any():
            raise ValueError(f"pc1_share must hold one variance share in [0, 1] per layer ({n}); got {share!r}")
        if isinstance(min_pc1_share, bool) or not isinstance(min_pc1_share, real) or not 0 <= min_pc1_share <= 1:
            raise ValueError(f"min_pc1_share must be a number in [0, 1]; got {min_pc1_share!r}")
        prefix = np.concatenate([[0.0], np.cumsum(share)])

    def dominated(i, j):
        return pc1_share is None or (prefix[j + 1] - prefix[i]) / (j - i + 1) >= min_pc1_share

    similar = np.minimum(k, k.T) >= threshold
    blocks, i = [], 0
    while i < n:
        j = i
        while j + 1 < n and similar[j + 1, i : j + 1].all():
            j += 1
        end = next((e for e in range(j, i + min_length - 2, -1) if dominated(i, e)), None)
        if end is not None:
            blocks.append((i, end))
            i = end + 1
        else:
            i += 1
    return blocks
