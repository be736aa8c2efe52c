import sys

from repatlas.cka import cka_stores_to_file
from repatlas.joblog import log_to

log_to(snakemake.log[0])
for (i, j), out in zip(snakemake.params.pairs, snakemake.output):
    print(f"{snakemake.input.acts[i]} vs {snakemake.input.acts[j]} -> {out}", file=sys.stderr)
    cka_stores_to_file(
        snakemake.input.acts[i], out, snakemake.input.acts[j], threads=snakemake.threads,
        scheduler=snakemake.config["cka"]["scheduler"], **snakemake.params.cka
    )
