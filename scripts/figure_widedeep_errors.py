from repatlas.joblog import log_to
from repatlas.steps.widedeep_figures import errors_figure_to_file

log_to(snakemake.log[0])
p = snakemake.params
errors_figure_to_file(snakemake.input.data, snakemake.output, label_a=p.label_a, label_b=p.label_b,
                      title=p.title)
