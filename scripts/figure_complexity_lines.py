import xarray as xr

from repatlas.joblog import log_to
from repatlas.plots import complexity_lines, save_figure
from repatlas.redshift import normalise_by_unbiased

log_to(snakemake.log[0])
p = snakemake.params
with xr.open_dataset(snakemake.input.sweep) as ds:
    normalised = normalise_by_unbiased(ds.load())
fig = complexity_lines(
    normalised, x=p.x, hue=p.hue, col=p.col, select=p.select, logx=p.logx, title=p.title
)
save_figure(fig, *snakemake.output)
