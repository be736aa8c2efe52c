from repatlas.joblog import log_to
from repatlas.steps.claims import claims_table

log_to(snakemake.log[0])
claims_table(snakemake.input.ledgers, snakemake.output[0], device=snakemake.config["device"])
