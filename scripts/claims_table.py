import os
import platform

from repatlas.claims import what_reproduces_to_file
from repatlas.joblog import log_to

log_to(snakemake.log[0])
# The machine that rendered the table; on a cluster the models may have trained elsewhere.
hardware = f"{platform.machine()}, {os.cpu_count()} CPU cores, device: {snakemake.config['device']}"
what_reproduces_to_file(snakemake.input.ledgers, snakemake.output[0],
                        config=os.environ.get("REPATLAS_CONFIGFILES", "an unnamed config"), hardware=hardware)
