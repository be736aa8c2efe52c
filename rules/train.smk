rule train_model:
    input:
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        full="results/data/{dataset}/full.npz",
        lib=library_of("train_model.py"),
    output:
        model=f"results/models/{MODEL_PATH}/model.pt",
        metrics=f"results/models/{MODEL_PATH}/metrics.json",
    log:
        f"results/models/{MODEL_PATH}/train.log",
    params:
        train=config["train"],
        model_options=lambda w: (
            {"activation": config["model"]["mlp_activation"]}
            if w.arch == "mlp"
            else config["model"]["resnet"]
        ),
        device=config["device"],
    benchmark:
        f"results/benchmarks/train_model/{MODEL_PATH}.tsv"
    resources:
        mem_mb=scaled(16000),
        runtime=train_runtime,
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]["train"]
    script:
        "../scripts/train_model.py"
