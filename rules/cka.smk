rule cka_within:
    input:
        acts=f"results/activations/{MODEL}/acts.zarr",
        lib=library("activations.py", "cka.py"),
    output:
        f"results/cka/within/{MODEL}.nc",
    log:
        f"results/logs/cka/within/{MODEL}.log",
    params:
        cka=CKA_ESTIMATOR,
    benchmark:
        f"results/benchmarks/cka_within/{MODEL}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: config["threads"]["cka"]
    script:
        "../scripts/cka_within.py"


rule cka_across:
    input:
        a=lambda w: f"results/activations/{model_path_of(w.a)}/acts.zarr",
        b=lambda w: f"results/activations/{model_path_of(w.b)}/acts.zarr",
        lib=library("activations.py", "cka.py"),
    output:
        "results/cka/across/{a}__{b}.nc",
    log:
        "results/logs/cka/across/{a}__{b}.log",
    params:
        cka=CKA_ESTIMATOR,
    benchmark:
        "results/benchmarks/cka_across/{a}__{b}.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: config["threads"]["cka"]
    script:
        "../scripts/cka_across.py"
