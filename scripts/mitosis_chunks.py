from repatlas.joblog import log_to
from repatlas.steps.mitosis import chunks_to_file

log_to(snakemake.log[0])
w, p = snakemake.wildcards, snakemake.params
chunks_to_file(snakemake.input.features, snakemake.output[0], repeats=p.repeats, seed=int(w.seed),
               thresholds=p.thresholds, heldout=p.heldout,
               attrs={"dataset": w.dataset, "n": int(w.n), "regime": w.regime, "model_seed": int(w.seed)})
