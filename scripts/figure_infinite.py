import xarray as xr

from repatlas import plots
from repatlas.joblog import log_to

log_to(snakemake.log[0])
draw = getattr(plots, snakemake.params.figure)
with xr.open_dataset(snakemake.input.data) as ds:
    plots.save_figure(draw(ds.load(), title=snakemake.params.title), *snakemake.output)
