from repatlas.joblog import log_to
from repatlas.steps.train import train_model

log_to(snakemake.log[0])  # training adds its epoch lines to the same log
w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
# both training rules run this script: the grid's (train.smk) passes model_options; the mitosis
# runs' (mitosis.smk) pass snapshot_epochs and declare a snapshots folder
train_model(
    snakemake.input.subset, snakemake.input.full, out.model, out.metrics, snakemake.log[0],
    arch=w.arch, depth=int(w.depth), width=int(w.width), seed=int(w.seed), train_settings=p.train,
    device=p.device, threads=snakemake.threads, model_options=p.get("model_options"),
    snapshot_epochs=p.get("snapshot_epochs", ()), snapshots_dir=out.get("snapshots"),
)
