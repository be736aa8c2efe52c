from repatlas.joblog import log_to
from repatlas.steps.widedeep import probe_table_to_file

log_to(snakemake.log[0])
probe_table_to_file(dict(zip(snakemake.params.ids, snakemake.input.probes, strict=True)), snakemake.output[0])
