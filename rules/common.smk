# Shared by every stage: config validation, wildcard constraints, job resources, library inputs,
# the wide vs deep model grid and what every figure rule shares. Each stage's targets and input
# functions are in its rules/<stage>_targets.smk; rules/targets.smk gathers what `snakemake`
# builds by default.
import ast
import functools
import itertools
import os
from pathlib import Path

import yaml
from snakemake.utils import validate

from repatlas.config import apply_overrides, check_schema, check_semantics
from repatlas.model_ids import (
    ARCH_ID,
    ARCH_ID_REGEX,
    ARCH_PATH,
    ARCH_REGEX,
    DATASET_REGEX,
    MITOSIS_MODEL_PATH,
    MODEL_ID,
    MODEL_ID_REGEX,
    MODEL_PATH,
    arch_label,
    arch_label_of,
    arch_name_of,
    parse_arch_id,
    parse_arch_label,
    parse_model_id,
    path_of_id,
)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
# Exported, not read: envs/*.post-deploy.sh installs repatlas from here into each conda env that
# Snakemake creates (--sdm conda), whatever the working directory.
os.environ.update(REPATLAS_ROOT=workflow.basedir)
apply_overrides(config, workflow.config_settings.config)  # nested --config values arrive as strings
check_schema(config, yaml.safe_load(SCHEMA.read_text()))  # one clear message naming the key
validate(config, schema=str(SCHEMA))  # fills in the schema's defaults
check_semantics(config)  # what the schema cannot say, every study's (repatlas.config)

GRID = config["grid"]
REDSHIFT = config["redshift"]
INFINITE = config["infinite"]
MITOSIS = config["mitosis"]
ENSEMBLES = config["ensembles"]
WIDE_DEEP = config["wide_deep"]


# Model paths and ids are written (and parsed back) by repatlas.model_ids only: results/models/<MODEL_PATH>/,
# flat ids in files that name two models (results/cka/across/<A>__<B>.nc, results/widedeep/errors/<GA>__<GB>.nc).
wildcard_constraints:
    dataset=DATASET_REGEX,
    n=r"\d+",
    arch=ARCH_REGEX,
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",
    a=MODEL_ID_REGEX,
    b=MODEL_ID_REGEX,
    ga=ARCH_ID_REGEX,
    gb=ARCH_ID_REGEX,


# ----------------------------------------------------------------------------- job resources
# Every rule declares mem_mb and runtime (minutes), multiplied by `attempt` so a retried job asks
# for more; rules that train or run models also ask for a GPU unless device is cpu. Sizes are
# rough, written for CIFAR-scale studies on A100-class GPUs (docs/cluster.md), and scale with the
# model: residual blocks per stage × width multiplier. Profiles add partitions, not sizes.
# GPU rules also take one `gpu_slots`: on a machine with one GPU, `--resources gpu_slots=K` (or
# --workflow-profile workflow/profiles/gpu) runs K of them at once, since one small model leaves
# most of a large GPU idle (docs/gpu.md); without --resources the count is not limited.
GPU = 0 if config["device"] == "cpu" else 1


def _size(arch, depth, width):
    return (int(depth) - 2) / 6 * int(width) if arch == "resnet" else 1.0


def model_size(wildcards):
    """What a job's cost scales with: blocks per stage × width of its ResNet(s); 1 for others."""
    w = dict(wildcards.items())
    if "a" in w and "b" in w:  # cross-model CKA: two flat model ids
        ids = [parse_model_id(w[k]) for k in ("a", "b")]
        return sum(_size(i["arch"], i["depth"], i["width"]) for i in ids)
    if "depth" in w and "width" in w:
        return _size(w.get("arch", "resnet"), w["depth"], w["width"])
    return 1.0


def scaled(base, per_size=0.0, factor=lambda w: 1):
    """A resource callable: attempt × factor(wildcards) × (base + per_size × model size)."""
    return lambda wildcards, attempt: int(
        attempt * factor(wildcards) * (base + per_size * model_size(wildcards))
    )


def train_runtime(wildcards, attempt):
    """~30 min + 0.18 min per (blocks × width²) at 50,000 images × 300 epochs; at most 3 days."""
    blocks_k2 = model_size(wildcards) * (int(wildcards.width) if wildcards.arch == "resnet" else 1)
    epochs = config["train"]["epochs"] / 300
    return int(min(4320, attempt * (30 + 0.18 * int(wildcards.n) / 50000 * epochs * blocks_k2)))


def first_pc_mem(wildcards, attempt):
    """The first-PC analysis: layers × n² float64 Grams plus room for two more."""
    n = min(WIDE_DEEP["pca_examples"], config["probe_size"])
    layers = 3 * model_size(wildcards) / max(1, int(wildcards.width)) + 2
    return int(attempt * (layers + 2) * n * n * 8 / 1e6)


