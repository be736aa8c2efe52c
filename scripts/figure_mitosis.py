from repatlas.joblog import log_to
from repatlas.steps.mitosis_figures import mitosis_figure

log_to(snakemake.log[0])
p = snakemake.params
mitosis_figure(p.figure, snakemake.input.chunks, p.cells, snakemake.output, title=p.title)
