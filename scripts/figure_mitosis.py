import xarray as xr

from repatlas import plots
from repatlas.joblog import log_to

log_to(snakemake.log[0])
draw = getattr(plots, snakemake.params.figure)
datasets = [xr.open_dataset(path).load() for path in snakemake.input.chunks]
plots.save_figure(draw(datasets, snakemake.params.cells, title=snakemake.params.title), *snakemake.output)
