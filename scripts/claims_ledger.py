from repatlas.joblog import log_to
from repatlas.steps.claims import claims_ledger

log_to(snakemake.log[0])
claims_ledger(snakemake.wildcards.study, dict(snakemake.input.items()), snakemake.output[0],
              config=snakemake.config)
