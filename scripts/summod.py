import sys

from repatlas.complexity import MeasureSettings
from repatlas.io import write_netcdf
from repatlas.joblog import log_to
from repatlas.redshift import summod_sweep

log_to(snakemake.log[0])
p = snakemake.params.summod
ds = summod_sweep(
    activations=p["activation"], alphas=p["alpha"], Ms=p["M"], seeds=p["seed"], steps=p["steps"],
    settings=MeasureSettings(measures=("fourier",), **snakemake.params.settings),
)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
