from repatlas.joblog import log_to
from repatlas.steps.cka import cka_within

log_to(snakemake.log[0])
p = snakemake.params
# the scheduler is read from the config, not passed as a param: where CKA runs changes no result
cka_within(snakemake.input.acts, snakemake.output.cka, cka=p.cka, threads=snakemake.threads,
           scheduler=snakemake.config["cka"]["scheduler"],
           pca_path=snakemake.output.pca if "pca" in snakemake.output.keys() else None,
           pca_examples=p.pca_examples)
