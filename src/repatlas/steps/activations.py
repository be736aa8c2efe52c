"""Step of rules/activations.smk: a checkpoint's representation layers on the probe set → `acts.zarr`."""

from __future__ import annotations

import sys

from repatlas.activations import dump_activations
from repatlas.checkpoints import load_checkpoint
from repatlas.data import load_npz, probe_set
from repatlas.devices import job_device, resolve_device
from repatlas.models import representation_layers
from repatlas.threads import pinned_threads


def dump_from_checkpoint(model_path, full_path, store_path, *, probe_size: int,
                         batch_size: int = 256, device: str = "cpu", threads: int = 1,
                         dtype: str = "float32", compressor: str = "zstd") -> list[str]:
    """The activation step of the pipeline: checkpoint + probe set in, `acts.zarr` out."""
    # torch intra-op and BLAS threads for the job, restored afterwards (repatlas.threads)
    with pinned_threads(threads):
        return _dump(model_path, full_path, store_path, probe_size=probe_size, batch_size=batch_size,
                     device=device, dtype=dtype, compressor=compressor)


def _dump(model_path, full_path, store_path, *, probe_size, batch_size, device, dtype,
          compressor) -> list[str]:
    model, spec, meta = load_checkpoint(model_path)
    full, full_meta = load_npz(full_path)
    images, labels, index = probe_set(full, probe_size)
    return dump_activations(
        model, images, labels, index, store_path,
        mean=full_meta["mean"], std=full_meta["std"], layers=representation_layers(model),
        batch_size=batch_size, device=str(resolve_device(device)), dtype=dtype, compressor=compressor,
        attrs={"model": spec, "checkpoint": str(model_path), "dataset": full_meta["dataset"],
               "dataset_checksum": full_meta["checksum"], "probe_size": probe_size,
               "probe": "class-balanced prefix of the test split (repatlas.data.probe_set)"},
    )


def dump_activations_job(model_path, full_path, store_path, *, probe_size: int, batch_size: int, dtype: str,
                         compressor: str, device: str, threads: int, log_path=None) -> list[str]:
    """The activations job: `device` checked first (`repatlas.devices.job_device`: one line in
    `log_path` and exit 1 if absent here), then `dump_from_checkpoint`; the stored layers go to the log."""
    device = job_device(device, log_path)
    layers = dump_from_checkpoint(model_path, full_path, store_path, probe_size=probe_size,
                                  batch_size=batch_size, dtype=dtype, compressor=compressor, device=device,
                                  threads=threads)
    print(f"stored layers: {layers}", file=sys.stderr)
    return layers
