# Representation mitosis: clones in the last hidden layer of wide networks.


rule train_mitosis_model:
    input:
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        full="results/data/{dataset}/full.npz",
        lib=library("data.py", "models.py", "train.py"),
    output:
        model=f"results/mitosis/models/{MITOSIS_MODEL}/model.pt",
        metrics=f"results/mitosis/models/{MITOSIS_MODEL}/metrics.json",
    log:
        f"results/mitosis/models/{MITOSIS_MODEL}/train.log",
    params:
        train=lambda w: {
            "epochs": MITOSIS["epochs"] if w.regime == "converged" else MITOSIS["early_epochs"],
            **{k: MITOSIS[k] for k in ("batch_size", "lr", "weight_decay")},
        },
        device=config["device"],
    wildcard_constraints:
        regime="converged|early",
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
        lib=library("data.py", "models.py", "train.py", "activations.py", "mitosis.py"),
    output:
        f"results/mitosis/features/{MITOSIS_MODEL}.npz",
    log:
        f"results/logs/mitosis/features/{MITOSIS_MODEL}.log",
    wildcard_constraints:
        regime="converged|early",
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
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/mitosis_chunks.py"
