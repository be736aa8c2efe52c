"""Do deep and wide ResNets train stably under the training recipe? The first steps on Fashion-MNIST.

Issue 16's acceptance on CPU: ResNet-50 ×4 and ResNet-26 ×4 on Fashion-MNIST n = 1000 (the
class-balanced subset of the pipeline, subset seed 0) at batch 128, lr 0.05 do not diverge over
the first 60 steps and their loss falls at least as fast as ResNet-8 ×4's. The schedule is that of
a `--epochs` (20) run, of which only the first `--steps` are taken, with the pipeline's augmentation
of the GPU run that motivated it (crop pad 2 + flip), SGD momentum 0.9, weight decay 5e-4.

Each step is the one `repatlas.train.train` takes — model from `repatlas.models.build_model`,
optimiser and schedule from `repatlas.train` (`optimiser`, `warmup_steps`), batches and
augmentation from the same seeded generator, `grad_norm` before the step — but the loss and
gradient norm are recorded per step instead of per epoch. The recipe's switches are flags, so one
invocation measures one recipe and `--old` reproduces the recipe before issue 16 (no warmup, the
residual branches' last BN scale starting at 1).

Printed per model and seed: the first step whose loss is not finite (diverged), the initial loss,
the mean loss over steps 1–10 and over the last 10 steps, the largest gradient norm, and at the
end, the verdict of the acceptance test: every model finite, and each model's mean loss over the
last 10 steps (averaged over seeds) ≤ the reference model's (`--reference`, d8-w4). No timing is
asserted; wall seconds per step are printed (2 idle CPU cores: ResNet-50 ×4 takes ~25 s per step),
and process CPU milliseconds per training image, which a loaded machine inflates less (with
`--threads 1` it is the single-core cost: the per-model cost estimate of configs/fashion-mnist-gpu.yaml).

Usage: python bench/recipe_bench.py [--models d8-w4 d26-w4 d50-w4] [--seeds 0] [--steps 60]
       [--old] [--warmup-epochs 1] [--residual-bn-init zero] [--shortcut-bn] [--init-mode fan_out]
       [--bf16] [--threads 2] [--json out.json]
       python bench/recipe_bench.py --merge a.json b.json ...   # report separate runs together
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from repatlas.data import load_dataset, standardise, subset_indices
from repatlas.models import build_model, resnet
from repatlas.train import TrainConfig, augment, grad_norm, optimiser, seed_everything, warmup_steps


def fashion_subset(n: int):
    """(x_train float32 padded-ready, y_train, mean, std) of the pipeline's class-balanced subset."""
    data = load_dataset("fashion_mnist")
    idx = subset_indices(data["y_train"], n, 0)
    mean = [float(data["x_train"].mean() / 255.0)]
    std = [float(data["x_train"].std() / 255.0)]
    return standardise(data["x_train"][idx], mean, std), torch.as_tensor(data["y_train"][idx])


