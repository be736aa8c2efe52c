from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_regression

log_to(snakemake.log[0])
infinite_regression(snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                    probe_size=snakemake.params.probe_size, regression=snakemake.params.regression,
                    threads=snakemake.threads)
