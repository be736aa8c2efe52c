from repatlas.joblog import log_to
from repatlas.steps.data import prepare_dataset

log_to(snakemake.log[0])
prepare_dataset(snakemake.wildcards.dataset, snakemake.output[0], snakemake.params.data_dir)
