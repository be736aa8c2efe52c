from repatlas.joblog import log_to
from repatlas.plots import cka_grid_figure

log_to(snakemake.log[0])
p = snakemake.params
cka_grid_figure(
    snakemake.input.cka, p.cells, snakemake.output, row=p.row, col=p.col, title=p.title,
    xlabel=p.xlabel, ylabel=p.ylabel,
)
