# Targets and input functions of rules/cka.smk, linear CKA within each model of the grid and
# across models: seed pairs of one architecture (cka.across_seeds) and the configured architecture
# pairs (cka.across_archs); and of the CKA figures (rules/figures.smk).

# Options that change a CKA result (params of the CKA rules; pairing options are not among them).
CKA_ESTIMATOR = {k: config["cka"][k] for k in ("batch_size", "epochs", "window")}
# The first-PC analysis runs inside cka_within: blocks need its per-layer PC1 shares (a block is
# PC1-dominated), the PCA figure draws it and the pruning figure labels blocks with it.
FIRST_PC = bool({"blocks", "pca", "pruning"} & set(WIDE_DEEP["analyses"]))


def cka_within_outputs():
    """cka_within's outputs: the CKA, then the first-PC analysis when FIRST_PC (in one mapping:
    snakefmt moves a `**` entry before the keyword ones, which would reorder the outputs)."""
    return {"cka": f"results/cka/within/{MODEL_PATH}.nc"} | (
        {"pca": f"results/widedeep/pca/{MODEL_PATH}.nc"} if FIRST_PC else {}
    )


# Seed pairs (s1 < s2) compared for every architecture and training-set size.
SEED_PAIRS = (
    [(s1, s2) for i, s1 in enumerate(SEEDS) for s2 in SEEDS[i + 1 :]] if config["cka"]["across_seeds"] else []
)


def across_seeds_file(s1, s2):
    """Output pattern of one seed pair's cross-seed CKA (wildcards: those of ARCH_PATH)."""
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
    alternatives = "|".join(arch_label(depth=d, width=w) for d, w in archs) or "(?!)"  # (?!) matches nothing
    return rf"{DATASET_REGEX}-n\d+-(?:{ARCH_REGEX})-(?:{alternatives})-s\d+"


def across_file(pair):
    return f"results/cka/across/{pair[0]}__{pair[1]}.nc"


def cka_results():
    """The CKA of every model of the grid, then of every configured pair across models."""
    within = [f"results/cka/within/{m}.nc" for m in models()]
    return within + [across_file(p) for p in across_seed_pairs() + across_arch_pairs()]


# ----------------------------------------------------------------------------- figures (rules/figures.smk)


def cka_within_grid_cells():
    """(depth, width) facets of the within-model CKA figure: the grid at the first n and seed."""
    return [{"depth": d, "width": w} for d in GRID["depth"] for w in GRID["width"]]


def across_seeds_cells():
    return [{k: parse_model_id(a)[k] for k in ("depth", "width")} for a, _ in across_seeds_figure_pairs()]


def across_archs_cells():
    return [
        {"seed": parse_model_id(a)["seed"], "models": f"{arch_label_of(a)} (A) vs {arch_label_of(b)} (B)"}
        for a, b in across_archs_figure_pairs()
    ]


def cka_within_grid_inputs():
    first = {"n": GRID["n"][0], "seed": GRID["seed"][0]}
    return [f"results/cka/within/{models(**first, **c)[0]}.nc" for c in cka_within_grid_cells()]


def across_seeds_figure_pairs():
    """The cross-seed figure: first two seeds at the first n, one facet per architecture."""
    return [
        p
        for p in across_seed_pairs()
        if f"-n{GRID['n'][0]}-" in p[0]
        and p[0].endswith(f"-s{sorted(GRID['seed'])[0]}")
        and p[1].endswith(f"-s{sorted(GRID['seed'])[1]}")
    ]


def across_archs_figure_pairs():
    """The cross-architecture figure: every pair at the first n and seed."""
    first = f"-n{GRID['n'][0]}-"
    return [p for p in across_arch_pairs() if first in p[0] and p[0].endswith(f"-s{GRID['seed'][0]}")]


def cka_figure_names():
    """The CKA heatmap grids: within models, and across seeds and architectures where pairs exist."""
    names = ["cka_within_grid"]
    names += ["cka_across_seeds"] if across_seeds_figure_pairs() else []
    names += ["cka_across_archs"] if across_archs_figure_pairs() else []
    return names
