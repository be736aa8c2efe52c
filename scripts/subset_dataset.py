import sys

from repatlas.data import write_subset

sys.stderr = open(snakemake.log[0], "w")
meta = write_subset(
    snakemake.input.full, snakemake.output[0], int(snakemake.wildcards.n), int(snakemake.wildcards.seed)
)
print(meta, file=sys.stderr)
