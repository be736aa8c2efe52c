"""Minibatch CKA between named modules of models in memory, through forward hooks.

Only each module's (b × b) Gram is kept per batch, never its activations, so memory does not grow
with width. The estimator (`MinibatchCKA`, U-centring) lives in `repatlas.cka`.
"""

from __future__ import annotations

import torch

from repatlas.activations import LayerCapture
from repatlas.cka import (
    MAX_OFFSET_RATIO,
    MIN_BATCH,
    MinibatchCKA,
    as_dataarray,
    layer_gram,
    ucentre,
    warn_single_batch,
)
from repatlas.devices import module_device
from repatlas.models import representation_layers


def _offset_ratios(grams: torch.Tensor) -> torch.Tensor:
    """tr(K) / tr(HKH) of each Gram in a float64 (layers, b, b) stack (inf where tr(HKH) <= 0)."""
    total = grams.diagonal(dim1=-2, dim2=-1).sum(-1)
    centred_total = total - grams.sum((-2, -1)) / grams.shape[-1]
    return torch.where(centred_total > 0, total / centred_total, torch.full_like(total, float("inf")))


class _GramCapture:
    """Hooks that keep only each named module's (b × b) Gram, never its activations, so memory
    does not grow with width; repeated calls of a module stay separate (`name@1`, ...).

    Which layers are centred before their Gram product (see MAX_OFFSET_RATIO) is decided once,
    from the first batch (one host read per layer): uncentred while the offset ratio is at most
    half of MAX_OFFSET_RATIO, typical of ReLU outputs, so the GPU does only the Gram GEMM; the
    others are centred. Later batches read nothing back: the uncentred layers' ratios are
    tracked on the device, and `exceeded()` (one read, at the end) names any layer whose ratio
    passed MAX_OFFSET_RATIO in some batch, for `cka_heatmap` to redo it centred.
    """

    def __init__(self, model, layers, centred=()):
        self.centred = {name: True for name in centred}
        self.calls: dict[str, int] = {}
        self.worst = None  # running max offset ratio of each uncentred layer, on the device
        self.names = self.uncentred = None
        self.capture = LayerCapture(model, layers, transform=self._gram)

    def _gram(self, name, output):
        if len(output) < MIN_BATCH:
            raise ValueError(f"minibatch CKA needs batches of at least {MIN_BATCH} examples; "
                             f"got {len(output)}")
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        key = name if k == 0 else f"{name}@{k}"  # as LayerCapture names repeated calls
        a = output.flatten(1) if output.ndim > 1 else output[:, None]
        if self.centred.get(key):
            return layer_gram(a, key, "always")
        gram = layer_gram(a, key, "never")
        if key not in self.centred:  # first batch: decide, reading the ratio to the host once
            g64 = gram.double()
            finite, ratio = torch.stack([torch.isfinite(g64).all().double(),
                                         _offset_ratios(g64[None])[0]]).tolist()
            if not finite:
                raise ValueError(f"layer {key!r} contains NaN or Inf (or values too large for {a.dtype})")
            self.centred[key] = not ratio <= MAX_OFFSET_RATIO / 2
            if self.centred[key]:
                return layer_gram(a, key, "always")
        return gram

    def pop(self) -> tuple[list[str], torch.Tensor]:
        """Names and U-centred Gram stack (layers, b·b) of the batch just run, U-centred in one go."""
        self.calls.clear()
        grams = self.capture.pop()
        names = list(grams)
        stack = torch.stack(list(grams.values())).double()
        if names != self.names:  # the first batch (a host-to-device copy: not once per batch)
            self.names = names
            self.uncentred = torch.tensor([not self.centred[n] for n in names], device=stack.device)
        ratios = torch.where(self.uncentred, _offset_ratios(stack), 0.0)
        self.worst = ratios if self.worst is None else torch.maximum(self.worst, ratios)
        return names, ucentre(stack).reshape(len(names), -1)

    def exceeded(self) -> list[str]:
        """Uncentred layers whose offset ratio passed MAX_OFFSET_RATIO in some batch."""
        if self.worst is None:
            return []
        return [n for n, w in zip(self.names, self.worst.tolist()) if w > MAX_OFFSET_RATIO]

    def close(self) -> None:
        self.capture.close()


