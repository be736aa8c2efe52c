"""Capture named layers' outputs and store them as a chunked, compressed zarr store.

Store layout (`acts.zarr`, zarr v3, readable with plain `xarray.open_zarr(path)`):
  one float32 array per layer, dims ("example", "unit_<layer>"), chunked along examples with all
  units of a layer in one chunk (the access pattern of streaming CKA); `example` (index of each
  probe example in the dataset's test split) and `label` arrays; group attrs record the layer
  order, model, config and the dataset checksum. Each layer has its own unit dimension because
  layers differ in width and an xarray Dataset needs one size per dimension name.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import zarr
from torch import nn
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import LocalStore

from repatlas.data import standardise
from repatlas.devices import resolve_device
from repatlas.io import atomic_path


def unit_dim(layer: str) -> str:
    return f"unit_{layer}"


def _flatten(name: str, output: torch.Tensor) -> torch.Tensor:
    return output.flatten(1)


class LayerCapture:
    """Forward hooks that record every call of the named modules, flattened to (batch, units).

    A module called k > 1 times in one forward pass yields k representations named
    `name`, `name@1`, ..., `name@{k-1}` instead of silently keeping only the last call.
    `transform(name, output)` replaces the flattening: e.g. `repatlas.cka_models.cka_heatmap` keeps
    each output's U-centred Gram, never the activations.
    """

    def __init__(self, model: nn.Module, layers: list[str], transform=_flatten):
        self._transform = transform
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules]
        if missing:
            known = [n for n in modules if n]
            raise KeyError(f"unknown layer(s) {missing}; the model has modules {known}")
        self._outputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        self._handles = [
            modules[name].register_forward_hook(self._hook(name)) for name in layers
        ]

    def _hook(self, name):
        def hook(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returned {type(output).__name__}, not a tensor")
            self._outputs[name].append(self._transform(name, output.detach()))

        return hook

    def pop(self) -> "OrderedDict[str, torch.Tensor]":
        """The representations captured since the last pop, in layer order."""
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, calls in self._outputs.items():
            for k, t in enumerate(calls):
                out[name if k == 0 else f"{name}@{k}"] = t
            calls.clear()
        return out

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@torch.no_grad()
def iter_activations(model, x: torch.Tensor, layers: list[str], batch_size: int):
    """Yield (start, {layer: float32 numpy (b, units)}) for consecutive batches of `x`."""
    model.eval()
    with LayerCapture(model, layers) as cap:
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
            yield i, {k: v.float().cpu().numpy() for k, v in cap.pop().items()}


# Measured on ReLU conv activations (256 × 14,400 float32, one core): zstd level 1 with byte
# shuffle stores 1.7× smaller and decodes at 0.45 GB/s — about the rate a batch-256 Gram GEMM
# consumes its input — vs 1.34× and 0.26 GB/s for zstd-3 + bitshuffle; lz4 decodes at 0.6 GB/s
# but stores only 1.16× smaller; uncompressed reads run at 1.5 GB/s.
COMPRESSORS = ("zstd", "lz4", "none")


def _compressors(name: str) -> list:
    if name == "zstd":
        return [BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")]
    if name == "lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    if name == "none":
        return []
    raise ValueError(f"compressor must be one of {', '.join(COMPRESSORS)}; got {name!r}")


def dump_activations(
    model: nn.Module,
    images,
    labels,
    example_index,
    path,
    *,
    mean,
    std,
    layers: list[str],
    batch_size: int = 256,
    attrs: dict | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    compressor: str = "zstd",
) -> list[str]:
    """Run `model` on uint8 `images` and write every layer's output to a zarr store at `path`.

    Chunks hold `batch_size` examples × all units. `dtype="float16"` halves the store (values
    keep ~3 significant digits; CKA upcasts to float32 before the Gram products). `compressor`
    trades storage for CKA read speed (COMPRESSORS; "none" reads fastest). Written to a
    temporary sibling and renamed, so `path` either does not exist or is complete. Returns the
    stored layer names in order.
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16'; got {dtype!r}")
    codecs = _compressors(compressor)

    dev = resolve_device(device)
    model = model.to(dev)
    x = standardise(torch.as_tensor(images, device=dev), mean, std)
    n = len(x)
    with atomic_path(path) as tmp:
        group = zarr.open_group(store=str(tmp), mode="w", zarr_format=3)
        arrays: dict[str, zarr.Array] = {}
        for start, acts in iter_activations(model, x, layers, batch_size):
            for name, a in acts.items():
                if name not in arrays:
                    arrays[name] = group.create_array(
                        name,
                        shape=(n, a.shape[1]),
                        chunks=(batch_size, a.shape[1]),
                        dtype=dtype,
                        compressors=codecs,
                        dimension_names=["example", unit_dim(name)],
                    )
                arrays[name][start : start + len(a)] = a.astype(dtype)
        for name, values in (("example", example_index), ("label", labels)):
            arr = group.create_array(
                name, shape=(n,), chunks=(n,), dtype="int64", dimension_names=["example"]
            )
            arr[:] = np.asarray(values, dtype=np.int64)
        group.attrs.update(
            {"layers": list(arrays), "n_examples": n, **json.loads(json.dumps(attrs or {}))}
        )
        with warnings.catch_warnings():
            # consolidated metadata is outside the v3 spec, but it lets plain
            # `xarray.open_zarr(path)` open the store without a fallback warning
            warnings.simplefilter("ignore", UserWarning)
            zarr.consolidate_metadata(str(tmp))
    return list(arrays)


