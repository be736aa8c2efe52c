import sys

from repatlas.blocks import first_pc_to_file
from repatlas.cka import cka_stores_to_file

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
cka_stores_to_file(snakemake.input.acts, snakemake.output.cka, threads=snakemake.threads, **p.cka)
if "pca" in snakemake.output.keys():
    first_pc_to_file(snakemake.input.acts, snakemake.output.pca, examples=p.pca_examples,
                     window=p.cka["window"], threads=snakemake.threads)
