import xarray as xr

from repatlas.joblog import log_to
from repatlas.plots import save_figure, summod_scatter

log_to(snakemake.log[0])
with xr.open_dataset(snakemake.input.summod) as ds:
    save_figure(summod_scatter(ds.load(), title=snakemake.params.title), *snakemake.output)