def open_layers(path) -> tuple[list[str], dict]:
    """Layer names (in model order) and attrs of an activation store, without reading data."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such activation store")
    group = zarr.open_group(store=str(path), mode="r")
    attrs = dict(group.attrs)
    if "layers" not in attrs:
        raise ValueError(f"{path}: not a repatlas activation store (no 'layers' attribute)")
    return list(attrs["layers"]), attrs


def layer_arrays(path) -> dict:
    """{layer: zarr.Array} of an activation store, in model order (lazy, nothing is read)."""
    layers, _ = open_layers(path)
    group = zarr.open_group(store=str(path), mode="r")
    return {name: group[name] for name in layers}


def _raw_chunk_dir(array):
    """Directory of the chunk files of an uncompressed, native-endian 2-D zarr v3 array in a
    local store whose chunks hold all units of their rows; None where any of that is not so."""
    meta = getattr(array, "metadata", None)
    codecs = getattr(meta, "codecs", ())
    if (getattr(meta, "zarr_format", None) != 3 or not isinstance(getattr(array, "store", None), LocalStore)
            or array.ndim != 2
            or array.chunks[1] != array.shape[1] or len(codecs) != 1 or not isinstance(codecs[0], BytesCodec)
            or (array.dtype.itemsize > 1 and getattr(codecs[0].endian, "value", None) != sys.byteorder)):
        return None
    return Path(array.store.root) / array.path


class DamagedStoreError(ValueError):
    """A chunk of an activation store cannot be read (truncated, overwritten, bad compression)."""


def _chunk_file(array, i: int) -> Path | None:
    """The file of row-chunk `i` of a zarr v3 array in a local store; None for other stores."""
    root = getattr(getattr(array, "store", None), "root", None)
    encoding = getattr(getattr(array, "metadata", None), "chunk_key_encoding", None)
    if root is None or encoding is None:
        return None
    return Path(root) / array.path / encoding.encode_chunk_key((i,) + (0,) * (array.ndim - 1))


def _damaged(array, i: int, exc: Exception) -> DamagedStoreError:
    chunk = array.chunks[0]
    root = getattr(getattr(array, "store", None), "root", "the store")
    rows = f"examples {i * chunk}-{min((i + 1) * chunk, array.shape[0]) - 1}"
    file = _chunk_file(array, i)
    return DamagedStoreError(
        f"{root}: layer {array.path!r}, chunk {i} ({rows}{f', file {file}' if file else ''}) cannot be read "
        f"({type(exc).__name__}: {' '.join(str(exc).split())}); the store is damaged: delete it "
        f"(rm -r {root}) and rerun snakemake, which writes it again"
    )


def _zarr_rows(array, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]`` through zarr; a chunk that cannot be decoded raises DamagedStoreError
    naming store, layer, chunk and file (zarr's own error names none of them)."""
    try:
        return np.asarray(array[start:stop])
    except Exception as exc:
        chunk = array.chunks[0]
        for i in range(start // chunk, -(-stop // chunk)):  # find the chunk at fault
            try:
                array[i * chunk : min((i + 1) * chunk, array.shape[0])]
            except Exception as chunk_exc:
                raise _damaged(array, i, chunk_exc) from exc
        raise  # every chunk reads on its own: not a damaged chunk


def verify_store(path) -> dict:
    """Read every chunk of every array of an activation store; report the ones that fail.

    Returns {"chunks": chunks read, "damaged": [{"array", "chunk", "file", "error"}, ...],
    "absent": [{"array", "chunk"}, ...]}. zarr does not write a chunk whose values all equal the
    fill value (0) and reads an absent chunk as zeros, so an absent chunk is listed but is not
    damage by itself; a file that exists and cannot be decoded is.
    """
    open_layers(path)  # a clear error if this is not an activation store
    group = zarr.open_group(store=str(path), mode="r")
    report = {"chunks": 0, "damaged": [], "absent": []}
    for name, array in group.arrays():
        chunk = array.chunks[0]
        for i in range(-(-array.shape[0] // chunk)):
            file = _chunk_file(array, i)
            if file is not None and not file.exists():
                report["absent"].append({"array": name, "chunk": i})
            try:
                array[i * chunk : min((i + 1) * chunk, array.shape[0])]
            except Exception as exc:
                error = str(_damaged(array, i, exc))
                report["damaged"].append({"array": name, "chunk": i, "file": str(file), "error": error})
            report["chunks"] += 1
    return report


def read_rows(array, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]`` of a 2-D zarr array as a NumPy array.

    A chunk that cannot be decoded raises DamagedStoreError naming the store, layer, chunk and
    file. Uncompressed stores (activations.compressor: none) are read straight from their chunk files
    into the result, one copy: zarr 3.1's own read copies each chunk several times through its
    event loop and reached ~1 GB/s here against ~6 GB/s for the files themselves, which made
    reading, not the Gram products, the cost of streamed CKA. Anything else (compressed chunks,
    a missing chunk that zarr fills, another layout) goes through zarr.
    """
    base = _raw_chunk_dir(array)
    if base is None or not 0 <= start <= stop <= array.shape[0]:
        return _zarr_rows(array, start, stop)
    chunk, row_bytes = array.chunks[0], array.shape[1] * array.dtype.itemsize
    needed = range(start // chunk, -(-stop // chunk))
    files = {i: base / array.metadata.chunk_key_encoding.encode_chunk_key((i, 0)) for i in needed}
    if not all(f.is_file() and f.stat().st_size == chunk * row_bytes for f in files.values()):
        return _zarr_rows(array, start, stop)
    out = np.empty((stop - start, array.shape[1]), dtype=array.dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    for i, path in files.items():
        lo, hi = max(start, i * chunk), min(stop, (i + 1) * chunk)
        with open(path, "rb") as f:
            f.seek((lo - i * chunk) * row_bytes)
            target = view[(lo - start) * row_bytes : (hi - start) * row_bytes]
            if f.readinto(target) != len(target):
                raise OSError(f"{path}: chunk file shorter than its zarr metadata says")
    return out