def _default_layers(model) -> list[str]:
    layers = representation_layers(model)
    if not layers:
        raise ValueError("the model has no child modules to compare; pass layers=[...] explicitly")
    return layers


@torch.no_grad()
def cka_heatmap(
    model_a,
    inputs,
    *,
    model_b=None,
    layers_a=None,
    layers_b=None,
    batch_size: int = 256,
    epochs: int = 1,
    seed: int = 0,
):
    """Minibatch CKA between named modules of one model (or two) on `inputs`.

    `inputs` is a tensor/array of examples (N, ...) already on the models' device or movable to it.
    Each epoch visits the examples in a fresh random order drawn from `seed` (Nguyen et al.'s
    reshuffled passes); a last batch smaller than 4 examples is skipped. Layers default to the
    top-level children (for repatlas models: the representation layers). Returns an
    xarray.DataArray (layer_a, layer_b) with layer names as coordinates.
    """
    if batch_size < MIN_BATCH:
        raise ValueError(f"batch_size must be >= {MIN_BATCH}; got {batch_size}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}")
    x = torch.as_tensor(inputs)
    if len(x) < MIN_BATCH:
        raise ValueError(f"inputs must hold at least {MIN_BATCH} examples; got {len(x)}")
    warn_single_batch(len(x), batch_size, "inputs", stacklevel=4)  # past torch.no_grad's wrapper
    x = x.to(module_device(model_a))
    layers_a = list(layers_a) if layers_a else _default_layers(model_a)
    layers_b = None if model_b is None else (list(layers_b) if layers_b else _default_layers(model_b))
    acc, redo_a, redo_b = _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, (), ())
    matrix = acc.compute()  # NaN/Inf and constant layers are reported before any redo
    if redo_a or redo_b:  # a layer's offset grew past the first batch's: redo with it centred
        acc, *_ = _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, redo_a, redo_b)
        matrix = acc.compute()
    names_b = acc.names_a if model_b is None else acc.names_b
    return as_dataarray(matrix, acc.names_a, names_b, batch_size=min(batch_size, len(x)),
                        n_batches=acc.batches, epochs=epochs, seed=seed,
                        estimator="minibatch linear CKA, unbiased HSIC (U-centred)")


def _heatmap(model_a, model_b, x, layers_a, layers_b, batch_size, epochs, seed, centred_a, centred_b):
    """One minibatch-CKA pass of `cka_heatmap`: (accumulator, layers of a and b to redo centred)."""
    hooks_a = _GramCapture(model_a, layers_a, centred_a)
    hooks_b = None if model_b is None else _GramCapture(model_b, layers_b, centred_b)
    was_training = [m.training for m in (model_a, model_b) if m is not None]
    model_a.eval()
    if model_b is not None:
        model_b.eval()
    # the order is drawn on the CPU, so a seed visits the same batches on every device
    gen = torch.Generator().manual_seed(seed)
    acc = None
    try:
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen, device="cpu").to(x.device)
            for s in range(0, len(x), batch_size):
                idx = order[s : s + batch_size]
                if len(idx) < MIN_BATCH:
                    continue
                model_a(x[idx])
                names_a, ga = hooks_a.pop()
                if hooks_b is not None:
                    model_b(x[idx])
                    names_b, gb = hooks_b.pop()
                if acc is None:
                    acc = MinibatchCKA(len(names_a), None if hooks_b is None else len(names_b),
                                       names_a=names_a, names_b=None if hooks_b is None else names_b)
                acc.add_grams(ga, None if hooks_b is None else gb)
        return acc, hooks_a.exceeded(), [] if hooks_b is None else hooks_b.exceeded()
    finally:
        hooks_a.close()
        if hooks_b is not None:
            hooks_b.close()
        for m, mode in zip((model_a, model_b), was_training):
            m.train(mode)
