import sys

from repatlas.joblog import log_to
from repatlas.mitosis import features_to_file

log_to(snakemake.log[0])
print(features_to_file(snakemake.input.weights, snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                       epoch=snakemake.params.epoch),
      file=sys.stderr)
