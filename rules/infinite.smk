# Infinite width: analytic NNGP/NTK against finite networks.


rule infinite_cookbook:
    input:
        lib=library_of("infinite_cookbook.py"),
    output:
        "results/infinite/cookbook-{architecture}.nc",
    log:
        "results/logs/infinite/cookbook-{architecture}.log",
    params:
        cookbook=INFINITE["cookbook"],
    wildcard_constraints:
        architecture="mlp|resnet",
    benchmark:
        "results/benchmarks/infinite/cookbook-{architecture}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(180),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/infinite_cookbook.py"


rule infinite_ntk_convergence:
    input:
        lib=library_of("infinite_ntk_convergence.py"),
    output:
        "results/infinite/ntk_convergence.nc",
    log:
        "results/logs/infinite/ntk_convergence.log",
    params:
        ntk=INFINITE["ntk"],
    benchmark:
        "results/benchmarks/infinite/ntk_convergence.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(60),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/infinite_ntk_convergence.py"


rule infinite_regression:
    input:
        full="results/data/{dataset}/full.npz",
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        lib=library_of("infinite_regression.py"),
    output:
        "results/infinite/regression-{dataset}-n{n}.nc",
    log:
        "results/logs/infinite/regression-{dataset}-n{n}.log",
    params:
        regression={k: v for k, v in INFINITE["regression"].items() if k != "n_train"},
        probe_size=config["probe_size"],
    benchmark:
        "results/benchmarks/infinite/regression-{dataset}-n{n}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(120),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/infinite_regression.py"
