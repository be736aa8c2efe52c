"""The real workflow, run by snakemake on configs/ci-tiny.yaml in a temporary directory."""

import json
import re
import shutil
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
    cross = xr.open_dataarray(res / "cka" / "across"
                              / "digits-n100-resnet-d14-w1-s0__digits-n100-resnet-d8-w2-s0.nc")
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


# Three modules at different depths of the import graph: ensembles.py (imported by the ensembles
# scripts and figure_mitosis_ensemble), config.py (imported by models.py, so by everything that
# builds a model) and cka.py (imported by CKA scripts and, through blocks.py, by the CKA and wide-vs-deep
# figure steps).
EDITED = ["ensembles.py", "config.py", "cka.py"]


def rule_scripts() -> dict[str, str]:
    """rule name -> its script's file name, read from rules/*.smk."""
    found = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for name, body in re.findall(r"(?m)^\s*rule (\w+):\n((?:\s{4,}.*\n|\n)*)", smk.read_text()):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', body)
            if script:
                found[name] = script.group(1)
    return found


def planned_rules(workdir) -> set[str]:
    """Rules with jobs in a dry run (its job-stats table)."""
    result = snakemake(workdir, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-4000:]
    return set(re.findall(r"(?m)^(\w+)\s+\d+$", result.stdout + result.stderr)) - {"total"}


def rule_children(workdir) -> dict[str, set[str]]:
    """rule -> rules that read its outputs (Snakemake's rule graph)."""
    dot = snakemake(workdir, "--rulegraph").stdout
    names = dict(re.findall(r'(?m)^\s*(\d+)\[label = "(\w+)"', dot))
    children = {}
    for a, b in re.findall(r"(?m)^\s*(\d+) -> (\d+)", dot):
        children.setdefault(names[a], set()).add(names[b])
    return children


def downstream(children: dict[str, set[str]], rules: set[str]) -> set[str]:
    """`rules` and every rule that reads their outputs, directly or not."""
    found, todo = set(rules), list(rules)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_editing_a_module_reruns_exactly_the_rules_whose_scripts_import_it(tiny_run):
    """Per edited module: the planned jobs are those of the rules whose scripts import it (computed
    independently, with modulefinder) and of the rules downstream of them, nothing else.
    (Snakemake's per-job reasons cannot attribute it: a job whose inputs are also being rebuilt
    only says 'Input files updated by another job'.)"""
    from test_code_deps import import_closure

    workdir, _ = tiny_run
    scripts = rule_scripts()
    children = rule_children(workdir)
    for module in EDITED:
        lib = workdir / "src/repatlas" / module
        original = lib.read_text()
        try:
            lib.write_text(original + "\n# edited\n")  # a content change: a mere touch reruns nothing
            planned = planned_rules(workdir)
        finally:
            lib.write_text(original)
        importers = {rule for rule, script in scripts.items()
                     if f"src/repatlas/{module}" in import_closure(ROOT / "scripts" / script)}
        assert importers and importers <= planned, (module, sorted(importers - planned))
        expected = downstream(children, importers)
        assert planned == expected, (module, sorted(planned ^ expected))
        if module == "ensembles.py":
            assert {"ensembles_summary", "figure_mitosis_ensemble"} <= importers  # missed by the old lists
            assert "train_model" not in planned and "train_mitosis_model" not in planned
        if module == "config.py":
            assert "train_model" in importers  # models.py imports config.py
        if module == "cka.py":
            assert not {"train_model", "dump_activations", "prepare_dataset"} & planned


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
    # the paper's Fourier convention on the grid with endpoints, its white-noise level stored
    assert (scale.attrs["settings_fourier_convention"] == "paper"
            and scale.attrs["settings_grid_endpoint"] == 1)
    assert 0.5 < scale["fourier"].attrs["unbiased_reference"] < 0.6
    summod = xr.open_dataset(res / "complexity" / "summod.nc")
    assert ((summod["test_accuracy"] >= 0) & (summod["test_accuracy"] <= 1)).all()
    assert summod["target_fourier_complexity"].dims == ("M",)
    degrees = xr.open_dataset(res / "complexity" / "chebyshev_degrees.nc")
    assert degrees["chebyshev"].sizes["degree"] == 2 and np.isfinite(degrees["chebyshev"]).all()
    for name in ("scale", "heatmap", "depth", "width", "variant", "functions", "summod", "chebyshev_degrees"):
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
    gap = xr.open_dataset(res / "cookbook_gap.nc")
    assert list(gap["width"].values) == [8, 16, 32] and (gap["pairs"] == 2).all() and "exponent" in gap.attrs
    conv = xr.open_dataset(res / "conv_regression-digits-n20.nc")
    assert conv["accuracy"].shape == (2, 2, 2) and list(conv.attrs["image_shape"]) == [1, 4, 4]
    for name in ("cookbook_mlp", "cookbook_resnet", "ntk_convergence", "regression", "cookbook_gap",
                 "conv_regression"):
        assert (workdir / "results" / "figures" / f"infinite_{name}.png").stat().st_size > 1000


