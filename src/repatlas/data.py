"""Datasets as canonical arrays, and deterministic class-balanced subsets.

Every dataset is turned into the same canonical form: uint8 images (N, C, H, W) in [0, 255] and
int64 labels, split into a training pool and a held-out test split. The first `probe_size`
examples of a fixed class-balanced ordering of the test split form the probe set on which
activations and CKA are computed, so every model of a study is probed on the same examples.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from repatlas import formats
from repatlas.io import atomic_path

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10", "cifar100")
# (training pool, test split) sizes of the standard files, known without reading any file, for
# config checks before any job runs.
DATASET_SIZES = {
    "digits": (1437, 360),
    "fashion_mnist": (60000, 10000),
    "mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
}

# Digits has no official split: a fixed, class-balanced 20 % is held out as the test split.
DIGITS_TEST_PER_CLASS = 36
SPLIT_SEED = 0


class DataError(ValueError):
    """A dataset file is missing, corrupt or asked for something it cannot give."""


def checksum(*arrays: np.ndarray) -> str:
    """SHA-256 over the arrays' bytes, shapes and dtypes: identifies a dataset's content."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of example indices that cycles through the classes.

    Each class is shuffled with `seed`, then the classes are interleaved, so every prefix of the
    result is as class-balanced as possible (counts differ by at most one while all classes have
    examples left). Deterministic for a given (labels, seed).
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    longest = max(len(p) for p in per_class)
    rounds = [p[r] for r in range(longest) for p in per_class if r < len(p)]
    return np.asarray(rounds, dtype=np.int64)


def _digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # scikit-learn's import is slow; only digits needs it

    bunch = load_digits()
    # Pixel values are integers 0..16; map them to 0..255 so all datasets share one range.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    n_classes = int(y.max()) + 1
    test = balanced_order(y, SPLIT_SEED)[: DIGITS_TEST_PER_CLASS * n_classes]
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    return {"x_train": x[~is_test], "y_train": y[~is_test], "x_test": x[test], "y_test": y[test]}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Canonical arrays of a named dataset: x_train, y_train, x_test, y_test.

    digits comes with scikit-learn; the others are read from standard files in `data_dir`
    (Fashion-MNIST defaults to where Debian's `dataset-fashion-mnist` installs it). Missing or
    corrupt files raise one error naming the path and how to obtain the data.
    """
    if name == "digits":
        return _digits()
    try:
        if name in formats.MNIST_LIKE:
            return formats.load_mnist_like(data_dir, name=name)
        if name in formats.CIFAR:
            if data_dir is None:
                raise DataError(f"dataset {name!r} needs data_dir: the folder holding the CIFAR batches")
            return formats.load_cifar(data_dir, name=name)
    except formats.FormatError as exc:
        raise DataError(str(exc)) from None
    raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")


def save_npz(path, meta: dict, **arrays: np.ndarray) -> None:
    """Save arrays and a JSON `meta` record into one .npz, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def load_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of an .npz written by `save_npz`; a clear error if unreadable."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile/format errors differ by corruption kind
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    return arrays, meta


def subset_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a deterministic, class-balanced subset of size n (sorted)."""
    if not 0 < n <= len(labels):
        raise DataError(f"subset size n={n} must be between 1 and the training pool size {len(labels)}")
    return np.sort(balanced_order(labels, seed)[:n])


def probe_set(full: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed probe examples: (x, y, index into the test split), class-balanced, `size` of them."""
    y = full["y_test"]
    if not 0 < size <= len(y):
        raise DataError(f"probe_size={size} must be between 1 and the test split size {len(y)}")
    idx = balanced_order(y, SPLIT_SEED)[:size]
    return full["x_test"][idx], y[idx], idx


def standardise(x_uint8, mean, std):
    """uint8 images → float32 standardised per channel (works for numpy arrays and torch tensors)."""
    import torch  # repatlas.data stays torch-free: the config checks (and so every rule) import it

    x = torch.as_tensor(x_uint8).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def load_classification(full_path, subset_path):
    """(x_train, y_train, x_test, y_test): a training subset and the test split as standardised
    float32 images (N, C, H, W) and int64 labels, for in-memory experiments."""
    full, meta = load_npz(full_path)
    sub, _ = load_npz(subset_path)
    x_train = standardise(sub["x"], meta["mean"], meta["std"]).numpy()
    x_test = standardise(full["x_test"], meta["mean"], meta["std"]).numpy()
    return x_train, sub["y"], x_test, full["y_test"]
