from repatlas.joblog import log_to
from repatlas.steps.widedeep import block_table_to_file

log_to(snakemake.log[0])
p = snakemake.params
block_table_to_file(
    dict(zip(p.ids, snakemake.input.within, strict=True)),
    snakemake.output[0],
    threshold=p.threshold,
    min_length=p.min_length,
    seed_pairs=[(a, b, path) for (a, b), path in zip(p.pairs, snakemake.input.across, strict=True)],
    first_pc_paths=dict(zip(p.ids, snakemake.input.first_pc, strict=True)),
    metrics_paths=dict(zip(p.ids, snakemake.input.metrics, strict=True)),
    min_pc1_share=p.min_pc1_share,
)
