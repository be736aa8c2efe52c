"""What a pipeline job says when it fails: one line on the console, the whole story in its log.

Every script starts with `log_to(snakemake.log[0])`. From then on the job's stderr (warnings,
progress, `print(..., file=sys.stderr)`) goes to the rule's log file, and an exception that ends
the job writes its full traceback there and one line to the console:

    repatlas: DamagedStoreError: results/activations/…/acts.zarr: layer 'block2', chunk 3 (…) cannot
    be read (…); the store is damaged: delete it (rm -r …) and rerun snakemake, … [traceback: <log>]

The library's errors name the file (and layer or chunk) and what to do, so that line is usually
all a user needs; Snakemake then reports the failed rule and its log as usual.
"""

from __future__ import annotations

import os
import sys
import traceback


def one_line(exc: BaseException) -> str:
    """`Type: message` of an exception, its whitespace (newlines included) collapsed."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


def log_to(path: str | os.PathLike) -> None:
    """Send this process's stderr to the log file `path` (emptied first) and report an uncaught
    exception as its full traceback in the log plus one line on the original stderr."""
    console = sys.stderr
    open(path, "w").close()
    # Appending: another writer of the same log (training writes its own lines to it) then adds
    # to the end instead of overwriting what this handle wrote, whatever the order of flushes.
    log = open(path, "a", buffering=1)
    sys.stderr = log

    def report(kind, exc, tb):
        traceback.print_exception(kind, exc, tb, file=log)
        log.flush()
        print(f"repatlas: {one_line(exc)} [traceback: {path}]", file=console, flush=True)

    sys.excepthook = report
