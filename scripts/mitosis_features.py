import sys

from repatlas.mitosis import features_to_file

sys.stderr = open(snakemake.log[0], "w")
print(features_to_file(snakemake.input.weights, snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                       epoch=snakemake.params.epoch),
      file=sys.stderr)
