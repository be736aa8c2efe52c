from repatlas.joblog import log_to
from repatlas.steps.mitosis_ensemble_figures import ensemble_figure

log_to(snakemake.log[0])
p = snakemake.params
ensemble_figure(snakemake.input.wide, snakemake.input.members, snakemake.output, arch=p.arch,
                wide_width=p.wide_width, narrow_width=p.narrow_width, title=p.title)
