import sys

import xarray as xr

from repatlas.plots import save_figure, summod_scatter

sys.stderr = open(snakemake.log[0], "w")
with xr.open_dataset(snakemake.input.summod) as ds:
    save_figure(summod_scatter(ds.load(), title=snakemake.params.title), *snakemake.output)
