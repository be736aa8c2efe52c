from repatlas.joblog import log_to
from repatlas.steps.cka import cka_stores_to_file

log_to(snakemake.log[0])
cka_stores_to_file(
    snakemake.input.a, snakemake.output[0], snakemake.input.b, threads=snakemake.threads,
    scheduler=snakemake.config["cka"]["scheduler"], **snakemake.params.cka
)
