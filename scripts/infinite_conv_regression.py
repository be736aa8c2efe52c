from repatlas.joblog import log_to
from repatlas.steps.infinite import infinite_conv_regression

log_to(snakemake.log[0])
p = snakemake.params
infinite_conv_regression(snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                         dataset=snakemake.wildcards.dataset, pool=p.pool, n_test=p.n_test, conv=p.conv,
                         threads=snakemake.threads)
