import sys

from repatlas.devices import job_device
from repatlas.joblog import log_to
from repatlas.mitosis import features_to_file

log_to(snakemake.log[0])
device = job_device(snakemake.params.device, snakemake.log[0])  # one line and exit 1 if absent here
print(features_to_file(snakemake.input.weights, snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                       epoch=snakemake.params.epoch, device=device),
      file=sys.stderr)
