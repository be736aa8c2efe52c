"""Training throughput of `repatlas.train.train`, as ratios against a plain-torch loop in the same run.

CIFAR-shaped random data (uint8 3x32x32, 10 classes), CIFAR ResNet-20 at width 1 (and 8), batch
128, the pipeline's CIFAR settings (SGD momentum 0.9, weight decay 1e-4, crop pad 4 + flip, cosine
schedule), on whatever device is present (`--device auto`).

* repatlas: `repatlas.train.train` exactly as the train_model rule runs it (after
  `seed_everything`, i.e. with deterministic algorithms); its per-epoch `seconds` count training
  only (the test-set evaluation after each epoch is timed apart, as `eval_seconds`).
  On CUDA a second row runs it with torch's default non-deterministic algorithms, which the
  baseline uses, to show what determinism costs there.
* baseline: the same model, batch size and device, data already standardised on the device; per
  step only forward, cross-entropy, backward and an SGD step (no augmentation, schedule, metrics
  or evaluation; torch's default non-deterministic algorithms). On CUDA it uses the same bf16
  autocast and channels_last as `train`, so the ratio measures the loop's extras, not precision.
* `--compile MODE` adds a row for `train.compile: MODE` (default, reduce-overhead = CUDA graphs):
  its first epoch includes the compilation, reported as "compile s" (first epoch − steady epoch).

The loops run alternately, `--rounds` times each, so that a busy neighbour slows both alike; an
epoch time is the fastest epoch after the first over all rounds (the first includes warm-up; the
fastest filters out interference on a shared machine); images/s counts training images only.
`--clock cpu` (CPU, one thread only) times both loops by the CPU time of the thread doing the
work, which a loaded machine barely disturbs; the default is wall time.
A ratio below 1 means repatlas is slower than the baseline. No timing is asserted.

Usage: python bench/train_bench.py [--quick] [--widths 1 8] [--images 5000] [--epochs 3]
       [--rounds 2] [--threads N] [--clock wall|cpu] [--device auto|cpu|cuda] [--compile [MODE]]
"""

from __future__ import annotations

import argparse
import dataclasses
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


def run_repatlas(width, train_data, test_data, cfg: TrainConfig, device, deterministic=True) -> list[float]:
    seed_everything(cfg.seed)  # as train_to_files does
    if not deterministic:
        torch.use_deterministic_algorithms(False)
    net = model(width, cfg.seed)
    history = train(net, train_data, test_data, mean=MEAN, std=STD, config=cfg, device=device,
                    progress=False, log=lambda line: None)
    EVAL_SECONDS.extend(h.get("eval_seconds", 0.0) for h in history)
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
        t0 = CLOCK()
        order = torch.randperm(len(y), generator=gen, device=dev)
        for i in range(0, len(y), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(net(x[idx]).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(dev)
        times.append(CLOCK() - t0)
    return times


CLOCK = time.perf_counter
EVAL_SECONDS: list[float] = []  # repatlas's per-epoch evaluation times, reported apart


def set_clock(clock) -> None:
    """Time the baseline and repatlas's epochs (repatlas.train reads time.perf_counter) by `clock`."""
    global CLOCK
    import types

    import repatlas.train

    CLOCK = clock
    repatlas.train.time = types.SimpleNamespace(perf_counter=clock)


def steady(times: list[float]) -> float:
    return min(times[1:]) if len(times) > 1 else times[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 images, 2 epochs, 1 round, width 1 only")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="ResNet-20 widths (default 1 8 on CUDA, 1 on CPU: 8x is ~64x the work)")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--test-images", type=int, default=500)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="alternate the loops this many times each")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: time by this thread's CPU time (CPU device, --threads 1 only)")
    p.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                   help="also time train.compile: MODE (default, reduce-overhead, ...)")
    args = p.parse_args()
    if args.quick:
        args.images, args.epochs, args.test_images, args.rounds = 1000, 2, 200, 1
        args.widths = args.widths or [1]
    dev = resolve_device(args.device)
    widths = args.widths or ([1, 8] if dev.type == "cuda" else [1])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if dev.type != "cpu" or torch.get_num_threads() != 1:
            p.error("--clock cpu needs --device cpu and --threads 1 (it counts one thread's CPU time)")
        set_clock(time.thread_time)

    train_data, test_data = data(args.images, 0), data(args.test_images, 1)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.01, momentum=0.9,
                      weight_decay=1e-4, crop_pad=4, flip=True, seed=0)
    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else f"cpu, {torch.get_num_threads()} threads")
    print(f"device: {dev} ({name}); torch {torch.__version__}")
    print(f"{args.images} train images 3x32x32, {args.test_images} test images, batch {args.batch_size}, "
          f"{args.epochs} epochs ({math.ceil(args.images / args.batch_size)} steps/epoch) "
          f"x {args.rounds} rounds; "
          f"epoch time = fastest of epochs 2.. over the rounds, {args.clock} clock")
    print(f"{'model':<16}{'loop':<30}{'epoch s':>9}{'images/s':>10}{'vs baseline':>13}{'compile s':>11}")
    loops = {"baseline": lambda w: run_baseline(w, train_data, cfg, args.device),
             "repatlas": lambda w: run_repatlas(w, train_data, test_data, cfg, args.device)}
    if dev.type == "cuda":
        loops["repatlas, non-deterministic"] = lambda w: run_repatlas(
            w, train_data, test_data, cfg, args.device, deterministic=False)
    if args.compile:
        compiled = dataclasses.replace(cfg, compile=True if args.compile == "default" else args.compile)
        loops[f"repatlas, compile={args.compile}"] = lambda w: run_repatlas(
            w, train_data, test_data, compiled, args.device)
    for width in widths:
        times = {loop: [] for loop in loops}
        for _ in range(args.rounds):
            for loop, run in loops.items():
                times[loop].append(run(width))
        base = min(steady(t) for t in times["baseline"])
        for k, (loop, runs) in enumerate(times.items()):
            epoch = min(steady(t) for t in runs)
            first = min(t[0] for t in runs)
            label = f"ResNet-20 {width}x" if k == 0 else ""
            compile_s = f"{first - epoch:>11.1f}" if "compile" in loop else ""
            print(f"{label:<16}{loop:<30}{epoch:>9.3f}{args.images / epoch:>10.0f}"
                  f"{base / epoch:>12.2f}x{compile_s}")
    if EVAL_SECONDS:
        print(f"repatlas's test-set evaluation after each epoch (not counted above): median "
              f"{sorted(EVAL_SECONDS)[len(EVAL_SECONDS) // 2]:.3f} s")
    print("vs baseline = baseline epoch time / this epoch time (training only)")


if __name__ == "__main__":
    main()
