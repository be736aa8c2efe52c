from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_cookbook_gap

log_to(snakemake.log[0])
p = snakemake.params
infinite_cookbook_gap(int(snakemake.wildcards.width), p.pairs, p.diag_reg, p.cookbook, snakemake.output[0],
                      threads=snakemake.threads)
