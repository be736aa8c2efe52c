from repatlas.joblog import log_to
from repatlas.plots import function_panel, save_figure
from repatlas.redshift import function_images

log_to(snakemake.log[0])
p = snakemake.params
images = function_images(p.grid_size, activations=p.activations, scales=p.scales, depth=p.depth, endpoint=p.endpoint)
save_figure(function_panel(images, title=p.title), *snakemake.output)
