import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr

from repatlas import activations, cka_stores, cli, models


@pytest.fixture
def store(tmp_path):
    torch.manual_seed(0)
    model = models.mlp(2, 12, in_features=64, n_classes=10)
    images = np.random.default_rng(0).integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
    path = tmp_path / "acts.zarr"
    activations.dump_activations(model, images, np.arange(40) % 10, np.arange(40), path,
                                 mean=[0.5], std=[0.25], layers=["layer1", "layer2"], batch_size=8)
    return path


def test_cka_command_writes_same_result_as_library(store, tmp_path):
    out = tmp_path / "out.nc"
    assert cli.main(["cka", str(store), "-o", str(out), "--batch-size", "8"]) == 0
    expected = cka_stores.cka_from_stores(store, batch_size=8)
    np.testing.assert_allclose(xr.open_dataarray(out).values, expected.values)
    cross = tmp_path / "cross.nc"
    assert cli.main(["cka", str(store), str(store), "-o", str(cross), "--batch-size", "8",
                     "--layers-b", "layer2"]) == 0
    assert xr.open_dataarray(cross).shape == (2, 1)


def test_info_describes_artifacts(store, tmp_path, capsys):
    assert cli.main(["info", str(store)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "activation store"
    assert info["layers"]["layer1"]["shape"] == [40, 12]


def test_bad_arguments_give_one_clear_error(store, tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such activation store"):
        cli.main(["cka", str(tmp_path / "nope.zarr"), "-o", str(tmp_path / "o.nc")])
    with pytest.raises(SystemExit, match="must end in .nc"):
        cli.main(["cka", str(store), "-o", str(tmp_path / "o.csv")])
    assert cli.main(["cka", str(store), "-o", str(tmp_path / "o.nc"), "--layers-a", "nope"]) == 2
    assert "unknown layer" in capsys.readouterr().err
    assert not (tmp_path / "o.nc").exists()


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "repatlas.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "cka" in result.stdout and "info" in result.stdout


def test_info_reads_multi_variable_datasets_and_tables(tmp_path, capsys):
    ds = xr.Dataset({"test_accuracy": ("layer", [0.5, 0.75]), "train_accuracy": ("layer", [0.6, 0.9])},
                    coords={"layer": ["stem", "pool"]}, attrs={"epochs": 2})
    ds.to_netcdf(tmp_path / "probes.nc")
    assert cli.main(["info", str(tmp_path / "probes.nc")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "Dataset" and info["dims"] == {"layer": 2} and info["attrs"] == {"epochs": 2}
    assert info["variables"]["train_accuracy"] == {"dims": ["layer"], "dtype": "float64"}
    assert info["coords"] == {"layer": ["stem", "pool"]}
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    assert cli.main(["info", str(tmp_path / "t.csv")]) == 0
    assert json.loads(capsys.readouterr().out) == {"kind": "table", "rows": 2,
                                                   "columns": {"a": "int64", "b": "str"}}


def test_info_into_a_closed_pipe_is_quiet(store):
    """`repatlas info store | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    result = subprocess.run(f"{sys.executable} -m repatlas.cli info {store} | head -n 1", shell=True,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout == "{\n" and result.stderr == ""


def test_cka_batch_size_default_is_the_pipelines():
    from pathlib import Path

    import yaml

    schema = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    pipeline = schema["properties"]["cka"]["properties"]["batch_size"]["default"]
    assert cli.build_parser().parse_args(["cka", "a.zarr", "-o", "o.nc"]).batch_size == pipeline
