from repatlas.joblog import log_to
from repatlas.mitosis import chunks_to_file

log_to(snakemake.log[0])
w = snakemake.wildcards
chunks_to_file(snakemake.input.features, snakemake.output[0], repeats=snakemake.params.repeats, seed=int(w.seed),
               attrs={"dataset": w.dataset, "n": int(w.n), "regime": w.regime, "model_seed": int(w.seed)})
