"""One training loop for every classifier: SGD + momentum, cosine schedule, crop/flip on-device.

The whole (small) dataset lives on the device as one tensor; augmentation is a few tensor ops
on the batch, and batches come from a seeded `torch.randperm`, so a run is a pure function of
(model init seed, data, config) on CPU. On CUDA the same loop adds bf16 autocast and
channels_last.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from repatlas.data import standardise


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


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random crop (of an already reflect-padded batch) and random horizontal flip, on-device."""
    b, c, hp, wp = x.shape
    h, w = hp - 2 * pad, wp - 2 * pad
    if pad:
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=gen.device).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = x[batch, chan, rows, cols]
    if flip:
        mask = torch.rand(b, generator=gen, device=gen.device).to(x.device) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024):
    """(mean cross-entropy, accuracy) of a model on standardised inputs."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = model(x[i : i + batch_size]).float()
        loss += F.cross_entropy(out, y[i : i + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[i : i + batch_size]).sum().item()
    return loss / len(y), correct / len(y)


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
) -> list[dict]:
    """Train `model` in place on uint8 images; return per-epoch metrics.

    `train_data` / `test_data` are (uint8 images (N, C, H, W), int labels (N,)).
    Raises TrainingDiverged naming the epoch if the loss stops being finite.
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

    gen = torch.Generator(device=dev).manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(y_train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    opt = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=False,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))
    )

    history = []
    bar = tqdm(total=total_steps, disable=not progress, desc="train", unit="step", leave=False)
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train), generator=gen, device=dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            xb = augment(x_train[idx], config.crop_pad, config.flip, gen)
            yb = y_train[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                out = model(xb)
                loss = F.cross_entropy(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.argmax(1) == yb).sum()
            bar.update(1)
        train_loss = loss_sum.item() / len(y_train)
        if not math.isfinite(train_loss):
            bar.close()
            raise TrainingDiverged(f"training loss is {train_loss} at epoch {epoch}")
        test_loss, test_acc = evaluate(model, x_test, y_test)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": correct.item() / len(y_train),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        log(
            f"epoch {epoch}/{config.epochs} train_loss={train_loss:.4f} "
            f"train_acc={record['train_acc']:.4f} test_loss={test_loss:.4f} test_acc={test_acc:.4f}"
        )
    bar.close()
    model.to("cpu", memory_format=torch.contiguous_format)
    return history


# ----------------------------------------------------------------------------- checkpoints and files


def save_checkpoint(path, model: nn.Module, spec: dict, meta: dict | None = None) -> None:
    """Save weights with the spec that rebuilds the model (atomically; tensors and plain data only)."""
    from repatlas.io import atomic_path

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"spec": spec, "state_dict": state, "meta": meta or {}}, tmp)


def load_checkpoint(path) -> tuple[nn.Module, dict, dict]:
    """Rebuild a model from `model.pt` (weights_only loading: no code is executed)."""
    from repatlas.models import build_model

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        spec = ckpt["spec"]
        model = build_model(**spec)
        model.load_state_dict(ckpt["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a readable repatlas checkpoint ({exc})") from exc
    model.eval()
    return model, spec, ckpt.get("meta", {})


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
) -> dict:
    """The training step of the pipeline: subset + test split in, checkpoint + metrics out."""
    import json
    import platform

    from repatlas.data import load_npz
    from repatlas.io import atomic_path
    from repatlas.models import build_model

    torch.set_num_threads(threads)
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
    seed_everything(config.seed)
    model = build_model(**spec)
    with open(log_path, "w") as log_file:
        def log(line: str) -> None:
            print(line, file=log_file, flush=True)

        log(f"model {spec} seed={config.seed} device={resolve_device(device)} threads={threads}")
        log(f"train {subset_path} ({len(sub['y'])} examples), test split of {full_path}")
        t0 = time.perf_counter()
        history = train(
            model, (sub["x"], sub["y"]), (full["x_test"], full["y_test"]),
            mean=full_meta["mean"], std=full_meta["std"], config=config, device=device,
            progress=progress, log=log,
        )
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
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    return metrics
