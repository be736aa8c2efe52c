# Shared by every stage: config validation, wildcard constraints, target lists, input functions.
import ast
import functools
import itertools
import os
import re
from pathlib import Path

import yaml
from snakemake.utils import validate

from repatlas.config import apply_overrides, check_schema, check_semantics

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
# Exported, not read: envs/*.post-deploy.sh installs repatlas from here into each conda env that
# Snakemake creates (--sdm conda), whatever the working directory.
os.environ.update(REPATLAS_ROOT=workflow.basedir)
apply_overrides(config, workflow.config_settings.config)  # nested --config values arrive as strings
check_schema(config, yaml.safe_load(SCHEMA.read_text()))  # one clear message naming the key
validate(config, schema=str(SCHEMA))  # fills in the schema's defaults
check_semantics(config)

GRID = config["grid"]
# Options that change a CKA result (params of the CKA rules; pairing options are not among them).
CKA_ESTIMATOR = {k: config["cka"][k] for k in ("batch_size", "epochs", "window")}
REDSHIFT = config["redshift"]
INFINITE = config["infinite"]
MITOSIS = config["mitosis"]
ENSEMBLES = config["ensembles"]
WIDE_DEEP = config["wide_deep"]
# The first-PC analysis runs inside cka_within: blocks need its per-layer PC1 shares (a block is
# PC1-dominated), the PCA figure draws it and the pruning figure labels blocks with it.
FIRST_PC = bool({"blocks", "pca", "pruning"} & set(WIDE_DEEP["analyses"]))


MODEL = "{dataset}-n{n}/{arch}-d{depth}-w{width}/s{seed}"
# Flat model id used in cross-model file names: results/cka/across/<A>__<B>.nc
MODEL_ID = "{dataset}-n{n}-{arch}-d{depth}-w{width}-s{seed}"
MODEL_ID_REGEX = r"[a-z0-9_]+-n\d+-(?:resnet|mlp)-d\d+-w\d+-s\d+"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    n=r"\d+",
    arch="resnet|mlp",
    depth=r"\d+",
    width=r"\d+",
    seed=r"\d+",
    a=MODEL_ID_REGEX,
    b=MODEL_ID_REGEX,
    ga=r"[a-z0-9_]+-n\d+-(?:resnet|mlp)-d\d+-w\d+",
    gb=r"[a-z0-9_]+-n\d+-(?:resnet|mlp)-d\d+-w\d+",


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
        ids = [re.search(r"-(resnet|mlp)-d(\d+)-w(\d+)-s\d+$", w[k]).groups() for k in ("a", "b")]
        return sum(_size(*i) for i in ids)
    if "depth" in w and "width" in w:
        return _size(w.get("arch", "resnet"), w["depth"], w["width"])
    return 1.0


def scaled(base, per_size=0.0, factor=lambda w: 1):
    """A resource callable: attempt × factor(wildcards) × (base + per_size × model size)."""
    return lambda wildcards, attempt: int(attempt * factor(wildcards) * (base + per_size * model_size(wildcards)))


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
    return [MODEL.format(**cell) for cell in grid_records(**fixed)]


def model_ids(**fixed):
    """Flat ids (results/cka/across names) of the grid's models, in the order of models()."""
    return [MODEL_ID.format(**cell) for cell in grid_records(**fixed)]


def model_path_of(model_id):
    """results/models-style path of a flat model id."""
    dataset, n, arch, depth, width, seed = re.fullmatch(
        r"([a-z0-9_]+)-n(\d+)-(resnet|mlp)-d(\d+)-w(\d+)-s(\d+)", model_id
    ).groups()
    return MODEL.format(dataset=dataset, n=n, arch=arch, depth=depth, width=width, seed=seed)


def model_id(n, depth, width, seed):
    return MODEL_ID.format(dataset=config["dataset"], n=n, arch=GRID["arch"], depth=depth, width=width, seed=seed)


