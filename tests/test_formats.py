"""Tests for repatlas.formats: each test builds tiny files of the real formats in tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

from repatlas import formats
from repatlas.formats import (
    FormatError,
    default_data_dir,
    load_cifar,
    load_mnist_like,
    read_idx,
    sha256_file,
)

# ---------------------------------------------------------------------------------------------
# IDX helpers
# ---------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file by hand: 2 zero bytes, type code, ndim, big-endian uint32 dims, data."""
    head = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def mnist_dir(tmp_path, n_train=6, n_test=4, gz=True, labels_train=None, labels_test=None):
    d = tmp_path / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    ytr = np.arange(n_train) % 10 if labels_train is None else labels_train
    yte = (np.arange(n_test) * 3) % 10 if labels_test is None else labels_test
    arrays = {
        "train-images-idx3-ubyte": images(n_train, 1),
        "train-labels-idx1-ubyte": np.asarray(ytr, dtype=np.uint8),
        "t10k-images-idx3-ubyte": images(n_test, 2),
        "t10k-labels-idx1-ubyte": np.asarray(yte, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write(d / f"{name}{sfx}", idx_bytes(arr), gz=gz)
    return d, arrays


# ---------------------------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    x = images(3)
    y = np.array([7, 0, 9], dtype=np.uint8)
    xi = read_idx(write(tmp_path / "img", idx_bytes(x), gz=gz))
    yi = read_idx(write(tmp_path / "lab", idx_bytes(y), gz=gz))
    assert xi.dtype == np.uint8 and xi.shape == (3, 28, 28)
    np.testing.assert_array_equal(xi, x)
    np.testing.assert_array_equal(yi, y)
    assert xi.flags.writeable


def test_read_idx_detects_gzip_by_magic_not_suffix(tmp_path):
    x = images(2)
    # gzip content without .gz suffix, and plain content with a .gz suffix
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", idx_bytes(x), gz=True)), x)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "b.gz", idx_bytes(x))), x)


@pytest.mark.parametrize(
    "head, fragment",
    [
        (bytes([0, 0, 0x0C, 3]), "0x00000C03 (int (int32), 3-D)"),
        (bytes([0, 0, 0x08, 2]), "0x00000802"),
        (bytes([0, 0, 0x0D, 1]), "float32"),
        (b"\x89PNG", "not an IDX file"),
    ],
)
def test_read_idx_wrong_magic(tmp_path, head, fragment):
    p = write(tmp_path / "bad", head + struct.pack(">III", 1, 2, 2) + bytes(4))
    with pytest.raises(FormatError) as e:
        read_idx(p)
    msg = str(e.value)
    assert str(p) in msg and fragment in msg and "0x00000803" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path, gz):
    data = idx_bytes(images(2))  # 16 + 1568 bytes
    p = write(tmp_path / "t", data[:-5], gz=gz)
    with pytest.raises(FormatError, match="truncated") as e:
        read_idx(p)
    msg = str(e.value)
    assert str(p) in msg and f"need {len(data)} bytes" in msg and f"is {len(data) - 5} bytes" in msg


@pytest.mark.parametrize("cut", [2, 10])  # inside the magic number, inside the dims
def test_read_idx_truncated_header(tmp_path, cut):
    p = write(tmp_path / "t", idx_bytes(images(1))[:cut])
    with pytest.raises(FormatError, match="truncated") as e:
        read_idx(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_trailing_bytes(tmp_path, gz):
    data = idx_bytes(np.arange(5, dtype=np.uint8))
    p = write(tmp_path / "t", data + b"xyz", gz=gz)
    with pytest.raises(FormatError, match="trailing bytes") as e:
        read_idx(p)
    assert str(p) in str(e.value) and f"need {len(data)} bytes" in str(e.value)
    assert f"is {len(data) + 3} bytes" in str(e.value)


def test_read_idx_corrupt_gzip(tmp_path):
    comp = gzip.compress(idx_bytes(images(4)))
    cut = write(tmp_path / "cut.gz", comp[: len(comp) // 2])
    flipped = bytearray(comp)
    flipped[len(comp) // 2] ^= 0xFF
    flipped = write(tmp_path / "flip.gz", bytes(flipped))
    badcrc = bytearray(comp)
    badcrc[-8] ^= 0xFF  # CRC32 of the trailer
    badcrc = write(tmp_path / "crc.gz", bytes(badcrc))
    for p in (cut, flipped, badcrc):
        with pytest.raises(FormatError) as e:
            read_idx(p)
        assert str(p) in str(e.value)
    with pytest.raises(FormatError, match="corrupt gzip"):
        read_idx(cut)


def test_read_idx_missing(tmp_path):
    with pytest.raises(FormatError, match="not found") as e:
        read_idx(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)


# ---------------------------------------------------------------------------------------------
# load_mnist_like
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_like(tmp_path, gz):
    d, arrays = mnist_dir(tmp_path, gz=gz)
    out = load_mnist_like(d, name="mnist")
    assert set(out) == {"x_train", "y_train", "x_test", "y_test"}
    assert out["x_train"].shape == (6, 1, 28, 28) and out["x_train"].dtype == np.uint8
    assert out["y_train"].dtype == np.int64 and out["y_test"].dtype == np.int64
    np.testing.assert_array_equal(out["x_train"][:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(out["x_test"][:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(out["y_train"], arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(out["y_test"], arrays["t10k-labels-idx1-ubyte"])


def test_load_mnist_like_mixed_compression(tmp_path):
    d, arrays = mnist_dir(tmp_path, gz=True)
    (d / "t10k-images-idx3-ubyte.gz").unlink()
    write(d / "t10k-images-idx3-ubyte", idx_bytes(arrays["t10k-images-idx3-ubyte"]))
    out = load_mnist_like(d, name="fashion_mnist")
    np.testing.assert_array_equal(out["x_test"][:, 0], arrays["t10k-images-idx3-ubyte"])


def test_load_mnist_like_count_mismatch(tmp_path):
    d, _ = mnist_dir(tmp_path, n_train=6, labels_train=np.arange(5))
    with pytest.raises(FormatError, match="5 labels but") as e:
        load_mnist_like(d, name="mnist")
    assert "train-labels-idx1-ubyte.gz" in str(e.value) and "6 images" in str(e.value)


def test_load_mnist_like_label_out_of_range(tmp_path):
    d, _ = mnist_dir(tmp_path, n_test=4, labels_test=[1, 2, 10, 3])
    with pytest.raises(FormatError, match="label 10 at index 2") as e:
        load_mnist_like(d, name="mnist")
    assert str(d / "t10k-labels-idx1-ubyte.gz") in str(e.value) and "0..9" in str(e.value)


def test_load_mnist_like_swapped_files(tmp_path):
    d, arrays = mnist_dir(tmp_path)
    write(d / "train-images-idx3-ubyte.gz", idx_bytes(np.arange(6, dtype=np.uint8)), gz=True)
    with pytest.raises(FormatError, match="1-D") as e:
        load_mnist_like(d, name="mnist")
    assert "train-images-idx3-ubyte.gz" in str(e.value)


def test_load_mnist_like_wrong_image_size(tmp_path):
    d, _ = mnist_dir(tmp_path)
    x = np.zeros((6, 32, 32), np.uint8)
    write(d / "train-images-idx3-ubyte.gz", idx_bytes(x), gz=True)
    with pytest.raises(FormatError, match="expected 28x28"):
        load_mnist_like(d, name="mnist")


def test_load_mnist_like_missing_file_fashion(tmp_path):
    d, _ = mnist_dir(tmp_path)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FormatError) as e:
        load_mnist_like(d, name="fashion_mnist")
    msg = str(e.value)
    assert str(d / "t10k-labels-idx1-ubyte") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "/usr/share/datasets/fashion-mnist" in msg


def test_load_mnist_like_missing_file_mnist(tmp_path):
    with pytest.raises(FormatError) as e:
        load_mnist_like(tmp_path, name="mnist")
    msg = str(e.value)
    assert str(tmp_path / "train-images-idx3-ubyte") in msg
    assert "MNIST distribution" in msg and "never downloads" in msg


def test_load_mnist_like_bad_name_and_dir(tmp_path):
    with pytest.raises(FormatError, match="unknown dataset"):
        load_mnist_like(tmp_path, name="kmnist")
    with pytest.raises(FormatError, match="not a directory") as e:
        load_mnist_like(tmp_path / "absent", name="mnist")
    assert str(tmp_path / "absent") in str(e.value)


def test_default_data_dir(monkeypatch, tmp_path):
    expect = "/usr/share/datasets/fashion-mnist"
    assert default_data_dir("fashion_mnist") == (expect if os.path.isdir(expect) else None)
    assert default_data_dir("mnist") is None
    monkeypatch.setattr(formats, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path))
    assert default_data_dir("fashion_mnist") == str(tmp_path)
    d, arrays = mnist_dir(tmp_path)
    monkeypatch.setattr(formats, "DEBIAN_FASHION_MNIST_DIR", str(d))
    out = load_mnist_like(None, name="fashion_mnist")
    np.testing.assert_array_equal(out["y_train"], arrays["train-labels-idx1-ubyte"])
    monkeypatch.setattr(formats, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(FormatError, match="apt-get install dataset-fashion-mnist"):
        load_mnist_like(None, name="fashion_mnist")


def test_verify(tmp_path, monkeypatch):
    d, _ = mnist_dir(tmp_path, gz=False)
    with pytest.raises(FormatError, match="no published checksum"):
        load_mnist_like(d, name="mnist", verify=True)  # decompressed MNIST: none known
    with pytest.raises(FormatError, match="checksum mismatch") as e:
        load_mnist_like(d, name="fashion_mnist", verify=True)
    assert "train-images-idx3-ubyte" in str(e.value)
    # a table entry for the decompressed content also verifies a gzip copy of it
    dz, _ = mnist_dir(tmp_path / "z", gz=True)
    table = {}
    for f in dz.iterdir():
        raw = gzip.decompress(f.read_bytes())
        table[f.name[:-3]] = {"sha256": frozenset({hashlib.sha256(raw).hexdigest()})}
    monkeypatch.setitem(formats._CHECKSUMS, "mnist", table)
    assert load_mnist_like(dz, name="mnist", verify=True)["x_train"].shape == (6, 1, 28, 28)


def test_sha256_file(tmp_path):
    p = write(tmp_path / "f", b"hello")
    assert sha256_file(p) == hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(FormatError):
        sha256_file(tmp_path / "absent")


# ---------------------------------------------------------------------------------------------
# CIFAR helpers
# ---------------------------------------------------------------------------------------------


def cifar_rows(n: int, offset: int = 0) -> np.ndarray:
    """Rows whose pixel (c, h, w) of image i is (i + offset + 7c + 3h + w) % 256 (channel-major)."""
    i, c, h, w = np.ogrid[:n, :3, :32, :32]
    img = ((i + offset + 7 * c + 3 * h + w) % 256).astype(np.uint8)
    return img.reshape(n, 3072)


def expected_images(n: int, offset: int = 0) -> np.ndarray:
    i, c, h, w = np.ogrid[:n, :3, :32, :32]
    return ((i + offset + 7 * c + 3 * h + w) % 256).astype(np.uint8)


CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def cifar10_py(root, n=3):
    """cifar-10-batches-py as the real archive lays it out, with n images per batch."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    labels = {}
    for b, fname in enumerate(CIFAR10_TRAIN + ["test_batch"]):
        ys = [(b + 3 * k) % 10 for k in range(n)]
        labels[fname] = ys
        batch = {
            b"batch_label": f"batch {b}".encode(),
            b"labels": ys,
            b"data": cifar_rows(n, offset=10 * b),
            b"filenames": [f"img_{b}_{k}.png".encode() for k in range(n)],
        }
        with open(d / fname, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, f, protocol=2)
    return d, labels


def cifar100_py(root, n=4):
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    fine = {}
    for b, fname in enumerate(["train", "test"]):
        ys = [(37 * k + b) % 100 for k in range(n)]
        fine[fname] = ys
        batch = {
            b"filenames": [b"x.png"] * n,
            b"batch_label": b"training batch 1 of 1",
            b"fine_labels": ys,
            b"coarse_labels": [y // 5 for y in ys],
            b"data": cifar_rows(n, offset=100 * b),
        }
        with open(d / fname, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return d, fine


def py2_style_pickle(batch: dict) -> bytes:
    """The opcodes Python 2's cPickle (protocol 2) wrote for the real CIFAR batches.

    Keys and byte strings are py2 `str` (SHORT_BINSTRING/BINSTRING, read back as bytes with
    encoding="bytes"), arrays reference numpy.core.multiarray._reconstruct, no _codecs.encode.
    """

    def s(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def i(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    def obj(v) -> bytes:
        if isinstance(v, bytes):
            return s(v)
        if isinstance(v, int):
            return i(v)
        if isinstance(v, list):
            return b"](" + b"".join(obj(x) for x in v) + b"e"
        assert isinstance(v, np.ndarray) and v.dtype == np.uint8
        dtype = b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R" + b"(K\x03" + s(b"|")
        dtype += b"NNN" + i(-1) + i(-1) + b"K\x00tb"
        shape = b"(" + b"".join(i(d) for d in v.shape) + b"t"
        head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b")
        return head + b"\x87R(K\x01" + shape + dtype + b"\x89" + s(v.tobytes()) + b"tb"

    items = b"".join(obj(k) + obj(v) for k, v in batch.items())
    return b"\x80\x02}(" + items + b"u."


# ---------------------------------------------------------------------------------------------
# CIFAR python version
# ---------------------------------------------------------------------------------------------


def test_cifar10_python(tmp_path):
    d, labels = cifar10_py(tmp_path)
    for data_dir in (tmp_path, d):  # the extraction folder or the batches folder itself
        out = load_cifar(data_dir, name="cifar10")
        assert out["x_train"].shape == (15, 3, 32, 32) and out["x_train"].dtype == np.uint8
        assert out["x_test"].shape == (3, 3, 32, 32)
        assert out["y_train"].dtype == np.int64
        want = np.concatenate([expected_images(3, 10 * b) for b in range(5)])
        np.testing.assert_array_equal(out["x_train"], want)
        np.testing.assert_array_equal(out["x_test"], expected_images(3, 50))
        np.testing.assert_array_equal(
            out["y_train"], np.concatenate([labels[f] for f in CIFAR10_TRAIN])
        )
        np.testing.assert_array_equal(out["y_test"], labels["test_batch"])
    # channel-major: first 1024 bytes of a row are the red plane, row by row
    row = cifar_rows(1)[0]
    x = load_cifar(tmp_path)["x_train"][0]
    assert x[0, 0, 5] == row[5] and x[0, 1, 0] == row[32] and x[1, 0, 0] == row[1024]
    assert x[2, 31, 31] == row[3071]


def test_cifar100_python(tmp_path):
    d, fine = cifar100_py(tmp_path)
    out = load_cifar(tmp_path, name="cifar100")
    np.testing.assert_array_equal(out["x_train"], expected_images(4, 0))
    np.testing.assert_array_equal(out["x_test"], expected_images(4, 100))
    np.testing.assert_array_equal(out["y_train"], fine["train"])
    np.testing.assert_array_equal(out["y_test"], fine["test"])
    assert out["y_train"].dtype == np.int64
    np.testing.assert_array_equal(load_cifar(d, name="cifar100")["y_test"], fine["test"])


def test_cifar_python2_style_pickle(tmp_path):
    d, labels = cifar10_py(tmp_path)
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [9, 0, 4],
        b"data": cifar_rows(3, 77),
        b"filenames": [b"a.png", b"b.png", b"c.png"],
    }
    raw = py2_style_pickle(batch)
    globals_used = {a for op, a, _ in pickletools.genops(raw) if op.name == "GLOBAL"}
    assert globals_used == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    (d / "test_batch").write_bytes(raw)
    out = load_cifar(tmp_path)
    np.testing.assert_array_equal(out["x_test"], expected_images(3, 77))
    np.testing.assert_array_equal(out["y_test"], [9, 0, 4])


def test_cifar_missing(tmp_path):
    with pytest.raises(FormatError) as e:
        load_cifar(tmp_path, name="cifar10")
    msg = str(e.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg
    with pytest.raises(FormatError, match="cifar-100-python.tar.gz"):
        load_cifar(tmp_path, name="cifar100")
    d, _ = cifar10_py(tmp_path)
    (d / "data_batch_4").unlink()
    with pytest.raises(FormatError, match="missing CIFAR python batch") as e:
        load_cifar(tmp_path)
    assert str(d / "data_batch_4") in str(e.value)


def test_cifar_python_bad_content(tmp_path):
    d, _ = cifar10_py(tmp_path)

    def put(fname, batch):
        with open(d / fname, "wb") as f:
            pickle.dump(batch, f, protocol=2)

    good = {b"labels": [1, 2, 3], b"data": cifar_rows(3)}
    put("data_batch_2", {**good, b"labels": [1, 2, 10]})
    with pytest.raises(FormatError, match=r"value 10 at index 2.*0\.\.9") as e:
        load_cifar(tmp_path)
    assert str(d / "data_batch_2") in str(e.value)
    put("data_batch_2", {**good, b"labels": [1, 2]})
    with pytest.raises(FormatError, match="one per image"):
        load_cifar(tmp_path)
    put("data_batch_2", {**good, b"data": cifar_rows(3)[:, :3000]})
    with pytest.raises(FormatError, match="shape"):
        load_cifar(tmp_path)
    put("data_batch_2", {b"fine_labels": [1, 2, 3], b"data": cifar_rows(3)})
    with pytest.raises(FormatError, match="lacks"):
        load_cifar(tmp_path)
    put("data_batch_2", {**good, b"data": cifar_rows(3).astype(np.float32)})
    with pytest.raises(FormatError, match="float32") as e:
        load_cifar(tmp_path)
    assert str(d / "data_batch_2") in str(e.value)
    (d / "data_batch_2").write_bytes(b"\x80\x02}(U\x04data")  # cut short
    with pytest.raises(FormatError, match="not a valid CIFAR python batch"):
        load_cifar(tmp_path)


# ---------------------------------------------------------------------------------------------
# Malicious pickles
# ---------------------------------------------------------------------------------------------


class _Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize(
    "make",
    [
        lambda m: (os.system, f"touch {m}"),
        lambda m: (eval, f"open({str(m)!r}, 'w').write('pwned')"),
        lambda m: (open, str(m), "w"),
        lambda m: (exec, f"open({str(m)!r}, 'w')"),
    ],
    ids=["os.system", "eval", "open", "exec"],
)
def test_malicious_pickle_is_refused(tmp_path, make):
    marker = tmp_path / "marker"
    fn, *args = make(marker)
    d, _ = cifar10_py(tmp_path)
    evil = {b"labels": _Reduce(fn, *args), b"data": cifar_rows(3)}
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(FormatError) as e:
        load_cifar(tmp_path)
    assert not marker.exists()
    msg = str(e.value)
    refused = f"{'__builtin__' if fn.__module__ == 'builtins' else fn.__module__}.{fn.__name__}"
    assert str(d / "data_batch_3") in msg and refused in msg and "refused" in msg


@pytest.mark.parametrize("protocol", [0, 4])
def test_malicious_pickle_other_protocols(tmp_path, protocol):
    marker = tmp_path / "marker"
    d, _ = cifar100_py(tmp_path)
    with open(d / "test", "wb") as f:
        pickle.dump(_Reduce(os.system, f"touch {marker}"), f, protocol=protocol)
    with pytest.raises(FormatError, match=r"refused .*system") as e:
        load_cifar(tmp_path, name="cifar100")
    assert not marker.exists() and str(d / "test") in str(e.value)


def test_allowed_globals_cannot_be_abused(tmp_path):
    """The allowed names resolve to checked stand-ins, not the real callables."""
    d, _ = cifar10_py(tmp_path)
    cases = {
        # _codecs.encode with another codec
        b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.": "encode",
        # calling numpy.ndarray directly
        b"\x80\x02cnumpy\nndarray\nK\x05\x85R.": "may not be called",
        # bytes(n): a huge allocation
        b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x7f\x85R.": "without arguments",
        # BUILD on an allowed callable, to set attributes on it
        b"\x80\x02cnumpy\ndtype\n}X\x08\x00\x00\x00__call__K\x01sb.": "cannot set state",
        # object dtype
        b"\x80\x02cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R.": "integer types only",
        # _reconstruct with another subtype
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nK\x00K\x00\x85U\x01b\x87R.": "unexpected",
    }
    for raw, reason in cases.items():
        (d / "test_batch").write_bytes(raw)
        with pytest.raises(FormatError, match="not a valid CIFAR python batch") as e:
            load_cifar(tmp_path)
        assert str(d / "test_batch") in str(e.value) and reason in str(e.value)


# ---------------------------------------------------------------------------------------------
# CIFAR binary version
# ---------------------------------------------------------------------------------------------


def bin_records(labels: list[tuple[int, ...]], offset: int) -> bytes:
    rows = cifar_rows(len(labels), offset)
    return b"".join(bytes(lab) + row.tobytes() for lab, row in zip(labels, rows, strict=True))


def cifar10_bin(root, n=2):
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    labels = {}
    for b, fname in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        ys = [(b * 2 + k) % 10 for k in range(n)]
        labels[fname] = ys
        (d / fname).write_bytes(bin_records([(y,) for y in ys], 20 * b))
    (d / "batches.meta.txt").write_text("airplane\n")
    return d, labels


def test_cifar10_binary(tmp_path):
    d, labels = cifar10_bin(tmp_path)
    for data_dir in (tmp_path, d):
        out = load_cifar(data_dir, name="cifar10")
        want = np.concatenate([expected_images(2, 20 * b) for b in range(5)])
        np.testing.assert_array_equal(out["x_train"], want)
        np.testing.assert_array_equal(out["x_test"], expected_images(2, 100))
        np.testing.assert_array_equal(
            out["y_train"], np.concatenate([labels[f"data_batch_{i}.bin"] for i in range(1, 6)])
        )
        np.testing.assert_array_equal(out["y_test"], labels["test_batch.bin"])
        assert out["y_test"].dtype == np.int64 and out["x_test"].dtype == np.uint8


def test_cifar100_binary(tmp_path):
    d = tmp_path / "cifar-100-binary"
    d.mkdir()
    (d / "train.bin").write_bytes(bin_records([(3, 17), (19, 99), (0, 0)], 5))
    (d / "test.bin").write_bytes(bin_records([(7, 38)], 9))
    out = load_cifar(tmp_path, name="cifar100")
    np.testing.assert_array_equal(out["y_train"], [17, 99, 0])  # fine labels
    np.testing.assert_array_equal(out["y_test"], [38])
    np.testing.assert_array_equal(out["x_train"], expected_images(3, 5))
    np.testing.assert_array_equal(out["x_test"], expected_images(1, 9))
    (d / "test.bin").write_bytes(bin_records([(7, 100)], 9))
    with pytest.raises(FormatError, match=r"fine label byte value 100.*0\.\.99") as e:
        load_cifar(tmp_path, name="cifar100")
    assert str(d / "test.bin") in str(e.value)
    (d / "test.bin").write_bytes(bin_records([(20, 38)], 9))
    with pytest.raises(FormatError, match=r"coarse label byte value 20"):
        load_cifar(tmp_path, name="cifar100")


def test_cifar_binary_bad_records(tmp_path):
    d, _ = cifar10_bin(tmp_path)
    p = d / "data_batch_2.bin"
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(FormatError, match="3073-byte record") as e:
        load_cifar(tmp_path)
    assert str(p) in str(e.value)
    p.write_bytes(b"")
    with pytest.raises(FormatError, match="positive multiple"):
        load_cifar(tmp_path)
    p.write_bytes(bin_records([(10,)], 0))
    with pytest.raises(FormatError, match=r"label byte value 10 .*0\.\.9"):
        load_cifar(tmp_path)


def test_cifar_prefers_python_over_binary(tmp_path):
    cifar10_bin(tmp_path, n=2)
    cifar10_py(tmp_path, n=3)
    assert load_cifar(tmp_path)["x_test"].shape == (3, 3, 32, 32)


def test_cifar_verify(tmp_path, monkeypatch):
    d, _ = cifar10_py(tmp_path)
    with pytest.raises(FormatError, match="checksum mismatch") as e:
        load_cifar(tmp_path, verify=True)
    assert str(d / "data_batch_1") in str(e.value) and "c99cafc152244af753f735de768cd75f" in str(
        e.value
    )
    table = {
        f.name: {"md5": frozenset({hashlib.md5(f.read_bytes()).hexdigest()})} for f in d.iterdir()
    }
    monkeypatch.setitem(formats._CHECKSUMS, "cifar10", table)
    assert load_cifar(tmp_path, verify=True)["x_train"].shape == (15, 3, 32, 32)
    cifar10_bin(tmp_path / "b")
    with pytest.raises(FormatError, match="no published checksum"):
        load_cifar(tmp_path / "b", verify=True)
