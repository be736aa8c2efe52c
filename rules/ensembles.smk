# Ensembles, knowledge distillation and self-distillation (Allen-Zhu & Li 2023).


ENSEMBLE_TRAINING = {k: ENSEMBLES[k] for k in ("epochs", "batch_size", "lr", "weight_decay")}


rule ensembles_methods:
    input:
        unpack(ensembles_inputs),
        lib=library("data.py", "models.py", "ensembles.py", "devices.py"),
    output:
        "results/ensembles/{data}-{regime}.nc",
    log:
        "results/logs/ensembles/{data}-{regime}.log",
    params:
        options={**ENSEMBLE_TRAINING, **{k: ENSEMBLES[k] for k in ("width", "depth", "temperature", "alpha")},
                 "n_seeds": ENSEMBLES["seeds"]},
        multiview=ENSEMBLES["multiview"],
    wildcard_constraints:
        data="[a-z0-9_]+",
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
        lib=library("data.py", "models.py", "ensembles.py", "devices.py"),
    output:
        "results/ensembles/{data}-dropping.nc",
    log:
        "results/logs/ensembles/{data}-dropping.log",
    params:
        options={**ENSEMBLE_TRAINING, **{k: ENSEMBLES[k] for k in ("width", "depth")},
                 "n_seeds": ENSEMBLES["seeds"], "fractions": ENSEMBLES["drop_fractions"]},
        multiview=ENSEMBLES["multiview"],
    wildcard_constraints:
        data="[a-z0-9_]+",
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
        [f for f in ensembles_files() if not f.endswith("-dropping.nc")],
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
