import sys

import xarray as xr

from repatlas.plots import complexity_heatmaps, save_figure

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
with xr.open_dataset(snakemake.input.sweep) as ds:
    save_figure(complexity_heatmaps(ds.load(), measure="fourier", select=p.select, title=p.title), *snakemake.output)
