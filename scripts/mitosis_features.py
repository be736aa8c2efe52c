import sys

from repatlas.devices import job_device
from repatlas.mitosis import features_to_file

sys.stderr = open(snakemake.log[0], "w")
device = job_device(snakemake.params.device, snakemake.log[0])  # one line and exit 1 if absent here
print(features_to_file(snakemake.input.model, snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                       device=device), file=sys.stderr)
