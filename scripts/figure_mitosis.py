import sys

import xarray as xr

from repatlas import plots

sys.stderr = open(snakemake.log[0], "w")
draw = getattr(plots, snakemake.params.figure)
datasets = [xr.open_dataset(path).load() for path in snakemake.input.chunks]
plots.save_figure(draw(datasets, snakemake.params.cells, title=snakemake.params.title), *snakemake.output)
