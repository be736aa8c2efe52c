from repatlas.joblog import log_to
from repatlas.steps.widedeep import error_table_to_file

log_to(snakemake.log[0])
p = snakemake.params
error_table_to_file({tuple(pair): path for pair, path in zip(p.pairs, snakemake.input.errors, strict=True)},
                    snakemake.output[0], max_gap=p.max_gap)