def test_mitosis_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    for regime, epoch in (("converged", 5), ("epoch1", 1)):  # the run's end and its epoch-1 snapshot
        ds = xr.open_dataset(res / "mitosis" / "chunks" / f"digits-n100/mlp-d2-w32/{regime}/s0.nc")
        assert list(ds["chunk_size"].values) == [1, 2, 4, 8, 16, 32]
        assert np.isclose(float(ds["r2_mean"].sel(chunk_size=32)), 1.0, atol=1e-6)
        assert ds.attrs["width"] == 32 and ds.attrs["clones"] > 0 and ds.attrs["epoch"] == epoch
        assert ds["clones"].dims == ("r2", "threshold") and "r2_heldout_mean" in ds
    # the ResNet's last hidden layer is its pooled 64·k features
    ds = xr.open_dataset(res / "mitosis" / "chunks" / "digits-n100/resnet-d8-w1/epoch1/s0.nc")
    assert ds.attrs["width"] == 64 and ds["chunk_size"].values[-1] == 64
    snapshots = res / "mitosis" / "models" / "digits-n100/mlp-d2-w32/s0/snapshots"
    assert sorted(p.name for p in snapshots.glob("epoch-*")) == ["epoch-1.pt", "epoch-2.pt"]
    summary = pd.read_csv(res / "mitosis" / "summary.csv")
    # MLP: 3 widths × (converged + 2 snapshots); ResNet: 1 width × (converged + 1 snapshot); 1 seed
    assert len(summary) == 11 and set(summary["arch"]) == {"mlp", "resnet"}
    row = summary[(summary["arch"] == "mlp") & (summary["width"] == 32) & (summary["regime"] == "converged")]
    ds = xr.open_dataset(res / "mitosis" / "chunks" / "digits-n100/mlp-d2-w32/converged/s0.nc")
    assert float(row["clones"].iloc[0]) == pytest.approx(ds.attrs["clones"], rel=1e-5)
    assert row["claim_constant_critical_chunk"].notna().all()  # 3 MLP widths: the width claims are tested
    for name in ("chunks", "clones", "training", "ensemble"):
        assert (res / "figures" / f"mitosis_{name}.png").stat().st_size > 1000


def test_ensembles_artifacts(tiny_run):
    workdir, _ = tiny_run
    res = workdir / "results"
    table = pd.read_csv(res / "ensembles" / "summary.csv")
    assert set(table["data"]) == {"digits", "multiview-mu0.1", "multiview-mu0.3"}
    assert set(table["regime"]) == {"feature", "ntk"}
    assert set(table["method"]) == {"single", "ensemble", "kd", "self_kd", "average", "ensemble_of_2"}
    single = table[table["method"] == "single"]
    assert (single["count"] == 4).all() and table["test_error_mean"].between(0, 1).all()  # 2 seeds × 2 trials
    assert set(table["mu"].dropna()) == {0.1, 0.3} and table.loc[table["data"] == "digits", "mu"].isna().all()
    assert {"prediction", "predicted_error", "verdict"} <= set(table.columns)
    ds = xr.open_dataset(res / "ensembles" / "multiview-mu0.3-feature.nc")
    assert ds["test_error"].dims == ("method", "trial", "member") and ds.attrs["mu"] == 0.3
    drop = xr.open_dataset(res / "ensembles" / "multiview-mu0.1-dropping.nc")
    assert drop["single"].dims == ("fraction", "member") and drop.attrs["layer"] == "act"
    for name in ("methods", "size", "dropping", "mu"):
        assert (res / "figures" / f"ensembles_{name}.png").stat().st_size > 1000


