from repatlas.joblog import log_to
from repatlas.steps.cka_figures import cka_grid_figure

log_to(snakemake.log[0])
p = snakemake.params
# the data-size grid outlines the blocks (its rule passes first-PC files and block settings)
first_pc = list(getattr(snakemake.input, "first_pc", []))
blocks = dict(first_pc_paths=first_pc, threshold=p.threshold, min_length=p.min_length,
              min_pc1_share=p.min_pc1_share) if first_pc else {}
cka_grid_figure(
    snakemake.input.cka, p.cells, snakemake.output, row=p.row, col=p.col, title=p.title,
    xlabel=p.xlabel, ylabel=p.ylabel, **blocks,
)