SEEDS = sorted(GRID["seed"])
# Seed pairs (s1 < s2) compared for every architecture and training-set size.
SEED_PAIRS = [(s1, s2) for i, s1 in enumerate(SEEDS) for s2 in SEEDS[i + 1 :]] if config["cka"]["across_seeds"] else []
# One architecture at one training-set size (all seeds): a cross-seed CKA job.
ARCH = "{dataset}-n{n}/{arch}-d{depth}-w{width}"
ARCH_ID = "{dataset}-n{n}-{arch}-d{depth}-w{width}"


def across_seeds_file(s1, s2):
    """Output pattern of one seed pair's cross-seed CKA (wildcards: those of ARCH)."""
    return f"results/cka/across/{ARCH_ID}-s{s1}__{ARCH_ID}-s{s2}.nc"


def across_seed_pairs():
    """Every seed pair of every architecture and training-set size."""
    return [
        (model_id(n, d, w, s1), model_id(n, d, w, s2))
        for n in GRID["n"]
        for d in GRID["depth"]
        for w in GRID["width"]
        for s1, s2 in SEED_PAIRS
    ]


def arch_pairs(configured):
    """((depth, width), (depth, width)) pairs: the configured "d<depth>-w<width>" pairs, else the
    deepest-narrowest vs the shallowest-widest model of the grid."""
    pairs = [tuple(p) for p in configured]
    if not pairs and len(GRID["depth"]) > 1 and len(GRID["width"]) > 1:
        pairs = [(f"d{max(GRID['depth'])}-w{min(GRID['width'])}", f"d{min(GRID['depth'])}-w{max(GRID['width'])}")]
    return [tuple(tuple(map(int, re.fullmatch(r"d(\d+)-w(\d+)", x).groups())) for x in p) for p in pairs]


def across_arch_pairs():
    """Cross-architecture CKA pairs (cka.across_archs) at every n and seed."""
    return [
        (model_id(n, da, wa, s), model_id(n, db, wb, s))
        for (da, wa), (db, wb) in arch_pairs(config["cka"]["across_archs"])
        for n in GRID["n"]
        for s in GRID["seed"]
    ]


def across_side_regex(side):
    """Model ids that can be side `side` (0 = A, 1 = B) of a configured cross-architecture pair.
    cka_across matches only these: as a catch-all {a}__{b} it also matched every cross-seed file,
    and Snakemake built (then discarded) a cka_across job for each, a fifth of `snakemake -n`."""
    archs = sorted({pair[side] for pair in arch_pairs(config["cka"]["across_archs"])})
    alternatives = "|".join(f"d{d}-w{w}" for d, w in archs) or "(?!)"  # (?!) matches nothing
    return rf"[a-z0-9_]+-n\d+-(?:resnet|mlp)-(?:{alternatives})-s\d+"


def across_file(pair):
    return f"results/cka/across/{pair[0]}__{pair[1]}.nc"


def cka_within_grid_cells():
    """(depth, width) facets of the within-model CKA figure: the grid at the first n and seed."""
    return [{"depth": d, "width": w} for d in GRID["depth"] for w in GRID["width"]]


def parse_id(model_id):
    """{depth, width, seed} of a flat model id."""
    d, w, s = re.search(r"-d(\d+)-w(\d+)-s(\d+)$", model_id).groups()
    return {"depth": int(d), "width": int(w), "seed": int(s)}


def across_seeds_cells():
    return [{k: parse_id(a)[k] for k in ("depth", "width")} for a, _ in across_seeds_figure_pairs()]


def across_archs_cells():
    arch = lambda m: "d{depth}-w{width}".format(**parse_id(m))
    return [{"seed": parse_id(a)["seed"], "models": f"{arch(a)} (A) vs {arch(b)} (B)"}
            for a, b in across_archs_figure_pairs()]


def cka_within_grid_inputs():
    first = {"n": GRID["n"][0], "seed": GRID["seed"][0]}
    return [f"results/cka/within/{models(**first, **c)[0]}.nc" for c in cka_within_grid_cells()]


def across_seeds_figure_pairs():
    """The cross-seed figure: first two seeds at the first n, one facet per architecture."""
    return [p for p in across_seed_pairs() if f"-n{GRID['n'][0]}-" in p[0]
            and p[0].endswith(f"-s{sorted(GRID['seed'])[0]}") and p[1].endswith(f"-s{sorted(GRID['seed'])[1]}")]


