from repatlas.joblog import log_to
from repatlas.steps.redshift_figures import functions_figure

log_to(snakemake.log[0])
p = snakemake.params
functions_figure(snakemake.output, grid_size=p.grid_size, activations=p.activations, scales=p.scales,
                 depth=p.depth, endpoint=p.endpoint, title=p.title)
