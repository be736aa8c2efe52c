import sys

from repatlas.cka import cka_stores_to_file

sys.stderr = open(snakemake.log[0], "w")
for (i, j), out in zip(snakemake.params.pairs, snakemake.output):
    print(f"{snakemake.input.acts[i]} vs {snakemake.input.acts[j]} -> {out}", file=sys.stderr)
    cka_stores_to_file(
        snakemake.input.acts[i], out, snakemake.input.acts[j], threads=snakemake.threads,
        scheduler=snakemake.config["cka"]["scheduler"], **snakemake.params.cka
    )
