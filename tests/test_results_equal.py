"""tests/results_equal.py, the check that two runs hold the same results, on planted differences."""

import json

import numpy as np
import torch
import xarray as xr
from results_equal import compare_runs, main


def write_run(root, *, weight=1.0, seconds=1.0, table="a,b\n1,2\n", extra=False):
    res = root / "results"
    (res / "models" / "m").mkdir(parents=True)
    torch.save({"spec": {"depth": 8}, "state_dict": {"w": torch.full((2,), weight)},
                "meta": {"train_seconds": seconds}}, res / "models" / "m" / "model.pt")
    (res / "models" / "m" / "metrics.json").write_text(json.dumps({"acc": 0.5, "eval_seconds": seconds}))
    xr.Dataset({"x": ("i", np.arange(3.0))},
               attrs={"stage_seconds": seconds, "grid": 16}).to_netcdf(res / "a.nc")
    np.savez(res / "subset.npz", index=np.arange(4))
    (res / "table.csv").write_text(table)
    (res / "figure.png").write_bytes(b"png" + str(seconds).encode())
    (res / "logs").mkdir()
    (res / "logs" / "job.log").write_text(f"took {seconds} s")
    if extra:
        (res / "extra.csv").write_text("x\n")
    return root


def test_runs_differing_only_in_times_agree(tmp_path):
    a = write_run(tmp_path / "a", seconds=1.0)
    b = write_run(tmp_path / "b", seconds=2.5)
    out = compare_runs(a, b, except_figures=True)
    assert out["differ"] == out["only_in_a"] == out["only_in_b"] == []
    assert set(out["equal_but_for_times"]) >= {"models/m/model.pt", "models/m/metrics.json", "a.nc"}
    assert out["figures_not_compared"] == ["figure.png"]
    assert "table.csv" in out["identical"]
    # without --except-figures the redrawn figure is a difference
    assert compare_runs(a, b)["differ"] == ["figure.png"]


def test_changed_weights_tables_and_missing_files_are_reported(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", weight=1.0 + 1e-7, table="a,b\n1,3\n", extra=True)
    out = compare_runs(a, b, except_figures=True)
    assert out["differ"] == ["models/m/model.pt", "table.csv"]
    assert out["only_in_b"] == ["extra.csv"]
    assert main([str(a), str(b), "--except-figures"]) == 1
    assert "differ: results/table.csv" in capsys.readouterr().out
    assert main([str(a), str(a)]) == 0
