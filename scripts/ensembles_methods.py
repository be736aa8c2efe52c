import sys

import torch

from repatlas.ensembles import run_methods
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
ds = run_methods(dict(snakemake.input.items()), snakemake.params.settings, snakemake.wildcards.regime)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
