from repatlas.joblog import log_to
from repatlas.steps.data import subset_dataset

log_to(snakemake.log[0])
subset_dataset(snakemake.input.full, snakemake.output[0], int(snakemake.wildcards.n),
               int(snakemake.wildcards.seed))
