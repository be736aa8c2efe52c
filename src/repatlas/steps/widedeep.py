"""Steps of rules/widedeep.smk: per-model evaluation (probes, pruning, test predictions), the
error analysis of architecture pairs, and the block, probe and error tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from repatlas.blocks import block_table
from repatlas.checkpoints import load_checkpoint
from repatlas.data import load_classification, load_npz, probe_set, standardise
from repatlas.devices import job_device
from repatlas.errors import MAX_ACCURACY_GAP, error_analysis, error_table, predict
from repatlas.io import atomic_path, write_netcdf
from repatlas.models import representation_layers
from repatlas.probes import ceiling_probes, input_probe, linear_probes, probe_table, pruning_experiment
from repatlas.threads import pinned_threads


def block_table_to_file(within_paths: dict, out_csv, *, threshold: float, min_length: int, seed_pairs=(),
                        first_pc_paths: dict | None = None, min_pc1_share: float = 0.5,
                        metrics_paths: dict | None = None) -> None:
    """`block_table` from files: {model id: within .nc}, seed_pairs of (id_a, id_b, across .nc),
    optional {model id: first-PC .nc} and {model id: metrics.json} (final test accuracy) → CSV."""
    within = {model_id: xr.load_dataarray(path) for model_id, path in within_paths.items()}
    pairs = [(id_a, id_b, xr.load_dataarray(path)) for id_a, id_b, path in seed_pairs]
    first_pc = None if first_pc_paths is None else {m: xr.load_dataset(p) for m, p in first_pc_paths.items()}
    accuracy = None
    if metrics_paths is not None:
        accuracy = {m: json.loads(Path(p).read_text())["final"]["test_acc"] for m, p in metrics_paths.items()}
    table = block_table(within, threshold=threshold, min_length=min_length, seed_pairs=pairs,
                        first_pc=first_pc, min_pc1_share=min_pc1_share, test_accuracy=accuracy)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)


def predictions_to_file(model_path, full_path, out_path, *, device: str = "cpu", threads: int = 1) -> dict:
    """Test-split predictions of a checkpoint → .nc (dim `example` = index into the test split)."""
    model, spec, _ = load_checkpoint(model_path)
    full, meta = load_npz(full_path)
    with pinned_threads(threads):
        x = standardise(full["x_test"], meta["mean"], meta["std"])
        prediction = predict(model, x, device=device)
    labels = full["y_test"].astype(np.int64)
    info = {
        "model": str(spec),
        "test_accuracy": float((prediction == labels).mean()),
        "checkpoint": str(model_path),
        "dataset": str(meta.get("dataset", "")),
        "dataset_checksum": str(meta.get("checksum", "")),
        "created_by": "repatlas.errors.predictions_to_file",
    }
    ds = xr.Dataset({"prediction": ("example", prediction), "label": ("example", labels)},
                    coords={"example": np.arange(len(labels))}, attrs=info)
    write_netcdf(ds, out_path)
    return info


def _read_predictions(path) -> xr.Dataset:
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a readable predictions file ({exc})") from exc
    missing = [v for v in ("prediction", "label") if v not in ds]
    if missing or "example" not in ds.dims:
        raise ValueError(f"{path}: not a predictions file (needs variables prediction, label over "
                         f"dim example; lacks {missing or ['example']})")
    return ds


def error_analysis_to_file(paths_a, paths_b, out_path, *, permutations: int = 10000, seed: int = 0) -> None:
    """Read prediction files of two groups, run `error_analysis`, write the Dataset as .nc.

    All files must cover the same examples with the same labels. Each model's file and spec are
    recorded as coords `source` and `spec` on dim `model`; the two lists of files as JSON attrs.
    """
    paths_a, paths_b = [str(p) for p in paths_a], [str(p) for p in paths_b]
    for name, paths in (("paths_a", paths_a), ("paths_b", paths_b)):
        if not paths:
            raise ValueError(f"{name} is empty: need at least one predictions file")
    files = [_read_predictions(p) for p in paths_a + paths_b]
    reference, ref_path = files[0], (paths_a + paths_b)[0]
    for path, ds in zip(paths_a + paths_b, files):
        if not np.array_equal(ds["example"].values, reference["example"].values):
            raise ValueError(f"{path}: covers other examples than {ref_path}")
        if not np.array_equal(ds["label"].values, reference["label"].values):
            raise ValueError(f"{path}: has other labels than {ref_path}")
    pred = np.stack([ds["prediction"].values for ds in files])
    out = error_analysis(pred[: len(paths_a)], pred[len(paths_a) :],
                         reference["label"].values, permutations=permutations, seed=seed,
                         examples=reference["example"].values)
    out = out.assign_coords(source=("model", paths_a + paths_b),
                            spec=("model", [str(ds.attrs.get("model", "")) for ds in files]))
    out.attrs.update({"files_a": json.dumps(paths_a), "files_b": json.dumps(paths_b),
                      "created_by": "repatlas.errors.error_analysis_to_file"})
    write_netcdf(out, out_path)


def error_table_to_file(paths: dict, out_csv, *, max_gap: float = MAX_ACCURACY_GAP) -> None:
    """`error_table` from files: {(arch_a, arch_b): error-analysis .nc} → CSV."""
    results = {}
    for pair, path in paths.items():
        with xr.open_dataset(path) as ds:
            results[tuple(pair)] = ds.load()
    table = error_table(results, max_gap=max_gap)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)


def probes_to_file(model_path, full_path, subset_path, out_path, *, epochs: int, lr: float,
                   batch_size: int, seed: int = 0, input_ceiling: float = 0.9, device: str = "cpu",
                   threads: int = 1) -> None:
    """Probe every representation layer of a checkpoint: trained on the training subset, tested
    on the whole test split → netCDF Dataset (see `linear_probes`).

    A probe on the input comes first (`input_probe`, same settings): attrs input_test_accuracy and
    status = "probed" when it is below `input_ceiling`, else "ceiling", and then the layers are not
    probed (NaN accuracies, units 0): a probe curve from a linearly separable input says nothing.
    """
    if not 0 < input_ceiling <= 1:
        raise ValueError(f"input_ceiling must be in (0, 1]; got {input_ceiling}")
    settings = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device)
    with pinned_threads(threads):
        model, spec, ckpt_meta = load_checkpoint(model_path)
        x_train, y_train, x_test, y_test = load_classification(full_path, subset_path)
        baseline = input_probe(x_train, y_train, x_test, y_test, **settings)
        input_accuracy = float(baseline["test_accuracy"].values[0])
        if input_accuracy >= input_ceiling:
            ds = ceiling_probes(representation_layers(model))
            ds.attrs.update({k: baseline.attrs[k] for k in ("epochs", "lr", "batch_size", "seed", "n_classes",
                                                             "n_train", "n_test")})
        else:
            ds = linear_probes(model, x_train, y_train, x_test, y_test, **settings)
    ds.attrs.update({"status": "ceiling" if input_accuracy >= input_ceiling else "probed",
                     "input_test_accuracy": input_accuracy,
                     "input_train_accuracy": float(baseline["train_accuracy"].values[0]),
                     "input_ceiling": float(input_ceiling),
                     "model": json.dumps(spec), "checkpoint": str(model_path),
                     "trained_on": json.dumps(ckpt_meta.get("dataset", {})),
                     "train_file": str(subset_path), "test_file": str(full_path)})
    write_netcdf(ds, out_path)


def pruning_to_file(model_path, full_path, out_path, *, examples: int | None = None, device: str = "cpu",
                    threads: int = 1) -> None:
    """Block-pruning step: checkpoint in; `pruning_experiment` (unlabelled) on the whole test split,
    or on its class-balanced first `examples` (`repatlas.data.probe_set`: one forward pass per
    removable block, so large test splits get expensive) → netCDF Dataset."""
    with pinned_threads(threads):
        model, spec, _ = load_checkpoint(model_path)
        full, meta = load_npz(full_path)
        images, labels = ((full["x_test"], full["y_test"]) if examples is None
                          else probe_set(full, examples)[:2])
        x_test = standardise(images, meta["mean"], meta["std"])
        ds = pruning_experiment(model, x_test, labels, representation_layers(model), device=device)
    ds.attrs.update({"model": json.dumps(spec), "checkpoint": str(model_path),
                     "dataset": str(meta.get("dataset")), "dataset_checksum": str(meta.get("checksum"))})
    write_netcdf(ds, out_path)


def probe_table_to_file(paths: dict, out_csv) -> None:
    """`probe_table` from files: {model id: probes .nc} → CSV."""
    results = {}
    for model_id, path in paths.items():
        with xr.open_dataset(path) as ds:
            results[model_id] = ds.load()
    with atomic_path(out_csv) as tmp:
        probe_table(results).to_csv(tmp, index=False)


def evaluate_model(model_path, full_path, subset_path, *, probes_path, pruning_path, predictions_path,
                   probes: dict, examples: int | None, device: str, threads: int, log_path=None) -> dict:
    """The per-model evaluation job: linear probes, block pruning and test-split predictions of one
    checkpoint, each to its file. `device` is checked first (`repatlas.devices.job_device`: one
    line in `log_path` and exit 1 if absent here). Returns `predictions_to_file`'s record."""
    run = dict(device=job_device(device, log_path), threads=threads)
    probes_to_file(model_path, full_path, subset_path, probes_path, **probes, **run)
    pruning_to_file(model_path, full_path, pruning_path, examples=examples, **run)
    info = predictions_to_file(model_path, full_path, predictions_path, **run)
    print(f"test accuracy {info['test_accuracy']:.4f}", file=sys.stderr)
    return info
