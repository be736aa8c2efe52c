# The claims ledger: each study's paper claims judged on this run's result files
# (repatlas.claims), and one "What reproduces" table over every configured study.
# Neither takes the config as params: a config change reruns a ledger only through the result
# files it reads (a figure-only or scheduling option reruns nothing here). The scripts record the
# hash of the config they ran under and the config files named in REPATLAS_CONFIGFILES.


rule claims_ledger:
    input:
        unpack(claims_inputs),
        lib=library_of("claims_ledger.py"),
    output:
        "results/claims/{study}.csv",
    log:
        "results/logs/claims/{study}.log",
    wildcard_constraints:
        study="|".join(CLAIM_STUDIES),
    benchmark:
        "results/benchmarks/claims/{study}.tsv"
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(5),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/claims_ledger.py"


rule claims_table:
    input:
        ledgers=[f"results/claims/{s}.csv" for s in config["studies"]],
        lib=library_of("claims_table.py"),
    output:
        report(
            "results/claims/what_reproduces.md", caption="../workflow/report/claims.rst", category="Claims"
        ),
    log:
        "results/logs/claims/what_reproduces.log",
    benchmark:
        "results/benchmarks/claims/what_reproduces.tsv"
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(5),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    script:
        "../scripts/claims_table.py"
