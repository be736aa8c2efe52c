import sys

import torch

from repatlas.infinite import cookbook_gap
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
ds = cookbook_gap(width=int(snakemake.wildcards.width), pairs=p.pairs, diag_reg=p.diag_reg, **p.cookbook)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
