import sys

import xarray as xr

from repatlas.infinite import cookbook_gap_table
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
ds = cookbook_gap_table([xr.open_dataset(path).load() for path in snakemake.input.widths])
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
