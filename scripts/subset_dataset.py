import sys

from repatlas.data import write_subset
from repatlas.joblog import log_to

log_to(snakemake.log[0])
meta = write_subset(
    snakemake.input.full, snakemake.output[0], int(snakemake.wildcards.n), int(snakemake.wildcards.seed)
)
print(meta, file=sys.stderr)
