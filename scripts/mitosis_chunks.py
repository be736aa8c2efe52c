import sys

from repatlas.mitosis import chunks_to_file

sys.stderr = open(snakemake.log[0], "w")
w = snakemake.wildcards
chunks_to_file(snakemake.input.features, snakemake.output[0], repeats=snakemake.params.repeats, seed=int(w.seed),
               attrs={"dataset": w.dataset, "n": int(w.n), "regime": w.regime, "model_seed": int(w.seed)})