def across_archs_figure_pairs():
    """The cross-architecture figure: every pair at the first n and seed."""
    first = f"-n{GRID['n'][0]}-"
    return [p for p in across_arch_pairs() if first in p[0] and p[0].endswith(f"-s{GRID['seed'][0]}")]


# ----------------------------------------------------------------------------- wide vs deep analyses


def arch_id(n, depth, width):
    return ARCH_ID.format(dataset=config["dataset"], n=n, arch=GRID["arch"], depth=depth, width=width)


def error_pairs():
    """(A, B) architecture ids whose per-example errors are compared over all seeds, at every n."""
    if len(SEEDS) < 2:
        return []  # one seed per architecture: the permutation test cannot reject anything
    configured = WIDE_DEEP["errors"]["archs"] or config["cka"]["across_archs"]
    return [(arch_id(n, da, wa), arch_id(n, db, wb)) for (da, wa), (db, wb) in arch_pairs(configured) for n in GRID["n"]]


def predictions_of(arch):
    """Test-split prediction files of every seed of an architecture id."""
    dataset, n, a, depth, width = re.fullmatch(r"([a-z0-9_]+)-n(\d+)-(resnet|mlp)-d(\d+)-w(\d+)", arch).groups()
    return [f"results/models/{MODEL.format(dataset=dataset, n=n, arch=a, depth=depth, width=width, seed=s)}/predictions.nc"
            for s in SEEDS]


def first_grid_cells():
    """The depth × width grid at the first n and seed: the facets of the per-model figures."""
    return [{"depth": d, "width": w, "n": GRID["n"][0], "seed": GRID["seed"][0]} for d in GRID["depth"] for w in GRID["width"]]


def data_grid_cells():
    """Width × training-set size at the deepest depth and first seed (Nguyen et al.'s data-size figure)."""
    return [{"n": n, "width": w, "depth": max(GRID["depth"]), "seed": GRID["seed"][0]} for n in GRID["n"] for w in GRID["width"]]


def grid_cells():
    """Every model of the grid as a facet record."""
    return [{"depth": d, "width": w, "n": n, "seed": s}
            for n in GRID["n"] for d in GRID["depth"] for w in GRID["width"] for s in GRID["seed"]]


def cell_model(cell):
    return models(**cell)[0]


def widedeep_outputs():
    analyses = WIDE_DEEP["analyses"]
    out = ["results/widedeep/blocks.csv"] if "blocks" in analyses else []
    for analysis in ("pca", "probes", "pruning"):
        if analysis in analyses:
            out += [f"results/widedeep/{analysis}/{m}.nc" for m in models()]
    out += ["results/widedeep/probes.csv"] if "probes" in analyses else []
    if "errors" in analyses:
        out += [f"results/widedeep/errors/{a}__{b}.nc" for a, b in error_pairs()]
        out += ["results/widedeep/errors.csv"] if error_pairs() else []
    return out


def widedeep_figure_names():
    analyses = WIDE_DEEP["analyses"]
    names = ["cka_data_grid"] if len(GRID["n"]) > 1 else []
    names += [f"widedeep_{a}" for a in ("blocks", "pca", "probes", "pruning") if a in analyses]
    if "errors" in analyses:
        names += [f"widedeep_errors_{a}__{b}" for a, b in error_pairs()]
    return names


def widedeep_figure_inputs(wildcards):
    """Data files of one wide vs deep figure (and the within-model CKA where blocks are
    shaded or labelled)."""
    f = wildcards.figure
    if f == "blocks":
        return {"data": ["results/widedeep/blocks.csv"]}
    cells = first_grid_cells() if f == "pca" else grid_cells()
    inputs = {"data": [f"results/widedeep/{f}/{cell_model(c)}.nc" for c in cells]}
    if f in ("pca", "pruning"):
        inputs["within"] = [f"results/cka/within/{cell_model(c)}.nc" for c in cells]
    if f == "pruning":
        inputs["first_pc"] = [f"results/widedeep/pca/{cell_model(c)}.nc" for c in cells]
    return inputs


