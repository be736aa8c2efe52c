import sys

import torch

from repatlas.infinite import cookbook_experiment
from repatlas.io import write_netcdf

sys.stderr = open(snakemake.log[0], "w")
torch.set_num_threads(snakemake.threads)
ds = cookbook_experiment(architecture=snakemake.wildcards.architecture, **snakemake.params.cookbook)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