def test_wide_deep_analyses(tiny_run):
    from repatlas.blocks import detect_blocks
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
        share = xr.open_dataset(res / "widedeep" / "pca" / f"{model}.nc")["pc1_ratio"].values
        # the table agrees with the detector run on the within-model CKA and first-PC files
        # (defaults 0.9, 3, PC1 share 0.5); n_cka_runs is the CKA criterion alone
        assert row.n_layers == 3 * (row.depth - 2) // 6 + 2 == cka.shape[0]
        assert row.n_blocks == len(detect_blocks(cka, threshold=0.9, min_length=3, pc1_share=share,
                                                 min_pc1_share=0.5))
        assert row.n_cka_runs == len(detect_blocks(cka, threshold=0.9, min_length=3))
        assert row.mean_pc1_share == pytest.approx(share.mean())
        metrics = json.loads((res / "models" / model / "metrics.json").read_text())
        assert row.test_accuracy == pytest.approx(metrics["final"]["test_acc"])
    full, _ = load_npz(res / "data/digits/full.npz")
    _, _, probe_index = probe_set(full, config["probe_size"])
    for model in ("digits-n100/resnet-d14-w2/s0", "digits-n60/resnet-d8-w1/s1"):
        pca = xr.open_dataset(res / "widedeep" / "pca" / f"{model}.nc")
        assert ((pca["pc1_ratio"] > 0) & (pca["pc1_ratio"] <= 1)).all()
        assert np.allclose(np.diag(pca["cka"]), 1.0)
        assert pca.attrs["n_examples"] == config["probe_size"]
        probes = xr.open_dataset(res / "widedeep" / "probes" / f"{model}.nc")
        assert probes["test_accuracy"].dims == ("layer",)
        accuracy = probes["test_accuracy"].values
        if probes.attrs["input_test_accuracy"] >= 0.9:  # the input is at the ceiling: layers not probed
            assert probes.attrs["status"] == "ceiling" and np.isnan(accuracy).all()
        else:
            assert probes.attrs["status"] == "probed" and ((accuracy >= 0) & (accuracy <= 1)).all()
        pruning = xr.open_dataset(res / "widedeep" / "pruning" / f"{model}.nc")
        assert set(pruning["removed"].values) <= {"block1", "block2", "block4", "block6"}
        # pruning's unpruned accuracy on the probe examples = the predictions rule's on the same examples
        preds = xr.open_dataset(res / "models" / model / "predictions.nc")
        correct = (preds["prediction"] == preds["label"]).values[probe_index]
        assert pruning.attrs["base_accuracy"] == pytest.approx(correct.mean())
    errors = xr.open_dataset(res / "widedeep" / "errors"
                             / "digits-n100-resnet-d14-w1__digits-n100-resnet-d8-w2.nc")
    assert errors.attrs["exact"] == 1 and errors.attrs["n_permutations"] == 6  # C(4, 2) reassignments
    assert errors.attrs["min_p"] <= errors.attrs["p_value"] <= 1
    pairs = pd.read_csv(res / "widedeep" / "errors.csv", keep_default_na=False)
    assert sorted(pairs.arch_b) == ["digits-n100-resnet-d8-w2", "digits-n60-resnet-d8-w2"]
    row = pairs[pairs.arch_a == "digits-n100-resnet-d14-w1"].iloc[0]
    assert row.mean_accuracy_a == pytest.approx(float(errors["mean_accuracy_a"]))
    assert "too few seeds" in row.warning  # 2 seeds each: min p = 1/3
    probe_rows = pd.read_csv(res / "widedeep" / "probes.csv")
    assert len(probe_rows) == 16 and set(probe_rows.status) <= {"probed", "ceiling"}
    figures = ["cka_data_grid", "widedeep_blocks", "widedeep_pca", "widedeep_probes", "widedeep_pruning",
               "widedeep_errors_digits-n60-resnet-d14-w1__digits-n60-resnet-d8-w2"]
    for name in figures:
        for ext in ("png", "pdf"):
            assert (res / "figures" / f"{name}.{ext}").stat().st_size > 1000


# ----------------------------------------------------------------------------- a finished project elsewhere


def test_copied_or_moved_project_plans_nothing(tiny_run, tmp_path):
    """Input paths are relative: copying the finished project deeper (`cp -a` keeps timestamps)
    and then moving it shallower (`mv`) leaves Snakemake nothing to do in either place."""
    workdir, _ = tiny_run
    copy = tmp_path / "a" / "b" / "c" / "copy"
    assert len(copy.parts) != len(workdir.parts) and len((tmp_path / "moved").parts) != len(copy.parts)
    shutil.copytree(workdir, copy, symlinks=True)  # copy2: timestamps kept
    result = snakemake(copy, "-n")
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Nothing to be done" in out, out[-3000:]
    moved = copy.rename(tmp_path / "moved")
    result = snakemake(moved, "-n")
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Nothing to be done" in out, out[-3000:]


