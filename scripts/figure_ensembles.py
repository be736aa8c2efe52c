from repatlas.joblog import log_to
from repatlas.steps.ensembles_figures import ensembles_figure

log_to(snakemake.log[0])
p = snakemake.params
ensembles_figure(p.figure, snakemake.output, summary_csv=snakemake.input.summary,
                 data_paths=getattr(snakemake.input, "data", []), labels=getattr(p, "labels", []),
                 title=p.title)