def run(depth, width, seed, x, y, cfg: TrainConfig, steps: int, options: dict, bf16: bool, label: str = ""):
    seed_everything(seed)
    model = build_model("resnet", depth, width, input_shape=list(x.shape[1:]), n_classes=10, **options)
    model.train()
    steps_per_epoch = math.ceil(len(y) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    opt, sched = optimiser(model, cfg, total, warmup_steps(cfg, steps_per_epoch, total))
    gen = torch.Generator().manual_seed(seed)
    p = cfg.crop_pad
    x_pad = F.pad(x, (p, p, p, p), mode="reflect") if p else x
    losses, norms, lrs = [], [], []
    t0, c0 = time.perf_counter(), time.process_time()
    while len(losses) < steps:
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb = augment(x_pad[idx], p, cfg.flip, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(xb)
                loss = F.cross_entropy(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norms.append(float(grad_norm(model)))
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            losses.append(loss.item())
            if len(losses) % 10 == 0:  # progress on stderr: deep models take minutes per 10 steps
                print(f"  {label} step {len(losses)}: loss {np.mean(losses[-10:]):.3f}, "
                      f"|g| {max(norms[-10:]):.2f}", file=sys.stderr, flush=True)
            if not math.isfinite(losses[-1]) or len(losses) == steps:
                break
        if not math.isfinite(losses[-1]):
            break
    seconds = (time.perf_counter() - t0) / len(losses)
    cpu = (time.process_time() - c0) / len(losses)
    return {"losses": losses, "grad_norms": norms, "lrs": lrs, "seconds_per_step": seconds,
            "cpu_seconds_per_image": cpu / cfg.batch_size}


def summary(record: dict, steps: int) -> dict:
    losses = np.asarray(record["losses"])
    finite = np.isfinite(losses)
    diverged = None if finite.all() and len(losses) == steps else int(np.argmin(finite)) + 1
    return {
        "diverged_at": diverged,
        "initial": float(losses[0]),
        "first10": float(losses[:10].mean()),
        "last10": float(losses[-10:].mean()) if diverged is None else float("nan"),
        "max_grad_norm": float(np.nanmax(record["grad_norms"])),
        "seconds_per_step": record["seconds_per_step"],
        "cpu_ms_per_image": 1000 * record["cpu_seconds_per_image"],
    }


def report(records: dict, reference: str) -> bool:
    """Print the mean last-10-step loss per model (seeds averaged) and the acceptance verdict."""
    means = {}
    for key, r in records.items():
        means.setdefault(key.rsplit("-s", 1)[0], []).append(r["last10"])
    means = {m: float(np.mean(v)) for m, v in means.items()}
    ok = all(r["diverged_at"] is None for r in records.values())
    print("\nmean loss over the last 10 steps (seeds averaged): "
          + ", ".join(f"{m} {v:.3f}" for m, v in means.items()))
    if reference in means:
        ref = means[reference]
        for m, v in means.items():
            if m != reference:
                ok &= bool(v <= ref)
                print(f"  {m}: {v:.3f} {'<=' if v <= ref else '>'} {reference} {ref:.3f}")
    else:
        ok = False
        print(f"  reference {reference} was not run")
    print(f"acceptance (no divergence, loss falls at least as fast as {reference}): "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


HEADER = (f"{'model':8} {'seed':>4} {'diverged':>8} {'initial':>8} {'steps1-10':>9} {'last10':>8} "
          f"{'max|g|':>8} {'s/step':>7} {'cpu ms/img':>10}")


def row(key: str, s: dict) -> str:
    name, seed = key.rsplit("-s", 1)
    return (f"{name:8} {seed:>4} {str(s['diverged_at']):>8} {s['initial']:8.3f} {s['first10']:9.3f} "
            f"{s['last10']:8.3f} {s['max_grad_norm']:8.2f} {s['seconds_per_step']:7.2f} "
            f"{s['cpu_ms_per_image']:10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["d8-w4", "d26-w4", "d50-w4"])
    ap.add_argument("--reference", default="d8-w4")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20, help="length of the run whose schedule is followed")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--old", action="store_true",
                    help="the recipe before issue 16: no warmup, residual BN scale 1")
    ap.add_argument("--warmup-epochs", type=float, default=None)
    ap.add_argument("--residual-bn-init", choices=["one", "inv_sqrt_blocks", "zero"], default=None,
                    help="initial scale of each residual branch's last BN (default: the library's)")
    ap.add_argument("--shortcut-bn", action="store_true")
    ap.add_argument("--init-mode", default="fan_in", choices=["fan_in", "fan_out"])
    ap.add_argument("--bf16", action="store_true",
                    help="bf16 autocast on the CPU (as the GPU path does on CUDA)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write per-step records here")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="measure nothing: report the records of earlier runs' --json files together "
                         "(e.g. one process per model, run in parallel)")
    args = ap.parse_args()
    if args.merge:
        records = {}
        for path in args.merge:
            with open(path) as fh:
                saved = json.load(fh)
            print(f"{path}: warmup_epochs={saved['warmup_epochs']} {saved['options']}")
            records.update(saved["records"])
        print(HEADER)
        for key, r in records.items():
            print(row(key, r))
        report(records, args.reference)
        return
    torch.set_num_threads(args.threads)

    warmup = (args.warmup_epochs if args.warmup_epochs is not None
              else (0.0 if args.old else TrainConfig.warmup_epochs))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=0.9,
                      weight_decay=5e-4, crop_pad=2, flip=True, warmup_epochs=warmup)
    library_default = inspect.signature(resnet).parameters["residual_bn_init"].default
    options = {"residual_bn_init": args.residual_bn_init or ("one" if args.old else library_default),
               "shortcut_bn": args.shortcut_bn, "init_mode": args.init_mode}
    print(f"recipe: warmup_epochs={warmup} {options} bf16={args.bf16}; n={args.n} batch={args.batch_size} "
          f"lr={args.lr} steps={args.steps} of a {args.epochs}-epoch schedule; threads={args.threads}")
    x, y = fashion_subset(args.n)
    records = {}
    print(HEADER, flush=True)
    for name in args.models:
        depth, width = (int(v) for v in re.fullmatch(r"d(\d+)-w(\d+)", name).groups())
        for seed in args.seeds:
            record = run(depth, width, seed, x, y, cfg, args.steps, options, args.bf16,
                         label=f"{name}-s{seed}")
            key = f"{name}-s{seed}"
            records[key] = {**record, **summary(record, args.steps)}
            print(row(key, records[key]), flush=True)
            if args.json:  # after every model: a killed run keeps what it measured
                with open(args.json, "w") as fh:
                    json.dump({"args": vars(args), "options": options, "warmup_epochs": warmup,
                               "records": records}, fh)
    report(records, args.reference)


if __name__ == "__main__":
    main()