def figure_files(name):
    return [f"results/figures/{name}.png", f"results/figures/{name}.pdf"]


# How each Neural Redshift measure samples a function (repatlas.complexity.MeasureSettings).
REDSHIFT_FOURIER = {k: REDSHIFT[k] for k in ("grid_size", "grid_endpoint", "fourier_convention")}
REDSHIFT_SETTINGS = {
    "measures": REDSHIFT["measures"], **REDSHIFT_FOURIER,
    **{k: REDSHIFT[k] for k in ("chebyshev_nodes", "chebyshev_degree", "lz_grid_size")},
}


def redshift_line_figures():
    """Line figures of the Neural Redshift study, each drawn from one named sweep."""
    sweeps = REDSHIFT["sweeps"]
    fixed = {"width": 64, "variant": "plain"}
    figures = {}
    if "scale" in sweeps:
        figures["scale"] = dict(col="measure", sweep="scale", x="scale", hue="activation", logx=True,
                                select={**fixed, "depth": REDSHIFT["figure_depth"]},
                                title=f"complexity vs weight magnitude, depth {REDSHIFT['figure_depth']}")
        figures["depth"] = dict(col="measure", sweep="scale", x="depth", hue="activation", logx=False,
                                select={**fixed, "scale": REDSHIFT["figure_scale"]},
                                title=f"complexity vs depth, A ≈ {REDSHIFT['figure_scale']:g}")
    if "width" in sweeps:
        figures["width"] = dict(col="measure", sweep="width", x="width", hue="activation", logx=True,
                                select={"variant": "plain", "depth": sweeps["width"]["depth"][0],
                                        "scale": max(sweeps["width"]["scale"])},
                                title=f"complexity vs width, A = {max(sweeps['width']['scale']):g}")
    if "variant" in sweeps:
        figures["variant"] = dict(sweep="variant", x="scale", hue="variant", col="activation", logx=True,
                                  select={"width": sweeps["variant"]["width"][0],
                                          "depth": sweeps["variant"]["depth"][0]},
                                  title="residual, LayerNorm and gating vs plain MLPs")
    return figures


REDSHIFT_LINES = redshift_line_figures()


def infinite_figures():
    """Figures of the infinite-width study: name → data file, drawing function, title."""
    c, reg = INFINITE["cookbook"], INFINITE["regression"]
    figures = {
        f"cookbook_{a}": dict(data=f"results/infinite/cookbook-{a}.nc", figure="cookbook_figure",
                              title=f"{a}, width {c['width']}, {c['activation']}: finite ensemble vs infinite width")
        for a in INFINITE["architectures"]
    }
    figures["ntk_convergence"] = dict(data="results/infinite/ntk_convergence.nc", figure="ntk_convergence_figure",
                                      title=f"empirical NTK → analytic NTK ({INFINITE['ntk']['activation']}, depth {INFINITE['ntk']['depth']})")
    figures["regression"] = dict(data=f"results/infinite/regression-{config['dataset']}-n{reg['n_train']}.nc",
                                 figure="regression_figure",
                                 title=f"{config['dataset']}, n = {reg['n_train']}: kernel regression vs finite networks")
    figures["cookbook_gap"] = dict(data="results/infinite/cookbook_gap.nc", figure="cookbook_gap_figure",
                                   title=f"cookbook ({c['activation']}, depth {c['depth']}, t = {c['steps'] * c['lr']:g}): "
                                   "finite-ensemble mean − NTK mean")
    conv = INFINITE["conv"]
    figures["conv_regression"] = dict(data=conv_regression_file(), figure="conv_regression_figure",
                                      title=f"{conv_dataset()} (pooled {conv['pool']}×{conv['pool']}), "
                                      f"{conv['n_test']} test images: FC vs conv-GAP kernels, depth {conv['depth']}, "
                                      f"{conv['activation']}")
    return figures


def conv_dataset():
    return INFINITE["conv"]["dataset"] or config["dataset"]


def conv_regression_file():
    return f"results/infinite/conv_regression-{conv_dataset()}-n{max(INFINITE['conv']['n_trains'])}.nc"


