from repatlas.joblog import log_to
from repatlas.steps.widedeep_figures import widedeep_figure

log_to(snakemake.log[0])
p, inputs = snakemake.params, snakemake.input
widedeep_figure(snakemake.wildcards.figure, inputs.data, snakemake.output, cells=p.cells,
                within=getattr(inputs, "within", None), first_pc=getattr(inputs, "first_pc", None),
                threshold=p.threshold, min_length=p.min_length, min_pc1_share=p.min_pc1_share, title=p.title)
