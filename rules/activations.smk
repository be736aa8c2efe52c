rule dump_activations:
    input:
        model=f"results/models/{MODEL_PATH}/model.pt",
        full="results/data/{dataset}/full.npz",
        lib=library_of("dump_activations.py"),
    output:
        directory(f"results/activations/{MODEL_PATH}/acts.zarr"),
    log:
        f"results/logs/activations/{MODEL_PATH}.log",
    params:
        probe_size=config["probe_size"],
        batch_size=config["activations"]["batch_size"],
        dtype=config["activations"]["dtype"],
        compressor=config["activations"]["compressor"],
        device=config["device"],
    benchmark:
        f"results/benchmarks/dump_activations/{MODEL_PATH}.tsv"
    resources:
        mem_mb=scaled(8000, 64),
        runtime=scaled(20, 0.3),
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: 1
    script:
        "../scripts/dump_activations.py"
