rule figure_cka_within_grid:
    input:
        cka=cka_within_grid_inputs(),
        lib=library_of("figure_cka_grid.py"),
    output:
        png=report(
            "results/figures/cka_within_grid.png",
            caption="../workflow/report/cka_within_grid.rst",
            category="CKA",
        ),
        pdf="results/figures/cka_within_grid.pdf",
    log:
        "results/logs/figures/cka_within_grid.log",
    params:
        cells=cka_within_grid_cells(),
        row="depth",
        col="width",
        title=f"within-model CKA, {config['dataset']}, n={GRID['n'][0]}, seed={GRID['seed'][0]}",
        xlabel="layer",
        ylabel="layer",
    benchmark:
        "results/benchmarks/figures/cka_within_grid.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/cka_across_seeds.png",
            caption="../workflow/report/cka_across_seeds.rst",
            category="CKA",
        ),
        pdf="results/figures/cka_across_seeds.pdf",
    log:
        "results/logs/figures/cka_across_seeds.log",
    params:
        cells=across_seeds_cells(),
        row="depth",
        col="width",
        title=f"cross-seed CKA, {config['dataset']}, n={GRID['n'][0]}",
        xlabel=f"layer (seed {sorted(GRID['seed'])[1] if len(GRID['seed']) > 1 else ''})",
        ylabel=f"layer (seed {sorted(GRID['seed'])[0]})",
    benchmark:
        "results/benchmarks/figures/cka_across_seeds.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/cka_across_archs.png",
            caption="../workflow/report/cka_across_archs.rst",
            category="CKA",
        ),
        pdf="results/figures/cka_across_archs.pdf",
    log:
        "results/logs/figures/cka_across_archs.log",
    params:
        cells=across_archs_cells(),
        row="seed",
        col="models",
        title=f"cross-architecture CKA, {config['dataset']}, n={GRID['n'][0]}",
        xlabel="layer of B",
        ylabel="layer of A",
    benchmark:
        "results/benchmarks/figures/cka_across_archs.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/redshift_{figure}.png",
            caption="../workflow/report/redshift_lines.rst",
            category="Neural Redshift",
            subcategory="{figure}",
        ),
        pdf="results/figures/redshift_{figure}.pdf",
    log:
        "results/logs/figures/redshift_{figure}.log",
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
        "results/benchmarks/figures/redshift_{figure}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_complexity_lines.py"


