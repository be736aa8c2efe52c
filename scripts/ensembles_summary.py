import sys

import xarray as xr

from repatlas.ensembles import summary_table
from repatlas.io import atomic_path
from repatlas.joblog import log_to

log_to(snakemake.log[0])
datasets = {tuple(key): xr.open_dataset(path).load() for key, path in zip(snakemake.params.labels, snakemake.input.nc, strict=True)}
table = summary_table(datasets)
print(table, file=sys.stderr)
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
