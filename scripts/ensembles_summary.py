from repatlas.joblog import log_to
from repatlas.steps.ensembles import ensembles_summary

log_to(snakemake.log[0])
ensembles_summary(snakemake.params.labels, snakemake.input.nc, snakemake.output[0])
