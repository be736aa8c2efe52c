import sys

from repatlas.mitosis import chunks_to_file

sys.stderr = open(snakemake.log[0], "w")
chunks_to_file(snakemake.input.features, snakemake.output[0], repeats=snakemake.params.repeats,
               seed=int(snakemake.wildcards.seed))
