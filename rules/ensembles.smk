# Ensembles, knowledge distillation and self-distillation (Allen-Zhu & Li 2023): the study
# dataset with MLPs, and the paper's multi-view patch data with its two-layer CNN at each
# single-view fraction μ (data names multiview-mu<μ>).


rule ensembles_methods:
    input:
        unpack(ensembles_inputs),
        lib=library_of("ensembles_methods.py"),
    output:
        "results/ensembles/{data}-{regime}.nc",
    log:
        "results/logs/ensembles/{data}-{regime}.log",
    params:
        settings=ensembles_settings,
    wildcard_constraints:
        data=rf"{DATASET_REGEX}|multiview-mu[0-9.]+",
        regime="feature|ntk",
    benchmark:
        "results/benchmarks/ensembles/{data}-{regime}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(120),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/ensembles_methods.py"


rule ensembles_dropping:
    input:
        unpack(ensembles_inputs),
        lib=library_of("ensembles_dropping.py"),
    output:
        "results/ensembles/{data}-dropping.nc",
    log:
        "results/logs/ensembles/{data}-dropping.log",
    params:
        settings=ensembles_settings,
        fractions=ENSEMBLES["drop_fractions"],
    wildcard_constraints:
        data=rf"{DATASET_REGEX}|multiview-mu[0-9.]+",
    benchmark:
        "results/benchmarks/ensembles/{data}-dropping.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(120),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/ensembles_dropping.py"


rule ensembles_summary:
    input:
        nc=[f for f in ensembles_files() if not f.endswith("-dropping.nc")],
        lib=library_of("ensembles_summary.py"),
    output:
        "results/ensembles/summary.csv",
    log:
        "results/logs/ensembles/summary.log",
    params:
        labels=[(d, r) for d in ensembles_data() for r in ENSEMBLES["regimes"]],
    benchmark:
        "results/benchmarks/ensembles/summary.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/ensembles_summary.py"
