"""Steps of rules/mitosis.smk after training: last-layer features of a model, the chunk metrics and
clone counts of one features file, and the summary table of all of them."""

from __future__ import annotations

import sys

import numpy as np
import torch
import xarray as xr

from repatlas.activations import iter_activations
from repatlas.checkpoints import load_checkpoint, snapshot_path
from repatlas.data import load_npz, save_npz, standardise
from repatlas.devices import job_device, resolve_device
from repatlas.io import atomic_path, write_netcdf
from repatlas.mitosis import DEFAULT_HELDOUT, DEFAULT_R2_THRESHOLD, R2_THRESHOLDS, clone_metrics, clones_table
from repatlas.models import representation_layers


def features_to_file(model_path, full_path, subset_path, out_path, *, epoch: int | None = None,
                     device: str = "cpu") -> dict:
    """Last-hidden-layer features (input of the final linear layer: an MLP's last hidden layer, a
    ResNet's pooled features) on the training subset and the test split, with the final layer's
    weight and bias, the test logits and both accuracies → .npz (meta: model spec, layer, accuracies,
    the training epoch of the weights). ``model_path`` is a ``model.pt``, or with ``epoch`` the
    snapshots folder of a run (``repatlas.steps.train.train_to_files``), read at that epoch.

    Features are taken in eval mode (BatchNorm running statistics), without augmentation, on
    `device`; the rest is float64 numpy on the host."""
    dev = resolve_device(device)
    model, spec, ckpt_meta = load_checkpoint(model_path if epoch is None
                                             else snapshot_path(model_path, epoch))
    model.to(dev)
    full, meta = load_npz(full_path)
    sub, _ = load_npz(subset_path)
    last = representation_layers(model)[-1]
    head = list(model.children())[-1]  # the final nn.Linear (logits / fc)

    def features(images):
        x = standardise(torch.as_tensor(images, device=dev), meta["mean"], meta["std"])
        return np.concatenate([a[last] for _, a in iter_activations(model, x, [last], 512)])

    f_train, f_test = features(sub["x"]), features(full["x_test"])
    weight = head.weight.detach().cpu().numpy().astype(np.float64)
    bias = head.bias.detach().cpu().numpy().astype(np.float64)
    logits = f_test @ weight.T + bias
    train_logits = f_train @ weight.T + bias
    info = {"model": spec, "layer": last, "units": int(f_test.shape[1]),
            "test_accuracy": float((logits.argmax(1) == full["y_test"]).mean()),
            "train_accuracy": float((train_logits.argmax(1) == sub["y"]).mean()),
            # the training epoch of these weights: a snapshot's, or the final epoch of model.pt
            "epoch": int(ckpt_meta.get("epoch", (ckpt_meta.get("final") or {}).get("epoch", -1)))}
    save_npz(out_path, info, features_train=f_train, labels_train=sub["y"], features_test=f_test,
             labels_test=full["y_test"], weight=weight, bias=bias, logits_test=logits)
    return info


def summary_to_file(chunk_paths, out_path) -> None:
    """The clone counts of every chunk-metrics file in ``chunk_paths`` → one CSV (:func:`clones_table`)."""
    datasets = []
    for path in chunk_paths:
        with xr.open_dataset(path) as ds:
            datasets.append(ds.load())
    table = clones_table(datasets)
    with atomic_path(out_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def chunks_to_file(features_path, out_path, *, repeats: int = 50, seed: int = 0,
                   threshold: float = DEFAULT_R2_THRESHOLD, thresholds=R2_THRESHOLDS,
                   heldout: float = DEFAULT_HELDOUT, attrs: dict | None = None) -> xr.Dataset:
    """`repatlas.mitosis.clone_metrics` of a features file (`features_to_file`) → netCDF; returns
    the Dataset it wrote."""
    arrays, info = load_npz(features_path)
    ds = clone_metrics(arrays, info, repeats=repeats, seed=seed, threshold=threshold, thresholds=thresholds,
                       heldout=heldout, attrs=attrs, source=str(features_path))
    write_netcdf(ds, out_path)
    return ds


def mitosis_features(weights_path, full_path, subset_path, out_path, *, epoch: int | None, device: str,
                     log_path=None) -> dict:
    """The features job: `device` checked first (`repatlas.devices.job_device`: one line in
    `log_path` and exit 1 if absent here), then `features_to_file`; its record goes to the log."""
    info = features_to_file(weights_path, full_path, subset_path, out_path, epoch=epoch,
                            device=job_device(device, log_path))
    print(info, file=sys.stderr)
    return info
