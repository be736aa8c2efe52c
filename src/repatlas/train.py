"""One training loop for every classifier: SGD + momentum, cosine schedule, crop/flip on-device.

The whole (small) dataset lives on the device as one tensor; each epoch's shuffled, augmented
copy is made by one gather (so the device holds the dataset twice), batches are slices of it, and
order and augmentation come from a seeded CPU generator, so a run is a pure function of (model
init seed, data, config) on CPU and sees the same batches on every device. Nothing in a step
reads a value back to the host. On CUDA the same loop adds bf16 autocast and channels_last;
`TrainConfig.compile` adds torch.compile on any device (and CUDA graphs with "reduce-overhead").

Training is resumable. Given a `checkpoint` path, `train` saves its whole state at the end of every
epoch (weights, optimizer, schedule, the generator behind batch order and augmentation, the global
RNG, the history so far) atomically, and when it starts again for the same job it continues from
there. A resumed run on CPU ends with the same weights and metrics, bit for bit, as one that was
never interrupted. `repatlas.steps.train.train_to_files` keeps that state in `checkpoint.pt` next to
`model.pt` and deletes it once `model.pt` and `metrics.json` are written. docs/reliability.md lists
what is guaranteed and which test shows it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from repatlas.checkpoints import CHECKPOINT_FORMAT, load_training_state, save_training_state
from repatlas.data import checksum, standardise
from repatlas.devices import resolve_device  # noqa: F401  (re-exported: train.resolve_device)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    crop_pad: int = 0  # reflect-pad by this many pixels, then crop back at a random offset
    flip: bool = False  # random horizontal flips
    seed: int = 0
    # Test-split evaluation every k epochs (and always after the last): with a small training
    # subset and a large test split, evaluating every epoch can cost more than training.
    eval_every: int = 1
    # torch.compile the training forward pass (GPU runs: fewer kernel launches); the weights,
    # checkpoints and evaluation use the plain module, so results files do not change format.
    # True/"default", or a torch.compile mode: "reduce-overhead" adds CUDA graphs (COMPILE_MODES).
    compile: bool | str = False
    # Linear learning-rate warmup over this many epochs (fractions allowed; 0 = off), then the
    # cosine decay over the remaining steps: see `lr_factor`.
    warmup_epochs: float = 1.0


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator,
            index: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop (of an already reflect-padded batch) and random horizontal flip, on-device.

    With `index`, the samples `x[index]` are augmented (e.g. a whole epoch in its shuffled
    order) without first copying them. Crop offsets and flips are drawn from `gen` (offsets
    dy, dx, then flips), and both are applied by one gather: a flipped crop reads its columns
    right to left.
    """
    b, c, hp, wp = x.shape if index is None else (len(index), *x.shape[1:])
    h, w = hp - 2 * pad, wp - 2 * pad
    sample = torch.arange(b, device=x.device) if index is None else index.to(x.device)
    if not pad and not flip:
        return x if index is None else x[sample]
    rows = torch.arange(h, device=x.device).expand(b, h)
    cols = torch.arange(w, device=x.device).expand(b, w)
    if pad:
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
        rows, cols = rows + dy[:, None], cols + dx[:, None]
    if flip:
        mask = torch.rand(b, generator=gen, device=gen.device).to(x.device) < 0.5
        cols = torch.where(mask[:, None], cols.flip(1), cols)
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return x[sample[:, None, None, None], chan, rows[:, None, :, None], cols[:, None, None, :]]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024):
    """(mean cross-entropy, accuracy) of a model on standardised inputs."""
    model.eval()
    # sums stay on the device (float64: the exact sum of float32 terms, as a Python float was)
    loss = torch.zeros((), dtype=torch.float64, device=y.device)
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for i in range(0, len(y), batch_size):
        out = model(x[i : i + batch_size]).float()
        loss += F.cross_entropy(out, y[i : i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()
    return loss.item() / len(y), correct.item() / len(y)


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base learning rate at optimiser step `step` (0-based).

    Linear warmup (step + 1) / warmup_steps for the first `warmup_steps` steps, then a cosine from
    1 to 0 over the remaining steps (0 after `total_steps`). Warmup is what He et al. (2016) did
    for ResNet-110 and Goyal et al. (2017) for large learning rates. Measured on CPU (float32,
    width 1, first 60 steps at lr 0.05, bench/recipe_bench.py): with full-scale residual branches
    one epoch of warmup halved ResNet-50's largest gradient norm (64 → 31) and its loss over steps
    51–60 (2.27 → 1.12) but left it behind ResNet-8 (0.92); with the branches down-scaled
    (`repatlas.models.resnet`) warmup changed little (ResNet-50 0.94 vs 0.89 without). It stays on
    by default as the cheap guard for what the CPU could not test: width 4 and bf16 on a GPU, where
    ResNet-50 ×4 diverged.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(total_steps - warmup_steps, 1)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup_steps, decay) / decay))


