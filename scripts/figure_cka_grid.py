import sys

from repatlas.plots import cka_grid_figure

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
cka_grid_figure(
    snakemake.input.cka, p.cells, snakemake.output, row=p.row, col=p.col, title=p.title,
    xlabel=p.xlabel, ylabel=p.ylabel,
)