def check_infinite_config():
    """What the schema cannot say: one pair count per cookbook-gap width; conv sizes fit the dataset."""
    from repatlas.config import ConfigError
    from repatlas.data import DATASET_SIZES

    gap = INFINITE["cookbook_gap"]
    if len(gap["pairs"]) != len(gap["widths"]):
        raise ConfigError(f"config key 'infinite.cookbook_gap.pairs': {len(gap['pairs'])} entries for "
                          f"{len(gap['widths'])} widths; expected one pair count per width")
    conv = INFINITE["conv"]
    n_train, n_test = DATASET_SIZES[conv_dataset()]
    if max(conv["n_trains"]) > n_train:
        raise ConfigError(f"config key 'infinite.conv.n_trains': {max(conv['n_trains'])} exceeds the "
                          f"{conv_dataset()} training pool; expected values between 2 and {n_train}")
    if conv["n_test"] > n_test:
        raise ConfigError(f"config key 'infinite.conv.n_test': {conv['n_test']} exceeds the {conv_dataset()} "
                          f"test split; expected a value between 2 and {n_test}")
    if conv["filter_size"] % 2 == 0:
        raise ConfigError(f"config key 'infinite.conv.filter_size': {conv['filter_size']}; expected an odd size "
                          "(SAME padding)")


check_infinite_config()
INFINITE_FIGURES = infinite_figures()

# One training run per (arch, width, seed); the models analysed are its final weights
# ("converged") and its snapshots at mitosis.archs.<arch>.early_epochs ("epoch<E>").
MITOSIS_RUN = "{dataset}-n{n}/{arch}-d{depth}-w{width}/s{seed}"
MITOSIS_MODEL = "{dataset}-n{n}/{arch}-d{depth}-w{width}/{regime}/s{seed}"


def mitosis_regimes(arch):
    return ["converged"] + [f"epoch{e}" for e in sorted(MITOSIS["archs"][arch]["early_epochs"])]


def check_mitosis_config():
    """What the schema cannot say: ResNet depths are 6n+2; snapshots come before the last epoch;
    the ensemble's arch is a swept one."""
    from repatlas.config import ConfigError, resnet_blocks_per_stage

    archs = MITOSIS["archs"]
    if "resnet" in archs:
        try:
            resnet_blocks_per_stage(archs["resnet"]["depth"])
        except ValueError as exc:
            raise ConfigError(f"config key 'mitosis.archs.resnet.depth': {exc}") from None
    for arch, a in archs.items():
        late = [e for e in a["early_epochs"] if e >= a["epochs"]]
        if late:
            raise ConfigError(f"config key 'mitosis.archs.{arch}.early_epochs': {late} not before the last epoch "
                              f"({a['epochs']}); expected epochs between 1 and {a['epochs'] - 1}")
    if MITOSIS["ensemble"]["arch"] not in archs:
        raise ConfigError(f"config key 'mitosis.ensemble.arch': {MITOSIS['ensemble']['arch']!r} is not swept; "
                          f"expected one of {', '.join(archs)} (the keys of mitosis.archs)")


check_mitosis_config()


def mitosis_sweep(archs=None, regimes=None, widths=None, seeds=None):
    """One record per model of the mitosis sweep: arch, depth, width, regime, seed and `model`, its
    id below results/mitosis/{features,chunks}. `regimes` defaults to every regime of each arch;
    `widths` (the arch's width unit) makes sense with one arch."""
    out = []
    for a in archs or MITOSIS["archs"]:
        for r in regimes or mitosis_regimes(a):
            for w in widths or MITOSIS["archs"][a]["widths"]:
                for s in seeds or MITOSIS["seeds"]:
                    cell = {"arch": a, "depth": MITOSIS["archs"][a]["depth"], "width": w, "regime": r, "seed": s}
                    out.append({**cell, "model": MITOSIS_MODEL.format(dataset=config["dataset"], n=MITOSIS["n"], **cell)})
    return out


def mitosis_models(**selection):
    return [cell["model"] for cell in mitosis_sweep(**selection)]


