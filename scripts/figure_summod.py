from repatlas.joblog import log_to
from repatlas.steps.redshift_figures import summod_figure

log_to(snakemake.log[0])
summod_figure(snakemake.input.summod, snakemake.output, title=snakemake.params.title)
