"""Model ids and model paths: the one place that writes them and parses them back.

A trained model lives at ``results/models/<model path>/``; files that name two models
(cross-model CKA, error analyses) use flat ids. Torch-free, so the Snakemake rules import it too.

    model path   {dataset}-n{n}/{arch}-d{depth}-w{width}/s{seed}
    model id     {dataset}-n{n}-{arch}-d{depth}-w{width}-s{seed}
    arch id      {dataset}-n{n}-{arch}-d{depth}-w{width}       (all seeds of one architecture)
    arch label   d{depth}-w{width}                             (config's wide_deep pairs)
    arch name    {arch}-d{depth}-w{width}                      (figure labels)
"""

from __future__ import annotations

import re

FIELDS = ("dataset", "n", "arch", "depth", "width", "seed")
_TEXT_FIELDS = ("dataset", "arch")

MODEL_PATH = "{dataset}-n{n}/{arch}-d{depth}-w{width}/s{seed}"
# Mitosis trains each architecture in two regimes (converged / early-stopped snapshots).
MITOSIS_MODEL_PATH = "{dataset}-n{n}/{arch}-d{depth}-w{width}/{regime}/s{seed}"
MODEL_ID = "{dataset}-n{n}-{arch}-d{depth}-w{width}-s{seed}"
ARCH_PATH = "{dataset}-n{n}/{arch}-d{depth}-w{width}"
ARCH_ID = "{dataset}-n{n}-{arch}-d{depth}-w{width}"
ARCH_LABEL = "d{depth}-w{width}"
ARCH_NAME = "{arch}-d{depth}-w{width}"

DATASET_REGEX = r"[a-z0-9_]+"
ARCH_REGEX = r"resnet|mlp"
ARCH_ID_REGEX = rf"{DATASET_REGEX}-n\d+-(?:{ARCH_REGEX})-d\d+-w\d+"
MODEL_ID_REGEX = rf"{ARCH_ID_REGEX}-s\d+"

_MODEL_ID = re.compile(
    rf"(?P<dataset>{DATASET_REGEX})-n(?P<n>\d+)-(?P<arch>{ARCH_REGEX})"
    r"-d(?P<depth>\d+)-w(?P<width>\d+)-s(?P<seed>\d+)"
)
_ARCH_ID = re.compile(
    rf"(?P<dataset>{DATASET_REGEX})-n(?P<n>\d+)-(?P<arch>{ARCH_REGEX})-d(?P<depth>\d+)-w(?P<width>\d+)"
)
_ARCH_LABEL = re.compile(r"d(?P<depth>\d+)-w(?P<width>\d+)")


def _fields(pattern: re.Pattern, text, what: str, form: str) -> dict:
    match = pattern.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{what} {text!r} does not match {form}")
    return {k: (v if k in _TEXT_FIELDS else int(v)) for k, v in match.groupdict().items()}


def parse_model_id(model_id: str) -> dict:
    """`{dataset}-n{n}-{arch}-d{depth}-w{width}-s{seed}` → its fields (numbers as ints)."""
    return _fields(_MODEL_ID, model_id, "model id", MODEL_ID)


def parse_arch_id(arch_id: str) -> dict:
    """`{dataset}-n{n}-{arch}-d{depth}-w{width}` → its fields (numbers as ints)."""
    return _fields(_ARCH_ID, arch_id, "architecture id", ARCH_ID)


def parse_arch_label(label: str) -> tuple[int, int]:
    """`d{depth}-w{width}` (how configs name an architecture) → (depth, width)."""
    fields = _fields(_ARCH_LABEL, label, "architecture", ARCH_LABEL)
    return fields["depth"], fields["width"]


def model_path(**fields) -> str:
    return MODEL_PATH.format(**fields)


def model_id(**fields) -> str:
    return MODEL_ID.format(**fields)


def arch_id(**fields) -> str:
    return ARCH_ID.format(**fields)


def arch_label(**fields) -> str:
    return ARCH_LABEL.format(**fields)


def path_of_id(model_id_: str) -> str:
    """The model path of a flat model id."""
    return model_path(**parse_model_id(model_id_))


def arch_label_of(id_: str) -> str:
    """`d{depth}-w{width}` of a model id or an architecture id."""
    fields = parse_model_id(id_) if _MODEL_ID.fullmatch(str(id_)) else parse_arch_id(id_)
    return arch_label(**fields)


def arch_name_of(arch_id_: str) -> str:
    """`{arch}-d{depth}-w{width}` of an architecture id: how figures name it."""
    return ARCH_NAME.format(**parse_arch_id(arch_id_))