def multiview_data():
    """Data names of the multi-view sweep, e.g. 'multiview-mu0.1', mapped to their μ."""
    if "multiview" not in ENSEMBLES["data"]:
        return {}
    return {f"multiview-mu{mu:g}": mu for mu in ENSEMBLES["multiview"]["mu"]}


def ensembles_data():
    """Data names of the ensembles study: the study's dataset (by name) and/or the multi-view sweep."""
    names = [config["dataset"]] if "dataset" in ENSEMBLES["data"] else []
    return names + list(multiview_data())


def ensembles_files():
    methods = [f"results/ensembles/{d}-{r}.nc" for d in ensembles_data() for r in ENSEMBLES["regimes"]]
    return methods + [f"results/ensembles/{d}-dropping.nc" for d in ensembles_data()]


def ensembles_inputs(wildcards):
    """The study dataset's files, or nothing for the synthetic multi-view data."""
    if wildcards.data in multiview_data():
        return {}
    return {
        "full": f"results/data/{wildcards.data}/full.npz",
        "subset": f"results/data/{wildcards.data}/train-n{ENSEMBLES['n']}-s{config['subset_seed']}.npz",
    }


def ensembles_settings(wildcards):
    """What one ensembles job runs with (`repatlas.ensembles.study_setup`); as params, a change
    reruns only the jobs it concerns (the multi-view keys never rerun the dataset's jobs)."""
    shared = {k: ENSEMBLES[k] for k in ("seeds", "trials", "students", "temperature", "alpha")}
    mu = multiview_data().get(wildcards.data)
    if mu is not None:
        mv = ENSEMBLES["multiview"]
        data = {k: v for k, v in mv.items() if k not in ("mu", "network", "train")}
        return {**shared, "mu": mu, "data": data, "network": mv["network"], "train": mv["train"]}
    train = {k: ENSEMBLES[k] for k in ("epochs", "batch_size", "lr", "weight_decay")}
    return {**shared, "network": {k: ENSEMBLES[k] for k in ("width", "depth")}, "train": train}


def mitosis_train_settings(wildcards):
    """TrainConfig fields of one mitosis run: its arch's settings."""
    a = MITOSIS["archs"][wildcards.arch]
    return {k: a[k] for k in ("epochs", "batch_size", "lr", "weight_decay", "crop_pad", "flip")}


def mitosis_weights(wildcards):
    """The weights a mitosis model is read from: its run's model.pt ("converged") or the run's
    snapshots folder ("epoch<E>", with mitosis_epoch naming the snapshot inside)."""
    run = f"results/mitosis/models/{MITOSIS_RUN.format(**wildcards)}"
    return f"{run}/model.pt" if wildcards.regime == "converged" else f"{run}/snapshots"


def mitosis_epoch(wildcards):
    return None if wildcards.regime == "converged" else int(wildcards.regime.removeprefix("epoch"))


def mitosis_figure_cells(wildcards):
    """The width figures show the converged models; the training figure every snapshot too."""
    return mitosis_sweep(regimes=("converged",) if wildcards.name != "training" else None)


def mitosis_ensemble_members():
    e = MITOSIS["ensemble"]
    return mitosis_models(archs=[e["arch"]], regimes=("converged",), widths=[e["width"]],
                          seeds=list(range(e["members"])))


def mitosis_ensemble_wide():
    """The widest converged model (first seed) of the ensemble's arch."""
    arch = MITOSIS["ensemble"]["arch"]
    return mitosis_models(archs=[arch], regimes=("converged",), widths=[max(MITOSIS["archs"][arch]["widths"])],
                          seeds=[MITOSIS["seeds"][0]])[0]


