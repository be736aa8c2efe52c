import sys

from repatlas.errors import error_analysis_to_file

sys.stderr = open(snakemake.log[0], "w")
error_analysis_to_file(snakemake.input.a, snakemake.input.b, snakemake.output[0],
                       permutations=snakemake.params.permutations)
