# Every figure (PNG and PDF, the PNG in the report), by study: each rule reads result files and
# calls one figure script. The wide vs deep analyses' figures are in widedeep.smk; the shared parts
# (output, log, benchmark, resources) are common.smk's figure_* helpers.

# ----------------------------------------------------------------------------- CKA (wide vs deep)


rule figure_cka_within_grid:
    input:
        cka=cka_within_grid_inputs(),
        lib=library_of("figure_cka_grid.py"),
    output:
        **figure_output("cka_within_grid", caption="cka_within_grid", category="CKA"),
    log:
        figure_log("cka_within_grid"),
    params:
        cells=cka_within_grid_cells(),
        row="depth",
        col="width",
        title=f"within-model CKA, {config['dataset']}, n={GRID['n'][0]}, seed={GRID['seed'][0]}",
        xlabel="layer",
        ylabel="layer",
    benchmark:
        figure_benchmark("cka_within_grid")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


rule figure_cka_across_seeds:
    input:
        cka=[across_file(p) for p in across_seeds_figure_pairs()],
        lib=library_of("figure_cka_grid.py"),
    output:
        **figure_output("cka_across_seeds", caption="cka_across_seeds", category="CKA"),
    log:
        figure_log("cka_across_seeds"),
    params:
        cells=across_seeds_cells(),
        row="depth",
        col="width",
        title=f"cross-seed CKA, {config['dataset']}, n={GRID['n'][0]}",
        xlabel=f"layer (seed {sorted(GRID['seed'])[1] if len(GRID['seed']) > 1 else ''})",
        ylabel=f"layer (seed {sorted(GRID['seed'])[0]})",
    benchmark:
        figure_benchmark("cka_across_seeds")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


rule figure_cka_across_archs:
    input:
        cka=[across_file(p) for p in across_archs_figure_pairs()],
        lib=library_of("figure_cka_grid.py"),
    output:
        **figure_output("cka_across_archs", caption="cka_across_archs", category="CKA"),
    log:
        figure_log("cka_across_archs"),
    params:
        cells=across_archs_cells(),
        row="seed",
        col="models",
        title=f"cross-architecture CKA, {config['dataset']}, n={GRID['n'][0]}",
        xlabel="layer of B",
        ylabel="layer of A",
    benchmark:
        figure_benchmark("cka_across_archs")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


# ----------------------------------------------------------------------------- Neural Redshift
# Complexity figures show each measure's own value (Fourier in the paper's convention), with the
# unbiased (white-noise) model's level as a reference line; captions name measure and grid.


