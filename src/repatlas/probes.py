"""Linear probes on every layer, and block pruning (Nguyen, Raghu & Kornblith 2021, §§5–6).

**Probes.** `linear_probes` fits one linear softmax classifier (``nn.Linear(units, classes)``)
on the *flattened* output of each layer of a frozen network, as in the paper's code: SGD with
momentum, cross-entropy, mini-batches of 128. All layers are probed in the same pass: one
forward pass per batch with hooks on every layer, every probe updated from that batch, so only
one batch of activations is ever held, whatever the width.

Standardisation (fixed by a first pass over the training set): each unit's mean is subtracted
and each layer is divided by one scale so that a training example has mean squared norm
``FEATURE_NORM2`` (``E‖x − μ‖² = 256``) in every layer. The probes start at zero, so a probe's
logits depend on ``lr`` and the feature scale only through ``lr · E‖x‖²``: fixing the squared
norm per layer makes one learning rate mean the same step in a 64-unit pooled layer and a
16k-unit conv map (per-unit z-scoring would make the step grow with the unit count, and would
blow up near-constant units). One scale per layer also keeps the layer's geometry (its principal
components) intact. 256 (as if the layer had 256 unit-variance features) was chosen against
scikit-learn's LogisticRegression at lr 0.01, 10 epochs: on Gaussian classes (16–2000 units,
1k–20k examples) it matched within sampling noise; on the layers of a digits ResNet (128–2048
units, 1000 training images, 80 steps) it stayed 1–3.5 points below sklearn's L2-regularised
fit on every layer (the gap halves at 50 epochs). Smaller values underfit wide layers in few
steps; ≥ 1024 left SGD noise in narrow layers trained for many steps.

**Ceiling.** Probes say something about a network only where the input itself is not already
linearly separable: on digits a probe on the raw pixels scores 0.91 (n = 500, 10 epochs), so
every layer sits near the ceiling and the curve through the network is flat noise.
`repatlas.steps.widedeep.probes_to_file` first fits the same probe on the standardised input
(`input_probe`) and probes the layers only when that scores below `input_ceiling` (0.9); otherwise
the result says "ceiling" (status attr) and holds no layer accuracies (NaN). Fashion-MNIST's pixels give
0.76–0.81 (n = 1,000–4,000, 5–10 epochs).

**Pruning.** `prune` replaces residual blocks with identities; `pruning_experiment` removes each
removable block alone and reports the accuracy change; `repatlas.blocks.label_pruning` labels
each block *inside* or *outside* the block structure found in the within-model CKA heatmap.
There is no fine-tuning after removal: BatchNorm stays in eval mode with its running statistics.
"""

from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from repatlas.activations import LayerCapture
from repatlas.blocks import label_pruning
from repatlas.devices import resolve_device
from repatlas.model_ids import parse_model_id
from repatlas.models import BasicBlock, representation_layers
from repatlas.train import evaluate

FEATURE_NORM2 = 256.0  # E‖x − μ‖² of a standardised training example, in every layer
_NO_FINE_TUNING = ("none: blocks removed from the trained model, BatchNorm in eval mode "
                   "with its running statistics")


# ----------------------------------------------------------------------------- input checks


def _as_inputs(x, name: str, device) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name} must have shape (examples, ...) with at least one example; "
                         f"got {tuple(x.shape)}")
    return x.to(device=device, dtype=torch.float32)


def _as_labels(y, name: str, n: int, x_name: str, device) -> torch.Tensor:
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must have shape ({x_name} examples={n},); got {y.shape}")
    if y.dtype.kind not in "iu" or (len(y) and y.min() < 0):
        raise ValueError(f"{name} must hold non-negative integer class labels; got dtype {y.dtype}")
    return torch.as_tensor(y.astype(np.int64), device=device)


def _check_positive(**values) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ValueError(f"{name} must be > 0; got {v}")


def _default_layers(model: nn.Module, layers) -> list[str]:
    if layers is None:
        layers = representation_layers(model)
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty and the model has no representation layers; pass layers=[...]")
    return layers


# ----------------------------------------------------------------------------- linear probes


