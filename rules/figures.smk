rule figure_cka_within_grid:
    input:
        cka=cka_within_grid_inputs(),
        lib=library("plots.py"),
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
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


rule figure_cka_across_seeds:
    input:
        cka=[across_file(p) for p in across_seeds_figure_pairs()],
        lib=library("plots.py"),
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
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


rule figure_cka_across_archs:
    input:
        cka=[across_file(p) for p in across_archs_figure_pairs()],
        lib=library("plots.py"),
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
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"
