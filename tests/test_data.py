import numpy as np
import pytest

from repatlas import data
from repatlas.steps import data as data_steps


def test_digits_canonical_arrays():
    full = data.load_dataset("digits")
    assert full["x_train"].shape == (1437, 1, 8, 8) and full["x_train"].dtype == np.uint8
    assert full["x_test"].shape == (360, 1, 8, 8)
    assert data.DATASET_SIZES["digits"] == (len(full["y_train"]), len(full["y_test"]))
    assert full["x_train"].max() == 255
    # the test split is class-balanced: 36 of each digit
    assert np.bincount(full["y_test"]).tolist() == [36] * 10


def test_test_split_is_disjoint_from_training_pool():
    from sklearn.datasets import load_digits

    raw = load_digits().images.reshape(1797, -1)
    full = data.load_dataset("digits")
    assert len(full["y_train"]) + len(full["y_test"]) == len(raw)
    train_rows = {r.tobytes() for r in full["x_train"].reshape(len(full["x_train"]), -1)}
    test_rows = [r.tobytes() for r in full["x_test"].reshape(len(full["x_test"]), -1)]
    # digits has a few duplicate images; all but those must be unseen in training
    assert sum(r in train_rows for r in test_rows) <= 5


def test_subsets_are_balanced_and_deterministic():
    labels = np.repeat(np.arange(10), [50, 60, 45, 70, 55, 52, 48, 61, 59, 53])
    a = data.subset_indices(labels, 100, seed=3)
    assert np.array_equal(a, data.subset_indices(labels, 100, seed=3))
    assert not np.array_equal(a, data.subset_indices(labels, 100, seed=4))
    assert np.bincount(labels[a]).tolist() == [10] * 10
    assert len(np.unique(a)) == 100
    odd = np.bincount(labels[data.subset_indices(labels, 57, seed=0)])
    assert odd.max() - odd.min() <= 1
    # a larger subset of the same seed contains the smaller one (nested subsets)
    assert set(a) <= set(data.subset_indices(labels, 300, seed=3))
    with pytest.raises(data.DataError, match="between 1 and"):
        data.subset_indices(labels, len(labels) + 1, seed=0)


def test_full_and_subset_files_roundtrip(tmp_path):
    meta = data_steps.write_full("digits", tmp_path / "full.npz")
    arrays, meta2 = data.load_npz(tmp_path / "full.npz")
    assert meta == meta2
    assert meta["checksum"] == data.checksum(*(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")))
    sub = data_steps.write_subset(tmp_path / "full.npz", tmp_path / "sub.npz", 200, 1)
    s, _ = data.load_npz(tmp_path / "sub.npz")
    assert np.array_equal(s["x"], arrays["x_train"][s["index"]])
    assert sub["n"] == 200 and np.bincount(s["y"]).tolist() == [20] * 10
    assert not list(tmp_path.glob(".*tmp*"))  # no temporaries left behind


def test_probe_set_is_fixed_and_balanced():
    full = data.load_dataset("digits")
    x1, y1, i1 = data.probe_set(full, 100)
    x2, y2, i2 = data.probe_set(full, 100)
    assert np.array_equal(i1, i2) and np.array_equal(x1, full["x_test"][i1])
    assert np.bincount(y1).tolist() == [10] * 10


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.load_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="bad.npz: not a readable"):
        data.load_npz(bad)
    with pytest.raises(data.DataError, match="unknown dataset 'cifar11'"):
        data.load_dataset("cifar11")


def _write_idx(path, array):
    import gzip
    import struct

    magic = 0x0803 if array.ndim == 3 else 0x0801
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 50), ("t10k", 20)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    full = data.load_dataset("fashion_mnist", tmp_path)
    assert full["x_train"].shape == (50, 1, 28, 28) and full["y_test"].tolist() == list(np.arange(20) % 10)
    meta = data_steps.write_full("fashion_mnist", tmp_path / "full.npz", tmp_path)
    assert meta["shape"] == [1, 28, 28] and meta["n_classes"] == 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match="t10k-labels"):
        data.load_dataset("fashion_mnist", tmp_path)
