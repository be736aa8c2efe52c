rule prepare_dataset:
    output:
        "results/data/{dataset}/full.npz",
    log:
        "results/logs/data/{dataset}/full.log",
    params:
        data_dir=config["data_dir"],
    input:
        lib=library("data.py"),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/prepare_dataset.py"


rule subset_dataset:
    input:
        full="results/data/{dataset}/full.npz",
        lib=library("data.py"),
    output:
        "results/data/{dataset}/train-n{n}-s{seed}.npz",
    log:
        "results/logs/data/{dataset}/train-n{n}-s{seed}.log",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/subset_dataset.py"
