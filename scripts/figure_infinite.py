from repatlas.joblog import log_to
from repatlas.steps.infinite_figures import infinite_figure

log_to(snakemake.log[0])
infinite_figure(snakemake.params.figure, snakemake.input.data, snakemake.output, title=snakemake.params.title)
