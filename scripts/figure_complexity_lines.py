import xarray as xr

from repatlas.joblog import log_to
from repatlas.plots import complexity_lines, save_figure

log_to(snakemake.log[0])
p = snakemake.params
with xr.open_dataset(snakemake.input.sweep) as ds:
    fig = complexity_lines(ds.load(), x=p.x, hue=p.hue, col=p.col, select=p.select, logx=p.logx, title=p.title)
save_figure(fig, *snakemake.output)
