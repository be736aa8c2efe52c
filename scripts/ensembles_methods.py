from repatlas.joblog import log_to
from repatlas.steps.ensembles import ensembles_methods

log_to(snakemake.log[0])
ensembles_methods(dict(snakemake.input.items()), snakemake.params.settings, snakemake.wildcards.regime,
                  snakemake.output[0], threads=snakemake.threads)
