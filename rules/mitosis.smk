# Representation mitosis: clones in the last hidden layer of wide networks, for each architecture
# in mitosis.archs (MLP hidden width; ResNet pooled features, 64·k units).


rule train_mitosis_model:
    input:
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        full="results/data/{dataset}/full.npz",
        lib=library("data.py", "models.py", "train.py", "devices.py"),
    output:
        model=f"results/mitosis/models/{MITOSIS_MODEL}/model.pt",
        metrics=f"results/mitosis/models/{MITOSIS_MODEL}/metrics.json",
    log:
        f"results/mitosis/models/{MITOSIS_MODEL}/train.log",
    params:
        train=mitosis_train_settings,
        device=config["device"],
    wildcard_constraints:
        regime="converged|early",
    benchmark:
        f"results/benchmarks/train_mitosis_model/{MITOSIS_MODEL}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(60),
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/train_mitosis_model.py"


rule mitosis_features:
    input:
        model=f"results/mitosis/models/{MITOSIS_MODEL}/model.pt",
        full="results/data/{dataset}/full.npz",
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        lib=library("data.py", "models.py", "train.py", "activations.py", "mitosis.py", "devices.py"),
    output:
        f"results/mitosis/features/{MITOSIS_MODEL}.npz",
    log:
        f"results/logs/mitosis/features/{MITOSIS_MODEL}.log",
    params:
        device=config["device"],
    wildcard_constraints:
        regime="converged|early",
    benchmark:
        f"results/benchmarks/mitosis_features/{MITOSIS_MODEL}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(15),
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/mitosis_features.py"


rule mitosis_chunks:
    input:
        features=f"results/mitosis/features/{MITOSIS_MODEL}.npz",
        lib=library("data.py", "mitosis.py"),
    output:
        f"results/mitosis/chunks/{MITOSIS_MODEL}.nc",
    log:
        f"results/logs/mitosis/chunks/{MITOSIS_MODEL}.log",
    params:
        repeats=MITOSIS["repeats"],
    wildcard_constraints:
        regime="converged|early",
    benchmark:
        f"results/benchmarks/mitosis_chunks/{MITOSIS_MODEL}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(60),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/mitosis_chunks.py"


rule mitosis_summary:
    input:
        chunks=[f"results/mitosis/chunks/{m}.nc" for m in mitosis_models()],
        lib=library("mitosis.py"),
    output:
        "results/mitosis/summary.csv",
    log:
        "results/logs/mitosis/summary.log",
    benchmark:
        "results/benchmarks/mitosis_summary.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/mitosis_summary.py"
