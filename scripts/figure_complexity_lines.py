from repatlas.joblog import log_to
from repatlas.steps.redshift_figures import lines_figure

log_to(snakemake.log[0])
p = snakemake.params
lines_figure(snakemake.input.sweep, snakemake.output, x=p.x, hue=p.hue, col=p.col, select=p.select,
             logx=p.logx, title=p.title)
