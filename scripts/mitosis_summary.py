from repatlas.joblog import log_to
from repatlas.steps.mitosis import summary_to_file

log_to(snakemake.log[0])
summary_to_file(snakemake.input.chunks, snakemake.output[0])
