import sys

from repatlas.complexity import MeasureSettings
from repatlas.io import write_netcdf
from repatlas.joblog import log_to
from repatlas.redshift import complexity_sweep

log_to(snakemake.log[0])
s = snakemake.params.sweep
ds = complexity_sweep(
    activations=s["activation"], scales=s["scale"], depths=s["depth"], widths=s["width"],
    variants=s["variant"], seeds=s["seed"], settings=MeasureSettings(**snakemake.params.settings),
    n_jobs=snakemake.threads,
)
print(ds, file=sys.stderr)
write_netcdf(ds, snakemake.output[0])
