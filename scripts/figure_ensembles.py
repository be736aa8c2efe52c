import pandas as pd
import xarray as xr

from repatlas import plots
from repatlas.joblog import log_to

log_to(snakemake.log[0])
p = snakemake.params
if p.figure in ("methods", "mu"):
    draw = plots.ensembles_methods_figure if p.figure == "methods" else plots.ensembles_mu_figure
    fig = draw(pd.read_csv(snakemake.input.summary), title=p.title)
else:
    keys = [tuple(k) if isinstance(k, list) else k for k in p.labels]
    datasets = {key: xr.open_dataset(path).load() for key, path in zip(keys, snakemake.input.data)}
    draw = plots.ensembles_size_figure if p.figure == "size" else plots.ensembles_dropping_figure
    fig = draw(datasets, title=p.title)
plots.save_figure(fig, *snakemake.output)
