import sys

from repatlas.activations import dump_from_checkpoint
from repatlas.devices import job_device
from repatlas.joblog import log_to

log_to(snakemake.log[0])
device = job_device(snakemake.params.device, snakemake.log[0])  # one line and exit 1 if absent here
layers = dump_from_checkpoint(
    snakemake.input.model,
    snakemake.input.full,
    snakemake.output[0],
    probe_size=snakemake.params.probe_size,
    batch_size=snakemake.params.batch_size,
    dtype=snakemake.params.dtype,
    compressor=snakemake.params.compressor,
    device=device,
    threads=snakemake.threads,
)
print(f"stored layers: {layers}", file=sys.stderr)
