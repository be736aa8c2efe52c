rule cka_within:
    input:
        acts=f"results/activations/{MODEL}/acts.zarr",
        lib=library("activations.py", "cka.py"),
    output:
        f"results/cka/within/{MODEL}.nc",
    log:
        f"results/logs/cka/within/{MODEL}.log",
    params:
        cka=config["cka"],
    conda:
        "../envs/analysis.yaml"
    threads: config["threads"]["cka"]
    script:
        "../scripts/cka_within.py"
