from repatlas.devices import job_device
from repatlas.joblog import log_to
from repatlas.train import TrainConfig, train_to_files

log_to(snakemake.log[0])  # training adds its epoch lines to the same log
w = snakemake.wildcards
train_to_files(
    snakemake.input.subset,
    snakemake.input.full,
    snakemake.output.model,
    snakemake.output.metrics,
    snakemake.log[0],
    arch=w.arch,
    depth=int(w.depth),
    width=int(w.width),
    config=TrainConfig(**snakemake.params.train, seed=int(w.seed)),
    device=job_device(snakemake.params.device, snakemake.log[0]),  # one line and exit 1 if absent here
    threads=snakemake.threads,
    progress=False,  # the log's epoch lines are the progress record; a bar in a file is noise
    snapshot_epochs=snakemake.params.snapshot_epochs,
    snapshots_dir=snakemake.output.snapshots,
)
