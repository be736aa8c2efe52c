"""The two checkpoint file formats: `model.pt` (a trained model) and the resumable training state.

`model.pt` holds the weights with the spec that rebuilds the model (`repatlas.models.build_model`)
and a JSON-like `meta` record; the training state (`checkpoint.pt`, written by `repatlas.train.train`
after every epoch) holds everything a resumed run needs. Both are plain `torch.save` dictionaries of
tensors and data, loaded with weights_only=True (no code is executed), and written atomically.
A module of its own, so a step that only reads models (activations, probes, mitosis features)
depends on the format, not on the training loop.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from repatlas.io import atomic_path
from repatlas.models import build_model

CHECKPOINT_FORMAT = 1


_STATE_KEYS = ("format", "fingerprint", "epoch", "history", "model", "optimizer", "scheduler",
               "generator", "torch_rng", "cuda_rng")


def save_training_state(path: Path, state: dict) -> None:
    """Write a training state atomically (temporary sibling, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())


def _first_line(exc: Exception) -> str:
    """`Type: first line of the message` of an exception, for one-line errors naming a file."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def load_training_state(path) -> dict:
    """The resumable training state saved by `repatlas.train.train` at `path` (no code is executed).

    Raises FileNotFoundError if there is none and ValueError naming the path if the file is not a
    readable training checkpoint of this format.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a readable training checkpoint ({_first_line(exc)})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a repatlas training checkpoint of format {CHECKPOINT_FORMAT}")
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"{path}: training checkpoint lacks {missing}")
    return state


def save_checkpoint(path, model: nn.Module, spec: dict, meta: dict | None = None) -> None:
    """Save weights with the spec that rebuilds the model (atomically; tensors and plain data only)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"spec": spec, "state_dict": state, "meta": meta or {}}, tmp)


def load_checkpoint(path) -> tuple[nn.Module, dict, dict]:
    """Rebuild a model from `model.pt` (weights_only loading: no code is executed).

    Raises FileNotFoundError if there is no file and ValueError naming the path if it is not a
    readable repatlas model checkpoint (truncated, corrupt, another format, code objects).
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        spec = ckpt["spec"]
        model = build_model(**spec)
        model.load_state_dict(ckpt["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a readable repatlas checkpoint ({_first_line(exc)})") from exc
    model.eval()
    return model, spec, ckpt.get("meta", {})


def snapshot_path(snapshots_dir, epoch: int) -> Path:
    """The weights of a run after `epoch` (a `save_checkpoint` file) inside its snapshots folder."""
    return Path(snapshots_dir) / f"epoch-{int(epoch)}.pt"
