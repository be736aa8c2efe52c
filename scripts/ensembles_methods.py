import sys

import torch

from repatlas.ensembles import methods_study, study_data
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
data = study_data(dict(snakemake.input.items()), snakemake.params.multiview)
ds = methods_study(*data, regime=snakemake.wildcards.regime, **snakemake.params.options)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
