import sys

from repatlas.data import write_full
from repatlas.joblog import log_to

log_to(snakemake.log[0])
print(write_full(snakemake.wildcards.dataset, snakemake.output[0], snakemake.params.data_dir), file=sys.stderr)
