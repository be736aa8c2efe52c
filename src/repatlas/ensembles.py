"""Ensembles, knowledge distillation and self-distillation (Allen-Zhu & Li, ICLR 2023).

The paper (arXiv 2012.09816) claims that, with only the random seed differing between members,
(i) an ensemble beats its single models, (ii) training the *average* of N networks end to end as
one model does not help, (iii) distilling the ensemble into one fresh model keeps most of the
gain, (iv) self-distillation (one model into a fresh model of the same size) helps less but still
helps, and (v) in the NTK / random-feature regime ensembling helps but distillation does not.
Its explanation is "multi-view" data: every class has several features, each network picks up a
seed-dependent subset of them, and an ensemble (or a student of it) collects them all.

This module provides the pieces to test those claims at small scale:

* `ensemble_probs`, `ensemble_accuracy`, `ensemble_accuracy_curve` — ensemble predictions
  (average of member softmax probabilities) and accuracy as a function of ensemble size.
* `kd_loss` — Hinton knowledge distillation, `teacher_distribution` — the teacher targets.
* `train_classifier` — one training loop (SGD + momentum, per-step cosine schedule) for already
  standardised float tensors, with optional per-example KD targets.
* `AverageOfModels` — "training the average": the mean of N sub-networks' logits, one model.
* `linearize`, `LinearizedModel`, `RandomFeatures` — the NTK (first-order Taylor expansion around
  initialisation) and random-features (only the last layer trained) regimes.
* `drop_units`, `dropped_accuracy` — zero a random fraction of a layer's units/channels.
* `compare_methods`, `summarise` — the whole comparison (single / ensemble / KD / self-KD /
  average) for a model factory, in the "feature", "ntk" or "rf" regime.
* `methods_study`, `dropping_study`, `study_setup`, `run_methods`, `run_dropping`,
  `summary_table` — the pipeline's jobs: the study dataset with MLPs, or the paper's multi-view
  patch data with its two-layer CNN (`repatlas.multiview`) at a single-view fraction μ;
  `repatlas.ensemble_claims` turns the summary into the paper's predictions and verdicts.

Not published by the paper, chosen here: Hinton KD with temperature T = 4 and weight alpha = 0.9
on the T²-scaled KL term (0.1 on cross-entropy with the labels). On the dataset: SGD with
momentum 0.9, weight decay 5e-4 and a per-step cosine learning-rate schedule decaying to zero (as
in `repatlas.train`); on the multi-view data: full-batch gradient descent (the paper's
algorithm) with the same cosine decay. docs/ensembles.md lists the choices and their reasons.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn
from torch.func import functional_call, jvp

from repatlas.devices import resolve_device
from repatlas.ensemble_claims import judge
from repatlas.models import mlp
from repatlas.multiview import PatchCNN, multiview_features, multiview_patches, views_learned
from repatlas.train import optimiser_step, sgd_optimiser

DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9
METHODS = ("single", "ensemble", "kd", "self_kd", "average")
REGIMES = ("feature", "ntk", "rf")


# ----------------------------------------------------------------------------- ensemble predictions


def _as_logit_stack(logits_list) -> np.ndarray:
    """(M, N, C) float64 array from a list of (N, C) arrays/tensors or an (M, N, C) array."""
    if isinstance(logits_list, torch.Tensor):
        arr = logits_list.detach().cpu().double().numpy()
    elif isinstance(logits_list, np.ndarray):
        arr = logits_list.astype(np.float64, copy=False)
    else:
        arr = np.stack(
            [
                a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor)
                else np.asarray(a, np.float64)
                for a in logits_list
            ]
        )
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"expected M logit arrays of shape (N, C); got an array of shape {arr.shape}")
    return arr


def softmax(logits, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax(logits / temperature) in float64 numpy."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def ensemble_probs(logits_list, *, temperature: float = 1.0, combine: str = "probs") -> np.ndarray:
    """The ensemble's predictive distribution, (N, C).

    `logits_list`: M member logit arrays of shape (N, C) (a list, or an (M, N, C) array/tensor).
    combine="probs" (default): the mean over members of softmax(logits / T) — the ensemble
    prediction used everywhere in this module (accuracy, KD targets).
    combine="logits": softmax(mean logits / T), the "average of outputs" of the paper's theory.
    The two usually, but not always, have the same argmax; averaging probabilities is the usual
    deep-ensemble convention and gives a proper mixture of the members' distributions.
    """
    z = _as_logit_stack(logits_list)
    if combine == "probs":
        return softmax(z, temperature).mean(axis=0)
    if combine == "logits":
        return softmax(z.mean(axis=0), temperature)
    raise ValueError(f"combine must be 'probs' or 'logits'; got {combine!r}")


def teacher_distribution(teacher_logits, temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """KD targets at temperature T: the mean over members of softmax(member logits / T).

    For an ensemble teacher this averages the *tempered probabilities* of the members, so at T = 1
    the targets are exactly the ensemble prediction (`ensemble_probs`), and for every T they are a
    mixture of the members' softened distributions. (The alternative, softmax(mean logits / T),
    is available as `ensemble_probs(..., combine="logits")`; it is sharper where members
    disagree.) A single teacher is an ensemble of one: (N, C) logits give softmax(logits / T).
    """
    return ensemble_probs(teacher_logits, temperature=temperature, combine="probs")


def ensemble_accuracy(logits_list, labels) -> float:
    """Accuracy of the argmax of the ensemble's mean probabilities."""
    return float((ensemble_probs(logits_list).argmax(1) == np.asarray(labels)).mean())