rule figure_redshift_lines:
    input:
        sweep=lambda w: f"results/complexity/{REDSHIFT_LINES[w.figure]['sweep']}.nc",
        lib=library_of("figure_complexity_lines.py"),
    output:
        **figure_output(
            "redshift_{figure}", caption="redshift_lines", category="Neural Redshift", subcategory="{figure}"
        ),
    log:
        figure_log("redshift_{figure}"),
    params:
        x=lambda w: REDSHIFT_LINES[w.figure]["x"],
        hue=lambda w: REDSHIFT_LINES[w.figure]["hue"],
        col=lambda w: REDSHIFT_LINES[w.figure]["col"],
        select=lambda w: REDSHIFT_LINES[w.figure]["select"],
        logx=lambda w: REDSHIFT_LINES[w.figure]["logx"],
        title=lambda w: REDSHIFT_LINES[w.figure]["title"],
    wildcard_constraints:
        figure="|".join(REDSHIFT_LINES) or "none",
    benchmark:
        figure_benchmark("redshift_{figure}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_complexity_lines.py"


rule figure_redshift_functions:
    input:
        lib=library_of("figure_redshift_functions.py"),
    output:
        **figure_output("redshift_functions", caption="redshift_functions", category="Neural Redshift"),
    log:
        figure_log("redshift_functions"),
    params:
        grid_size=REDSHIFT["grid_size"],
        endpoint=REDSHIFT["grid_endpoint"],
        activations=["relu", "tanh", "sin", "gaussian"],
        scales=[1.0, 5.0, 25.0],
        depth=REDSHIFT["figure_depth"],
        title="random MLPs on [-1, 1]², rows: activation, columns: weight magnitude A",
    benchmark:
        figure_benchmark("redshift_functions")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_redshift_functions.py"


rule figure_redshift_heatmap:
    input:
        sweep="results/complexity/scale.nc",
        lib=library_of("figure_redshift_heatmap.py"),
    output:
        **figure_output("redshift_heatmap", caption="redshift_heatmap", category="Neural Redshift"),
    log:
        figure_log("redshift_heatmap"),
    params:
        select={"width": 64, "variant": "plain"},
        title=f"Fourier complexity ({REDSHIFT['fourier_convention']} convention) of random MLPs, mean over seeds",
    benchmark:
        figure_benchmark("redshift_heatmap")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_redshift_heatmap.py"


rule figure_chebyshev_degrees:
    input:
        data="results/complexity/chebyshev_degrees.nc",
        lib=library_of("figure_chebyshev_degrees.py"),
    output:
        **figure_output(
            "redshift_chebyshev_degrees", caption="redshift_chebyshev_degrees", category="Neural Redshift"
        ),
    log:
        figure_log("redshift_chebyshev_degrees"),
    params:
        title=f"Chebyshev complexity vs maximum degree D, depth {REDSHIFT['figure_depth']}, "
        f"{REDSHIFT['chebyshev_nodes']}² Chebyshev points",
    benchmark:
        figure_benchmark("redshift_chebyshev_degrees")
    resources:
        **figure_resources(mem_mb=4000),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_chebyshev_degrees.py"


rule figure_summod:
    input:
        summod="results/complexity/summod.nc",
        lib=library_of("figure_summod.py"),
    output:
        **figure_output("redshift_summod", caption="redshift_summod", category="Neural Redshift"),
    log:
        figure_log("redshift_summod"),
    params:
        title="sum-mod-M: test accuracy vs the target's complexity (smaller M = more complex target)",
    benchmark:
        figure_benchmark("redshift_summod")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_summod.py"


# ----------------------------------------------------------------------------- infinite width


rule figure_infinite:
    input:
        data=lambda w: INFINITE_FIGURES[w.name]["data"],
        lib=library_of("figure_infinite.py"),
    output:
        **figure_output(
            "infinite_{name}", caption="infinite", category="Infinite width", subcategory="{name}"
        ),
    log:
        figure_log("infinite_{name}"),
    params:
        figure=lambda w: INFINITE_FIGURES[w.name]["figure"],
        title=lambda w: INFINITE_FIGURES[w.name]["title"],
    wildcard_constraints:
        name="|".join(INFINITE_FIGURES),
    benchmark:
        figure_benchmark("infinite_{name}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_infinite.py"


# ----------------------------------------------------------------------------- representation mitosis


rule figure_mitosis:
    input:
        chunks=lambda w: [f"results/mitosis/chunks/{c['model']}.nc" for c in mitosis_figure_cells(w)],
        lib=library_of("figure_mitosis.py"),
    output:
        **figure_output(
            "mitosis_{name}", caption="mitosis", category="Representation mitosis", subcategory="{name}"
        ),
    log:
        figure_log("mitosis_{name}"),
    params:
        figure=lambda w: f"mitosis_{w.name}_figure",
        cells=lambda w: [
            {k: c[k] for k in ("arch", "regime", "width", "seed")} for c in mitosis_figure_cells(w)
        ],
        title=f"{config['dataset']}, n = {MITOSIS['n']}, "
        + ", ".join(f"{a} depth {s['depth']}" for a, s in MITOSIS["archs"].items())
        + ", test split",
    wildcard_constraints:
        name="chunks|clones|training",
    benchmark:
        figure_benchmark("mitosis_{name}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_mitosis.py"


rule figure_mitosis_ensemble:
    input:
        wide=f"results/mitosis/features/{mitosis_ensemble_wide()}.npz",
        members=[f"results/mitosis/features/{m}.npz" for m in mitosis_ensemble_members()],
        lib=library_of("figure_mitosis_ensemble.py"),
    output:
        **figure_output("mitosis_ensemble", caption="mitosis_ensemble", category="Representation mitosis"),
    log:
        figure_log("mitosis_ensemble"),
    params:
        arch=MITOSIS["ensemble"]["arch"],
        wide_width=max(MITOSIS["archs"][MITOSIS["ensemble"]["arch"]]["widths"]),
        narrow_width=MITOSIS["ensemble"]["width"],
        title=f"widest {MITOSIS['ensemble']['arch']} vs an ensemble of narrow ones",
    benchmark:
        figure_benchmark("mitosis_ensemble")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_mitosis_ensemble.py"


# ----------------------------------------------------------------------------- ensembles and distillation


rule figure_ensembles:
    input:
        summary="results/ensembles/summary.csv",
        data=lambda w: (
            [f"results/ensembles/{d}-dropping.nc" for d in ensembles_data()]
            if w.name == "dropping"
            else [f"results/ensembles/{d}-{r}.nc" for d in ensembles_data() for r in ENSEMBLES["regimes"]]
        ),
        lib=library_of("figure_ensembles.py"),
    output:
        **figure_output(
            "ensembles_{name}",
            caption="ensembles",
            category="Ensembles and distillation",
            subcategory="{name}",
        ),
    log:
        figure_log("ensembles_{name}"),
    params:
        figure=lambda w: w.name,
        labels=lambda w: (
            ensembles_data()
            if w.name == "dropping"
            else [(d, r) for d in ensembles_data() for r in ENSEMBLES["regimes"]]
        ),
        title=f"{ENSEMBLES['seeds']} members × {ENSEMBLES['trials']} trials; dataset: MLP width "
        f"{ENSEMBLES['width']}; multi-view: the paper's two-layer CNN",
    wildcard_constraints:
        name="methods|size|dropping",
    benchmark:
        figure_benchmark("ensembles_{name}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_ensembles.py"


rule figure_ensembles_mu:
    input:
        summary="results/ensembles/summary.csv",
        lib=library_of("figure_ensembles.py"),
    output:
        **figure_output(
            "ensembles_mu", caption="ensembles_mu", category="Ensembles and distillation", subcategory="mu"
        ),
    log:
        figure_log("ensembles_mu"),
    params:
        figure="mu",
        title=f"multi-view data, the paper's two-layer CNN: {ENSEMBLES['seeds']} members × "
        f"{ENSEMBLES['trials']} trials per μ",
    benchmark:
        figure_benchmark("ensembles_mu")
    resources:
        **figure_resources(mem_mb=4000, runtime=15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_ensembles.py"
