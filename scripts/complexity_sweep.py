from repatlas.joblog import log_to
from repatlas.steps.complexity import sweep_to_file

log_to(snakemake.log[0])
sweep_to_file(snakemake.params.sweep, snakemake.params.settings, snakemake.output[0],
              n_jobs=snakemake.threads)
