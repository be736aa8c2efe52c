from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_cookbook_gap_table

log_to(snakemake.log[0])
infinite_cookbook_gap_table(snakemake.input.widths, snakemake.output[0])
