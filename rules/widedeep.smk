# Wide vs deep past the heatmaps (Nguyen et al. 2021): blocks as numbers, the first principal
# component, linear probes, block pruning and per-example errors.


rule block_table:
    input:
        within=[f"results/cka/within/{m}.nc" for m in models()],
        first_pc=[f"results/widedeep/pca/{m}.nc" for m in models()],
        metrics=[f"results/models/{m}/metrics.json" for m in models()],
        across=[across_file(p) for p in across_seed_pairs()],
        lib=library_of("block_table.py"),
    output:
        "results/widedeep/blocks.csv",
    log:
        "results/logs/widedeep/blocks.log",
    params:
        ids=model_ids(),
        pairs=across_seed_pairs(),
        threshold=WIDE_DEEP["block_threshold"],
        min_length=WIDE_DEEP["block_min_length"],
        min_pc1_share=WIDE_DEEP["block_pc1_share"],
    benchmark:
        "results/benchmarks/widedeep/blocks.tsv"
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/block_table.py"


# Probes, pruning and test predictions each load the model and the data: one GPU job per model.
# It does not read the CKA, so CKA settings do not rerun it: the pruning figure labels each removed
# block inside / outside the CKA blocks.
rule evaluate_model:
    input:
        model=f"results/models/{MODEL_PATH}/model.pt",
        full="results/data/{dataset}/full.npz",
        subset=lambda w: f"results/data/{w.dataset}/train-n{w.n}-s{config['subset_seed']}.npz",
        lib=library_of("evaluate_model.py"),
    output:
        probes=f"results/widedeep/probes/{MODEL_PATH}.nc",
        pruning=f"results/widedeep/pruning/{MODEL_PATH}.nc",
        predictions=f"results/models/{MODEL_PATH}/predictions.nc",
    log:
        f"results/logs/widedeep/evaluate/{MODEL_PATH}.log",
    params:
        probes=WIDE_DEEP["probes"],
        examples=config["probe_size"],
        device=config["device"],
    benchmark:
        f"results/benchmarks/evaluate_model/{MODEL_PATH}.tsv"
    resources:
        mem_mb=scaled(16000, 64),
        runtime=scaled(30, 1),
        gpu=GPU,
        gpu_slots=GPU,
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]["train"]
    script:
        "../scripts/evaluate_model.py"


rule probe_table:
    input:
        probes=[f"results/widedeep/probes/{m}.nc" for m in models()],
        lib=library_of("probe_table.py"),
    output:
        "results/widedeep/probes.csv",
    log:
        "results/logs/widedeep/probes.log",
    params:
        ids=model_ids(),
    benchmark:
        "results/benchmarks/widedeep/probes.tsv"
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/probe_table.py"


rule error_table:
    input:
        errors=[f"results/widedeep/errors/{a}__{b}.nc" for a, b in error_pairs()],
        lib=library_of("error_table.py"),
    output:
        "results/widedeep/errors.csv",
    log:
        "results/logs/widedeep/errors.log",
    params:
        pairs=error_pairs(),
        max_gap=WIDE_DEEP["errors"]["max_accuracy_gap"],
    benchmark:
        "results/benchmarks/widedeep/errors.tsv"
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/error_table.py"


rule error_analysis:
    input:
        a=lambda w: predictions_of(w.ga),
        b=lambda w: predictions_of(w.gb),
        lib=library_of("error_analysis.py"),
    output:
        "results/widedeep/errors/{ga}__{gb}.nc",
    log:
        "results/logs/widedeep/errors/{ga}__{gb}.log",
    params:
        permutations=WIDE_DEEP["errors"]["permutations"],
    benchmark:
        "results/benchmarks/widedeep/errors/{ga}__{gb}.tsv"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(15),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/error_analysis.py"


# ----------------------------------------------------------------------------- figures


rule figure_cka_data_grid:
    input:
        cka=[f"results/cka/within/{cell_model(c)}.nc" for c in data_grid_cells()],
        first_pc=[f"results/widedeep/pca/{cell_model(c)}.nc" for c in data_grid_cells()] if FIRST_PC else [],
        lib=library_of("figure_cka_grid.py"),
    output:
        **figure_output("cka_data_grid", caption="cka_data_grid", category="CKA"),
    log:
        figure_log("cka_data_grid"),
    params:
        cells=[{"n": c["n"], "width": c["width"]} for c in data_grid_cells()],
        row="n",
        col="width",
        threshold=WIDE_DEEP["block_threshold"],
        min_length=WIDE_DEEP["block_min_length"],
        min_pc1_share=WIDE_DEEP["block_pc1_share"],
        title=f"within-model CKA vs width and training-set size, {config['dataset']}, depth {max(GRID['depth'])}",
        xlabel="layer",
        ylabel="layer",
    benchmark:
        figure_benchmark("cka_data_grid")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_cka_grid.py"


rule figure_widedeep:
    input:
        unpack(widedeep_figure_inputs),
        lib=library_of("figure_widedeep.py"),
    output:
        **figure_output("widedeep_{figure}", caption="widedeep", category="Wide vs deep"),
    log:
        figure_log("widedeep_{figure}"),
    params:
        cells=lambda w: first_grid_cells() if w.figure == "pca" else grid_cells(),
        threshold=WIDE_DEEP["block_threshold"],
        min_length=WIDE_DEEP["block_min_length"],
        min_pc1_share=WIDE_DEEP["block_pc1_share"],
        title=lambda w: {
            "blocks": f"largest CKA block vs width, depth and training-set size, {config['dataset']}",
            "pca": f"blocks and the first principal component, {config['dataset']}, n={GRID['n'][0]}",
            "probes": f"linear probe accuracy through the network, {config['dataset']}",
            "pruning": f"removing one residual block (no fine-tuning), {config['dataset']}",
        }[w.figure],
    wildcard_constraints:
        figure="blocks|pca|probes|pruning",
    benchmark:
        figure_benchmark("widedeep_{figure}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_widedeep.py"


rule figure_widedeep_errors:
    input:
        data="results/widedeep/errors/{ga}__{gb}.nc",
        lib=library_of("figure_widedeep_errors.py"),
    output:
        **figure_output("widedeep_errors_{ga}__{gb}", caption="widedeep_errors", category="Wide vs deep"),
    log:
        figure_log("widedeep_errors_{ga}__{gb}"),
    params:
        label_a=lambda w: arch_name_of(w.ga),
        label_b=lambda w: arch_name_of(w.gb),
        title=lambda w: f"per-example errors, {w.ga} vs {w.gb}",
    benchmark:
        figure_benchmark("widedeep_errors_{ga}__{gb}")
    resources:
        **figure_resources(),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/figure_widedeep_errors.py"