class _RunningMoments:
    """Per-unit mean and sum of squared deviations in float64, merged batch by batch (Chan et al.),
    so post-ReLU features with large means do not lose their variance to cancellation."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, a: torch.Tensor) -> None:
        a = a.double()
        b = len(a)
        mean_b = a.mean(0)
        m2_b = ((a - mean_b) ** 2).sum(0)
        if self.mean is None:
            self.n, self.mean, self.m2 = b, mean_b, m2_b
            return
        n = self.n + b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * b / n)
        self.n = n

    def standardiser(self) -> tuple[torch.Tensor, float]:
        """(per-unit mean, per-layer scale) with E‖(x − mean)/scale‖² = FEATURE_NORM2."""
        total_variance = float(self.m2.sum()) / self.n
        scale = math.sqrt(total_variance / FEATURE_NORM2) if total_variance > 0 else 1.0
        return self.mean.float(), scale


def _forward_batches(model, cap, x: torch.Tensor, batch_size: int, order=None):
    """Yield (indices, {layer: (b, units) tensor}) for consecutive batches (in `order` if given)."""
    n = len(x)
    for start in range(0, n, batch_size):
        idx = (order[start : start + batch_size] if order is not None
               else torch.arange(start, min(start + batch_size, n), device=x.device))
        with torch.no_grad():  # not around the yield: the consumer trains the probes with grad
            model(x[idx])
        yield idx, cap.pop()


def _check_names(names, expected) -> None:
    if names != expected:
        raise RuntimeError(f"the hooked layers changed between batches: {expected} then {names}")


@torch.no_grad()
def _accuracies(model, cap, probes, stats, x, y, batch_size) -> dict[str, float]:
    correct = torch.zeros(len(probes), dtype=torch.long, device=y.device)  # read once, at the end
    for idx, acts in _forward_batches(model, cap, x, batch_size):
        _check_names(list(acts), list(probes))
        for i, (name, a) in enumerate(acts.items()):
            mean, scale = stats[name]
            pred = probes[name]((a.float() - mean) / scale).argmax(1)
            correct[i] += (pred == y[idx]).sum()
    return {name: c / len(y) for name, c in zip(probes, correct.tolist())}


def linear_probes(
    model: nn.Module,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    layers=None,
    epochs: int = 10,
    lr: float = 0.01,
    momentum: float = 0.9,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "cpu",
) -> xr.Dataset:
    """Train-set and test-set accuracy of a linear softmax probe on each layer of a frozen model.

    `x_*` are model inputs (N, ...), `y_*` integer labels (N,); `layers` are module names
    (default: `repatlas.models.representation_layers(model)`), probed on their flattened output.
    The model is frozen in eval mode (no gradients; BatchNorm uses running statistics). Features
    are standardised with training-set statistics: per-unit mean subtracted, one scale per layer
    so E‖x − μ‖² = FEATURE_NORM2 (one lr then suits every layer; see the module docstring).
    Probes start at zero and train for `epochs` passes of SGD (`lr`, `momentum`, `batch_size`,
    cross-entropy, no weight decay) in an order drawn from a torch.Generator seeded with `seed`,
    so a seed fixes the result. Accuracies are of the final probes.

    Returns an xarray.Dataset over dim ``layer`` (coords: layer names, ``relative_depth`` =
    index / (L − 1)) with variables train_accuracy, test_accuracy (float64) and units (int64,
    flattened features per layer). A module called k > 1 times per forward pass is probed once
    per call (`name`, `name@1`, ...), as `repatlas.activations.LayerCapture` records it.
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}")
    _check_positive(lr=lr)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1); got {momentum}")
    dev = resolve_device(device)
    x_train = _as_inputs(x_train, "x_train", dev)
    x_test = _as_inputs(x_test, "x_test", dev)
    y_train = _as_labels(y_train, "y_train", len(x_train), "x_train", dev)
    y_test = _as_labels(y_test, "y_test", len(x_test), "x_test", dev)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    layers = _default_layers(model, layers)

    was_training = model.training
    model.to(dev).eval()
    try:
        with LayerCapture(model, layers) as cap, torch.no_grad():
            # pass 1: standardisation statistics on the training set
            moments: dict[str, _RunningMoments] = {}
            for _, acts in _forward_batches(model, cap, x_train, batch_size):
                if moments:
                    _check_names(list(acts), list(moments))
                for name, a in acts.items():
                    moments.setdefault(name, _RunningMoments()).add(a)
            stats = {name: m.standardiser() for name, m in moments.items()}
            units = {name: int(m.mean.numel()) for name, m in moments.items()}

        probes = nn.ModuleDict()  # keys may not contain "."; keep the names in a parallel dict
        keyed = {name: f"p{i}" for i, name in enumerate(stats)}
        for name, key in keyed.items():
            probe = nn.Linear(units[name], n_classes, device=dev)
            nn.init.zeros_(probe.weight)
            nn.init.zeros_(probe.bias)
            probes[key] = probe
        by_name = {name: probes[key] for name, key in keyed.items()}
        opt = torch.optim.SGD(probes.parameters(), lr=lr, momentum=momentum)
        gen = torch.Generator().manual_seed(int(seed))  # on the CPU: the same order on every device

        with LayerCapture(model, layers) as cap:
            for _ in range(int(epochs)):
                order = torch.randperm(len(x_train), generator=gen, device="cpu").to(dev)
                for idx, acts in _forward_batches(model, cap, x_train, batch_size, order):
                    _check_names(list(acts), list(stats))
                    # Each probe sees only its own layer, so summing the losses trains them
                    # independently from one backward pass.
                    loss = sum(
                        F.cross_entropy(by_name[name]((a.float() - stats[name][0]) / stats[name][1]),
                                        y_train[idx])
                        for name, a in acts.items()
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            train_acc = _accuracies(model, cap, by_name, stats, x_train, y_train, batch_size)
            test_acc = _accuracies(model, cap, by_name, stats, x_test, y_test, batch_size)
    finally:
        model.train(was_training)

    names = list(stats)
    depth = np.arange(len(names)) / max(len(names) - 1, 1)
    return xr.Dataset(
        {
            "train_accuracy": ("layer", np.array([train_acc[n] for n in names], dtype=np.float64)),
            "test_accuracy": ("layer", np.array([test_acc[n] for n in names], dtype=np.float64)),
            "units": ("layer", np.array([units[n] for n in names], dtype=np.int64)),
        },
        coords={"layer": names, "relative_depth": ("layer", depth)},
        attrs={
            "probe": "nn.Linear(units, classes) on flattened layer outputs, zero init, softmax cross-entropy",
            "optimiser": "SGD with momentum, no weight decay",
            "standardisation": (f"per-unit training mean subtracted; one scale per layer so that "
                                f"E||x - mean||^2 = {FEATURE_NORM2:g} on the training set"),
            "network": "frozen, eval mode (BatchNorm running statistics)",
            "epochs": int(epochs), "lr": float(lr), "momentum": float(momentum),
            "batch_size": int(batch_size), "seed": int(seed), "n_classes": n_classes,
            "n_train": len(x_train), "n_test": len(x_test),
        },
    )


# ----------------------------------------------------------------------------- block pruning


def _is_removable(module: nn.Module) -> bool:
    """A residual block whose output has its input's shape: stride 1 and an identity shortcut."""
    return (isinstance(module, BasicBlock) and isinstance(module.shortcut, nn.Identity)
            and tuple(module.conv1.stride) == (1, 1) and tuple(module.conv2.stride) == (1, 1))


def removable_blocks(model: nn.Module) -> list[str]:
    """Names of the residual blocks that can be replaced by an identity, in model order."""
    return [name for name, m in model.named_modules() if name and _is_removable(m)]


def prune(model: nn.Module, names) -> nn.Module:
    """A deep copy of `model` with the named residual blocks replaced by nn.Identity.

    Raises KeyError for a name that is not a module of the model and ValueError for a module that
    is not a removable block (e.g. a downsampling block); `model` itself is left untouched.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or not n]
    if missing:
        raise KeyError(f"block(s) {missing} not in the model; removable blocks: {removable_blocks(model)}")
    refused = [n for n in names if not _is_removable(modules[n])]
    if refused:
        raise ValueError(f"block(s) {refused} cannot be removed (not a residual block with stride 1 and an "
                         f"identity shortcut); removable blocks: {removable_blocks(model)}")
    pruned = copy.deepcopy(model)
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(pruned.get_submodule(parent), child, nn.Identity())
    return pruned


def _accuracy(model, x, y, batch_size) -> float:
    return float(evaluate(model, x, y, batch_size)[1])


def pruning_experiment(model: nn.Module, x_test, y_test, layers, blocks=None, *, batch_size: int = 512,
                       device: str = "cpu") -> xr.Dataset:
    """Test accuracy after removing each removable residual block alone (no fine-tuning).

    `layers` are the layer names of the within-model CKA heatmap in order (e.g.
    `representation_layers(model)`); every removable block must be one of them, and the layer
    before it is its input (coord ``input_layer``; the first layer has none). Removed blocks
    become identities and nothing is retrained: BatchNorm stays in eval mode with its running
    statistics.

    Returns an xarray.Dataset over dim ``removed`` (block names) with variables accuracy and
    accuracy_change (accuracy − base_accuracy); attrs base_accuracy, fine_tuning, layers (JSON),
    n_test. With `blocks` (inclusive (start, end) index pairs into `layers`, as
    `repatlas.blocks.detect_blocks` returns them) the result is labelled inside / outside them by
    `repatlas.blocks.label_pruning`. The pipeline labels later, from the within-model CKA, so
    that changing the CKA settings does not rerun the forward passes.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}")
    layers = [str(n) for n in layers]
    candidates = removable_blocks(model)
    if not candidates:
        raise ValueError("the model has no removable residual blocks (stride 1, identity shortcut)")
    absent = [b for b in candidates if b not in layers]
    if absent:
        raise ValueError(f"removable block(s) {absent} are not in layers {layers}; "
                         "cannot tell their input layer")
    dev = resolve_device(device)
    x = _as_inputs(x_test, "x_test", dev)
    y = _as_labels(y_test, "y_test", len(x), "x_test", dev)

    was_training = model.training
    model.to(dev)
    try:
        base = _accuracy(model, x, y, batch_size)
        accuracy = np.array([_accuracy(prune(model, [name]), x, y, batch_size) for name in candidates])
    finally:
        model.train(was_training)
    inputs = [layers[layers.index(name) - 1] if layers.index(name) > 0 else "" for name in candidates]
    ds = xr.Dataset(
        {"accuracy": ("removed", accuracy), "accuracy_change": ("removed", accuracy - base)},
        coords={"removed": candidates, "input_layer": ("removed", inputs)},
        attrs={"base_accuracy": base, "fine_tuning": _NO_FINE_TUNING, "layers": json.dumps(layers),
               "n_test": len(x)},
    )
    return ds if blocks is None else label_pruning(ds, blocks)


