import sys

from repatlas.cka import cka_stores_to_file

sys.stderr = open(snakemake.log[0], "w")
cka_stores_to_file(snakemake.input.acts, snakemake.output[0], threads=snakemake.threads, **snakemake.params.cka)
