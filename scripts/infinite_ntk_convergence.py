from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_ntk_convergence

log_to(snakemake.log[0])
infinite_ntk_convergence(snakemake.params.ntk, snakemake.output[0], threads=snakemake.threads)
