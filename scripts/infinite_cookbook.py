from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_cookbook

log_to(snakemake.log[0])
infinite_cookbook(snakemake.wildcards.architecture, snakemake.params.cookbook, snakemake.output[0],
                  threads=snakemake.threads)
