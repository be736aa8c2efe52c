import sys

from repatlas.devices import job_device
from repatlas.errors import predictions_to_file
from repatlas.joblog import log_to
from repatlas.probes import probes_to_file, pruning_to_file

log_to(snakemake.log[0])
i, o, p = snakemake.input, snakemake.output, snakemake.params
run = dict(device=job_device(p.device, snakemake.log[0]), threads=snakemake.threads)  # exits 1 if absent
probes_to_file(i.model, i.full, i.subset, o.probes, **p.probes, **run)
pruning_to_file(i.model, i.full, o.pruning, examples=p.examples, **run)
info = predictions_to_file(i.model, i.full, o.predictions, **run)
print(f"test accuracy {info['test_accuracy']:.4f}", file=sys.stderr)