# ----------------------------------------------------------------------------- tables


def input_probe(x_train, y_train, x_test, y_test, *, epochs: int = 10, lr: float = 0.01,
                batch_size: int = 128, seed: int = 0, device: str = "cpu") -> xr.Dataset:
    """`linear_probes` on the network's input itself (layer "input": the flattened standardised
    images), with the same standardisation and SGD: the accuracy a layer probe must beat."""
    identity = nn.Sequential(OrderedDict(input=nn.Identity()))
    return linear_probes(identity, x_train, y_train, x_test, y_test, layers=["input"], epochs=epochs, lr=lr,
                         batch_size=batch_size, seed=seed, device=device)


def ceiling_probes(layer_names) -> xr.Dataset:
    """A probes Dataset whose layers were not probed (NaN accuracies, 0 units): the input probe
    was already at the ceiling, so a probe curve would say nothing."""
    names = list(layer_names)
    nan = np.full(len(names), np.nan)
    return xr.Dataset(
        {"train_accuracy": ("layer", nan), "test_accuracy": ("layer", nan.copy()),
         "units": ("layer", np.zeros(len(names), dtype=np.int64))},
        coords={"layer": names, "relative_depth": ("layer", np.arange(len(names)) / max(len(names) - 1, 1))},
    )


def probe_table(results: dict):
    """One row per model: {model id: probes Dataset (`repatlas.steps.widedeep.probes_to_file`)} →
    DataFrame with the id's fields, status ("probed" / "ceiling"), input_test_accuracy, and over
    the probed layers the first, last and best layer's test accuracy and the best layer's name
    (NaN / "" at the ceiling)."""
    rows = []
    for model_id, ds in results.items():
        accuracy = np.asarray(ds["test_accuracy"].values, dtype=np.float64)
        probed = np.isfinite(accuracy).any()
        best = int(np.nanargmax(accuracy)) if probed else None
        rows.append({
            "model": model_id, **parse_model_id(model_id),
            "status": ds.attrs.get("status", "probed"),
            "input_test_accuracy": float(ds.attrs.get("input_test_accuracy", np.nan)),
            "first_layer_accuracy": float(accuracy[0]) if probed else np.nan,
            "last_layer_accuracy": float(accuracy[-1]) if probed else np.nan,
            "best_layer_accuracy": float(accuracy[best]) if probed else np.nan,
            "best_layer": str(ds["layer"].values[best]) if probed else "",
        })
    return pd.DataFrame(rows)
