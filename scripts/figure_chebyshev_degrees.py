from repatlas.joblog import log_to
from repatlas.steps.redshift_figures import chebyshev_figure

log_to(snakemake.log[0])
chebyshev_figure(snakemake.input.data, snakemake.output, title=snakemake.params.title)
