import sys

from repatlas.errors import error_table_to_file

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
error_table_to_file({tuple(pair): path for pair, path in zip(p.pairs, snakemake.input.errors, strict=True)},
                    snakemake.output[0], max_gap=p.max_gap)
