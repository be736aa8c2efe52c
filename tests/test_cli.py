import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr

from repatlas import activations, cka, cli, models


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
    expected = cka.cka_from_stores(store, batch_size=8)
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
