import sys

import xarray as xr

from repatlas import plots

sys.stderr = open(snakemake.log[0], "w")
draw = getattr(plots, snakemake.params.figure)
with xr.open_dataset(snakemake.input.data) as ds:
    plots.save_figure(draw(ds.load(), title=snakemake.params.title), *snakemake.output)
