import sys

from repatlas.data import write_full

sys.stderr = open(snakemake.log[0], "w")
print(write_full(snakemake.wildcards.dataset, snakemake.output[0], snakemake.params.data_dir), file=sys.stderr)
