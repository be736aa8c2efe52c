import sys

import xarray as xr

from repatlas.ensembles import summary_table
from repatlas.io import atomic_path

sys.stderr = open(snakemake.log[0], "w")
datasets = {tuple(key): xr.open_dataset(path).load() for key, path in zip(snakemake.params.labels, snakemake.input.data)}
table = summary_table(datasets)
print(table, file=sys.stderr)
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False)
