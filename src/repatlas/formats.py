"""Readers for the standard image-dataset file formats, returning canonical arrays.

Supported formats:

* IDX (MNIST, Fashion-MNIST), plain or gzip-compressed: `read_idx`, `load_mnist_like`.
* CIFAR-10 / CIFAR-100, python version (pickled batches, loaded with a restricted unpickler that
  never executes code) and binary version (fixed-size records): `load_cifar`.

Loaders return ``{"x_train", "y_train", "x_test", "y_test"}`` with uint8 images (N, C, H, W) and
int64 labels (N,). Nothing is ever downloaded: when a file is missing or malformed, one
`FormatError` is raised whose message names the offending path, says what was expected and how
to obtain the data.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "FormatError",
    "read_idx",
    "load_mnist_like",
    "default_data_dir",
    "load_cifar",
    "sha256_file",
    "MNIST_LIKE",
    "CIFAR",
]


class FormatError(ValueError):
    """A dataset file is missing, malformed, corrupt, refused or fails its checksum."""


_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"

# ---------------------------------------------------------------------------------------------
# Where the data comes from (nothing here is ever fetched: these are instructions for humans).
# ---------------------------------------------------------------------------------------------

MNIST_LIKE = ("mnist", "fashion_mnist")
CIFAR = ("cifar10", "cifar100")

# Installed by Debian's package `dataset-fashion-mnist` (checked with `dpkg -c` on
# dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb): the four .gz files below, directly
# in this folder.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MNIST_LIST = ", ".join(f"{f}.gz" for f in _MNIST_FILES.values())

_HOW_TO = {
    "mnist": (
        "To obtain MNIST, place the four standard files of the MNIST distribution "
        f"(http://yann.lecun.com/exdb/mnist/: {_MNIST_LIST}; gzip-compressed or decompressed) "
        "in data_dir. repatlas never downloads data."
    ),
    "fashion_mnist": (
        "To obtain Fashion-MNIST, install Debian's package (`apt-get install "
        f"dataset-fashion-mnist`), which puts {_MNIST_LIST} in {DEBIAN_FASHION_MNIST_DIR}/ (the "
        "default data_dir when present), or copy those four files from the upstream repository "
        "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion) into data_dir. "
        "repatlas never downloads data."
    ),
    "cifar10": (
        "To obtain CIFAR-10, get cifar-10-python.tar.gz (or the binary version "
        "cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
        "in data_dir (`tar xzf cifar-10-python.tar.gz -C data_dir`, giving "
        "data_dir/cifar-10-batches-py/). repatlas never downloads data."
    ),
    "cifar100": (
        "To obtain CIFAR-100, get cifar-100-python.tar.gz (or the binary version "
        "cifar-100-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
        "in data_dir (`tar xzf cifar-100-python.tar.gz -C data_dir`, giving "
        "data_dir/cifar-100-python/). repatlas never downloads data."
    ),
}
_GENERIC_IDX_HOW_TO = (
    "Re-obtain the file from its original distribution (e.g. the MNIST or Fashion-MNIST .gz "
    "files); repatlas never downloads data."
)

# ---------------------------------------------------------------------------------------------
# Checksums of the standard files.
#
# Only checksums established from a published or first-hand source are listed; nothing here is
# guessed. Sources:
# * MNIST .gz (MD5): torchvision's MNIST.resources (pytorch/vision,
#   torchvision/datasets/mnist.py), with which torchvision checks the files served by the MNIST
#   site and its mirror.
# * Fashion-MNIST .gz as published upstream (MD5): the table in the upstream README
#   (zalandoresearch/fashion-mnist; a copy ships in the Debian package as
#   /usr/share/doc/dataset-fashion-mnist/README.md.gz); torchvision's FashionMNIST.resources
#   lists the same values.
# * Fashion-MNIST .gz as installed by Debian's dataset-fashion-mnist
#   0.0~git20200523.55506a9-1 (MD5): the package's own md5sums control file. They differ from
#   upstream's: the packaged gzip headers carry no file name (each file is exactly len(name) + 1
#   bytes shorter than upstream's published size, i.e. the FNAME field was stripped when the
#   package was built) and have another mtime; the decompressed content is what matters.
# * Fashion-MNIST decompressed IDX (SHA-256): computed from the Debian package's files, so a
#   decompressed (or re-compressed) copy can be verified too.
# * CIFAR-10 / CIFAR-100 python batches (MD5): torchvision's CIFAR10/CIFAR100 train_list and
#   test_list (pytorch/vision, torchvision/datasets/cifar.py).
# No checksum could be established with certainty for the decompressed MNIST files or for the
# files of the CIFAR binary version, so none is listed: `verify=True` refuses to vouch for them
# (it raises) instead of guessing.
# ---------------------------------------------------------------------------------------------

_CHECKSUMS: dict[str, dict[str, dict[str, frozenset[str]]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {"md5": frozenset({"f68b3c2dcbeaaa9fbdd348bbdeb94873"})},
        "train-labels-idx1-ubyte.gz": {"md5": frozenset({"d53e105ee54ea40749a09fcbcd1e9432"})},
        "t10k-images-idx3-ubyte.gz": {"md5": frozenset({"9fb629c4189551a2d022fa330f9573f3"})},
        "t10k-labels-idx1-ubyte.gz": {"md5": frozenset({"ec29112dd5afa0611ce80d1b7f02629c"})},
    },
    "fashion_mnist": {
        # upstream README, then Debian's package
        "train-images-idx3-ubyte.gz": {
            "md5": frozenset(
                {"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"}
            )
        },
        "train-labels-idx1-ubyte.gz": {
            "md5": frozenset(
                {"25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"}
            )
        },
        "t10k-images-idx3-ubyte.gz": {
            "md5": frozenset(
                {"bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"}
            )
        },
        "t10k-labels-idx1-ubyte.gz": {
            "md5": frozenset(
                {"bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"}
            )
        },
        # decompressed content
        "train-images-idx3-ubyte": {
            "sha256": frozenset(
                {"c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"}
            )
        },
        "train-labels-idx1-ubyte": {
            "sha256": frozenset(
                {"bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"}
            )
        },
        "t10k-images-idx3-ubyte": {
            "sha256": frozenset(
                {"5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"}
            )
        },
        "t10k-labels-idx1-ubyte": {
            "sha256": frozenset(
                {"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}
            )
        },
    },
    "cifar10": {
        "data_batch_1": {"md5": frozenset({"c99cafc152244af753f735de768cd75f"})},
        "data_batch_2": {"md5": frozenset({"d4bba439e000b95fd0a9bffe97cbabec"})},
        "data_batch_3": {"md5": frozenset({"54ebc095f3ab1f0389bbae665268c751"})},
        "data_batch_4": {"md5": frozenset({"634d18415352ddfa80567beed471001a"})},
        "data_batch_5": {"md5": frozenset({"482c414d41f54cd18b22e5b47cb7c3cb"})},
        "test_batch": {"md5": frozenset({"40351d587109b95175f43aff81a1287e"})},
    },
    "cifar100": {
        "train": {"md5": frozenset({"16019d7e3df5f24257cddd939b257f8d"})},
        "test": {"md5": frozenset({"f0ef6b0ae62326f3e7ffdfab6717acfc"})},
    },
}


def _hash_stream(stream, algorithms) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    while chunk := stream.read(_CHUNK):
        for h in hashers.values():
            h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes (as stored: a .gz file is hashed compressed)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _hash_stream(f, ["sha256"])["sha256"]
    except OSError as e:
        raise FormatError(f"{path}: cannot read file to hash it ({e.strerror or e}).") from e


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _verify(path: Path, name: str) -> None:
    """Check `path` against the known checksums of dataset `name`; raise FormatError if not."""
    table = _CHECKSUMS.get(name, {})
    how = _HOW_TO[name]
    fname = path.name
    try:
        gz = _is_gzip(path)
    except OSError as e:
        raise FormatError(f"{path}: cannot read file to verify it ({e.strerror or e}).") from e
    base = fname[:-3] if fname.endswith(".gz") else fname
    if gz:
        # digests of the compressed file, and of its decompressed content (which also holds for
        # a re-compressed copy)
        own, content = table.get(base + ".gz", {}), table.get(base, {})
    else:
        own, content = table.get(base, {}), {}
    if not own and not content:
        raise FormatError(
            f"{path}: no published checksum is known for {fname!r} of {name}, so it cannot be "
            "verified; load it with verify=False."
        )
    actual: dict[str, str] = {}
    try:
        if own:
            with open(path, "rb") as f:
                actual = _hash_stream(f, sorted(own))
            if any(actual[a] in own[a] for a in own):
                return
        if content:
            with gzip.open(path, "rb") as f:
                dec = _hash_stream(f, sorted(content))
            if any(dec[a] in content[a] for a in content):
                return
            actual.update({f"{a} of decompressed content": v for a, v in dec.items()})
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"{path}: cannot read file to verify it ({e}). {how}") from e
    expected = {a: sorted(v) for a, v in {**own, **content}.items()}
    raise FormatError(
        f"{path}: checksum mismatch: got {actual}, expected one of {expected}. The file is "
        f"corrupt or not the standard {name} file. {how}"
    )


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------

_IDX_TYPES = {
    0x08: "unsigned byte (uint8)",
    0x09: "signed byte (int8)",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}
_IDX_ACCEPTED = {
    0x00000803: "uint8 images, 3-D",
    0x00000801: "uint8 labels, 1-D",
}
_IDX_EXPECTED = " or ".join(f"0x{m:08X} ({d})" for m, d in _IDX_ACCEPTED.items())


def read_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST format), plain or gzip-compressed, as a uint8 array.

    Gzip is recognised by its magic bytes, not the suffix. Only the two IDX kinds that MNIST-like
    datasets use are accepted: magic 0x00000803 (uint8, 3-D: images) and 0x00000801 (uint8, 1-D:
    labels). The (decompressed) size must equal header + product of the dims exactly.
    """
    return _read_idx(Path(path), None, _GENERIC_IDX_HOW_TO)


