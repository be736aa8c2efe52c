"""Aggregate training throughput of k training jobs sharing one device, against one job alone.

What `--resources gpu_slots=k` (workflow/profiles/gpu) buys: each job is its own process, as
Snakemake runs them, training CIFAR ResNet-20 (width 1, batch 128, crop + flip, SGD) with
`repatlas.train.train` on CIFAR-shaped random data, exactly as the train_model rule does. Every
process first trains one warm-up epoch (CUDA context, cuDNN and allocator set-up, torch.compile if
asked), reports ready, and waits; all k then start together and train `--epochs` epochs each.
Aggregate images/s = k × images × epochs / (last job's end − first job's start); the ratio is
against k = 1 measured in the same run. Target (issue 18): >= 3.5x at some k on one H200.

On a CPU the jobs share cores (each pinned to `--threads`), so the ratio is bounded by the free
cores: on a loaded 2-core machine it says only that the bench works.

Usage: python bench/gpu_slots_bench.py [--slots 1 2 4 8] [--device auto] [--images 5000]
       [--epochs 3] [--batch-size 128] [--width 1] [--threads 1] [--compile MODE] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time

import numpy as np

SHAPE, N_CLASSES = (3, 32, 32), 10
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def child(args) -> None:
    """One job: warm up, say "ready", wait for a line on stdin, train, print a JSON line."""
    import torch

    from repatlas.models import build_model
    from repatlas.train import TrainConfig, seed_everything, train

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    x = rng.integers(0, 256, (args.images, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, N_CLASSES, args.images)
    compile_mode = False if args.compile is None else (True if args.compile == "default" else args.compile)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.01, momentum=0.9,
                         weight_decay=1e-4, crop_pad=4, flip=True, seed=args.seed, eval_every=args.epochs,
                         compile=compile_mode)

    def run(cfg):
        seed_everything(cfg.seed)
        net = build_model("resnet", 20, args.width, input_shape=list(SHAPE), n_classes=N_CLASSES)
        return train(net, (x, y), (x[:256], y[:256]), mean=MEAN, std=STD, config=cfg, device=args.device,
                     progress=False, log=lambda line: None)

    run(dataclasses.replace(config, epochs=1, eval_every=1))  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    history = run(config)
    end = time.time()
    print(json.dumps({"start": start, "end": end, "images": args.images * args.epochs,
                      "train_seconds": sum(h["seconds"] for h in history)}), flush=True)


def concurrent(k: int, args) -> dict:
    """Start k jobs, release them together, return their aggregate throughput."""
    cmd = [sys.executable, __file__, "--child", "--device", args.device, "--images", str(args.images),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--width", str(args.width),
           "--threads", str(args.threads)] + (["--compile", args.compile] if args.compile else [])
    procs = [subprocess.Popen(cmd + ["--seed", str(i)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
             for i in range(k)]
    try:
        for p in procs:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a job did not start (said {line!r}); "
                                   f"run it alone to see why: {' '.join(cmd)}")
        for p in procs:  # release all jobs together
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.stdout.readline()) for p in procs]
        for p in procs:
            if p.wait(timeout=60) != 0:
                raise RuntimeError(f"a job failed: {' '.join(cmd)}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    window = max(r["end"] for r in results) - min(r["start"] for r in results)
    images = sum(r["images"] for r in results)
    return {"k": k, "aggregate": images / window,
            "per_job": [r["images"] / r["train_seconds"] for r in results], "window_s": window}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4, 8], help="numbers of concurrent jobs")
    p.add_argument("--device", default="auto")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per job")
    p.add_argument("--compile", default=None, metavar="MODE",
                   help="train.compile of every job (e.g. reduce-overhead)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    import torch

    from repatlas.devices import resolve_device

    dev = resolve_device(args.device)
    args.device = str(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{args.threads} thread(s) per job"
    slots = sorted(set([1, *args.slots]))
    print(f"device: {dev} ({name}); ResNet-20 {args.width}x, batch {args.batch_size}, {args.images} images x "
          f"{args.epochs} epochs per job, compile={args.compile or False}; torch {torch.__version__}")
    print(f"{'jobs':>5}{'aggregate img/s':>17}{'vs 1 job':>10}{'per job img/s':>15}{'window s':>10}")
    rows = []
    for k in slots:
        r = concurrent(k, args)
        rows.append(r)
        ratio = r["aggregate"] / rows[0]["aggregate"]
        print(f"{k:>5}{r['aggregate']:>17.0f}{ratio:>9.2f}x{np.mean(r['per_job']):>15.0f}"
              f"{r['window_s']:>10.1f}", flush=True)
    best = max(rows, key=lambda r: r["aggregate"])
    print(f"best: {best['k']} jobs, {best['aggregate'] / rows[0]['aggregate']:.2f}x one job's throughput "
          "(target >= 3.5x on one H200)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": str(dev), "name": name, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
