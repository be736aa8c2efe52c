from repatlas.joblog import log_to
from repatlas.steps.redshift_figures import heatmap_figure

log_to(snakemake.log[0])
heatmap_figure(snakemake.input.sweep, snakemake.output, select=snakemake.params.select,
               title=snakemake.params.title)
