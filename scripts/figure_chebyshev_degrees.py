import xarray as xr

from repatlas.joblog import log_to
from repatlas.plots import chebyshev_degrees_figure, save_figure

log_to(snakemake.log[0])
with xr.open_dataset(snakemake.input.data) as ds:
    save_figure(chebyshev_degrees_figure(ds.load(), title=snakemake.params.title), *snakemake.output)
