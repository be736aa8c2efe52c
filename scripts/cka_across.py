import sys

from repatlas.cka import cka_stores_to_file

sys.stderr = open(snakemake.log[0], "w")
cka_stores_to_file(
    snakemake.input.a, snakemake.output[0], snakemake.input.b, threads=snakemake.threads,
    scheduler=snakemake.config["cka"]["scheduler"], **snakemake.params.cka
)
