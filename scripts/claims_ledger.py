from repatlas.claims import config_hash, ledger_to_file
from repatlas.joblog import log_to

log_to(snakemake.log[0])
ledger_to_file(snakemake.wildcards.study, {k: v for k, v in snakemake.input.items() if k != "lib"},
               snakemake.output[0], config_hash=config_hash(snakemake.config))
