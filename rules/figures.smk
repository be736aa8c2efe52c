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
        title=f"{config['dataset']}, n={GRID['n'][0]}, seed={GRID['seed'][0]}",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_within_grid.py"