def test_damaged_store_fails_its_job_with_one_line(tiny_run, tmp_path):
    workdir, _ = tiny_run
    project = shutil.copytree(workdir, tmp_path / "project", symlinks=True)
    model = "digits-n100/resnet-d8-w1/s0"
    chunk = project / "results/activations" / model / "acts.zarr/block2/c/1/0"
    data = bytearray(chunk.read_bytes())
    data[20:40] = b"\xff" * 20
    chunk.write_bytes(bytes(data))
    result = snakemake(project, "--cores", "1", "--force", f"results/cka/within/{model}.nc")
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("repatlas: ")]
    assert len(ours) == 1, result.stderr[-3000:]
    assert ours[0].startswith(f"repatlas: DamagedStoreError: results/activations/{model}/acts.zarr: "
                              "layer 'block2', chunk 1 (examples 20-39, "
                              f"file results/activations/{model}/acts.zarr/block2/c/1/0)")
    assert "rerun snakemake" in ours[0]
    log = (project / "results/logs/cka/within" / f"{model}.log").read_text()
    assert "Traceback (most recent call last)" in log and "DamagedStoreError" in log


def test_info_reads_every_file_the_project_writes(tiny_run):
    from repatlas.cli import describe

    workdir, _ = tiny_run
    res = workdir / "results"
    netcdf = sorted(res.rglob("*.nc"))
    assert len(netcdf) > 50
    kinds = {describe(path)["kind"] for path in netcdf}
    assert kinds == {"DataArray", "Dataset"}  # CKA matrices and the analyses' Datasets
    for path in [*sorted(res.rglob("*.csv")), *sorted(res.rglob("*.zarr"))[:2], next(res.rglob("*.npz")),
                 next(res.rglob("model.pt")), next(res.rglob("metrics.json"))]:
        assert describe(path, verify=True), path
    store = next(res.rglob("*.zarr"))
    assert describe(store, verify=True)["verify"]["damaged"] == []


# ----------------------------------------------------------------------------- the report


def report_results(html: str) -> dict[str, dict]:
    """{path: record} of the results a Snakemake report embeds (`var results = {...};`): each
    record has the rendered caption (HTML), the rule and the wildcards of the job that made it."""
    start = html.index("var results = ", html.index('<script id="results">')) + len("var results = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


def test_report_has_every_figure_with_its_caption(tiny_run):
    """Every figure of the run is in the report with its caption, and a rule drawing several
    figures (a {figure}/{name} wildcard) gives each its own caption through the templating."""
    workdir, _ = tiny_run
    result = snakemake(workdir, "--report", "report.html")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    results = report_results((workdir / "report.html").read_text())
    figures = sorted(f"results/figures/{p.name}" for p in (workdir / "results/figures").glob("*.png"))
    # 26 in ci-tiny today
    assert len(figures) >= 26 and set(figures) <= set(results), set(figures) - set(results)
    by_rule = {}
    for path in figures:
        record = results[path]
        caption = record["caption"]
        assert len(caption) > 200 and "{{" not in caption and "{%" not in caption, (path, caption)
        by_rule.setdefault(record["job_properties"]["rule"], []).append((path, caption))
    name = lambda path: Path(path).stem  # noqa: E731
    for rule, entries in by_rule.items():
        if len(entries) > 1:  # one caption file, one paragraph per figure
            assert len({caption for _, caption in entries}) == len(entries), rule
    assert "largest block" in results["results/figures/widedeep_blocks.png"]["caption"]
    assert "probe accuracy" in results["results/figures/widedeep_probes.png"]["caption"]
    for path, caption in (by_rule["figure_redshift_lines"] + by_rule["figure_infinite"]
                          + by_rule["figure_ensembles"]):
        assert name(path) in caption, (path, caption)  # the figure's own wildcard, rendered
    for path, caption in by_rule["figure_widedeep_errors"]:
        ga, gb = name(path).removeprefix("widedeep_errors_").split("__")
        assert ga in caption and gb in caption


def test_nested_config_overrides_on_the_command_line(tmp_path):
    """`--config 'grid={...}'` reaches the rules typed (Snakemake passes nested values as strings)."""
    workdir = copy_workflow(tmp_path)
    smk = [sys.executable, "-m", "snakemake", "-n", "--config"]
    ok = subprocess.run([*smk, "grid={depth: [8], width: [1, 2]}", "train={epochs: 2}",
                         "cka={across_seeds: false}"],
                        cwd=workdir, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    counts = dict(re.findall(r"(?m)^(\w+)\s+(\d+)$", ok.stdout))
    assert counts["train_model"] == "2" and counts["cka_within"] == "2"  # depth 8 × widths 1, 2
    bad = subprocess.run([*smk, "grid={depth: [8}"], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "config key 'grid': --config value '{depth: [8}' is not valid YAML" in bad.stdout + bad.stderr