def warmup_steps(config: TrainConfig, steps_per_epoch: int, total_steps: int) -> int:
    """`config.warmup_epochs` in optimiser steps (rounded, at least 1 when warmup is on), at most
    all steps."""
    if config.warmup_epochs <= 0:
        return 0
    return min(max(1, round(config.warmup_epochs * steps_per_epoch)), total_steps)


def sgd_optimiser(params, *, lr: float, momentum: float, weight_decay: float, total_steps: int,
                  warmup: int = 0):
    """(optimiser, scheduler) of every classifier the project trains: SGD with momentum and weight
    decay, and a per-step schedule of `lr_factor`: `warmup` linear steps, then cosine to 0 at
    `total_steps`. Shared by `train` and `repatlas.ensembles.train_classifier`: one recipe."""
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, warmup))
    return opt, sched


def optimiser(model: nn.Module, config: TrainConfig, total_steps: int, warmup: int = 0):
    """`sgd_optimiser` over all of `model`'s parameters with `config`'s settings."""
    return sgd_optimiser(model.parameters(), lr=config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay, total_steps=total_steps, warmup=warmup)


def optimiser_step(loss: torch.Tensor, opt, sched, model: nn.Module | None = None) -> torch.Tensor | None:
    """One optimiser step of the shared loop: clear the gradients, backpropagate `loss`, step the
    optimiser, then the schedule. With `model`, returns its `grad_norm` taken between backward and
    step (a device tensor: no host sync); else None."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = grad_norm(model) if model is not None else None
    opt.step()
    sched.step()
    return norm


def grad_norm(model: nn.Module) -> torch.Tensor:
    """Global L2 norm of the parameters' gradients (weight decay not included), as a 0-d tensor on
    the parameters' device: no host sync, so it can be taken every step and read once per epoch."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def _grad_norm_record(norms: list) -> dict:
    """Epoch summary of the per-step gradient norms: their mean and maximum (one host sync)."""
    values = torch.stack(norms).float().cpu()
    return {"grad_norm_mean": float(values.mean()), "grad_norm_max": float(values.max())}


def _epoch_line(record: dict, epochs: int) -> str:
    line = (f"epoch {record['epoch']}/{epochs} train_loss={record['train_loss']:.4f} "
            f"train_acc={record['train_acc']:.4f}")
    if record["test_acc"] is None:
        return line + " (test not evaluated this epoch)"
    return line + f" test_loss={record['test_loss']:.4f} test_acc={record['test_acc']:.4f}"