# ----------------------------------------------------------------------------- code dependencies
# Snakemake's `code` rerun trigger sees only a job's script, not the library modules it imports.
# So every rule's input has `lib=library_of("<its script>")`, which lists each repatlas file the
# script imports, directly or through other repatlas modules, anywhere in a file (imports inside
# functions included), read with `ast` (nothing is imported or run). Editing a module reruns
# exactly the jobs whose scripts reach it. Paths are relative to the working directory, so a
# project copied or moved elsewhere plans nothing. tests/test_code_deps.py checks every rule.
SCRIPTS = Path(workflow.basedir) / "scripts"
SRC = Path(workflow.basedir) / "src"


def _module_file(name):
    """The file of a dotted repatlas module or package; None for names that are not modules."""
    base = SRC.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def _imported_files(path):
    """repatlas files that importing the Python file `path` executes first-hand: each imported
    module and the __init__.py of every package on its dotted path."""
    package = path.parent.relative_to(SRC).parts if path.is_relative_to(SRC) else ()
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[: len(package) - node.level + 1]) if node.level else []
            parts += node.module.split(".") if node.module else []
            # `from repatlas import plots` imports a module; `from repatlas.cka import x` a name
            names.add(".".join(parts))
            names.update(".".join([*parts, alias.name]) for alias in node.names)
    files = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "repatlas":
            files.update(filter(None, (_module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1))))
    return frozenset(files)


def library_of(script):
    """Library inputs of the jobs that run scripts/`script`: the repatlas files it imports,
    transitively, as sorted paths relative to the working directory."""
    path = SCRIPTS / script
    if not path.is_file():
        raise ValueError(f"library_of({script!r}): no such script {path}")
    seen, todo = set(), [path]
    while todo:
        for f in _imported_files(todo.pop()) - seen:
            seen.add(f)
            todo.append(f)
    return sorted(os.path.relpath(f) for f in seen)


# ----------------------------------------------------------------------------- the model grid
# The wide vs deep study's models (config "grid"): trained by train.smk, read by activations.smk,
# cka.smk and widedeep.smk.
SEEDS = sorted(GRID["seed"])


def grid_records(**fixed):
    """One wildcard dict per model of the grid, optionally fixing some wildcards."""
    axes = {
        "dataset": [config["dataset"]],
        "n": GRID["n"],
        "arch": [GRID["arch"]],
        "depth": GRID["depth"],
        "width": GRID["width"],
        "seed": GRID["seed"],
    }
    axes.update({k: [v] for k, v in fixed.items()})
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def models(**fixed):
    """Model paths (relative to results/models) of the grid, optionally fixing some wildcards."""
    return [MODEL_PATH.format(**cell) for cell in grid_records(**fixed)]


def model_ids(**fixed):
    """Flat ids (results/cka/across names) of the grid's models, in the order of models()."""
    return [MODEL_ID.format(**cell) for cell in grid_records(**fixed)]


def model_id(n, depth, width, seed):
    """Flat id of one model of the grid."""
    return MODEL_ID.format(
        dataset=config["dataset"], n=n, arch=GRID["arch"], depth=depth, width=width, seed=seed
    )


def arch_id(n, depth, width):
    """Id of one architecture of the grid (all its seeds)."""
    return ARCH_ID.format(dataset=config["dataset"], n=n, arch=GRID["arch"], depth=depth, width=width)


def arch_pairs(configured):
    """((depth, width), (depth, width)) pairs: the configured "d<depth>-w<width>" pairs, else the
    deepest-narrowest vs the shallowest-widest model of the grid."""
    pairs = [tuple(p) for p in configured]
    if not pairs and len(GRID["depth"]) > 1 and len(GRID["width"]) > 1:
        pairs = [
            (
                arch_label(depth=max(GRID["depth"]), width=min(GRID["width"])),
                arch_label(depth=min(GRID["depth"]), width=max(GRID["width"])),
            )
        ]
    return [tuple(parse_arch_label(x) for x in p) for p in pairs]


# ----------------------------------------------------------------------------- figure rules
# Every figure rule writes results/figures/<name>.png (in the report) and .pdf, logs and benchmarks
# under its name, and asks for the same modest resources: these helpers say it once.


def figure_files(name):
    return [f"results/figures/{name}.png", f"results/figures/{name}.pdf"]


def figure_output(name, caption, category, **report_options):
    """The png (in the report, captioned by workflow/report/<caption>.rst) and pdf of figure `name`."""
    png, pdf = figure_files(name)
    return {
        "png": report(png, caption=f"../workflow/report/{caption}.rst", category=category, **report_options),
        "pdf": pdf,
    }


def figure_log(name):
    return f"results/logs/figures/{name}.log"


def figure_benchmark(name):
    return f"results/benchmarks/figures/{name}.tsv"


def figure_resources(mem_mb=8000, runtime=30):
    """A figure job's resources: memory (MB) and runtime (minutes), scaled with the attempt."""
    return {"mem_mb": scaled(mem_mb), "runtime": scaled(runtime)}
