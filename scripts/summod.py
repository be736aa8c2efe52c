import sys

from repatlas.complexity import MeasureSettings
from repatlas.io import write_netcdf
from repatlas.redshift import summod_sweep

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params.summod
ds = summod_sweep(
    activations=p["activation"], alphas=p["alpha"], Ms=p["M"], seeds=p["seed"], steps=p["steps"],
    settings=MeasureSettings(measures=("fourier",), **snakemake.params.settings),
)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
