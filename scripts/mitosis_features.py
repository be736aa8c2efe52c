from repatlas.joblog import log_to
from repatlas.steps.mitosis import mitosis_features

log_to(snakemake.log[0])
mitosis_features(snakemake.input.weights, snakemake.input.full, snakemake.input.subset, snakemake.output[0],
                 epoch=snakemake.params.epoch, device=snakemake.params.device, log_path=snakemake.log[0])
