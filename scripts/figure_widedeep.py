from repatlas import plots
from repatlas.joblog import log_to

log_to(snakemake.log[0])
p, figure, data = snakemake.params, snakemake.wildcards.figure, snakemake.input.data
if figure == "blocks":
    plots.blocks_figure_to_file(data[0], snakemake.output, title=p.title)
elif figure == "pca":
    labels = [f"depth {c['depth']}, width {c['width']}" for c in p.cells]
    plots.pca_figure_to_file(dict(zip(labels, data, strict=True)), dict(zip(labels, snakemake.input.within, strict=True)),
                             snakemake.output, threshold=p.threshold, min_length=p.min_length,
                             min_pc1_share=p.min_pc1_share, title=p.title)
elif figure == "pruning":
    plots.pruning_figure_to_file(data, snakemake.input.within, p.cells, snakemake.output, threshold=p.threshold,
                                 min_length=p.min_length, first_pc_paths=snakemake.input.first_pc,
                                 min_pc1_share=p.min_pc1_share, title=p.title)
else:
    plots.probes_figure_to_file(data, p.cells, snakemake.output, title=p.title)