def ensemble_accuracy_curve(logits_list, labels, *, orders: int | str = 100, seed: int = 0):
    """Accuracy of an ensemble of k members, k = 1..M, averaged over orderings of the members.

    Each ordering is a permutation of the M members; the size-k ensemble is its first k members
    (mean of their softmax probabilities). orders=int: that many uniformly random orderings
    (`numpy.random.default_rng(seed)`). orders="all": the exact expectation over a uniformly
    random ordering, i.e. the mean over all k-subsets (the first k of a random permutation form a
    uniform k-subset); costs 2^M - 1 ensemble evaluations.

    Returns an `xarray.DataArray` over dim "size" (1..M), with the ensemble-of-k accuracy.
    """
    probs = softmax(_as_logit_stack(logits_list))  # (M, N, C)
    labels = np.asarray(labels)
    m = probs.shape[0]
    if orders == "all":
        acc = np.array(
            [
                np.mean(
                    [
                        (probs[list(sub)].sum(0).argmax(1) == labels).mean()
                        for sub in itertools.combinations(range(m), k)
                    ]
                )
                for k in range(1, m + 1)
            ]
        )
    elif isinstance(orders, (int, np.integer)) and orders >= 1:
        rng = np.random.default_rng(seed)
        acc = np.zeros(m)
        for _ in range(int(orders)):
            cum = np.cumsum(probs[rng.permutation(m)], axis=0)  # (M, N, C): prefix sums
            acc += (cum.argmax(2) == labels[None]).mean(1)
        acc /= int(orders)
    else:
        raise ValueError(f"orders must be a positive int or 'all'; got {orders!r}")
    return xr.DataArray(
        acc, dims=["size"], coords={"size": np.arange(1, m + 1)}, name="accuracy",
        attrs={"orders": str(orders), "seed": seed},
    )


# ----------------------------------------------------------------------------- knowledge distillation


def kd_loss(
    student_logits: torch.Tensor,
    teacher,
    labels=None,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    teacher_kind: str = "auto",
) -> torch.Tensor:
    """Hinton knowledge-distillation loss, averaged over the batch.

        loss = alpha · T² · KL(p_T ‖ q_T) + (1 − alpha) · CE(student_logits, labels)

    with q_T = softmax(student_logits / T) and p_T the teacher's distribution at temperature T.
    The T² factor keeps the soft-target gradients on the same scale as the hard-label ones when T
    changes (Hinton et al. 2015). Defaults: T = 4, alpha = 0.9.

    `teacher` is one of (teacher_kind="auto" decides by shape and content):
      * an (M, B, C) stack of ensemble-member logits → p_T = mean_m softmax(logits_m / T)
        (the average of the members' tempered probabilities; see `teacher_distribution`);
      * (B, C) teacher logits → p_T = softmax(logits / T);
      * (B, C) probabilities already at temperature T (as precomputed by
        `teacher_distribution(logits, T)`); "auto" takes a 2-D teacher for probabilities when
        it is non-negative and its rows sum to 1 (to 1e-4). Pass teacher_kind="probs" or
        "logits" to say which.
    `labels` may be None only when alpha == 1 (pure distillation).
    """
    s = student_logits
    t = teacher if isinstance(teacher, torch.Tensor) else torch.as_tensor(np.asarray(teacher))
    t = t.to(device=s.device, dtype=s.dtype)
    if teacher_kind == "auto":
        if t.ndim == 3:
            teacher_kind = "logits"
        elif t.ndim == 2 and bool((t >= 0).all()) and bool(((t.sum(1) - 1).abs() < 1e-4).all()):
            teacher_kind = "probs"
        else:
            teacher_kind = "logits"
    if teacher_kind == "logits":
        members = t if t.ndim == 3 else t[None]
        p = torch.softmax(members / temperature, dim=-1).mean(0)
    elif teacher_kind == "probs":
        p = t
    else:
        raise ValueError(f"teacher_kind must be 'auto', 'probs' or 'logits'; got {teacher_kind!r}")
    if p.shape != s.shape:
        raise ValueError(f"teacher distribution shape {tuple(p.shape)} != student logits {tuple(s.shape)}")
    p = p.detach()
    log_q = F.log_softmax(s / temperature, dim=1)
    kl = (torch.special.xlogy(p, p) - p * log_q).sum(1).mean()
    loss = alpha * temperature**2 * kl
    if alpha != 1:
        if labels is None:
            raise ValueError("labels are needed unless alpha == 1")
        y = torch.as_tensor(labels, dtype=torch.long, device=s.device)
        loss = loss + (1 - alpha) * F.cross_entropy(s, y)
    return loss


# ----------------------------------------------------------------------------- training


