# The first-PC analysis (FIRST_PC: for blocks, pca or pruning) reads the same store, so it runs in this job:
# one read of a store that reaches tens of GB at paper scale, and one job fewer per model.
rule cka_within:
    input:
        acts=f"results/activations/{MODEL_PATH}/acts.zarr",
        lib=library_of("cka_within.py"),
    output:
        **cka_within_outputs(),
    log:
        f"results/logs/cka/within/{MODEL_PATH}.log",
    params:
        cka=CKA_ESTIMATOR,
        pca_examples=min(WIDE_DEEP["pca_examples"], config["probe_size"]),
    benchmark:
        f"results/benchmarks/cka_within/{MODEL_PATH}.tsv"
    resources:
        mem_mb=lambda w, attempt: scaled(8000, 500)(w, attempt) + FIRST_PC * first_pc_mem(w, attempt),
        runtime=scaled(30, 3),
    conda:
        "../envs/analysis.yaml"
    threads: config["threads"]["cka"]
    script:
        "../scripts/cka_within.py"


# The configured cross-architecture pairs (cka.across_archs); for any other two stores, use
# `repatlas cka A.zarr B.zarr -o out.nc`.
rule cka_across:
    input:
        a=lambda w: f"results/activations/{path_of_id(w.a)}/acts.zarr",
        b=lambda w: f"results/activations/{path_of_id(w.b)}/acts.zarr",
        lib=library_of("cka_across.py"),
    output:
        "results/cka/across/{a}__{b}.nc",
    wildcard_constraints:
        a=across_side_regex(0),
        b=across_side_regex(1),
    log:
        "results/logs/cka/across/{a}__{b}.log",
    params:
        cka=CKA_ESTIMATOR,
    benchmark:
        "results/benchmarks/cka_across/{a}__{b}.tsv"
    resources:
        mem_mb=scaled(8000, 500),
        runtime=scaled(30, 1.5),
    conda:
        "../envs/analysis.yaml"
    threads: config["threads"]["cka"]
    script:
        "../scripts/cka_across.py"


# All seed pairs of one architecture in one job: the paper grid's 45 pairs per architecture as
# separate jobs made `snakemake -n` take a minute; one job also reads each store fewer times.
if len(SEED_PAIRS) > 0:

    rule cka_across_seeds:
        input:
            acts=expand(
                f"results/activations/{ARCH_PATH}/s{{seed}}/acts.zarr", seed=SEEDS, allow_missing=True
            ),
            lib=library_of("cka_across_seeds.py"),
        output:
            [across_seeds_file(s1, s2) for s1, s2 in SEED_PAIRS],
        log:
            f"results/logs/cka/across_seeds/{ARCH_ID}.log",
        params:
            cka=CKA_ESTIMATOR,
            pairs=[(SEEDS.index(s1), SEEDS.index(s2)) for s1, s2 in SEED_PAIRS],
        benchmark:
            f"results/benchmarks/cka_across_seeds/{ARCH_ID}.tsv"
        resources:
            mem_mb=scaled(8000, 1000),
            runtime=scaled(30, 3 * len(SEED_PAIRS)),
        conda:
            "../envs/analysis.yaml"
        threads: config["threads"]["cka"]
        script:
            "../scripts/cka_across_seeds.py"

    ruleorder: cka_across_seeds > cka_across
