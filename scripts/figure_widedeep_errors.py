import sys

from repatlas.plots import errors_figure_to_file

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
errors_figure_to_file(snakemake.input.data, snakemake.output, label_a=p.label_a, label_b=p.label_b, title=p.title)