def train(
    model: nn.Module,
    train_data: tuple,
    test_data: tuple,
    *,
    mean,
    std,
    config: TrainConfig,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
    checkpoint=None,
    job: dict | None = None,
    resume: bool = True,
    after_epoch: Callable[[int, nn.Module, dict], None] | None = None,
) -> list[dict]:
    """Train `model` in place on uint8 images; return per-epoch metrics.

    `train_data` / `test_data` are (uint8 images (N, C, H, W), int labels (N,)).
    Raises TrainingDiverged naming the epoch if the loss stops being finite.

    With `checkpoint` (a path), the full training state is written there atomically at the end of
    every epoch. If the file exists when training starts (and `resume`), it is checked against
    this run: the training config, device type, data, torch version, library code and `job` (any
    JSON-like record identifying the job, e.g. the model spec and dataset checksums) must all
    match. A match resumes after the last saved epoch; anything else (another job's checkpoint, an
    unreadable or inconsistent file) is reported through `log` and training starts fresh.

    `after_epoch(epoch, model, record)`, if given, runs at the end of every trained epoch, before
    the checkpoint of that epoch is written (so a saved checkpoint implies the hook ran for it).
    """
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    model.to(dev)
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    model.to(memory_format=memory_format)

    x_train = standardise(torch.as_tensor(train_data[0]).to(dev), mean, std)
    y_train = torch.as_tensor(train_data[1], dtype=torch.long, device=dev)
    x_test = standardise(torch.as_tensor(test_data[0]).to(dev), mean, std)
    y_test = torch.as_tensor(test_data[1], dtype=torch.long, device=dev)
    if config.crop_pad:
        p = config.crop_pad
        x_train = F.pad(x_train, (p, p, p, p), mode="reflect")
    x_train = x_train.contiguous(memory_format=memory_format)
    x_test = x_test.contiguous(memory_format=memory_format)

    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup = warmup_steps(config, steps_per_epoch, total_steps)
    opt, sched = optimiser(model, config, total_steps, warmup)
    # The only random stream of the loop: batch order and augmentation. (torch.manual_seed, the
    # global stream, is used for initialisation; it is saved and restored too, for safety.) It
    # lives on the CPU, so a seed gives the same batches and crops on every device; its draws
    # cross to the device once per epoch.
    gen = torch.Generator(device="cpu").manual_seed(config.seed)

    history: list[dict] = []
    done = 0
    fingerprint = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        fingerprint = _fingerprint(config, dev, train_data, test_data, mean, std, job)
        state = _matching_state(checkpoint, fingerprint, config, log) if resume else None
        if state is not None:
            fresh_weights = {k: v.clone() for k, v in model.state_dict().items()}
            fresh_rng = torch.get_rng_state()
            try:
                done, history = _restore(state, model, opt, sched, gen, dev)
            except Exception as exc:  # all or nothing: never train on a half-restored state
                log(f"ignoring checkpoint {checkpoint}: cannot restore it ({exc}); starting fresh")
                model.load_state_dict(fresh_weights)
                torch.set_rng_state(fresh_rng)
                opt, sched = optimiser(model, config, total_steps, warmup)
                gen = torch.Generator(device="cpu").manual_seed(config.seed)
                done, history = 0, []
            else:
                log(f"resuming from checkpoint {checkpoint}: {done} of {config.epochs} epochs done")
                for record in history:
                    log(_epoch_line(record, config.epochs) + " (restored)")

    forward, graphs = _compiled(model, config.compile, dev)
    bar = tqdm(total=total_steps, initial=done * steps_per_epoch, disable=not progress,
               desc="train", unit="step", leave=False)
    for epoch in range(done + 1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        # The epoch's order and augmentation in one batched gather; its batches are then
        # contiguous slices (views), and nothing in the step waits for the device: loss and
        # accuracy are summed on it and read once, after the last step.
        order = torch.randperm(len(y_train), generator=gen, device="cpu").to(dev)
        x_epoch = augment(x_train, config.crop_pad, config.flip, gen, index=order)
        x_epoch = x_epoch.contiguous(memory_format=memory_format)
        y_epoch = y_train[order]
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        norms = []  # per-step gradient norms, read once per epoch (`grad_norm`)
        for i in range(0, len(order), config.batch_size):
            xb, yb = x_epoch[i : i + config.batch_size], y_epoch[i : i + config.batch_size]
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()  # the last step's graph outputs are consumed
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                out = forward(xb)
                loss = F.cross_entropy(out.float(), yb)
            norms.append(optimiser_step(loss, opt, sched, model))
            loss_sum += loss.detach() * len(yb)
            correct += (out.argmax(1) == yb).sum()
            bar.update(1)
        train_loss = loss_sum.item() / len(y_train)  # waits for the device: the epoch's training is done
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            bar.close()
            raise TrainingDiverged(f"training loss is {train_loss} at epoch {epoch}")
        t_eval = time.perf_counter()
        test_loss = test_acc = None  # JSON null in metrics.json
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            test_loss, test_acc = evaluate(model, x_test, y_test)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": correct.item() / len(y_train),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": opt.param_groups[0]["lr"],
            **_grad_norm_record(norms),
            "seconds": train_seconds,  # training only: throughput = examples / seconds
            "eval_seconds": time.perf_counter() - t_eval,
        }
        history.append(record)
        log(_epoch_line(record, config.epochs))
        if after_epoch is not None:
            after_epoch(epoch, model, record)
        if checkpoint is not None:
            save_training_state(checkpoint, _state(fingerprint, epoch, history, model, opt, sched, gen, dev))
    bar.close()
    model.to("cpu", memory_format=torch.contiguous_format)
    return history


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _compiled(model: nn.Module, setting, dev: torch.device) -> tuple[Callable, bool]:
    """(the forward to train with, whether it replays CUDA graphs) for `TrainConfig.compile`.

    False: the module itself. True or "default": torch.compile. "reduce-overhead" (and
    "max-autotune") also capture CUDA graphs on CUDA: one launch per step instead of one per
    kernel, which is what small models lack on a large GPU; on CPU the mode compiles as "default".
    """
    if setting is False or setting is None:
        return model, False
    mode = "default" if setting is True else setting
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be false, true or one of {', '.join(COMPILE_MODES)}; got {setting!r}")
    graphs = mode in ("reduce-overhead", "max-autotune") and dev.type == "cuda"
    return torch.compile(model, mode=None if mode == "default" else mode), graphs


