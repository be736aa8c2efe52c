"""CPU-side guards for the GPU bug classes: tensors made on the wrong device, and host syncs.

`BareConstructors`: a TorchFunctionMode under which every tensor that code in the given files
creates from scratch (zeros, ones, empty, full, arange, eye, rand*, randperm, linspace, tensor of
Python data, ...) *without an explicit device=* is put on the "meta" device, which holds no data.
On a CUDA run such a tensor lands on the CPU while the inputs are on the GPU
("Expected all tensors to be on the same device", the bug MinibatchCKA's float64 accumulators
had); here the inputs stay on the CPU and the bare tensor goes elsewhere, so the same mistake
fails on a machine without a GPU: mixing it with the inputs, reading it to the host or copying
it out of meta all raise. Tensors built inside torch (module parameters, optimiser state) are
not touched: only calls made directly from the guarded files are. Conversions of host data
(`torch.as_tensor(array)`, `torch.from_numpy`) are not guarded: moving them is the caller's
business and the CUDA tests (`-m gpu`) cover them.

`HostSyncs`: counts reads of tensor values to the host (item, tolist, numpy, cpu, bool, int,
float) made directly from the guarded files, to show that a loop's count does not grow with its
number of steps. On a GPU each such read waits for all queued work.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

LIBRARY = str(Path(__file__).resolve().parents[1] / "src" / "repatlas")

_FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.eye, torch.rand, torch.randn,
    torch.randint, torch.randperm, torch.linspace, torch.logspace, torch.scalar_tensor,
    torch.empty_strided, torch.tril_indices, torch.triu_indices, torch.tensor,
}
_SYNCS = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__bool__,
    torch.Tensor.__int__, torch.Tensor.__float__,
}


def _caller_in(paths, depth: int = 2) -> bool:
    filename = sys._getframe(depth).f_code.co_filename
    return any(filename.startswith(p) for p in paths)


class BareConstructors(TorchFunctionMode):
    """Tensors made from scratch without device= by code under `paths` go to the meta device."""

    def __init__(self, *paths):
        super().__init__()
        self.paths = tuple(str(p) for p in paths) or (LIBRARY,)
        self.redirected = []  # (function name, file:line) of every tensor sent to meta

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and "device" not in kwargs and _caller_in(self.paths):
            data = args[0] if args else kwargs.get("data")
            if not (func is torch.tensor and isinstance(data, (torch.Tensor, np.ndarray))):
                frame = sys._getframe(1)
                self.redirected.append((func.__name__, f"{frame.f_code.co_filename}:{frame.f_lineno}"))
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


class HostSyncs(TorchFunctionMode):
    """Counts value reads to the host made directly by code under `paths`."""

    def __init__(self, *paths):
        super().__init__()
        self.paths = tuple(str(p) for p in paths) or (LIBRARY,)
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _SYNCS and _caller_in(self.paths):
            frame = sys._getframe(1)
            self.calls.append((func.__name__, f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"))
        return func(*args, **(kwargs or {}))
