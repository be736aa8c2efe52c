# Neural Redshift: complexity of random networks, the Chebyshev degree sensitivity, and the
# sum-mod-M experiment. Each measure samples its own points (MeasureSettings): Fourier on the
# equispaced grid, Chebyshev at Chebyshev points, LZ on its own (coarser) grid.


rule complexity_sweep:
    input:
        lib=library_of("complexity_sweep.py"),
    output:
        "results/complexity/{sweep}.nc",
    log:
        "results/logs/complexity/{sweep}.log",
    params:
        sweep=lambda w: REDSHIFT["sweeps"][w.sweep],
        settings=REDSHIFT_SETTINGS,
    benchmark:
        "results/benchmarks/complexity/{sweep}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(120),
    conda:
        "../envs/analysis.yaml"
    wildcard_constraints:
        sweep="|".join(REDSHIFT["sweeps"]),
    threads: REDSHIFT["jobs"]
    script:
        "../scripts/complexity_sweep.py"


rule chebyshev_degrees:
    input:
        lib=library_of("chebyshev_degrees.py"),
    output:
        "results/complexity/chebyshev_degrees.nc",
    log:
        "results/logs/complexity/chebyshev_degrees.log",
    params:
        sensitivity=REDSHIFT["chebyshev_sensitivity"],
        depth=REDSHIFT["figure_depth"],
        nodes=REDSHIFT["chebyshev_nodes"],
    benchmark:
        "results/benchmarks/complexity/chebyshev_degrees.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(30),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/chebyshev_degrees.py"


rule summod:
    input:
        lib=library_of("summod.py"),
    output:
        "results/complexity/summod.nc",
    log:
        "results/logs/complexity/summod.log",
    params:
        summod=REDSHIFT["summod"],
        settings=REDSHIFT_FOURIER,
    benchmark:
        "results/benchmarks/complexity/summod.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(60),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/summod.py"
