"""Training throughput of `repatlas.train.train`, as ratios against a plain-torch loop in the same run.

CIFAR-shaped random data (uint8 3x32x32, 10 classes), CIFAR ResNet-20 at width 1 (and 8), batch
128, the pipeline's CIFAR settings (SGD momentum 0.9, weight decay 1e-4, crop pad 4 + flip, cosine
schedule), on whatever device is present (`--device auto`).

* repatlas: `repatlas.train.train` exactly as the train_model rule runs it (after
  `seed_everything`, i.e. with deterministic algorithms), evaluating on a small test set
  (`--test-images`) after every epoch as the pipeline does.
* baseline: the same model, batch size and device, data already standardised on the device; per
  step only forward, cross-entropy, backward and an SGD step (no augmentation, schedule, metrics
  or evaluation; torch's default non-deterministic algorithms). On CUDA it uses the same bf16
  autocast and channels_last as `train`, so the ratio measures the loop's extras, not precision.

Epoch times are the fastest epoch after the first (the first includes warm-up; the fastest filters
out interference from other processes on a shared machine); images/s counts training images only. A ratio below 1 means repatlas is slower than the baseline.
No timing is asserted.

Usage: python bench/train_bench.py [--quick] [--widths 1 8] [--images 5000] [--epochs 3]
       [--threads N] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from repatlas.models import build_model
from repatlas.train import TrainConfig, resolve_device, seed_everything, train

SHAPE = (3, 32, 32)
N_CLASSES = 10
# CIFAR-10 training-set channel statistics (only used to standardise the random data).
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), rng.integers(0, N_CLASSES, n).astype(np.int64)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def model(width: int, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("resnet", 20, width, input_shape=list(SHAPE), n_classes=N_CLASSES)


def run_repatlas(width, train_data, test_data, cfg: TrainConfig, device) -> list[float]:
    seed_everything(cfg.seed)  # as train_to_files does
    net = model(width, cfg.seed)
    history = train(net, train_data, test_data, mean=MEAN, std=STD, config=cfg, device=device,
                    progress=False, log=lambda line: None)
    return [h["seconds"] for h in history]


def run_baseline(width, train_data, cfg: TrainConfig, device) -> list[float]:
    torch.use_deterministic_algorithms(False)
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    net = model(width, cfg.seed).to(dev, memory_format=fmt).train()
    m = torch.tensor(MEAN, device=dev).view(1, -1, 1, 1)
    s = torch.tensor(STD, device=dev).view(1, -1, 1, 1)
    x = ((torch.as_tensor(train_data[0], device=dev).float() / 255 - m) / s).contiguous(memory_format=fmt)
    y = torch.as_tensor(train_data[1], device=dev)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    times = []
    for _ in range(cfg.epochs):
        sync(dev)
        t0 = time.perf_counter()
        order = torch.randperm(len(y), generator=gen, device=dev)
        for i in range(0, len(y), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(net(x[idx]).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return times


def steady(times: list[float]) -> float:
    return min(times[1:]) if len(times) > 1 else times[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 images, 2 epochs, width 1 only")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="ResNet-20 widths (default 1 8 on CUDA, 1 on CPU: 8x is ~64x the work)")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--test-images", type=int, default=500)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="train.compile: torch.compile repatlas's forward pass "
                   "(epoch 1 pays the compilation; the epoch time is the fastest of epochs 2..)")
    args = p.parse_args()
    if args.quick:
        args.images, args.epochs, args.test_images = 1000, 2, 200
        args.widths = args.widths or [1]
    dev = resolve_device(args.device)
    widths = args.widths or ([1, 8] if dev.type == "cuda" else [1])
    if args.threads:
        torch.set_num_threads(args.threads)

    train_data, test_data = data(args.images, 0), data(args.test_images, 1)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.01, momentum=0.9,
                      weight_decay=1e-4, crop_pad=4, flip=True, seed=0, compile=args.compile)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {dev} ({name}); torch {torch.__version__}")
    print(f"{args.images} train images 3x32x32, {args.test_images} test images, batch {args.batch_size}, "
          f"{args.epochs} epochs ({math.ceil(args.images / args.batch_size)} steps/epoch); "
          "epoch time = fastest of epochs 2..")
    print(f"{'model':<16}{'loop':<10}{'epoch s':>9}{'images/s':>10}{'vs baseline':>13}")
    for width in widths:
        base = steady(run_baseline(width, train_data, cfg, args.device))
        ours = steady(run_repatlas(width, train_data, test_data, cfg, args.device))
        label = f"ResNet-20 {width}x"
        print(f"{label:<16}{'baseline':<10}{base:>9.2f}{args.images / base:>10.0f}{1.0:>12.2f}x")
        print(f"{'':<16}{'repatlas':<10}{ours:>9.2f}{args.images / ours:>10.0f}{base / ours:>12.2f}x")
    print("vs baseline = baseline epoch time / this epoch time (the repatlas epoch includes its "
          "per-epoch evaluation on the test images)")


if __name__ == "__main__":
    main()
