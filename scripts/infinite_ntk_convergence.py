import sys

import torch

from repatlas.infinite import ntk_convergence
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
ds = ntk_convergence(**snakemake.params.ntk)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
