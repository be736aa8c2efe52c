"""The real workflow, run by snakemake on configs/ci-tiny.yaml in a temporary directory."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from workflow_copy import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "ci-tiny.yaml"
pytestmark = pytest.mark.workflow




def snakemake(workdir, *args, configfile=TINY):
    cmd = [sys.executable, "-m", "snakemake", "--configfile", str(configfile), *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)


# `tiny_run` (conftest.py): the one local run of ci-tiny per session, shared with test_slurm.py


def test_every_artifact_exists_and_is_sound(tiny_run):
    workdir, result = tiny_run
    config = yaml.safe_load(TINY.read_text())
    res = workdir / "results"
    assert (res / "data/digits/full.npz").is_file()
    assert (res / "data/digits/train-n100-s0.npz").is_file()
    for depth in config["grid"]["depth"]:
        model = f"digits-n100/resnet-d{depth}-w1/s1"
        metrics = json.loads((res / "models" / model / "metrics.json").read_text())
        assert len(metrics["epochs"]) == config["train"]["epochs"]
        assert (res / "models" / model / "model.pt").is_file()
        assert "epoch 1/1" in (res / "models" / model / "train.log").read_text()
        acts = xr.open_zarr(res / "activations" / model / "acts.zarr")
        n_blocks = 3 * (depth - 2) // 6
        assert acts.attrs["layers"] == ["stem"] + [f"block{i}" for i in range(1, n_blocks + 1)] + ["pool"]
        assert acts.sizes["example"] == config["probe_size"]
        cka = xr.open_dataarray(res / "cka" / "within" / f"{model}.nc")
        assert cka.dims == ("layer_a", "layer_b") and cka.shape == (n_blocks + 2,) * 2
        assert np.allclose(np.diag(cka), 1.0) and np.allclose(cka, cka.T)
        assert np.isfinite(cka).all()
    across = sorted(p.name for p in (res / "cka" / "across").glob("*.nc"))
    # per n: every seed pair of each of the 4 architectures, plus deepest-narrow vs shallowest-wide per seed
    assert len(across) == 2 * (4 + 2)
    assert "digits-n100-resnet-d14-w1-s0__digits-n100-resnet-d8-w2-s0.nc" in across
    cross = xr.open_dataarray(res / "cka" / "across" / "digits-n100-resnet-d14-w1-s0__digits-n100-resnet-d8-w2-s0.nc")
    assert cross.shape == (8, 5) and np.isfinite(cross).all() and (cross <= 1 + 1e-9).all()
    for name in ("cka_within_grid", "cka_across_seeds", "cka_across_archs"):
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{name}.{ext}").stat().st_size > 1000
    assert "figure written to" in result.stdout + result.stderr
    assert not list(res.rglob(".*.tmp-*"))  # no temporaries left behind


def test_rerun_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    result = snakemake(workdir, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_library_change_reruns_dependants(tiny_run, tmp_path):
    workdir, _ = tiny_run
    lib = workdir / "src/repatlas/cka.py"
    original = lib.read_text()
    try:
        # a content change (an mtime-only touch with the same checksum reruns nothing)
        lib.write_text(original + "\n# edited\n")
        result = snakemake(workdir, "-n")
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "rule cka_within" in out and "rule figure_cka_within_grid" in out
        assert "rule train_model" not in out and "rule dump_activations" not in out
    finally:
        lib.write_text(original)


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_study_dry_run(tmp_path):
    workdir = copy_workflow(tmp_path)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n"],
                            cwd=workdir, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "train_model" in out and "figure_cka_within_grid" in out


@pytest.mark.parametrize(
    "change,message",
    [
        ({"trian": {"epochs": 1}}, "config key 'trian' is not a known key"),
        ({"train": {"epochs": "one"}}, "config key 'train.epochs': 'one' is not of type 'integer'"),
        ({"dataset": "imagenet"}, "config key 'dataset'"),
        ({"grid": {"depth": [10]}}, "config key 'grid.depth': ResNet depth must be 6n+2"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, change, message):
    config = yaml.safe_load(TINY.read_text())
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    bad = tmp_path / "bad-config.yaml"
    bad.write_text(yaml.safe_dump(config))
    workdir = copy_workflow(tmp_path)
    result = snakemake(workdir, "--cores", "1", configfile=bad)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_redshift_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    scale = xr.open_dataset(res / "complexity" / "scale.nc")
    assert set(scale.data_vars) >= {"fourier", "chebyshev", "lz"}
    assert dict(scale.sizes) == {"activation": 2, "scale": 2, "depth": 2, "width": 1, "variant": 1, "seed": 2}
    # sin networks of depth 2 become more complex with weight magnitude (the Neural Redshift
    # claim; at depth 1 sin only rises above A ≈ 20), ReLU networks do not
    fourier = scale["fourier"].sel(depth=2).isel(width=0, variant=0)
    sin, relu = fourier.sel(activation="sin"), fourier.sel(activation="relu")
    assert (sin.sel(scale=10.0) > 1.5 * sin.sel(scale=1.0)).all()
    assert (abs(relu.sel(scale=10.0) / relu.sel(scale=1.0) - 1) < 0.2).all()
    summod = xr.open_dataset(res / "complexity" / "summod.nc")
    assert ((summod["test_accuracy"] >= 0) & (summod["test_accuracy"] <= 1)).all()
    for name in ("scale", "depth", "width", "variant", "functions", "summod"):
        assert (res / "figures" / f"redshift_{name}.png").stat().st_size > 1000


def test_infinite_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results" / "infinite"
    for arch in ("mlp", "resnet"):
        ds = xr.open_dataset(res / f"cookbook-{arch}.nc")
        assert ds["f_test"].dims == ("t", "member", "x") and ds.sizes["member"] == 4
        assert (ds["ntk_sd"] >= 0).all() and np.isfinite(ds["ntk_mean"]).all()
        # training lowers the ensemble's training loss, as the NTK predicts
        assert float(ds["train_loss"].mean("member")[-1]) < float(ds["train_loss"].mean("member")[0])
    ntk = xr.open_dataset(res / "ntk_convergence.nc")
    assert ntk["relative_error"].dims == ("width", "seed")
    reg = xr.open_dataset(res / "regression-digits-n100.nc")
    assert 0 <= float(reg["nngp_inf"]) <= 1 and reg["finite_accuracy"].shape == (2, 2, 1)
    for name in ("cookbook_mlp", "cookbook_resnet", "ntk_convergence", "regression"):
        assert (workdir / "results" / "figures" / f"infinite_{name}.png").stat().st_size > 1000


def test_mitosis_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    for regime in ("converged", "early"):
        ds = xr.open_dataset(res / "mitosis" / "chunks" / f"digits-n100/mlp-d2-w32/{regime}/s0.nc")
        assert list(ds["chunk_size"].values) == [1, 2, 4, 8, 16, 32]
        assert np.isclose(float(ds["r2_mean"].sel(chunk_size=32)), 1.0, atol=1e-6)
        assert ds.attrs["width"] == 32 and ds.attrs["clones"] > 0
        # the ResNet's last hidden layer is its pooled 64·k features
        ds = xr.open_dataset(res / "mitosis" / "chunks" / f"digits-n100/resnet-d8-w1/{regime}/s0.nc")
        assert ds.attrs["width"] == 64 and ds["chunk_size"].values[-1] == 64
    summary = pd.read_csv(res / "mitosis" / "summary.csv")
    # 2 regimes × (2 MLP widths + 1 ResNet width) × 1 seed, clone counts as in the chunk files
    assert len(summary) == 6 and set(summary["arch"]) == {"mlp", "resnet"}
    row = summary[(summary["arch"] == "mlp") & (summary["width"] == 32) & (summary["regime"] == "converged")]
    ds = xr.open_dataset(res / "mitosis" / "chunks" / "digits-n100/mlp-d2-w32/converged/s0.nc")
    assert float(row["clones"].iloc[0]) == pytest.approx(ds.attrs["clones"], rel=1e-5)
    for name in ("chunks", "clones", "ensemble"):
        assert (res / "figures" / f"mitosis_{name}.png").stat().st_size > 1000


def test_ensembles_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    table = pd.read_csv(res / "ensembles" / "summary.csv")
    assert set(table["data"]) == {"digits", "multiview"} and set(table["regime"]) == {"feature", "ntk"}
    assert set(table["method"]) == {"single", "ensemble", "kd", "self_kd", "average"}
    single = table[table["method"] == "single"]
    assert (single["count"] == 2).all() and table["test_acc_mean"].between(0, 1).all()
    drop = xr.open_dataset(res / "ensembles" / "multiview-dropping.nc")
    assert drop["single"].dims == ("fraction", "member")
    for name in ("methods", "size", "dropping"):
        assert (res / "figures" / f"ensembles_{name}.png").stat().st_size > 1000


def test_wide_deep_analyses(tiny_run):
    from repatlas.cka import detect_blocks
    from repatlas.data import load_npz, probe_set

    workdir, _ = tiny_run
    config = yaml.safe_load(TINY.read_text())
    res = workdir / "results"
    table = pd.read_csv(res / "widedeep" / "blocks.csv")
    assert len(table) == 16 and set(table["n"]) == {60, 100} and set(table["seed"]) == {0, 1}
    assert "seed_cka_inside" in table and "seed_cka_outside" in table
    for row in table.itertuples():
        model = f"digits-n{row.n}/resnet-d{row.depth}-w{row.width}/s{row.seed}"
        cka = xr.open_dataarray(res / "cka" / "within" / f"{model}.nc")
        # the table agrees with the detector run on the within-model CKA file (defaults 0.9, 3)
        assert row.n_layers == 3 * (row.depth - 2) // 6 + 2 == cka.shape[0]
        assert row.n_blocks == len(detect_blocks(cka, threshold=0.9, min_length=3))
    full, _ = load_npz(res / "data/digits/full.npz")
    _, _, probe_index = probe_set(full, config["probe_size"])
    for model in ("digits-n100/resnet-d14-w2/s0", "digits-n60/resnet-d8-w1/s1"):
        pca = xr.open_dataset(res / "widedeep" / "pca" / f"{model}.nc")
        assert ((pca["pc1_ratio"] > 0) & (pca["pc1_ratio"] <= 1)).all()
        assert np.allclose(np.diag(pca["cka"]), 1.0)
        assert pca.attrs["n_examples"] == config["probe_size"]
        probes = xr.open_dataset(res / "widedeep" / "probes" / f"{model}.nc")
        assert probes["test_accuracy"].dims == ("layer",) and ((probes["test_accuracy"] >= 0) & (probes["test_accuracy"] <= 1)).all()
        pruning = xr.open_dataset(res / "widedeep" / "pruning" / f"{model}.nc")
        assert set(pruning["removed"].values) <= {"block1", "block2", "block4", "block6"}
        # pruning's unpruned accuracy on the probe examples = the predictions rule's on the same examples
        preds = xr.open_dataset(res / "models" / model / "predictions.nc")
        correct = (preds["prediction"] == preds["label"]).values[probe_index]
        assert pruning.attrs["base_accuracy"] == pytest.approx(correct.mean())
    errors = xr.open_dataset(res / "widedeep" / "errors" / "digits-n100-resnet-d14-w1__digits-n100-resnet-d8-w2.nc")
    assert errors.attrs["exact"] == 1 and errors.attrs["n_permutations"] == 6  # C(4, 2) reassignments
    assert errors.attrs["min_p"] <= errors.attrs["p_value"] <= 1
    figures = ["cka_data_grid", "widedeep_blocks", "widedeep_pca", "widedeep_probes", "widedeep_pruning",
               "widedeep_errors_digits-n60-resnet-d14-w1__digits-n60-resnet-d8-w2"]
    for name in figures:
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{name}.{ext}").stat().st_size > 1000
