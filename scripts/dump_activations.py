from repatlas.joblog import log_to
from repatlas.steps.activations import dump_activations_job

log_to(snakemake.log[0])
dump_activations_job(
    snakemake.input.model,
    snakemake.input.full,
    snakemake.output[0],
    probe_size=snakemake.params.probe_size,
    batch_size=snakemake.params.batch_size,
    dtype=snakemake.params.dtype,
    compressor=snakemake.params.compressor,
    device=snakemake.params.device,
    threads=snakemake.threads,
    log_path=snakemake.log[0],
)
