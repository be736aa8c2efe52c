"""Which device a computation runs on, and one clear line when that device is not on this host.

`resolve_device("auto")` picks CUDA when present. An explicit `cuda` / `cuda:N` that this host
cannot provide raises `DeviceUnavailable` naming the device, the host and why (no CUDA in this
torch build, no GPU visible, or fewer GPUs than N + 1), instead of torch's assertion deep in the
first `.to()`. The check runs where the work runs, never when the workflow is planned: a
cluster's submit host often has no GPU while its compute nodes do, so `snakemake -n` with
`device: cuda` must still plan. `job_device` is the form a pipeline job uses at its start: the
same check, reported as one line on the console and in the job's log, and exit status 1.
"""

from __future__ import annotations

import os
import socket
import sys

import torch


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist on this host."""


def _why_no_cuda(index: int | None) -> str | None:
    """None if cuda[:index] is usable here, else the reason it is not."""
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    count = torch.cuda.device_count()
    if count == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return "no CUDA device is visible" + (f" (CUDA_VISIBLE_DEVICES={visible!r})"
                                              if visible is not None else "")
    if index is not None and index >= count:
        return f"only {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1})"
    return None


def resolve_device(device="auto") -> torch.device:
    """`auto` → cuda when available, else cpu; otherwise the named device (a str or torch.device).

    Raises DeviceUnavailable for a CUDA device this host does not have.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        reason = _why_no_cuda(dev.index)
        if reason is not None:
            raise DeviceUnavailable(f"device {str(device)!r} is not available on host "
                                    f"{socket.gethostname()}: {reason}")
    return dev


def job_device(device: str, log_path=None, *, key: str = "device") -> str:
    """`resolve_device(device)` for a pipeline job, as a string; stops the job if it fails.

    On a host without the device it prints ONE line, ``config key 'device': device 'cuda' is not
    available on host <host>: <reason>; expected ...``, to the console (the process's original
    stderr) and appends it to `log_path`, then exits with status 1: no traceback.
    """
    try:
        return str(resolve_device(device))
    except DeviceUnavailable as exc:
        line = (f"config key {key!r}: {exc}; expected a device this host has "
                "(auto, cpu, or cuda/cuda:N on a node with that GPU)")
        print(line, file=sys.__stderr__, flush=True)
        if log_path is not None:
            with open(log_path, "a") as fh:
                print(line, file=fh)
        raise SystemExit(1) from None


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter or buffer (cpu for a module without tensors)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")
