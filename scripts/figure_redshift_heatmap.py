import xarray as xr

from repatlas.joblog import log_to
from repatlas.plots import complexity_heatmaps, save_figure

log_to(snakemake.log[0])
p = snakemake.params
with xr.open_dataset(snakemake.input.sweep) as ds:
    save_figure(complexity_heatmaps(ds.load(), measure="fourier", select=p.select, title=p.title), *snakemake.output)
