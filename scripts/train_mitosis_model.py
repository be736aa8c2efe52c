from repatlas.train import TrainConfig, train_to_files

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
    device=snakemake.params.device,
    threads=snakemake.threads,
    snapshot_epochs=snakemake.params.snapshot_epochs,
    snapshots_dir=snakemake.output.snapshots,
)
