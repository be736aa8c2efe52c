"""Steps of rules/claims.smk: one study's claims ledger from its result files, and the README's
"What reproduces" table from all ledgers."""

from __future__ import annotations

import os
import platform

import pandas as pd
import xarray as xr

from repatlas.claims import config_hash, ledger, what_reproduces
from repatlas.io import atomic_path


def _read(path):
    """A result file's content: CSV as DataFrame, netCDF as a loaded xarray Dataset."""
    if str(path).endswith(".csv"):
        return pd.read_csv(path)
    with xr.open_dataset(path) as ds:
        return ds.load()


def ledger_to_file(study: str, paths: dict, out_csv, *, config_hash: str = "") -> None:
    """Read the study's result files ({input name: path}), write its ledger to ``out_csv``."""
    table = ledger(study, {k: _read(p) for k, p in paths.items()}, config_hash=config_hash, artifacts=paths)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def what_reproduces_to_file(ledger_paths, out_md, *, config: str, hardware: str) -> None:
    """Concatenate the ledgers at ``ledger_paths`` and write :func:`what_reproduces` to ``out_md``."""
    table = pd.concat([pd.read_csv(p, keep_default_na=True) for p in ledger_paths], ignore_index=True)
    with atomic_path(out_md) as tmp:
        tmp.write_text(what_reproduces(table, config=config, hardware=hardware))


def claims_ledger(study: str, inputs: dict, out_csv, *, config: dict) -> None:
    """The ledger job: `ledger_to_file` of the study's inputs ({name: path}; the rule's `lib` input,
    the library files, is not a result and is left out), tagged with the config's `config_hash`."""
    ledger_to_file(study, {k: v for k, v in inputs.items() if k != "lib"}, out_csv,
                   config_hash=config_hash(config))


def claims_table(ledger_paths, out_md, *, device: str) -> None:
    """The README table job: `what_reproduces_to_file`, naming the config files of the run
    (REPATLAS_CONFIGFILES) and the machine that rendered it (on a cluster the models may have
    trained elsewhere)."""
    hardware = f"{platform.machine()}, {os.cpu_count()} CPU cores, device: {device}"
    what_reproduces_to_file(ledger_paths, out_md,
                            config=os.environ.get("REPATLAS_CONFIGFILES", "an unnamed config"),
                           hardware=hardware)
