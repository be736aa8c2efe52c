import sys

from repatlas.probes import probe_table_to_file

sys.stderr = open(snakemake.log[0], "w")
probe_table_to_file(dict(zip(snakemake.params.ids, snakemake.input.probes, strict=True)), snakemake.output[0])
