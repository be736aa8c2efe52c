from repatlas.joblog import log_to
from repatlas.steps.complexity import chebyshev_degrees_to_file

log_to(snakemake.log[0])
chebyshev_degrees_to_file(snakemake.params.sensitivity, snakemake.output[0], depth=snakemake.params.depth,
                          nodes=snakemake.params.nodes)
