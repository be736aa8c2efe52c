import sys

import torch

from repatlas.data import load_npz, probe_set
from repatlas.infinite import regression_experiment
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
full, _ = load_npz(snakemake.input.full)
train, _ = load_npz(snakemake.input.subset)
x_test, y_test, _ = probe_set(full, snakemake.params.probe_size)
# pixels in [0, 1], flattened: the kernels' input layer is x·x'/d
ds = regression_experiment(train["x"] / 255.0, train["y"], x_test / 255.0, y_test, **snakemake.params.regression)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
