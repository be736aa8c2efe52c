"""Do two runs of one config hold the same results? Used by tests/test_slurm.py and by hand:

    python tests/results_equal.py RUN_A RUN_B [--except-figures]

RUN_A and RUN_B are working directories (each with a results/ folder). Every result file must exist
in both and be byte-identical, or equal but for recorded times (`same_but_for_times`). Job logs,
Snakemake benchmarks and the generic profile's cluster logs are not results. With
`--except-figures`, PNG and PDF files are listed but not compared: a change that redraws figures on
purpose (issue 21) must still leave every array, table, model and store identical. Exit status 0
when the runs agree, 1 otherwise, with one line per differing or missing file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr

FIGURES = (".png", ".pdf")


def untimed(value):
    """`value` without its durations: every dict key naming seconds, at any depth."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def metrics_without_timings(path: Path) -> dict:
    return untimed(json.loads(path.read_text()))


def same_data(a, b) -> bool:
    """Nested dicts/lists of tensors, arrays and plain data equal, dict keys naming seconds aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in a if "seconds" not in str(k)]
        return keys == [k for k in b if "seconds" not in str(k)] and all(same_data(a[k], b[k]) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_data, a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def same_model(path_a: Path, path_b: Path) -> bool:
    """Same spec, weights and buffers (tensor by tensor), optimiser state and metadata but for
    times. Read as the raw checkpoint, so the check does not depend on the code that wrote it."""
    return same_data(*(torch.load(p, map_location="cpu", weights_only=True) for p in (path_a, path_b)))


def same_npz(path_a: Path, path_b: Path) -> bool:
    """Same arrays under the same names (a zip's member timestamps are not results)."""
    with np.load(path_a, allow_pickle=False) as a, np.load(path_b, allow_pickle=False) as b:
        return sorted(a.files) == sorted(b.files) and all(
            a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind in "fc")
            for k in a.files)


def same_but_for_times(rel: str, a: Path, b: Path) -> bool:
    """Files that two runs of one config write differently, in times only: durations (also in
    netCDF attributes), matplotlib's PDF creation date, zip timestamps. Equal otherwise."""
    if rel.startswith("benchmarks/") or rel.endswith(".log"):
        return True  # Snakemake's per-job time and memory; the rules' logs print seconds
    if rel.endswith("metrics.json"):
        return metrics_without_timings(a) == metrics_without_timings(b)
    if rel.endswith(".pt"):
        return same_model(a, b)
    if rel.endswith(".npz"):
        return same_npz(a, b)
    if rel.endswith(".nc"):  # e.g. the complexity sweeps' stage timings (attrs *_seconds*)
        with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
            untimed_attrs = [{k: str(v) for k, v in d.attrs.items() if "seconds" not in k} for d in (da, db)]
            return untimed_attrs[0] == untimed_attrs[1] and da.identical(db.assign_attrs(da.attrs))
    if rel.endswith(".pdf"):
        undated = [re.sub(rb"/CreationDate \(D:\d+Z?\)", b"", p.read_bytes()) for p in (a, b)]
        return undated[0] == undated[1]
    return False


def result_files(workdir: Path) -> set[str]:
    """Files under results/, without the generic profile's own job logs (results/logs/cluster)."""
    res = workdir / "results"
    files = {str(p.relative_to(res)) for p in res.rglob("*") if p.is_file()}
    return {f for f in files if not f.startswith("logs/cluster/")}


def compare_runs(run_a: Path, run_b: Path, *, except_figures: bool = False) -> dict:
    """{"identical": [...], "equal_but_for_times": [...], "figures_not_compared": [...],
    "differ": [...], "only_in_a": [...], "only_in_b": [...]} over results/ files (relative paths)."""
    files_a, files_b = result_files(run_a), result_files(run_b)
    out = {"identical": [], "equal_but_for_times": [], "figures_not_compared": [], "differ": [],
           "only_in_a": sorted(files_a - files_b), "only_in_b": sorted(files_b - files_a)}
    for rel in sorted(files_a & files_b):
        a, b = run_a / "results" / rel, run_b / "results" / rel
        if except_figures and rel.endswith(FIGURES):
            out["figures_not_compared"].append(rel)
        elif a.read_bytes() == b.read_bytes():
            out["identical"].append(rel)
        elif same_but_for_times(rel, a, b):
            out["equal_but_for_times"].append(rel)
        else:
            out["differ"].append(rel)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--except-figures", action="store_true",
                        help="list PNG/PDF files without comparing them")
    args = parser.parse_args(argv)
    for run in (args.run_a, args.run_b):
        if not (run / "results").is_dir():
            parser.error(f"{run}: no results/ folder (give the working directory of a run)")
    outcome = compare_runs(args.run_a, args.run_b, except_figures=args.except_figures)
    for key, files in outcome.items():
        print(f"{key}: {len(files)}")
    bad = [(key, rel) for key in ("differ", "only_in_a", "only_in_b") for rel in outcome[key]]
    for key, rel in bad:
        print(f"  {key}: results/{rel}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
