from repatlas.joblog import log_to
from repatlas.steps.widedeep import evaluate_model

log_to(snakemake.log[0])
i, o, p = snakemake.input, snakemake.output, snakemake.params
evaluate_model(i.model, i.full, i.subset, probes_path=o.probes, pruning_path=o.pruning,
               predictions_path=o.predictions, probes=p.probes, examples=p.examples, device=p.device,
               threads=snakemake.threads, log_path=snakemake.log[0])
