from repatlas.joblog import log_to
from repatlas.steps.cka import cka_across_seeds

log_to(snakemake.log[0])
cka_across_seeds(snakemake.input.acts, snakemake.params.pairs, snakemake.output, cka=snakemake.params.cka,
                 threads=snakemake.threads, scheduler=snakemake.config["cka"]["scheduler"])
