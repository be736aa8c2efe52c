import sys

from repatlas.plots import cka_within_grid_figure

sys.stderr = open(snakemake.log[0], "w")
cka_within_grid_figure(
    snakemake.input.cka, snakemake.params.cells, snakemake.output, title=snakemake.params.title
)
