from repatlas.joblog import log_to
from repatlas.steps.complexity import summod_to_file

log_to(snakemake.log[0])
summod_to_file(snakemake.params.summod, snakemake.params.settings, snakemake.output[0])