# ----------------------------------------------------------------------------- resumable state

def _code_version() -> str:
    """Hash of the library sources that define a run (loop, models, preprocessing)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("train.py", "models.py", "data.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _as_numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _fingerprint(config, dev, train_data, test_data, mean, std, job) -> dict:
    """Everything a resumed run must share with the run that wrote the checkpoint (JSON-plain)."""
    record = {
        "format": CHECKPOINT_FORMAT,
        "job": job or {},
        "train_config": dataclasses.asdict(config),
        "device": dev.type,
        "data": checksum(*(_as_numpy(a) for a in (*train_data[:2], *test_data[:2]))),
        "mean": [float(v) for v in np.ravel(_as_numpy(mean))],
        "std": [float(v) for v in np.ravel(_as_numpy(std))],
        "torch": torch.__version__,
        "code": _code_version(),
    }
    return json.loads(json.dumps(record))  # tuples → lists, so it compares equal after loading


def _differences(old, new, prefix="") -> list[str]:
    """Human-readable keys where two fingerprints differ (first few)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} → {new!r}"]


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _state(fingerprint, epoch, history, model, opt, sched, gen, dev) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "epoch": epoch,
        "history": [dict(r) for r in history],
        "model": _to_cpu(model.state_dict()),
        "optimizer": _to_cpu(opt.state_dict()),
        "scheduler": sched.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
    }


def _matching_state(path: Path, fingerprint: dict, config: TrainConfig, log) -> dict | None:
    """The saved state at `path` if it belongs to this run; else None, with a log line saying why."""
    if not path.exists():
        return None
    try:
        state = load_training_state(path)
    except (OSError, ValueError) as exc:
        log(f"ignoring checkpoint: {exc}; starting fresh")
        return None
    if state["fingerprint"] != fingerprint:
        diff = _differences(state["fingerprint"], fingerprint)
        log(f"ignoring checkpoint {path}: written for another job ({'; '.join(diff[:4])}); starting fresh")
        return None
    epoch, history = state["epoch"], state["history"]
    consistent = (
        isinstance(epoch, int) and 0 <= epoch <= config.epochs and isinstance(history, list)
        and [r.get("epoch") if isinstance(r, dict) else None for r in history] == list(range(1, epoch + 1))
    )
    if not consistent:
        log(f"ignoring checkpoint {path}: its epoch count and history disagree; starting fresh")
        return None
    return state


def _restore(state: dict, model, opt, sched, gen, dev) -> tuple[int, list[dict]]:
    """Load a matching state into the live objects; raises if anything does not fit."""
    own = model.state_dict()
    weights = state["model"]
    if not isinstance(weights, dict) or set(weights) != set(own):
        raise ValueError("its weights are for another model")
    for k, v in weights.items():
        if not isinstance(v, torch.Tensor) or v.shape != own[k].shape or v.dtype != own[k].dtype:
            raise ValueError(f"its weight {k!r} does not fit the model")
    model.load_state_dict(weights)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if dev.type == "cuda" and state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], dev)
    return state["epoch"], [dict(r) for r in state["history"]]


# ----------------------------------------------------------------------------- checkpoints and files
