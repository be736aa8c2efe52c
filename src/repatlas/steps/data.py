"""Steps of rules/data.smk: a dataset's canonical `full.npz`, and its class-balanced training subsets."""

from __future__ import annotations

import os
import sys

from repatlas.data import checksum, load_dataset, load_npz, save_npz, subset_indices


def write_full(name: str, path: str | os.PathLike, data_dir=None) -> dict:
    """Write `full.npz` for a dataset: canonical arrays plus checksum and metadata."""
    arrays = load_dataset(name, data_dir)
    meta = {
        "dataset": name,
        "checksum": checksum(*(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))),
        "n_train": int(len(arrays["y_train"])),
        "n_test": int(len(arrays["y_test"])),
        "n_classes": int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1),
        "shape": list(arrays["x_train"].shape[1:]),
        # Per-channel statistics of the training pool, used to standardise inputs.
        "mean": (arrays["x_train"].mean(axis=(0, 2, 3)) / 255.0).tolist(),
        "std": (arrays["x_train"].std(axis=(0, 2, 3)) / 255.0).tolist(),
    }
    save_npz(path, meta, **arrays)
    return meta


def write_subset(full_path, path, n: int, seed: int) -> dict:
    """Write `train-n{n}-s{seed}.npz`: the subset's arrays, its indices into the pool, and meta."""
    arrays, meta = load_npz(full_path)
    idx = subset_indices(arrays["y_train"], n, seed)
    sub_meta = {**meta, "n": n, "seed": seed, "subset_of": meta.get("checksum")}
    sub_meta["checksum"] = checksum(idx, arrays["x_train"][idx], arrays["y_train"][idx])
    save_npz(path, sub_meta, x=arrays["x_train"][idx], y=arrays["y_train"][idx], index=idx)
    return sub_meta


def prepare_dataset(name: str, path, data_dir=None) -> dict:
    """The dataset job: `write_full`, its metadata to the log."""
    meta = write_full(name, path, data_dir)
    print(meta, file=sys.stderr)
    return meta


def subset_dataset(full_path, path, n: int, seed: int) -> dict:
    """The subset job: `write_subset`, its metadata to the log."""
    meta = write_subset(full_path, path, int(n), int(seed))
    print(meta, file=sys.stderr)
    return meta
