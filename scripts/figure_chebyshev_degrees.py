import sys

import xarray as xr

from repatlas.plots import chebyshev_degrees_figure, save_figure

sys.stderr = open(snakemake.log[0], "w")
with xr.open_dataset(snakemake.input.data) as ds:
    save_figure(chebyshev_degrees_figure(ds.load(), title=snakemake.params.title), *snakemake.output)