def _to_tensor(a, dtype=torch.float32) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def _model_device(model: nn.Module) -> torch.device:
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def predict_logits(model: nn.Module, x, *, batch_size: int = 1024) -> np.ndarray:
    """Logits (N, C) of a model on standardised inputs, in eval mode, as float64 numpy."""
    model.eval()
    dev = _model_device(model)
    x = _to_tensor(x)
    logits = [model(x[i : i + batch_size].to(dev)).double() for i in range(0, len(x), batch_size)]
    return torch.cat(logits).cpu().numpy()  # one read back to the host


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    z = torch.as_tensor(predict_logits(model, x))
    return F.cross_entropy(z, y.cpu()).item(), (z.argmax(1) == y.cpu()).double().mean().item()


def train_classifier(
    model: nn.Module,
    x,
    y,
    x_test=None,
    y_test=None,
    *,
    epochs: int = 20,
    batch_size: int | None = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
    teacher_probs=None,
    teacher_logits=None,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    loss_fn: Callable | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train `model` in place on standardised float inputs; return (model, per-epoch history).

    Optimiser: SGD (momentum, weight decay on every trainable parameter) with a per-step cosine
    schedule from `lr` to 0 over all `epochs`; batches from a seeded permutation each epoch (the
    last batch may be smaller; batch_size None: the whole set, i.e. gradient descent). The model's
    initialisation is the caller's business (seed it before building the model); `seed` fixes the
    batch order and any randomness inside the model (dropout), without disturbing the global torch
    RNG. Deterministic on CPU per seed.
    Parameters with requires_grad=False are not trained (see `RandomFeatures`).

    Loss: cross-entropy, or with KD targets `kd_loss(out, targets, y, temperature, alpha)`:
      * `teacher_probs`: (N, C) teacher distribution *at temperature `temperature`*, aligned
        with `x` (compute it once with `teacher_distribution(teacher_logits, temperature)`);
      * `teacher_logits`: (N, C) or (M, N, C) logits on `x`, turned into those targets here.
    `loss_fn(logits, labels, index)` overrides both (index: the batch's example indices).

    History records per epoch: epoch, lr (after the epoch), train_loss (the objective, averaged
    over the epoch's batches in train mode), train_acc (same batches), and when a test set is
    given test_loss (cross-entropy) and test_acc in eval mode.
    """
    if teacher_probs is not None and teacher_logits is not None:
        raise ValueError("pass teacher_probs or teacher_logits, not both")
    dev = _model_device(model)
    x_t = _to_tensor(x).to(dev)
    y_t = _to_tensor(y, torch.long).to(dev)
    n = len(y_t)
    batch_size = n if batch_size is None else batch_size
    if len(x_t) != n:
        raise ValueError(f"x has {len(x_t)} examples but y has {n}")
    targets = None
    if teacher_logits is not None:
        teacher_probs = teacher_distribution(teacher_logits, temperature)
    if teacher_probs is not None:
        targets = _to_tensor(teacher_probs).to(dev)
        if len(targets) != n:
            raise ValueError(f"teacher targets have {len(targets)} rows but x has {n} examples")
    has_test = x_test is not None and y_test is not None
    if has_test:
        x_te, y_te = _to_tensor(x_test).to(dev), _to_tensor(y_test, torch.long).to(dev)

    params = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, epochs * steps_per_epoch)
    # the project's one recipe (repatlas.train): here without warmup, cosine from lr to 0 over all steps
    opt, sched = sgd_optimiser(params, lr=lr, momentum=momentum, weight_decay=weight_decay, total_steps=total)
    gen = torch.Generator(device="cpu").manual_seed(seed)  # the same batch order on every device
    full = batch_size >= n  # one batch: no shuffle, and no copy from indexing the whole set
    has_t = targets is not None
    history = []
    cuda_ids = ([dev.index if dev.index is not None else torch.cuda.current_device()]
                if dev.type == "cuda" else [])
    with torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            order = (torch.arange(n, device=dev) if full
                     else torch.randperm(n, generator=gen, device="cpu").to(dev))
            # summed on the device and read once per epoch: no step waits for the device
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            correct = torch.zeros((), dtype=torch.long, device=dev)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                xb, yb, tb = ((x_t, y_t, targets) if full
                              else (x_t[idx], y_t[idx], targets[idx] if has_t else None))
                out = model(xb)
                if loss_fn is not None:
                    loss = loss_fn(out, yb, idx)
                elif has_t:
                    loss = kd_loss(out, tb, yb, temperature=temperature, alpha=alpha, teacher_kind="probs")
                else:
                    loss = F.cross_entropy(out, yb)
                optimiser_step(loss, opt, sched)
                loss_sum += loss.detach().double() * len(idx)
                correct += (out.argmax(1) == yb).sum()
            record = {
                "epoch": epoch,
                "lr": opt.param_groups[0]["lr"],
                "train_loss": loss_sum.item() / n,
                "train_acc": correct.item() / n,
            }
            if not math.isfinite(record["train_loss"]):
                raise FloatingPointError(f"training loss is {record['train_loss']} at epoch {epoch}")
            if has_test:
                record["test_loss"], record["test_acc"] = _evaluate(model, x_te, y_te)
            history.append(record)
    return model, history


# ----------------------------------------------------------------------------- model wrappers


class AverageOfModels(nn.Module):
    """"Training the average": logits = mean of the N sub-networks' logits, trained as one model.

    Unlike an ensemble (members trained independently, probabilities averaged afterwards), the
    loss is applied to the averaged logits, so the members are trained jointly.
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        if len(models) == 0:
            raise ValueError("AverageOfModels needs at least one sub-network")
        self.members = nn.ModuleList(models)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(0)


_JVP_READY = False


def _prepare_jvp() -> None:
    """Run one trivial jvp, so that torch's one-time lazy set-up of forward-mode AD (which emits
    a batch of `torch.jit.script` DeprecationWarnings from torch's own code) happens silently."""
    global _JVP_READY
    if not _JVP_READY:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
            jvp(torch.sin, (torch.zeros(1, device="cpu"),), (torch.ones(1, device="cpu"),))
        _JVP_READY = True


def _frozen_copy(model: nn.Module) -> nn.Module:
    base = copy.deepcopy(model).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    return base


def linearize(model: nn.Module, params0: dict | None = None) -> Callable:
    """First-order Taylor expansion of `model` in its parameters around `params0`.

    Returns f_lin(params, x) = f(θ0, x) + J(θ0, x)(θ − θ0), evaluated with one forward-mode
    pass (`torch.func.jvp` of `torch.func.functional_call`), where `params` maps every parameter
    name of `model` to a tensor θ. `params0` defaults to a detached copy of the model's current
    parameters; buffers stay at their current values and the network is evaluated in eval mode
    (so BatchNorm uses its running statistics — the linearisation is meant for BN-free nets).
    The result is differentiable in `params` (reverse-over-forward).
    """
    _prepare_jvp()
    base = _frozen_copy(model)
    if params0 is None:
        params0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    params0 = {k: v.detach() for k, v in params0.items()}
    buffers = {k: v.detach() for k, v in base.named_buffers()}

    def f_lin(params: dict, x):
        delta = {k: params[k] - params0[k] for k in params0}
        f = lambda p: functional_call(base, {**p, **buffers}, (x,))  # noqa: E731
        out, dout = jvp(f, (params0,), (delta,))
        return out + dout

    f_lin.params0 = params0
    return f_lin


class LinearizedModel(nn.Module):
    """The network linearised around its initialisation, as a trainable module (NTK regime).

    Trainable parameters: θ, one tensor per parameter of `model`, initialised at θ0 (a copy of the
    model's current parameters); forward: f(θ0, x) + J(θ0, x)(θ − θ0). The model is linear in θ,
    so any optimiser on it is (stochastic) gradient descent on a linear model with the network's
    tangent features J(θ0, x). Weight decay acts on θ exactly as on the network's weights (pulls
    them to 0), so the same optimiser settings mean the same thing in both regimes.
    θ0 and the model's buffers are stored as buffers (they follow `.to(device)`); the network is
    evaluated in eval mode, as in `linearize`. `parameter_dict()` gives θ by the network's names.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        _prepare_jvp()
        base = _frozen_copy(model)
        object.__setattr__(self, "_base", base)  # not a submodule: its weights are never used
        self._pnames = [k for k, _ in base.named_parameters()]
        self._bnames = [k for k, _ in base.named_buffers()]
        self.theta = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in base.parameters()])
        for i, p in enumerate(base.parameters()):
            self.register_buffer(f"theta0_{i}", p.detach().clone())
        for i, b in enumerate(base.buffers()):
            self.register_buffer(f"base_buffer_{i}", b.detach().clone())

    def parameter_dict(self) -> dict:
        return dict(zip(self._pnames, self.theta))

    def params0(self) -> dict:
        return {k: getattr(self, f"theta0_{i}") for i, k in enumerate(self._pnames)}

    def forward(self, x):
        p0 = self.params0()
        delta = {k: th - p0[k] for k, th in zip(self._pnames, self.theta)}
        buffers = {k: getattr(self, f"base_buffer_{i}") for i, k in enumerate(self._bnames)}
        f = lambda p: functional_call(self._base, {**p, **buffers}, (x,))  # noqa: E731
        out, dout = jvp(f, (p0,), (delta,))
        return out + dout


class RandomFeatures(nn.Module):
    """Random-features regime: the network with every parameter frozen at initialisation except
    those of the last child module (`trainable`, default: the last top-level child, e.g. `logits`
    of `repatlas.models.mlp`). Only that layer is trained on the random features below it."""

    def __init__(self, model: nn.Module, trainable: str | None = None):
        super().__init__()
        self.net = copy.deepcopy(model)
        if trainable is None:
            trainable = list(dict(self.net.named_children()))[-1]
        self.trainable = trainable
        for name, p in self.net.named_parameters():
            p.requires_grad_(name == trainable or name.startswith(trainable + "."))
        if not any(p.requires_grad for p in self.net.parameters()):
            raise ValueError(f"no parameters under {trainable!r}")

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()  # frozen features: no BN-statistics updates, no dropout
        return self

    def forward(self, x):
        return self.net(x)


# ----------------------------------------------------------------------------- dropping units


def _hookable(model: nn.Module) -> nn.Module:
    """The module whose submodules carry the network's layer names (unwraps NTK / RF wrappers)."""
    if isinstance(model, LinearizedModel):
        return model._base  # functional_call runs its modules, so hooks on them fire
    if isinstance(model, RandomFeatures):
        return model.net
    return model


class DropUnits:
    """A forward hook zeroing a fixed random subset of a layer's output units / channels.

    The layer's output is (B, units) or (B, channels, ...); round(fraction · units) of the
    indices along dim 1 are zeroed (no rescaling), the same ones for every input, drawn with
    `numpy.random.default_rng(seed)` when the layer first runs. Active from construction until
    `remove()`; also a context manager (removed on exit). For a `LinearizedModel` / `RandomFeatures`
    the layer is named as in the wrapped network (in the NTK case the mask then applies to the
    linearised function: both f(θ0, x) and the tangent term).
    """

    def __init__(self, model: nn.Module, layer_name: str, fraction: float, *, seed: int = 0):
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be in [0, 1]; got {fraction}")
        self.fraction, self.seed = fraction, seed
        self.mask: torch.Tensor | None = None
        self.dropped: np.ndarray | None = None
        layer = _hookable(model).get_submodule(layer_name)
        self._handle = layer.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        units = output.shape[1]
        if self.mask is None or self.mask.shape[0] != units:
            rng = np.random.default_rng(self.seed)
            self.dropped = np.sort(rng.permutation(units)[: int(round(self.fraction * units))])
            mask = torch.ones(units, device=output.device)
            mask[torch.as_tensor(self.dropped, dtype=torch.long, device=output.device)] = 0
            self.mask = mask
        shape = (1, units) + (1,) * (output.ndim - 2)
        return output * self.mask.to(output.device, output.dtype).view(shape)

    def remove(self) -> None:
        self._handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def drop_units(model: nn.Module, layer_name: str, fraction: float, *, seed: int = 0) -> DropUnits:
    """Zero a random `fraction` of `layer_name`'s output units/channels (see `DropUnits`).

    Use as `with drop_units(model, "layer1", 0.5, seed=0): ...` or keep the returned object and
    call `.remove()`.
    """
    return DropUnits(model, layer_name, fraction, seed=seed)


def dropped_accuracy(
    models: Sequence[nn.Module], x, y, layer: str, fractions: Sequence[float], seed: int = 0
) -> dict:
    """Accuracy of each model and of their ensemble with `layer`'s units partly zeroed.

    Member i drops its own random units (seed `seed + i`). Returns
    {fraction: {"single": [acc of each model], "single_mean": mean, "ensemble": accuracy of the
    mean probabilities of the dropped members}}.
    """
    y = np.asarray(y)
    result = {}
    for frac in fractions:
        logits = []
        for i, m in enumerate(models):
            with drop_units(m, layer, frac, seed=seed + i):
                logits.append(predict_logits(m, x))
        single = [float((z.argmax(1) == y).mean()) for z in logits]
        result[float(frac)] = {
            "single": single,
            "single_mean": float(np.mean(single)),
            "ensemble": ensemble_accuracy(logits, y),
        }
    return result


# ----------------------------------------------------------------------------- the comparison


def _build(factory: Callable[[], nn.Module], seed: int, regime: str) -> nn.Module:
    """A fresh network from `factory` with initialisation seed `seed`, wrapped for `regime`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = factory()
    if regime == "feature":
        return net
    if regime == "ntk":
        return LinearizedModel(net)
    if regime == "rf":
        return RandomFeatures(net)
    raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")


def compare_methods(
    x_train,
    y_train,
    x_test,
    y_test,
    model_factory: Callable[[], nn.Module],
    *,
    n_seeds: int = 5,
    students: int | None = None,
    regime: str = "feature",
    epochs: int = 20,
    kd_epochs: int | None = None,
    batch_size: int | None = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    n_average: int = 1,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    test_subsets: dict | None = None,
    describe: Callable[[nn.Module], dict] | None = None,
):
    """Single models vs ensemble vs KD vs self-KD vs training the average, on given data.

    Inputs are standardised float arrays; `model_factory()` builds a fresh network (it is called
    under `torch.manual_seed(init seed)`). Every trained network is the factory's network in
    the "feature" regime, its `LinearizedModel` in "ntk", its `RandomFeatures` in "rf". With
    s = seed and N = n_seeds:
      * single: N networks, init seeds s..s+N−1 (also their batch-order seeds), cross-entropy;
      * ensemble: mean softmax probabilities of those N;
      * kd: `students` fresh students (default N; init seeds s+1000+i) trained with `kd_loss`
        on the ensemble's targets at temperature T (mean of members' softmax(logits/T) on the
        training set);
      * self_kd: `students` fresh students (init seeds s+2000+i), student i distilled from
        member i alone (students ≤ N);
      * average: `n_average` `AverageOfModels` of N sub-networks (init seeds s+3000+j·N+i),
        trained end to end with cross-entropy at step size N·lr: the mean over N hands each
        sub-network 1/N of the gradient a lone network gets, so at lr its features would grow
        N× slower (measured on the multi-view data at lr: 3 of 20 views learned in 400 steps,
        test error 0.54 at μ = 0.1 against 0.13 for single networks).
    Students train for `kd_epochs` (default `epochs`) with the same optimiser settings;
    batch_size None is full-batch gradient descent.

    Returns a long-format pandas DataFrame, one row per trained model or ensemble, columns:
    method, member, init_seed, n_members, train_acc, test_acc, test_loss, seconds, plus
    `<name>_acc` (accuracy on the test examples of mask `test_subsets[name]`, e.g. the
    single-view ones) and the columns of `describe(model)` for every trained model (NaN on the
    ensemble's row). `df.attrs` holds the settings, the ensemble's test logits per member
    ("member_test_logits", (N, n_test, C)) and the total time.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")
    dev = resolve_device(device)
    log = log or (lambda s: None)
    kd_epochs = epochs if kd_epochs is None else kd_epochs
    students = n_seeds if students is None else students
    if not 0 <= students <= n_seeds:
        raise ValueError(f"students must be between 0 and n_seeds = {n_seeds}; got {students}")
    subsets = {k: np.asarray(v, dtype=bool) for k, v in (test_subsets or {}).items()}
    opt = dict(batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay)
    x_tr, y_tr = _to_tensor(x_train), np.asarray(y_train)
    x_te, y_te = _to_tensor(x_test), np.asarray(y_test)
    rows = []
    t_all = time.perf_counter()

    def fit(init_seed, n_epochs, build=None, lr_scale=1, **kw):
        t0 = time.perf_counter()
        model = (build() if build else _build(model_factory, init_seed, regime)).to(dev)
        train_classifier(model, x_tr, y_tr, epochs=n_epochs, seed=init_seed, **{**opt, "lr": lr * lr_scale},
                         **kw)
        z_tr, z_te = predict_logits(model, x_tr), predict_logits(model, x_te)
        return model, z_tr, z_te, time.perf_counter() - t0

    def row(method, member, init_seed, n_members, z_tr, z_te, seconds, model=None):
        p_te = ensemble_probs(z_te)
        hit = p_te.argmax(1) == y_te
        rows.append({
            "method": method, "member": member, "init_seed": init_seed, "n_members": n_members,
            "train_acc": ensemble_accuracy(z_tr, y_tr), "test_acc": float(hit.mean()),
            "test_loss": float(-np.log(np.clip(p_te[np.arange(len(y_te)), y_te], 1e-300, None)).mean()),
            "seconds": seconds,
            **{f"{name}_acc": float(hit[mask].mean()) if mask.any() else np.nan
               for name, mask in subsets.items()},
            **(describe(model) if describe is not None and model is not None else {}),
        })
        log(f"{regime} {method} member={member} test_acc={rows[-1]['test_acc']:.4f}")

    members_tr, members_te, times = [], [], []
    for i in range(n_seeds):
        model, z_tr, z_te, sec = fit(seed + i, epochs)
        members_tr.append(z_tr), members_te.append(z_te), times.append(sec)
        row("single", i, seed + i, 1, z_tr, z_te, sec, model)
    row("ensemble", 0, -1, n_seeds, np.stack(members_tr), np.stack(members_te), float(sum(times)))

    ens_targets = teacher_distribution(np.stack(members_tr), temperature)
    for i in range(students):
        s = seed + 1000 + i
        model, z_tr, z_te, sec = fit(s, kd_epochs, teacher_probs=ens_targets, temperature=temperature,
                                     alpha=alpha)
        row("kd", i, s, 1, z_tr, z_te, sec, model)
    for i in range(students):
        s = seed + 2000 + i
        targets = teacher_distribution(members_tr[i], temperature)
        model, z_tr, z_te, sec = fit(s, kd_epochs, teacher_probs=targets, temperature=temperature,
                                     alpha=alpha)
        row("self_kd", i, s, 1, z_tr, z_te, sec, model)
    for j in range(n_average):
        seeds = [seed + 3000 + j * n_seeds + i for i in range(n_seeds)]
        build = lambda: AverageOfModels([_build(model_factory, s, regime) for s in seeds])  # noqa: E731
        model, z_tr, z_te, sec = fit(seeds[0], epochs, build=build, lr_scale=n_seeds)
        row("average", j, seeds[0], n_seeds, z_tr, z_te, sec, model)

    df = pd.DataFrame(rows)
    df.attrs.update({
        "regime": regime, "n_seeds": n_seeds, "students": students, "epochs": epochs,
        "kd_epochs": kd_epochs, "temperature": temperature, "alpha": alpha, "seed": seed, **opt,
        "member_test_logits": np.stack(members_te), "seconds": time.perf_counter() - t_all,
    })
    return df


def summarise(df) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one row) and count of test accuracy per method, in METHODS order."""
    out = df.groupby("method")["test_acc"].agg(["mean", "std", "count"])
    return out.reindex([m for m in METHODS if m in out.index])


# ----------------------------------------------------------------------------- pipeline studies


def methods_study(x_train, y_train, x_test, y_test, model_factory: Callable[[], nn.Module], *, regime: str,
                  n_seeds: int = 5, trials: int = 1, seed: int = 0, test_subsets: dict | None = None,
                  describe: Callable[[nn.Module], dict] | None = None, **options):
    """`compare_methods` repeated `trials` times, as an xarray.Dataset of test errors.

    Trial t runs `compare_methods(..., seed=seed + 10000·t)`: fresh members, students and
    averaged networks on the same data, so the spread over trials is the spread over seeds.
    Variables, over (method, trial, member) — NaN where a method has fewer than n_seeds rows
    (the ensemble and the average have one per trial, KD and self-KD `students`):
      test_error, train_error (1 − accuracy), `<name>_error` for each test subset, and every
      `describe` column;
      ensemble_error (trial, size): test error of an ensemble of k members (mean softmax
      probabilities), k = 1..N, averaged over all k-subsets of the trial's members.
    """
    frames, curves = [], []
    for t in range(trials):
        df = compare_methods(x_train, y_train, x_test, y_test, model_factory, n_seeds=n_seeds, regime=regime,
                             seed=seed + 10000 * t, test_subsets=test_subsets, describe=describe, **options)
        frames.append(df.assign(trial=t))
        orders = "all" if n_seeds <= 10 else 200
        curves.append(1 - ensemble_accuracy_curve(df.attrs["member_test_logits"], y_test, orders=orders,
                                                  seed=seed).values)
    methods = [m for m in METHODS if any(m in set(f["method"]) for f in frames)]
    columns = ["test_acc", "train_acc", *(f"{k}_acc" for k in (test_subsets or {}))]
    extra = [c for c in frames[0].columns if c not in {*columns, "method", "member", "init_seed", "n_members",
                                                        "test_loss", "seconds", "trial"}]
    data = {}
    for col in columns + extra:
        arr = np.full((len(methods), trials, n_seeds), np.nan)
        for f in frames:
            for r in f.itertuples():
                arr[methods.index(r.method), r.trial, r.member] = getattr(r, col)
        name = col[: -len("_acc")] + "_error" if col in columns else col
        data[name] = (("method", "trial", "member"), 1 - arr if col in columns else arr)
    attrs = {k: v for k, v in frames[0].attrs.items() if isinstance(v, (int, float, str)) and k != "seed"}
    seconds = sum(f.attrs["seconds"] for f in frames)
    return xr.Dataset(
        {**data, "ensemble_error": (("trial", "size"), np.array(curves))},
        coords={"method": methods, "trial": np.arange(trials), "member": np.arange(n_seeds),
                "size": np.arange(1, n_seeds + 1)},
        attrs={**attrs, "seconds": seconds, "trials": trials, "seed": seed},
    )


def dropping_study(x_train, y_train, x_test, y_test, model_factory: Callable[[], nn.Module], *, layer: str,
                   fractions, n_seeds: int = 5, seed: int = 0, device: str = "cpu", **options):
    """Train n_seeds networks (init and batch-order seeds seed..seed+N−1, as the single members
    of `compare_methods`) on `device`, zero a random fraction of `layer`'s units in each, and
    compare the members' accuracy with their ensemble's (the multi-view explanation of ensembling)."""
    models = []
    for i in range(n_seeds):
        model = _build(model_factory, seed + i, "feature").to(resolve_device(device))
        train_classifier(model, _to_tensor(x_train), np.asarray(y_train), seed=seed + i, **options)
        models.append(model)
    res = dropped_accuracy(models, _to_tensor(x_test), y_test, layer, fractions, seed=seed)
    fr = [float(f) for f in fractions]
    return xr.Dataset(
        {"single": (("fraction", "member"), np.array([res[f]["single"] for f in fr])),
         "ensemble": (("fraction",), np.array([res[f]["ensemble"] for f in fr]))},
        coords={"fraction": fr, "member": np.arange(n_seeds)},
        attrs={"layer": layer, "seed": seed},
    )


class StudySetup(NamedTuple):
    """What an ensembles job trains on and with: data, network factory, training options."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    factory: Callable[[], nn.Module]
    train: dict
    layer: str  # the layer whose units `dropping_study` zeroes
    test_subsets: dict
    describe: Callable[[nn.Module], dict] | None
    attrs: dict


def _mlp_setup(data, network: dict, train: dict) -> StudySetup:
    x_tr, y_tr, x_te, y_te = data
    in_features, n_classes = int(np.prod(x_tr.shape[1:])), int(max(y_tr.max(), y_te.max()) + 1)
    width, depth = network["width"], network["depth"]
    factory = lambda: mlp(depth, width, in_features=in_features, n_classes=n_classes)  # noqa: E731
    return StudySetup(x_tr, y_tr, x_te, y_te, factory, train, f"layer{depth}", {}, None,
                      {"network": "mlp", "width": width, "depth": depth})


def _multiview_setup(mu: float, data: dict, network: dict, train: dict, regime: str, seed: int) -> StudySetup:
    data = dict(data)
    n_train, n_test = data.pop("n_train"), data.pop("n_test")
    common = dict(single_view_fraction=mu, feature_seed=seed, **data)
    tr = multiview_patches(n_train, seed=seed, **common)
    te = multiview_patches(n_test, seed=seed + 1, **common)
    k, v, dim = data["n_classes"], data["views_per_class"], data["dim"]
    features = multiview_features(k, v, dim, seed)
    net = dict(network)
    ntk_init = net.pop("ntk_init_std")
    if regime == "ntk":  # the lazy limit: linearise where ReLU~' is not ≈ 0 (see the config schema)
        net["init_std"] = ntk_init
    factory = lambda: PatchCNN(k, dim, **net)  # noqa: E731

    def describe(model):
        return {"views_learned": float(views_learned(patch_weights(model), features, knot=net["knot"]).sum())}

    return StudySetup(tr.x, tr.y, te.x, te.y, factory, train, "act", {"single_view": te.single}, describe,
                      {"network": "patch_cnn", "mu": mu, "views_per_class": v, "n_classes": k,
                       "train_single_view": int(tr.single.sum()), "test_single_view": int(te.single.sum())})


def study_setup(data, settings: dict, regime: str, seed: int = 0) -> StudySetup:
    """The data, network and training options of one ensembles job.

    `settings` comes from the workflow (rules/common.smk: `ensembles_settings`): "mu" present
    means the multi-view data at that single-view fraction with the paper's `PatchCNN`
    (`settings["data"]`, `settings["network"]`; `data` is not used), else the study dataset's
    subset, `data` = (x_train, y_train, x_test, y_test) as `repatlas.data.load_classification`
    returns them, with an MLP of `settings["network"]` width/depth.
    `settings["train"]` holds the `train_classifier` options; "ntk_lr" and "ntk_epochs" keys
    replace "lr" and "epochs" (students: "kd_epochs" too) in the NTK regime, where a linearised
    network needs its own step size and converges in fewer steps.
    """
    train = dict(settings["train"])
    ntk = {k: train.pop(f"ntk_{k}", None) for k in ("lr", "epochs")}
    if regime == "ntk":
        if ntk["lr"] is not None:
            train["lr"] = ntk["lr"]
        if ntk["epochs"] is not None:
            train["epochs"] = ntk["epochs"]
            if "kd_epochs" in train:
                train["kd_epochs"] = ntk["epochs"]
    if settings.get("mu") is not None:
        return _multiview_setup(settings["mu"], settings["data"], settings["network"], train, regime, seed)
    return _mlp_setup(data, settings["network"], train)


def run_methods(data, settings: dict, regime: str):
    """One methods job: `methods_study` on the setup `study_setup(data, settings, regime)`,
    with settings' seeds (ensemble size), trials, students, temperature and alpha."""
    s = study_setup(data, settings, regime)
    ds = methods_study(s.x_train, s.y_train, s.x_test, s.y_test, s.factory, regime=regime,
                       n_seeds=settings["seeds"], trials=settings["trials"], students=settings["students"],
                       temperature=settings["temperature"], alpha=settings["alpha"],
                       test_subsets=s.test_subsets, describe=s.describe, **s.train)
    return ds.assign_attrs(s.attrs)


def run_dropping(data, settings: dict, fractions):
    """One dropping job: `dropping_study` on the feature-regime setup of `settings`."""
    s = study_setup(data, settings, "feature")
    train = {k: v for k, v in s.train.items() if k != "kd_epochs"}
    ds = dropping_study(s.x_train, s.y_train, s.x_test, s.y_test, s.factory, layer=s.layer,
                        fractions=fractions, n_seeds=settings["seeds"], **train)
    return ds.assign_attrs(s.attrs)


def patch_weights(model: nn.Module) -> torch.Tensor:
    """A `PatchCNN`'s weights w (n_classes, neurons, dim), through this module's wrappers: the
    current θ of a `LinearizedModel`, all sub-networks' neurons side by side for an
    `AverageOfModels` (one network with N·m neurons per class)."""
    if isinstance(model, AverageOfModels):
        return torch.cat([patch_weights(m) for m in model.members], dim=1)
    if isinstance(model, LinearizedModel):
        net = model._base
        return model.parameter_dict()["neurons.weight"].unflatten(0, (net.n_classes, net.neurons_per_class))
    if isinstance(model, RandomFeatures):
        return patch_weights(model.net)
    return model.weights()


def summary_table(datasets: dict) -> pd.DataFrame:
    """Test error per (data, regime, method) from `methods_study` results, with the paper's claims.

    `datasets` maps (data name, regime) to a Dataset. One row per method plus "ensemble_of_2"
    (the mean over pairs of members, the paper's yardstick for self-distillation): count of
    values, test_error_mean, test_error_se (standard deviation / √count over all trained models
    or ensembles of that method, trials pooled; for ensembles of two the per-trial means), and
    for multi-view data mu, single_view_error_mean and views_learned_mean. Then
    `repatlas.ensemble_claims.judge` adds prediction, predicted_error and verdict.
    """
    rows = []
    for (data, regime), ds in datasets.items():
        mu = float(ds.attrs["mu"]) if "mu" in ds.attrs else np.nan

        def stats(values):
            v = np.asarray(values, dtype=float).ravel()
            v = v[np.isfinite(v)]
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            return len(v), v.mean() if len(v) else np.nan, se

        base = {"data": data, "regime": regime, "mu": mu, "n_members": ds.sizes["member"],
                "views_per_class": ds.attrs.get("views_per_class", np.nan)}
        for method in ds["method"].values:
            sel = ds.sel({"method": method})  # not sel(method=): a keyword of sel
            count, mean, se = stats(sel["test_error"].values)
            row = {**base, "method": str(method), "count": count, "test_error_mean": mean,
                   "test_error_se": se}
            if "single_view_error" in ds:
                row["single_view_error_mean"] = stats(sel["single_view_error"].values)[1]
            if "views_learned" in ds:
                row["views_learned_mean"] = stats(sel["views_learned"].values)[1]
            rows.append(row)
        if ds.sizes["size"] >= 2:
            count, mean, se = stats(ds["ensemble_error"].sel(size=2).values)
            rows.append({**base, "method": "ensemble_of_2", "count": count, "test_error_mean": mean,
                         "test_error_se": se})
    return judge(pd.DataFrame(rows))
