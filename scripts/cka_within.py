from repatlas.blocks import first_pc_to_file
from repatlas.cka import cka_stores_to_file
from repatlas.joblog import log_to

log_to(snakemake.log[0])
p = snakemake.params
# the scheduler is read from the config, not passed as a param: where CKA runs changes no result
cka_stores_to_file(snakemake.input.acts, snakemake.output.cka, threads=snakemake.threads,
                   scheduler=snakemake.config["cka"]["scheduler"], **p.cka)
if "pca" in snakemake.output.keys():
    first_pc_to_file(snakemake.input.acts, snakemake.output.pca, examples=p.pca_examples,
                     window=p.cka["window"], threads=snakemake.threads)
