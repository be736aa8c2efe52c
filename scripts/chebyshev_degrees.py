import sys

from repatlas.io import write_netcdf
from repatlas.joblog import log_to
from repatlas.redshift import chebyshev_degree_sweep

log_to(snakemake.log[0])
p = snakemake.params.sensitivity
ds = chebyshev_degree_sweep(
    activations=p["activation"], scales=p["scale"], depth=snakemake.params.depth, degrees=p["degree"],
    seeds=p["seed"], nodes=snakemake.params.nodes,
)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
