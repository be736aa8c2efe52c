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
* `multiview_dataset` — synthetic multi-view data (construction documented there).
* `drop_units`, `dropped_accuracy` — zero a random fraction of a layer's units/channels.
* `compare_methods`, `summarise` — the whole comparison (single / ensemble / KD / self-KD /
  average) for a model factory, in the "feature", "ntk" or "rf" regime.

Not published by the paper, chosen here: Hinton KD with temperature T = 4 and weight alpha = 0.9
on the T²-scaled KL term (0.1 on cross-entropy with the labels), plain SGD with momentum 0.9,
weight decay 5e-4 and a per-step cosine learning-rate schedule decaying to zero (as in
`repatlas.train`).
"""

from __future__ import annotations

import copy
import itertools
import math
import time
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from repatlas.devices import resolve_device

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
                a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float64)
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
    import xarray as xr

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
    batch_size: int = 64,
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
    last batch may be smaller). The model's initialisation is the caller's business (seed it
    before building the model); `seed` fixes the batch order and any randomness inside the
    model (dropout), without disturbing the global torch RNG. Deterministic on CPU per seed.
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
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    gen = torch.Generator(device="cpu").manual_seed(seed)  # the same batch order on every device
    history = []
    cuda_ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_ids):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=gen, device="cpu").to(dev)
            # summed on the device and read once per epoch: no step waits for the device
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            correct = torch.zeros((), dtype=torch.long, device=dev)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                xb, yb = x_t[idx], y_t[idx]
                out = model(xb)
                if loss_fn is not None:
                    loss = loss_fn(out, yb, idx)
                elif targets is not None:
                    loss = kd_loss(out, targets[idx], yb, temperature=temperature, alpha=alpha,
                                   teacher_kind="probs")
                else:
                    loss = F.cross_entropy(out, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
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


# ----------------------------------------------------------------------------- multi-view data


def multiview_views(n_classes: int, views_per_class: int, dim: int, seed: int = 0) -> np.ndarray:
    """The class features, (n_classes, views_per_class, dim), unit-norm.

    Exactly orthonormal (QR of a Gaussian matrix) when dim >= n_classes · views_per_class,
    otherwise independent random unit vectors (nearly orthogonal in high dimension).
    """
    k = n_classes * views_per_class
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((dim, k))
    if dim >= k:
        q, r = np.linalg.qr(g)
        v = (q * np.sign(np.diag(r))).T
    else:
        v = (g / np.linalg.norm(g, axis=0)).T
    return v.reshape(n_classes, views_per_class, dim)


def multiview_dataset(
    n: int,
    *,
    n_classes: int = 10,
    views_per_class: int = 2,
    dim: int = 64,
    single_view_fraction: float = 0.2,
    noise: float = 0.1,
    distractors: int = 2,
    distractor_weight: float = 0.4,
    weight_range: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
    view_seed: int = 0,
    return_mask: bool = False,
):
    """Synthetic "multi-view" classification data (a simplified version of the paper's setting).

    Construction (K = n_classes, V = views_per_class):
      * Features: V unit vectors v_{c,1..V} per class c from `multiview_views(K, V, dim,
        view_seed)` — orthonormal when dim >= K·V. Use the same `view_seed` and different
        `seed`s for training and test sets.
      * Labels: y = (0, 1, ..., K−1, 0, 1, ...) over n examples, then shuffled, so class counts
        differ by at most one.
      * Single-view examples: exactly round(single_view_fraction · n) of them, chosen
        class-balanced (the first ones of `repatlas.data.balanced_order(y, seed)`).
      * Signal: a multi-view example of class c is Σ_v w_v v_{c,v} with every w_v ~ U(weight_range)
        independently; a single-view example of class c is w v_{c,j} with one view j uniform in
        1..V and w ~ U(weight_range) (the other views of c are absent).
      * Distractors (every example): `distractors` distinct views drawn uniformly from the
        (K−1)·V views of the other classes, each added with weight ~ U(0, distractor_weight).
      * Noise: i.i.d. N(0, noise²) on every coordinate.
    A model that learned only some views of a class fails on the single-view examples that carry
    another view; models that learned different views (different seeds) err on different
    examples, which is what an ensemble — and a student of it — can fix.

    Returns (x float32 (n, dim), y int64 (n,)), plus the boolean single-view mask when
    `return_mask`.
    """
    from repatlas.data import balanced_order

    if not 0 <= single_view_fraction <= 1:
        raise ValueError(f"single_view_fraction must be in [0, 1]; got {single_view_fraction}")
    if n_classes < 2 or views_per_class < 1 or n < 1:
        raise ValueError("need n >= 1, n_classes >= 2 and views_per_class >= 1")
    if not 0 <= distractors <= (n_classes - 1) * views_per_class:
        raise ValueError(f"distractors must be between 0 and {(n_classes - 1) * views_per_class}")
    views = multiview_views(n_classes, views_per_class, dim, view_seed)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    single = np.zeros(n, dtype=bool)
    single[balanced_order(y, seed)[: int(round(single_view_fraction * n))]] = True

    lo, hi = weight_range
    w = rng.uniform(lo, hi, size=(n, views_per_class))
    keep = rng.integers(0, views_per_class, size=n)
    w[single] *= np.arange(views_per_class)[None, :] == keep[single, None]
    x = np.einsum("nv,nvd->nd", w, views[y])

    flat = views.reshape(n_classes * views_per_class, dim)
    owner = np.repeat(np.arange(n_classes), views_per_class)
    for i in range(n):
        if distractors:
            others = np.flatnonzero(owner != y[i])
            pick = rng.choice(others, size=distractors, replace=False)
            x[i] += rng.uniform(0, distractor_weight, size=distractors) @ flat[pick]
    x += noise * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return (x, y, single) if return_mask else (x, y)


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
    regime: str = "feature",
    epochs: int = 20,
    kd_epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    n_average: int = 1,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
):
    """Single models vs ensemble vs KD vs self-KD vs training the average, on given data.

    Inputs are standardised float arrays; `model_factory()` builds a fresh network (it is called
    under `torch.manual_seed(init seed)`). Every trained network is the factory's network in
    the "feature" regime, its `LinearizedModel` in "ntk", its `RandomFeatures` in "rf". With
    s = seed and N = n_seeds:
      * single: N networks, init seeds s..s+N−1 (also their batch-order seeds), cross-entropy;
      * ensemble: mean softmax probabilities of those N;
      * kd: N fresh students (init seeds s+1000+i) trained with `kd_loss` on the ensemble's
        targets at temperature T (mean of members' softmax(logits/T) on the training set);
      * self_kd: N fresh students (init seeds s+2000+i), student i distilled from member i alone;
      * average: `n_average` `AverageOfModels` of N sub-networks (init seeds s+3000+j·N+i),
        trained end to end with cross-entropy.
    Students train for `kd_epochs` (default `epochs`) with the same optimiser settings.

    Returns a long-format pandas DataFrame, one row per trained model or ensemble, columns:
    method, member, init_seed, n_members, train_acc, test_acc, test_loss, seconds; `df.attrs`
    holds the settings, the ensemble-size curve on the test set and the total time.
    """
    import pandas as pd

    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")
    dev = resolve_device(device)
    log = log or (lambda s: None)
    kd_epochs = epochs if kd_epochs is None else kd_epochs
    opt = dict(batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay)
    x_tr, y_tr = _to_tensor(x_train), np.asarray(y_train)
    x_te, y_te = _to_tensor(x_test), np.asarray(y_test)
    rows = []
    t_all = time.perf_counter()

    def fit(init_seed, n_epochs, build=None, **kw):
        t0 = time.perf_counter()
        model = (build() if build else _build(model_factory, init_seed, regime)).to(dev)
        train_classifier(model, x_tr, y_tr, epochs=n_epochs, seed=init_seed, **opt, **kw)
        z_tr, z_te = predict_logits(model, x_tr), predict_logits(model, x_te)
        return model, z_tr, z_te, time.perf_counter() - t0

    def row(method, member, init_seed, n_members, z_tr, z_te, seconds):
        p_te = ensemble_probs(z_te)
        rows.append({
            "method": method, "member": member, "init_seed": init_seed, "n_members": n_members,
            "train_acc": ensemble_accuracy(z_tr, y_tr), "test_acc": float((p_te.argmax(1) == y_te).mean()),
            "test_loss": float(-np.log(np.clip(p_te[np.arange(len(y_te)), y_te], 1e-300, None)).mean()),
            "seconds": seconds,
        })
        log(f"{regime} {method} member={member} test_acc={rows[-1]['test_acc']:.4f}")

    members_tr, members_te, times = [], [], []
    for i in range(n_seeds):
        _, z_tr, z_te, sec = fit(seed + i, epochs)
        members_tr.append(z_tr), members_te.append(z_te), times.append(sec)
        row("single", i, seed + i, 1, z_tr, z_te, sec)
    row("ensemble", 0, -1, n_seeds, np.stack(members_tr), np.stack(members_te), float(sum(times)))

    ens_targets = teacher_distribution(np.stack(members_tr), temperature)
    for i in range(n_seeds):
        s = seed + 1000 + i
        _, z_tr, z_te, sec = fit(s, kd_epochs, teacher_probs=ens_targets, temperature=temperature, alpha=alpha)
        row("kd", i, s, 1, z_tr, z_te, sec)
    for i in range(n_seeds):
        s = seed + 2000 + i
        targets = teacher_distribution(members_tr[i], temperature)
        _, z_tr, z_te, sec = fit(s, kd_epochs, teacher_probs=targets, temperature=temperature, alpha=alpha)
        row("self_kd", i, s, 1, z_tr, z_te, sec)
    for j in range(n_average):
        seeds = [seed + 3000 + j * n_seeds + i for i in range(n_seeds)]
        build = lambda: AverageOfModels([_build(model_factory, s, regime) for s in seeds])  # noqa: E731
        _, z_tr, z_te, sec = fit(seeds[0], epochs, build=build)
        row("average", j, seeds[0], n_seeds, z_tr, z_te, sec)

    df = pd.DataFrame(rows)
    curve = ensemble_accuracy_curve(np.stack(members_te), y_te, orders=100, seed=seed)
    df.attrs.update({
        "regime": regime, "n_seeds": n_seeds, "epochs": epochs, "kd_epochs": kd_epochs,
        "temperature": temperature, "alpha": alpha, "seed": seed, **opt,
        "ensemble_curve": curve.values.tolist(), "seconds": time.perf_counter() - t_all,
    })
    return df


def summarise(df) -> "pandas.DataFrame":  # noqa: F821
    """Mean, std (ddof=1; NaN for one row) and count of test accuracy per method, in METHODS order."""
    out = df.groupby("method")["test_acc"].agg(["mean", "std", "count"])
    return out.reindex([m for m in METHODS if m in out.index])


# ----------------------------------------------------------------------------- pipeline studies


def _mlp_factory(in_shape, n_classes: int, width: int, depth: int):
    from repatlas.models import mlp

    in_features = int(np.prod(in_shape))
    return lambda: mlp(depth, width, in_features=in_features, n_classes=n_classes)


def methods_study(x_train, y_train, x_test, y_test, *, regime: str, width: int = 64, depth: int = 1,
                  n_seeds: int = 5, **options):
    """`compare_methods` on MLPs of the given width/depth, as an xarray.Dataset.

    test_acc/train_acc (method, member) — NaN where a method has fewer members (the ensemble
    and the average are single rows) — and the test accuracy of ensembles of size 1..n_seeds.
    """
    import xarray as xr

    n_classes = int(max(np.max(y_train), np.max(y_test)) + 1)
    factory = _mlp_factory(np.shape(x_train)[1:], n_classes, width, depth)
    df = compare_methods(x_train, y_train, x_test, y_test, factory, n_seeds=n_seeds, regime=regime, **options)
    methods = [m for m in METHODS if m in set(df["method"])]
    members = int(df["member"].max()) + 1
    out = {k: np.full((len(methods), members), np.nan) for k in ("test_acc", "train_acc")}
    for r in df.itertuples():
        for k in out:
            out[k][methods.index(r.method), r.member] = getattr(r, k)
    curve = np.asarray(df.attrs["ensemble_curve"], dtype=float)
    attrs = {k: v for k, v in df.attrs.items() if k != "ensemble_curve" and isinstance(v, (int, float, str))}
    return xr.Dataset(
        {**{k: (("method", "member"), v) for k, v in out.items()},
         "ensemble_curve": (("size",), curve)},
        coords={"method": methods, "member": np.arange(members), "size": np.arange(1, len(curve) + 1)},
        attrs={**attrs, "width": width, "depth": depth},
    )


def dropping_study(x_train, y_train, x_test, y_test, *, fractions, width: int = 64, depth: int = 1,
                   n_seeds: int = 5, seed: int = 0, device: str = "cpu", **options):
    """Train n_seeds MLPs, zero a random fraction of the last hidden layer's units, and compare
    the members' accuracy with their ensemble's (the multi-view explanation of ensembling)."""
    import xarray as xr

    n_classes = int(max(np.max(y_train), np.max(y_test)) + 1)
    factory = _mlp_factory(np.shape(x_train)[1:], n_classes, width, depth)
    models = []
    for i in range(n_seeds):
        model = _build(factory, seed + i, "feature").to(resolve_device(device))
        train_classifier(model, _to_tensor(x_train), np.asarray(y_train), seed=seed + i, **options)
        models.append(model)
    layer = f"layer{depth}"
    res = dropped_accuracy(models, _to_tensor(x_test), y_test, layer, fractions, seed=seed)
    fr = [float(f) for f in fractions]
    return xr.Dataset(
        {"single": (("fraction", "member"), np.array([res[f]["single"] for f in fr])),
         "ensemble": (("fraction",), np.array([res[f]["ensemble"] for f in fr]))},
        coords={"fraction": fr, "member": np.arange(n_seeds)},
        attrs={"layer": layer, "width": width, "depth": depth, "seed": seed},
    )


def study_data(input_files: dict, multiview: dict, seed: int = 0):
    """(x_train, y_train, x_test, y_test) of an ensembles study: the dataset's subset and test
    split when `input_files` has 'full' and 'subset', else the synthetic multi-view data
    (train and test share their views and differ in samples)."""
    from repatlas.data import load_classification

    if "full" in input_files:
        return load_classification(input_files["full"], input_files["subset"])
    mv = dict(multiview)
    n_train, n_test = mv.pop("n_train"), mv.pop("n_test")
    x_tr, y_tr = multiview_dataset(n_train, seed=seed, view_seed=seed, **mv)
    x_te, y_te = multiview_dataset(n_test, seed=seed + 1, view_seed=seed, **mv)
    return x_tr, y_tr, x_te, y_te


def summary_table(datasets: dict) -> "pandas.DataFrame":  # noqa: F821
    """Mean/std/count of test accuracy per (data, regime, method) from methods_study results."""
    import pandas as pd

    rows = []
    for (data, regime), ds in datasets.items():
        for method in ds["method"].values:
            acc = ds["test_acc"].sel({"method": method}).values  # not sel(method=): a keyword of sel
            acc = acc[np.isfinite(acc)]
            rows.append({"data": data, "regime": regime, "method": method, "test_acc_mean": acc.mean(),
                         "test_acc_std": acc.std(ddof=1) if len(acc) > 1 else np.nan, "count": len(acc)})
    return pd.DataFrame(rows)
