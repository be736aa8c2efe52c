# Representation mitosis: clones in the last hidden layer of wide networks, for each architecture
# in mitosis.archs (MLP hidden width; ResNet pooled features, 64·k units). One training run per
# model; its final weights are the "converged" model and its snapshots at early_epochs the
# "epoch<E>" models (the same run stopped early).


rule train_mitosis_model:
    input:
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        full="results/data/{dataset}/full.npz",
        lib=library_of("train_model.py"),
    output:
        model=f"results/mitosis/models/{MODEL_PATH}/model.pt",
        metrics=f"results/mitosis/models/{MODEL_PATH}/metrics.json",
        snapshots=directory(f"results/mitosis/models/{MODEL_PATH}/snapshots"),
    log:
        f"results/mitosis/models/{MODEL_PATH}/train.log",
    params:
        train=mitosis_train_settings,
        snapshot_epochs=lambda w: MITOSIS["archs"][w.arch]["early_epochs"],
        device=config["device"],
    benchmark:
        f"results/benchmarks/train_mitosis_model/{MODEL_PATH}.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(60),
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/train_model.py"


rule mitosis_features:
    input:
        weights=mitosis_weights,
        full="results/data/{dataset}/full.npz",
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        lib=library_of("mitosis_features.py"),
    output:
        f"results/mitosis/features/{MITOSIS_MODEL_PATH}.npz",
    log:
        f"results/logs/mitosis/features/{MITOSIS_MODEL_PATH}.log",
    params:
        epoch=mitosis_epoch,
        device=config["device"],
    wildcard_constraints:
        regime=r"converged|epoch\d+",
    benchmark:
        f"results/benchmarks/mitosis_features/{MITOSIS_MODEL_PATH}.tsv"
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
        features=f"results/mitosis/features/{MITOSIS_MODEL_PATH}.npz",
        lib=library_of("mitosis_chunks.py"),
    output:
        f"results/mitosis/chunks/{MITOSIS_MODEL_PATH}.nc",
    log:
        f"results/logs/mitosis/chunks/{MITOSIS_MODEL_PATH}.log",
    params:
        repeats=MITOSIS["repeats"],
        thresholds=MITOSIS["r2_thresholds"],
        heldout=MITOSIS["heldout"],
    wildcard_constraints:
        regime=r"converged|epoch\d+",
    benchmark:
        f"results/benchmarks/mitosis_chunks/{MITOSIS_MODEL_PATH}.tsv"
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
        lib=library_of("mitosis_summary.py"),
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
