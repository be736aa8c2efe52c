import sys

from repatlas.plots import function_panel, save_figure
from repatlas.redshift import function_images

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
images = function_images(p.grid_size, activations=p.activations, scales=p.scales, depth=p.depth, endpoint=p.endpoint)
save_figure(function_panel(images, title=p.title), *snakemake.output)
