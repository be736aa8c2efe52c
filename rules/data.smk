rule prepare_dataset:
    output:
        "results/data/{dataset}/full.npz",
    log:
        "results/logs/data/{dataset}/full.log",
    params:
        data_dir=config["data_dir"],
    input:
        lib=library_of("prepare_dataset.py"),
    benchmark:
        "results/benchmarks/data/{dataset}/full.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(30),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/prepare_dataset.py"


rule subset_dataset:
    input:
        full="results/data/{dataset}/full.npz",
        lib=library_of("subset_dataset.py"),
    output:
        "results/data/{dataset}/train-n{n}-s{seed}.npz",
    log:
        "results/logs/data/{dataset}/train-n{n}-s{seed}.log",
    benchmark:
        "results/benchmarks/data/{dataset}/train-n{n}-s{seed}.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/subset_dataset.py"
