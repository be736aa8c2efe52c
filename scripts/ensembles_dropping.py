from repatlas.joblog import log_to
from repatlas.steps.ensembles import ensembles_dropping

log_to(snakemake.log[0])
ensembles_dropping(dict(snakemake.input.items()), snakemake.params.settings, snakemake.params.fractions,
                   snakemake.output[0], threads=snakemake.threads)
