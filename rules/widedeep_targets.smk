# Targets and input functions of rules/widedeep.smk. The wide vs deep study's results: each
# model's metrics (train.smk), its CKA (cka.smk, cka_targets.smk) and the analyses of widedeep.smk.


def wide_deep_results():
    """The wide vs deep study's result files: every model's metrics, the CKA, the analyses."""
    return [f"results/models/{m}/metrics.json" for m in models()] + cka_results() + widedeep_outputs()


def widedeep_outputs():
    """The configured analyses' result files (wide_deep.analyses)."""
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


def wide_deep_figure_names():
    """The CKA grids (cka.smk), the data-size grid where the grid has several n, each analysis's figure."""
    analyses = WIDE_DEEP["analyses"]
    names = cka_figure_names()
    names += ["cka_data_grid"] if len(GRID["n"]) > 1 else []
    names += [f"widedeep_{a}" for a in ("blocks", "pca", "probes", "pruning") if a in analyses]
    if "errors" in analyses:
        names += [f"widedeep_errors_{a}__{b}" for a, b in error_pairs()]
    return names


def error_pairs():
    """(A, B) architecture ids whose per-example errors are compared over all seeds, at every n."""
    if len(SEEDS) < 2:
        return []  # one seed per architecture: the permutation test cannot reject anything
    configured = WIDE_DEEP["errors"]["archs"] or config["cka"]["across_archs"]
    return [
        (arch_id(n, da, wa), arch_id(n, db, wb))
        for (da, wa), (db, wb) in arch_pairs(configured)
        for n in GRID["n"]
    ]


def predictions_of(arch):
    """Test-split prediction files of every seed of an architecture id."""
    fields = parse_arch_id(arch)
    return [f"results/models/{MODEL_PATH.format(**fields, seed=s)}/predictions.nc" for s in SEEDS]


def first_grid_cells():
    """The depth × width grid at the first n and seed: the facets of the per-model figures."""
    return [
        {"depth": d, "width": w, "n": GRID["n"][0], "seed": GRID["seed"][0]}
        for d in GRID["depth"]
        for w in GRID["width"]
    ]


def data_grid_cells():
    """Width × training-set size at the deepest depth and first seed (Nguyen et al.'s data-size figure)."""
    return [
        {"n": n, "width": w, "depth": max(GRID["depth"]), "seed": GRID["seed"][0]}
        for n in GRID["n"]
        for w in GRID["width"]
    ]


def grid_cells():
    """Every model of the grid as a facet record."""
    return [
        {"depth": d, "width": w, "n": n, "seed": s}
        for n in GRID["n"]
        for d in GRID["depth"]
        for w in GRID["width"]
        for s in GRID["seed"]
    ]


def cell_model(cell):
    return models(**cell)[0]


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
