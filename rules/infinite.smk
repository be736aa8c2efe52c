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


rule infinite_cookbook_gap:
    input:
        lib=library_of("infinite_cookbook_gap.py"),
    output:
        "results/infinite/cookbook_gap/w{width}.nc",
    log:
        "results/logs/infinite/cookbook_gap/w{width}.log",
    params:
        cookbook={
            k: v
            for k, v in INFINITE["cookbook"].items()
            if k not in ("n_models", "width", "record_every", "diag_reg")
        },
        pairs=lambda w: dict(zip(INFINITE["cookbook_gap"]["widths"], INFINITE["cookbook_gap"]["pairs"]))[
            int(w.width)
        ],
        diag_reg=INFINITE["cookbook_gap"]["diag_reg"],
    benchmark:
        "results/benchmarks/infinite/cookbook_gap/w{width}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(600),
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/infinite_cookbook_gap.py"


rule infinite_cookbook_gap_table:
    input:
        widths=[f"results/infinite/cookbook_gap/w{w}.nc" for w in INFINITE["cookbook_gap"]["widths"]],
        lib=library_of("infinite_cookbook_gap_table.py"),
    output:
        "results/infinite/cookbook_gap.nc",
    log:
        "results/logs/infinite/cookbook_gap.log",
    benchmark:
        "results/benchmarks/infinite/cookbook_gap.tsv"
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/infinite_cookbook_gap_table.py"


rule infinite_conv_regression:
    input:
        full="results/data/{dataset}/full.npz",
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        lib=library_of("infinite_conv_regression.py"),
    output:
        "results/infinite/conv_regression-{dataset}-n{n}.nc",
    log:
        "results/logs/infinite/conv_regression-{dataset}-n{n}.log",
    params:
        conv={k: v for k, v in INFINITE["conv"].items() if k not in ("dataset", "pool", "n_test")},
        pool=INFINITE["conv"]["pool"],
        n_test=INFINITE["conv"]["n_test"],
    benchmark:
        "results/benchmarks/infinite/conv_regression-{dataset}-n{n}.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(240),
    conda:
        "../envs/torch.yaml"
    threads: 2
    script:
        "../scripts/infinite_conv_regression.py"