def study_figures(study):
    if study == "wide_deep":
        names = ["cka_within_grid"]
        names += ["cka_across_seeds"] if across_seeds_figure_pairs() else []
        names += ["cka_across_archs"] if across_archs_figure_pairs() else []
        names += widedeep_figure_names()
    elif study == "redshift":
        names = [f"redshift_{f}" for f in REDSHIFT_LINES] + ["redshift_functions", "redshift_summod",
                                                            "redshift_chebyshev_degrees"]
        names += ["redshift_heatmap"] if "scale" in REDSHIFT["sweeps"] and "fourier" in REDSHIFT["measures"] else []
    elif study == "infinite":
        names = [f"infinite_{f}" for f in INFINITE_FIGURES]
    elif study == "mitosis":
        names = ["mitosis_chunks", "mitosis_clones", "mitosis_training", "mitosis_ensemble"]
    elif study == "ensembles":
        names = ["ensembles_methods", "ensembles_size", "ensembles_dropping"]
        names += ["ensembles_mu"] if multiview_data() else []
    return [f for name in names for f in figure_files(name)]


FIGURES = [f for study in config["studies"] for f in study_figures(study)]


def default_study_outputs():
    """What `snakemake` builds by default (the all target): every configured study's outputs."""
    outputs = []
    if "wide_deep" in config["studies"]:
        within = [f"results/cka/within/{m}.nc" for m in models()]
        across = [across_file(p) for p in across_seed_pairs() + across_arch_pairs()]
        outputs += [f"results/models/{m}/metrics.json" for m in models()] + within + across
        outputs += widedeep_outputs()
    if "redshift" in config["studies"]:
        outputs += [f"results/complexity/{s}.nc" for s in REDSHIFT["sweeps"]]
        outputs += ["results/complexity/summod.nc", "results/complexity/chebyshev_degrees.nc"]
    if "infinite" in config["studies"]:
        outputs += [f["data"] for f in INFINITE_FIGURES.values()]
    if "mitosis" in config["studies"]:
        outputs += [f"results/mitosis/chunks/{m}.nc" for m in mitosis_models()] + ["results/mitosis/summary.csv"]
    if "ensembles" in config["studies"]:
        outputs += ensembles_files() + ["results/ensembles/summary.csv"]
    return outputs + FIGURES + claims_outputs()


def print_outputs():
    """Where the figures are (only those that exist: a run may have built a subset of targets)."""
    for f in FIGURES:
        if Path(f).exists():
            print(f"repatlas: figure written to {Path(f).resolve()}")


# ----------------------------------------------------------------------------- claims ledger
# Which config the "What reproduces" table is of: its files in merge order (config.yaml, then
# each --configfile over it), with a note when --config overrode keys. Exported, not a param, so
# that naming the same settings differently reruns nothing (every job parses this file again).
_CLI_CONFIGS = list(workflow.overwrite_configfiles or [])
CONFIG_NAME = " + ".join(dict.fromkeys(os.path.relpath(f, workflow.basedir)
                                       for f in workflow.configfiles[len(_CLI_CONFIGS):] + _CLI_CONFIGS))
CONFIG_NAME += " with --config overrides" if workflow.config_settings.config else ""
os.environ.update(REPATLAS_CONFIGFILES=CONFIG_NAME)
CLAIM_STUDIES = ["wide_deep", "redshift", "infinite", "mitosis", "ensembles"]


def claims_inputs(wildcards):
    """The result files a study's claims read (repatlas.claims.REGISTRY), those this config makes."""
    if wildcards.study == "wide_deep":
        made = set(widedeep_outputs())
        files = {"blocks": "results/widedeep/blocks.csv", "errors": "results/widedeep/errors.csv"}
        return {k: f for k, f in files.items() if f in made}
    if wildcards.study == "redshift":
        sweeps = {"scale": "scale", "variant_sweep": "variant", "width_sweep": "width"}
        return {k: f"results/complexity/{s}.nc" for k, s in sweeps.items() if s in REDSHIFT["sweeps"]}
    if wildcards.study == "infinite":
        return {"cookbook_gap": "results/infinite/cookbook_gap.nc",
                "ntk_convergence": "results/infinite/ntk_convergence.nc",
                "regression": INFINITE_FIGURES["regression"]["data"], "conv_regression": conv_regression_file()}
    return {"summary": f"results/{wildcards.study}/summary.csv"}  # mitosis, ensembles


def claims_outputs():
    """Every configured study's ledger and the table over them (part of the default target)."""
    return [f"results/claims/{s}.csv" for s in config["studies"]] + ["results/claims/what_reproduces.md"]
