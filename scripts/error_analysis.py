from repatlas.joblog import log_to
from repatlas.steps.widedeep import error_analysis_to_file

log_to(snakemake.log[0])
error_analysis_to_file(snakemake.input.a, snakemake.input.b, snakemake.output[0],
                       permutations=snakemake.params.permutations)
