"""Steps of rules/train.smk and the training rule of rules/mitosis.smk: subset + test split in,
`model.pt` + `metrics.json` (+ snapshots at chosen epochs) out, resumable across kills."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch

from repatlas.checkpoints import load_training_state, save_checkpoint, snapshot_path
from repatlas.data import load_npz
from repatlas.devices import job_device, resolve_device
from repatlas.io import atomic_path
from repatlas.model_ids import ARCH_NAME
from repatlas.models import build_model
from repatlas.threads import pinned_threads
from repatlas.train import TrainConfig, TrainingDiverged, seed_everything, train


def resume_path(model_path) -> Path:
    """Where `train_to_files` keeps the resumable state of the job writing `model_path`.

    A sibling `checkpoint.pt`, deliberately not a declared Snakemake output: Snakemake deletes a
    job's declared outputs before rerunning it, so only an undeclared file survives a kill.
    """
    return Path(model_path).with_name("checkpoint.pt")


def _staged_snapshots(snapshots_dir) -> Path:
    """Where snapshots wait until the run ends: an undeclared sibling, like `resume_path`, so
    that the snapshots of epochs a killed run has passed survive for the resumed run."""
    return Path(snapshots_dir).with_name(Path(snapshots_dir).name + ".partial")


def _snapshot_saver(snapshots_dir, epochs, spec: dict, meta: dict, state_path: Path, log):
    """(after_epoch hook saving the weights at `epochs` into the staging folder, whether a
    resumable state at `state_path` may be used: not if it is past an epoch whose staged
    snapshot is missing, since that epoch would not be trained again)."""
    staged = _staged_snapshots(snapshots_dir)
    staged.mkdir(parents=True, exist_ok=True)
    resumable = True
    if epochs and state_path.exists():
        try:
            done = int(load_training_state(state_path)["epoch"])
        except (OSError, ValueError, TypeError):
            done = 0  # train() reports and ignores an unreadable state itself
        missing = [e for e in epochs if e <= done and not snapshot_path(staged, e).exists()]
        if missing:
            log(f"not resuming from {state_path}: it is past epoch(s) {missing} whose snapshots are missing")
            resumable = False

    def save(epoch, model, record):
        if epoch in epochs:
            save_checkpoint(snapshot_path(staged, epoch), model, spec,
                            {**meta, "epoch": epoch, "record": dict(record)})

    return save, resumable


def train_to_files(
    subset_path,
    full_path,
    model_path,
    metrics_path,
    log_path,
    *,
    arch: str,
    depth: int,
    width: int,
    config: TrainConfig,
    model_options: dict | None = None,
    device: str = "auto",
    threads: int = 1,
    progress: bool = True,
    resume: bool = True,
    snapshot_epochs=(),
    snapshots_dir=None,
) -> dict:
    """The training step of the pipeline: subset + test split in, checkpoint + metrics out.

    Resumable: the training state is saved after every epoch to `resume_path(model_path)` (a
    sibling `checkpoint.pt`); a later call for the same job (same spec, config, data, device type,
    torch and library code) continues from it, any other checkpoint there is ignored with a log
    line. The state file is deleted once `model.pt` and `metrics.json` are written, and also when
    training diverges (a deterministic rerun would diverge again). Divergence raises
    TrainingDiverged naming the model and the epoch, and writes neither `model.pt` nor metrics.

    Snapshots: with `snapshots_dir`, the weights after each epoch in `snapshot_epochs` (1 ≤ e ≤
    config.epochs) are saved as `snapshot_path(snapshots_dir, e)` — `model.pt` files of the same
    run stopped early, with `meta["epoch"]` and that epoch's `meta["record"]`. They are staged in
    the sibling `<snapshots_dir>.partial` (kept across a kill, like the resumable state) and the
    folder is renamed to `snapshots_dir` once `model.pt` is written.
    """
    # torch intra-op and BLAS threads for the job, restored afterwards (repatlas.threads)
    with pinned_threads(threads):
        full, full_meta = load_npz(full_path)
        sub, sub_meta = load_npz(subset_path)
        spec = {
            "arch": arch,
            "depth": depth,
            "width": width,
            "input_shape": list(full_meta["shape"]),
            "n_classes": full_meta["n_classes"],
            **(model_options or {}),
        }
        model_path, metrics_path = Path(model_path), Path(metrics_path)
        state_path = resume_path(model_path)
        job = {"spec": spec, "dataset_checksum": full_meta["checksum"],
               "subset_checksum": sub_meta["checksum"]}
        seed_everything(config.seed)
        model = build_model(**spec)
        snaps = sorted({int(e) for e in snapshot_epochs})
        if snaps and not 1 <= snaps[0] <= snaps[-1] <= config.epochs:
            raise ValueError(f"snapshot_epochs must lie in [1, epochs={config.epochs}]; got {snaps}")
        if snaps and snapshots_dir is None:
            raise ValueError("snapshot_epochs needs snapshots_dir: the folder to write them to")
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        # appended: a pipeline job's stderr (repatlas.joblog.log_to) shares this log file
        with open(log_path, "a") as log_file:
            def log(line: str) -> None:
                print(line, file=log_file, flush=True)

            after_epoch = None
            if snapshots_dir is not None:
                snapshot_meta = {"dataset": {"name": full_meta["dataset"], "checksum": full_meta["checksum"],
                                             "subset_checksum": sub_meta["checksum"], "n": len(sub["y"])}}
                after_epoch, resumable = _snapshot_saver(snapshots_dir, snaps, spec, snapshot_meta,
                                                         state_path, log)
                resume = resume and resumable

            log(f"model {spec} seed={config.seed} device={resolve_device(device)} threads={threads}")
            log(f"train {subset_path} ({len(sub['y'])} examples), test split of {full_path}")
            t0 = time.perf_counter()
            try:
                history = train(
                    model, (sub["x"], sub["y"]), (full["x_test"], full["y_test"]),
                    mean=full_meta["mean"], std=full_meta["std"], config=config, device=device,
                    progress=progress, log=log, checkpoint=state_path, job=job, resume=resume,
                    after_epoch=after_epoch,
                )
            except TrainingDiverged as exc:
                message = (f"{ARCH_NAME.format(arch=arch, depth=depth, width=width)} seed={config.seed} "
                           f"({model_path}) diverged: {exc}; "
                           f"model spec {spec}")
                log(message)
                state_path.unlink(missing_ok=True)
                if snapshots_dir is not None:
                    shutil.rmtree(_staged_snapshots(snapshots_dir), ignore_errors=True)
                raise TrainingDiverged(message) from None
            seconds = time.perf_counter() - t0
            log(f"done in {seconds:.1f} s")
            metrics = {
                "model": spec,
                "train_config": dataclasses.asdict(config),
                "dataset": {"name": full_meta["dataset"], "checksum": full_meta["checksum"],
                            "subset_checksum": sub_meta["checksum"], "n": len(sub["y"])},
                "epochs": history,
                "final": history[-1],
                "seconds": seconds,
                "n_params": sum(p.numel() for p in model.parameters()),
                "device": str(resolve_device(device)),
                "torch": torch.__version__,
                "python": platform.python_version(),
            }
            save_checkpoint(model_path, model, spec, {"final": history[-1], "dataset": metrics["dataset"]})
            if snapshots_dir is not None:  # a whole folder appears at once (rename), never a partial one
                shutil.rmtree(snapshots_dir, ignore_errors=True)
                os.replace(_staged_snapshots(snapshots_dir), snapshots_dir)
                log(f"wrote snapshots of epochs {snaps} to {snapshots_dir}")
            with atomic_path(metrics_path) as tmp:
                tmp.write_text(json.dumps(metrics, indent=2))
            state_path.unlink(missing_ok=True)
            log(f"wrote {model_path} and {metrics_path}; removed the resumable state {state_path}")
        return metrics


def train_model(subset_path, full_path, model_path, metrics_path, log_path, *, arch: str, depth: int,
                width: int, seed: int, train_settings: dict, device: str, threads: int,
                model_options: dict | None = None, snapshot_epochs=(), snapshots_dir=None) -> dict:
    """The training job of both training rules (the grid's models and the mitosis runs): builds the
    `TrainConfig` from the config's `train_settings` and the model's `seed`, checks that `device` is
    there (one log line and exit 1 if not, `repatlas.devices.job_device`) and runs `train_to_files`
    without a progress bar (the log's epoch lines are the progress record; a bar in a file is noise).
    `model_options` go to the model builder; `snapshot_epochs` and `snapshots_dir` as in
    `train_to_files`."""
    return train_to_files(
        subset_path, full_path, model_path, metrics_path, log_path,
        arch=arch, depth=int(depth), width=int(width),
        config=TrainConfig(**train_settings, seed=int(seed)),
        model_options=model_options,
        device=job_device(device, log_path),
        threads=threads,
        progress=False,
        snapshot_epochs=snapshot_epochs,
        snapshots_dir=snapshots_dir,
    )
