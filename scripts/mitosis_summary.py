import sys

from repatlas.mitosis import summary_to_file

sys.stderr = open(snakemake.log[0], "w")
summary_to_file(snakemake.input.chunks, snakemake.output[0])
