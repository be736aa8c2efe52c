import sys

from repatlas.data import load_npz, probe_set
from repatlas.infinite import conv_regression, pooled_images
from repatlas.io import write_netcdf
from repatlas.joblog import log_to

log_to(snakemake.log[0])
p = snakemake.params
full, _ = load_npz(snakemake.input.full)
train, _ = load_npz(snakemake.input.subset)
x_test, y_test, _ = probe_set(full, p.n_test)
ds = conv_regression(pooled_images(train["x"], p.pool), train["y"], pooled_images(x_test, p.pool), y_test,
                     **p.conv, threads=snakemake.threads)
ds.attrs.update(dataset=snakemake.wildcards.dataset, pool=p.pool)
print(ds.drop_vars("correct"), file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