def _read_exact(f, n: int) -> bytearray:
    """Read up to n bytes in chunks (memory grows only with what the file actually holds)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_idx(path: Path, ndim: int | None, how: str) -> np.ndarray:
    if not path.is_file():
        raise FormatError(f"{path}: file not found; expected an IDX file ({_IDX_EXPECTED}). {how}")
    try:
        gz = _is_gzip(path)
        what = "decompressed size" if gz else "file size"
        opener = gzip.open if gz else open
        with opener(path, "rb") as f:
            header = f.read(4)
            if len(header) < 4:
                raise FormatError(
                    f"{path}: truncated IDX file: expected at least a 4-byte magic number, "
                    f"{what} is {len(header)} bytes. {how}"
                )
            if header[:2] != b"\x00\x00":
                kind = "a gzip file with non-IDX content" if gz else "not an IDX file"
                raise FormatError(
                    f"{path}: {kind}: magic bytes {header.hex()} do not start with two zero "
                    f"bytes; expected an IDX file ({_IDX_EXPECTED}). {how}"
                )
            magic = int.from_bytes(header, "big")
            if magic not in _IDX_ACCEPTED:
                dtype = _IDX_TYPES.get(header[2], f"unknown type code 0x{header[2]:02X}")
                raise FormatError(
                    f"{path}: unsupported IDX magic 0x{magic:08X} ({dtype}, {header[3]}-D); "
                    f"expected {_IDX_EXPECTED}. {how}"
                )
            nd = header[3]
            if ndim is not None and nd != ndim:
                raise FormatError(
                    f"{path}: IDX file is {nd}-D ({_IDX_ACCEPTED[magic]}) but a {ndim}-D file "
                    f"was expected here; check the file name. {how}"
                )
            dims_raw = f.read(4 * nd)
            if len(dims_raw) < 4 * nd:
                raise FormatError(
                    f"{path}: truncated IDX header: expected {4 + 4 * nd} bytes of header, "
                    f"{what} is {4 + len(dims_raw)} bytes. {how}"
                )
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            payload = math.prod(dims)
            expected = 4 + 4 * nd + payload
            if not gz:
                actual = path.stat().st_size
                if actual != expected:
                    raise _size_error(path, what, dims, expected, actual, how)
            data = _read_exact(f, payload)
            if len(data) < payload:
                raise _size_error(path, what, dims, expected, 4 + 4 * nd + len(data), how)
            extra = 0
            while chunk := f.read(_CHUNK):
                extra += len(chunk)
            if extra:
                raise _size_error(path, what, dims, expected, expected + extra, how)
    except FormatError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise FormatError(
            f"{path}: corrupt gzip stream ({type(e).__name__}: {e}); expected a complete "
            f"gzip-compressed IDX file. {how}"
        ) from e
    except OSError as e:
        raise FormatError(f"{path}: cannot read IDX file ({e.strerror or e}). {how}") from e
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _size_error(path, what, dims, expected, actual, how) -> FormatError:
    problem = "truncated" if actual < expected else "trailing bytes after the data in"
    return FormatError(
        f"{path}: {problem} IDX file: header dims {dims} need {expected} bytes, {what} is "
        f"{actual} bytes. {how}"
    )


def default_data_dir(name: str) -> str | None:
    """Where the data of `name` is installed system-wide, if it is; otherwise None.

    Only Fashion-MNIST has a system package (Debian's `dataset-fashion-mnist`).
    """
    _check_name(name, MNIST_LIKE + CIFAR)
    if name == "fashion_mnist" and os.path.isdir(DEBIAN_FASHION_MNIST_DIR):
        return DEBIAN_FASHION_MNIST_DIR
    return None


def _check_name(name, allowed) -> None:
    if name not in allowed:
        raise FormatError(f"unknown dataset name {name!r}; expected one of {list(allowed)}.")


def _find_idx(data_dir: Path, base: str, name: str) -> Path:
    candidates = [data_dir / base, data_dir / f"{base}.gz"]
    for p in candidates:
        if p.is_file():
            return p
    raise FormatError(
        f"{candidates[0]}[.gz]: missing {name} file: expected {base} or {base}.gz in "
        f"{data_dir}. {_HOW_TO[name]}"
    )


def load_mnist_like(data_dir=None, *, name: str, verify: bool = False) -> dict[str, np.ndarray]:
    """Load MNIST or Fashion-MNIST from the four standard IDX files in `data_dir`.

    Each file may be gzip-compressed (``*.gz``) or plain; a plain file is preferred when both are
    there. `data_dir=None` means `default_data_dir(name)`. With `verify=True` every file is
    checked against the known checksums (see `_CHECKSUMS`) and a file without one is an error.
    Returns x_train/x_test uint8 (N, 1, 28, 28) and y_train/y_test int64 (N,) in 0..9.
    """
    _check_name(name, MNIST_LIKE)
    how = _HOW_TO[name]
    if data_dir is None:
        data_dir = default_data_dir(name)
        if data_dir is None:
            raise FormatError(
                f"no data_dir given for {name} and no system-wide copy found"
                + (f" at {DEBIAN_FASHION_MNIST_DIR}" if name == "fashion_mnist" else "")
                + f". {how}"
            )
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FormatError(
            f"{data_dir}: not a directory; expected the folder holding the {name} files "
            f"{_MNIST_LIST}. {how}"
        )
    out: dict[str, np.ndarray] = {}
    for split, prefix in (("train", "train"), ("test", "test")):
        img_path = _find_idx(data_dir, _MNIST_FILES[f"{prefix}_images"], name)
        lab_path = _find_idx(data_dir, _MNIST_FILES[f"{prefix}_labels"], name)
        if verify:
            _verify(img_path, name)
            _verify(lab_path, name)
        images = _read_idx(img_path, 3, how)
        labels = _read_idx(lab_path, 1, how)
        if images.shape[1:] != (28, 28):
            raise FormatError(
                f"{img_path}: images are {images.shape[1]}x{images.shape[2]}; expected 28x28 "
                f"{name} images. {how}"
            )
        if len(images) == 0:
            raise FormatError(f"{img_path}: holds no images; expected at least one. {how}")
        if len(labels) != len(images):
            raise FormatError(
                f"{lab_path}: {len(labels)} labels but {img_path} holds {len(images)} images; "
                f"expected one label per image. {how}"
            )
        bad = np.flatnonzero(labels > 9)
        if bad.size:
            raise FormatError(
                f"{lab_path}: label {int(labels[bad[0]])} at index {int(bad[0])} (and "
                f"{bad.size - 1} more) is out of range; expected {name} labels in 0..9. {how}"
            )
        out[f"x_{split}"] = images.reshape(len(images), 1, 28, 28)
        out[f"y_{split}"] = labels.astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------------
# CIFAR python version: restricted unpickling
# ---------------------------------------------------------------------------------------------

# numpy's own array reconstructor, whatever module it lives in for this numpy version
# (numpy._core.multiarray in numpy 2, numpy.core.multiarray in numpy 1).
_NP_RECONSTRUCT = np.empty(0).__reduce__()[0]


class _Allowed:
    """A callable that an allowed pickle global resolves to.

    Pickle's BUILD opcode would otherwise set attributes on whatever the stream names; this
    object refuses that, and delegates calls to a checked implementation.
    """

    __slots__ = ("_qualname", "_fn")

    def __init__(self, qualname: str, fn):
        object.__setattr__(self, "_qualname", qualname)
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args):
        if self._fn is None:
            raise pickle.UnpicklingError(f"{self._qualname} may not be called here")
        return self._fn(*args)

    def __setattr__(self, key, value):
        raise pickle.UnpicklingError(f"cannot set attributes on {self._qualname}")

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"cannot set state on {self._qualname}")

    def __repr__(self):
        return f"<allowed {self._qualname}>"


# Stands for numpy.ndarray: only usable as the first argument of _reconstruct, never callable.
_NDARRAY = _Allowed("numpy.ndarray", None)


def _reconstruct(subtype, shape, typecode):
    # A pickled array is `_reconstruct(ndarray, (0,), b'b')` followed by BUILD with its state
    # (ndarray.__setstate__ checks that the data matches shape and dtype).
    if subtype is not _NDARRAY or tuple(shape) != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError(
            f"unexpected arguments to numpy _reconstruct: {subtype!r}, {shape!r}, {typecode!r}"
        )
    return _NP_RECONSTRUCT(np.ndarray, (0,), b"b")


def _dtype(spec, align=False, copy=True):
    # Pickled dtypes are `dtype('u1', False, True)` then BUILD with the byte order etc. Only
    # plain integer/bool types are allowed; copy is forced so BUILD never alters numpy's shared
    # dtype singletons.
    if isinstance(spec, bytes):
        spec = spec.decode("ascii")
    if not isinstance(spec, str) or not (1 <= len(spec) <= 3):
        raise pickle.UnpicklingError(f"unexpected dtype spec {spec!r}")
    dt = np.dtype(spec)
    if dt.kind not in "biu" or dt.itemsize > 8:
        raise pickle.UnpicklingError(f"dtype {dt} is not allowed (integer types only)")
    return np.dtype(spec, bool(align), True)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Python 3 writes bytes at protocol <= 2 as _codecs.encode(text, 'latin1').
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return obj.encode("latin1")


def _empty_bytes(*args):
    # Python 3 writes b"" at protocol <= 2 as bytes().
    if args:
        raise pickle.UnpicklingError("bytes() is only allowed without arguments")
    return b""


_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _Allowed("numpy _reconstruct", _reconstruct),
    ("numpy._core.multiarray", "_reconstruct"): _Allowed("numpy _reconstruct", _reconstruct),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Allowed("numpy.dtype", _dtype),
    ("_codecs", "encode"): _Allowed("_codecs.encode", _codecs_encode),
    ("__builtin__", "bytes"): _Allowed("bytes", _empty_bytes),
    ("builtins", "bytes"): _Allowed("bytes", _empty_bytes),
}
_ALLOWED_LIST = ", ".join(sorted({f"{m}.{n}" for m, n in _PICKLE_ALLOWED}))


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals CIFAR batches need, to checked stand-ins."""

    def find_class(self, module, name):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _load_cifar_pickle(path: Path, how: str):
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as e:
        raise FormatError(
            f"{path}: refused to load global '{e}' from the pickle: a CIFAR python batch only "
            f"needs numpy array reconstruction ({_ALLOWED_LIST}); nothing was executed. The file "
            f"is not a genuine CIFAR batch and may be malicious. {how}"
        ) from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read CIFAR batch ({e.strerror or e}). {how}") from e
    except Exception as e:  # any parse error of a damaged or foreign pickle
        raise FormatError(
            f"{path}: not a valid CIFAR python batch (unpickling failed: "
            f"{type(e).__name__}: {e}); expected a protocol-2 pickle of a dict with numpy uint8 "
            f"data. {how}"
        ) from e


# ---------------------------------------------------------------------------------------------
# CIFAR: layouts, validation, loading
# ---------------------------------------------------------------------------------------------

_CIFAR_ROW = 3 * 32 * 32

_CIFAR_SPECS = {
    "cifar10": {
        "py_dir": "cifar-10-batches-py",
        "py_train": [f"data_batch_{i}" for i in range(1, 6)],
        "py_test": ["test_batch"],
        "label_key": b"labels",
        "bin_dir": "cifar-10-batches-bin",
        "bin_train": [f"data_batch_{i}.bin" for i in range(1, 6)],
        "bin_test": ["test_batch.bin"],
        # (class count) of each label byte of a binary record, the last one is the label used
        "bin_labels": (10,),
        "classes": 10,
    },
    "cifar100": {
        "py_dir": "cifar-100-python",
        "py_train": ["train"],
        "py_test": ["test"],
        "label_key": b"fine_labels",
        "bin_dir": "cifar-100-binary",
        "bin_train": ["train.bin"],
        "bin_test": ["test.bin"],
        "bin_labels": (20, 100),  # coarse, fine
        "classes": 100,
    },
}


def _check_labels(labels, n: int, classes: int, path: Path, what: str, how: str) -> np.ndarray:
    if isinstance(labels, np.ndarray):
        arr = labels
    elif isinstance(labels, (list, tuple)) and all(
        type(v) is int or (isinstance(v, np.integer)) for v in labels
    ):
        arr = np.asarray(labels, dtype=np.int64) if labels else np.zeros(0, np.int64)
    else:
        raise FormatError(
            f"{path}: {what} is a {type(labels).__name__} (or holds non-integers); expected a "
            f"list of {n} integer labels. {how}"
        )
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or len(arr) != n:
        raise FormatError(
            f"{path}: {what} has shape {arr.shape} and dtype {arr.dtype}; expected {n} integer "
            f"labels, one per image. {how}"
        )
    bad = np.flatnonzero((arr < 0) | (arr >= classes))
    if bad.size:
        raise FormatError(
            f"{path}: {what} value {int(arr[bad[0]])} at index {int(bad[0])} (and "
            f"{bad.size - 1} more) is out of range; expected labels in 0..{classes - 1}. {how}"
        )
    return arr.astype(np.int64)


def _read_py_batch(path: Path, spec: dict, how: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FormatError(f"{path}: missing CIFAR python batch. {how}")
    obj = _load_cifar_pickle(path, how)
    if not isinstance(obj, dict):
        raise FormatError(
            f"{path}: unpickled a {type(obj).__name__}; expected a dict (a CIFAR batch). {how}"
        )
    batch = {k.encode("latin1") if isinstance(k, str) else k: v for k, v in obj.items()}
    key = spec["label_key"]
    missing = [k for k in (b"data", key) if k not in batch]
    if missing:
        raise FormatError(
            f"{path}: batch has keys {sorted(map(repr, batch))} but lacks {missing}; expected a "
            f"CIFAR batch with b'data' and {key!r}. {how}"
        )
    data = batch[b"data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _CIFAR_ROW
        or data.shape[0] == 0
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise FormatError(
            f"{path}: b'data' is a {desc}; expected a uint8 array of shape (n, {_CIFAR_ROW}) "
            f"with n > 0 (rows of 3x32x32 pixels, channel-major). {how}"
        )
    n = data.shape[0]
    labels = _check_labels(batch[key], n, spec["classes"], path, repr(key), how)
    images = np.ascontiguousarray(data).reshape(n, 3, 32, 32).copy()
    return images, labels


def _read_bin_batch(path: Path, spec: dict, how: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FormatError(f"{path}: missing CIFAR binary batch. {how}")
    nlab = len(spec["bin_labels"])
    rec = nlab + _CIFAR_ROW
    size = path.stat().st_size
    if size == 0 or size % rec:
        raise FormatError(
            f"{path}: size {size} bytes is not a positive multiple of the {rec}-byte record "
            f"({nlab} label byte{'s' if nlab > 1 else ''} + {_CIFAR_ROW} pixel bytes); the file "
            f"is truncated or not a CIFAR binary batch. {how}"
        )
    try:
        with open(path, "rb") as f:
            raw = bytearray(f.read())
    except OSError as e:
        raise FormatError(f"{path}: cannot read CIFAR batch ({e.strerror or e}). {how}") from e
    if len(raw) != size:
        raise FormatError(f"{path}: read {len(raw)} bytes, expected {size}. {how}")
    recs = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
    n = len(recs)
    labels = None
    names = ("coarse label", "fine label") if nlab == 2 else ("label",)
    for i, (classes, what) in enumerate(zip(spec["bin_labels"], names, strict=True)):
        labels = _check_labels(recs[:, i], n, classes, path, f"{what} byte", how)
    images = np.ascontiguousarray(recs[:, nlab:]).reshape(n, 3, 32, 32)
    return images, labels


def _find_cifar_dir(data_dir: Path, spec: dict) -> tuple[str, Path] | None:
    """('python' | 'binary', folder) of the first layout found; python wins over binary."""
    for kind, sub, files in (
        ("python", spec["py_dir"], spec["py_train"] + spec["py_test"]),
        ("binary", spec["bin_dir"], spec["bin_train"] + spec["bin_test"]),
    ):
        for d in (data_dir / sub, data_dir):
            if any((d / f).is_file() for f in files):
                return kind, d
    return None


def load_cifar(data_dir, *, name: str = "cifar10", verify: bool = False) -> dict[str, np.ndarray]:
    """Load CIFAR-10 or CIFAR-100 (python or binary version) as canonical arrays.

    `data_dir` is either the folder the archive was extracted in (holding cifar-10-batches-py/,
    cifar-10-batches-bin/, cifar-100-python/ or cifar-100-binary/) or that batches folder itself.
    The python version is used when both are present. Python batches are unpickled without
    executing code (only numpy array reconstruction is allowed). CIFAR-100 labels are the fine
    labels (0..99). With `verify=True` every file is checked against the known checksums; the
    binary version has none, so verifying it raises.
    Returns x_train/x_test uint8 (N, 3, 32, 32) and y_train/y_test int64 (N,).
    """
    _check_name(name, CIFAR)
    spec = _CIFAR_SPECS[name]
    how = _HOW_TO[name]
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FormatError(
            f"{data_dir}: not a directory; expected the folder holding {spec['py_dir']}/ or "
            f"{spec['bin_dir']}/ (or that folder itself). {how}"
        )
    found = _find_cifar_dir(data_dir, spec)
    if found is None:
        raise FormatError(
            f"{data_dir}: no {name} batches found; expected {data_dir / spec['py_dir']}/ with "
            f"{', '.join(spec['py_train'] + spec['py_test'])} (python version) or "
            f"{data_dir / spec['bin_dir']}/ with {', '.join(spec['bin_train'] + spec['bin_test'])} "
            f"(binary version), or data_dir being that folder. {how}"
        )
    kind, folder = found
    read = _read_py_batch if kind == "python" else _read_bin_batch
    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        xs, ys = [], []
        for fname in spec[f"{'py' if kind == 'python' else 'bin'}_{split}"]:
            path = folder / fname
            if verify and path.is_file():
                _verify(path, name)
            x, y = read(path, spec, how)
            xs.append(x)
            ys.append(y)
        out[f"x_{split}"] = xs[0] if len(xs) == 1 else np.concatenate(xs)
        out[f"y_{split}"] = ys[0] if len(ys) == 1 else np.concatenate(ys)
    return out
