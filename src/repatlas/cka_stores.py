"""Minibatch CKA streamed from activation stores (zarr, `repatlas.activations`), never whole.

Windows of storage chunks are read one at a time, their batches' U-centred Gram stacks computed in
parallel by Dask threads (or a dask-distributed scheduler's workers), and accumulated by
`repatlas.cka.MinibatchCKA`; the estimator itself lives in `repatlas.cka`.
"""

from __future__ import annotations

import dask
import numpy as np
import torch

from repatlas.activations import layer_arrays, read_rows
from repatlas.cka import MIN_BATCH, MinibatchCKA, as_dataarray, ucentred_grams, warn_single_batch
from repatlas.threads import pinned_threads


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
    stores = {path: layer_arrays(path) for path in {path_a, path_b} - {None}}  # each store opened once
    arrays_a = [stores[path_a][n] for n in layers_a]
    arrays_b = None if path_b is None else [stores[path_b][n] for n in layers_b]
    with pinned_threads(1):
        return _window_terms(arrays_a, arrays_b, batches, layers_a, None if path_b is None else layers_b)


def _compute_on_scheduler(address: str, tasks, timeout: str = "10s"):
    try:
        from distributed import Client  # optional: only a run with cka.scheduler needs it
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
    warn_single_batch(n, batch_size, path_a)

    rng = np.random.default_rng(seed)
    plans = [b for _ in range(epochs)
             for b in batch_plan(n, batch_size, chunk, shuffle=shuffle, rng=rng, window=window)]
    if scheduler:
        remote = [str(path_a), names_a, None if path_b is None else str(path_b), names_b]
        tasks = [dask.delayed(_remote_window_terms, pure=False)(*remote, batches) for batches in plans]
        results = _compute_on_scheduler(scheduler, tasks)
    else:
        tasks = [dask.delayed(_window_terms)(arrays_a, arrays_b, batches, names_a,
                                             None if path_b is None else names_b)
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
