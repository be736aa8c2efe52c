# Shared by every stage: config validation, wildcard constraints, target lists, input functions.
import itertools
from pathlib import Path

import yaml
from snakemake.utils import validate

from repatlas.config import check_schema, check_semantics

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
check_schema(config, yaml.safe_load(SCHEMA.read_text()))  # one clear message naming the key
validate(config, schema=str(SCHEMA))  # fills in the schema's defaults
check_semantics(config)

GRID = config["grid"]
LIB = Path(workflow.basedir) / "src" / "repatlas"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    n=r"\d+",
    arch="resnet|mlp",
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",


MODEL = "{dataset}-n{n}/{arch}-d{depth}-w{width}/s{seed}"


def library(*modules):
    """Library files a job depends on, so that editing one reruns it (the `code` trigger sees only scripts)."""
    return [str(LIB / m) for m in ("__init__.py", "io.py", *modules)]


def models(**fixed):
    """Model paths (relative to results/models) of the grid, optionally fixing some wildcards."""
    axes = {
        "dataset": [config["dataset"]],
        "n": GRID["n"],
        "arch": [GRID["arch"]],
        "depth": GRID["depth"],
        "width": GRID["width"],
        "seed": GRID["seed"],
    }
    axes.update({k: [v] for k, v in fixed.items()})
    keys = list(axes)
    return [MODEL.format(**dict(zip(keys, values))) for values in itertools.product(*axes.values())]


def cka_within_grid_cells():
    """(depth, width) facets of the within-model CKA figure: the grid at the first n and seed."""
    return [{"depth": d, "width": w} for d in GRID["depth"] for w in GRID["width"]]


def cka_within_grid_inputs():
    first = {"n": GRID["n"][0], "seed": GRID["seed"][0]}
    return [f"results/cka/within/{models(**first, **c)[0]}.nc" for c in cka_within_grid_cells()]


FIGURES = ["results/figures/cka_within_grid.png", "results/figures/cka_within_grid.pdf"]


def default_study_outputs():
    return [f"results/models/{m}/metrics.json" for m in models()] + FIGURES


def print_outputs():
    for f in FIGURES:
        print(f"repatlas: figure written to {Path(f).resolve()}")
