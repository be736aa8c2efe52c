# Neural Redshift: complexity of random networks, and the sum-mod-M experiment.


rule complexity_sweep:
    input:
        lib=library_of("complexity_sweep.py"),
    output:
        "results/complexity/{sweep}.nc",
    log:
        "results/logs/complexity/{sweep}.log",
    params:
        sweep=lambda w: REDSHIFT["sweeps"][w.sweep],
        grid_size=REDSHIFT["grid_size"],
        measures=REDSHIFT["measures"],
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


rule summod:
    input:
        lib=library_of("summod.py"),
    output:
        "results/complexity/summod.nc",
    log:
        "results/logs/complexity/summod.log",
    params:
        summod=REDSHIFT["summod"],
        grid_size=REDSHIFT["grid_size"],
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