rule figure_redshift_functions:
    input:
        lib=library_of("figure_redshift_functions.py"),
    output:
        png=report(
            "results/figures/redshift_functions.png",
            caption="../workflow/report/redshift_functions.rst",
            category="Neural Redshift",
        ),
        pdf="results/figures/redshift_functions.pdf",
    log:
        "results/logs/figures/redshift_functions.log",
    params:
        grid_size=REDSHIFT["grid_size"],
        endpoint=REDSHIFT["grid_endpoint"],
        activations=["relu", "tanh", "sin", "gaussian"],
        scales=[1.0, 5.0, 25.0],
        depth=REDSHIFT["figure_depth"],
        title="random MLPs on [-1, 1]², rows: activation, columns: weight magnitude A",
    benchmark:
        "results/benchmarks/figures/redshift_functions.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/redshift_heatmap.png",
            caption="../workflow/report/redshift_heatmap.rst",
            category="Neural Redshift",
        ),
        pdf="results/figures/redshift_heatmap.pdf",
    log:
        "results/logs/figures/redshift_heatmap.log",
    params:
        select={"width": 64, "variant": "plain"},
        title=f"Fourier complexity ({REDSHIFT['fourier_convention']} convention) of random MLPs, mean over seeds",
    benchmark:
        "results/benchmarks/figures/redshift_heatmap.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/redshift_chebyshev_degrees.png",
            caption="../workflow/report/redshift_chebyshev_degrees.rst",
            category="Neural Redshift",
        ),
        pdf="results/figures/redshift_chebyshev_degrees.pdf",
    log:
        "results/logs/figures/redshift_chebyshev_degrees.log",
    params:
        title=f"Chebyshev complexity vs maximum degree D, depth {REDSHIFT['figure_depth']}, "
        f"{REDSHIFT['chebyshev_nodes']}² Chebyshev points",
    benchmark:
        "results/benchmarks/figures/redshift_chebyshev_degrees.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/redshift_summod.png",
            caption="../workflow/report/redshift_summod.rst",
            category="Neural Redshift",
        ),
        pdf="results/figures/redshift_summod.pdf",
    log:
        "results/logs/figures/redshift_summod.log",
    params:
        title="sum-mod-M: test accuracy vs the target's complexity (smaller M = more complex target)",
    benchmark:
        "results/benchmarks/figures/redshift_summod.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/infinite_{name}.png",
            caption="../workflow/report/infinite.rst",
            category="Infinite width",
            subcategory="{name}",
        ),
        pdf="results/figures/infinite_{name}.pdf",
    log:
        "results/logs/figures/infinite_{name}.log",
    params:
        figure=lambda w: INFINITE_FIGURES[w.name]["figure"],
        title=lambda w: INFINITE_FIGURES[w.name]["title"],
    wildcard_constraints:
        name="|".join(INFINITE_FIGURES),
    benchmark:
        "results/benchmarks/figures/infinite_{name}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/mitosis_{name}.png",
            caption="../workflow/report/mitosis.rst",
            category="Representation mitosis",
            subcategory="{name}",
        ),
        pdf="results/figures/mitosis_{name}.pdf",
    log:
        "results/logs/figures/mitosis_{name}.log",
    params:
        figure=lambda w: f"mitosis_{w.name}_figure",
        cells=lambda w: [{k: c[k] for k in ("arch", "regime", "width", "seed")} for c in mitosis_figure_cells(w)],
        title=f"{config['dataset']}, n = {MITOSIS['n']}, "
        + ", ".join(f"{a} depth {s['depth']}" for a, s in MITOSIS["archs"].items())
        + ", test split",
    wildcard_constraints:
        name="chunks|clones|training",
    benchmark:
        "results/benchmarks/figures/mitosis_{name}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/mitosis_ensemble.png",
            caption="../workflow/report/mitosis_ensemble.rst",
            category="Representation mitosis",
        ),
        pdf="results/figures/mitosis_ensemble.pdf",
    log:
        "results/logs/figures/mitosis_ensemble.log",
    params:
        arch=MITOSIS["ensemble"]["arch"],
        wide_width=max(MITOSIS["archs"][MITOSIS["ensemble"]["arch"]]["widths"]),
        narrow_width=MITOSIS["ensemble"]["width"],
        title=f"widest {MITOSIS['ensemble']['arch']} vs an ensemble of narrow ones",
    benchmark:
        "results/benchmarks/figures/mitosis_ensemble.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/ensembles_{name}.png",
            caption="../workflow/report/ensembles.rst",
            category="Ensembles and distillation",
            subcategory="{name}",
        ),
        pdf="results/figures/ensembles_{name}.pdf",
    log:
        "results/logs/figures/ensembles_{name}.log",
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
        "results/benchmarks/figures/ensembles_{name}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
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
        png=report(
            "results/figures/ensembles_mu.png",
            caption="../workflow/report/ensembles_mu.rst",
            category="Ensembles and distillation",
            subcategory="mu",
        ),
        pdf="results/figures/ensembles_mu.pdf",
    log:
        "results/logs/figures/ensembles_mu.log",
    params:
        figure="mu",
        title=f"multi-view data, the paper's two-layer CNN: {ENSEMBLES['seeds']} members × "
        f"{ENSEMBLES['trials']} trials per μ",
    benchmark:
        "results/benchmarks/figures/ensembles_mu.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_ensembles.py"
