"""Faults on purpose: a training job killed with SIGKILL and resumed, failing writes, reruns.

One module-scoped `study` runs a tiny one-model config three times, concurrently, each in its
own copy of the workflow:
  a: uninterrupted (plus one Neural Redshift figure, for the figure-only rerun test),
  b: killed (SIGKILL to the whole process group) once the first epoch's checkpoint exists, then
     unlocked and rerun to completion (training only),
  c: uninterrupted again up to the CKA file, to compare with a.
Everything else here is a dry run (`-n`) against a, or the library alone. docs/reliability.md
maps each guarantee to its test.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from workflow_copy import copy_workflow

from repatlas import activations, models
from repatlas.checkpoints import load_checkpoint, load_training_state

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow

MODEL = "digits-n1000/resnet-d8-w1/s0"
EPOCHS = 8
CONFIG = {
    "dataset": "digits",
    "probe_size": 40,
    # one model; 1000 examples so that an epoch takes a noticeable fraction of a second
    "grid": {"arch": "resnet", "depth": [8], "width": [1], "n": [1000], "seed": [0]},
    # crop + flip: the resumed run must restore the generator behind augmentation too
    "train": {"epochs": EPOCHS, "batch_size": 32, "crop_pad": 1, "flip": True},
    "activations": {"batch_size": 20},
    "cka": {"batch_size": 20},
    "studies": ["wide_deep"],
    # not built by `all` (studies is wide_deep only); test a builds one figure of it on purpose
    "redshift": {"grid_size": 8, "sweeps": {"scale": {"activation": ["relu"], "scale": [1.0, 10.0],
                                                      "depth": [1, 2], "width": [64], "seed": [0]}}},
}
METRICS = f"results/models/{MODEL}/metrics.json"
CKA = f"results/cka/within/{MODEL}.nc"
REDSHIFT_FIGURE = "results/figures/redshift_depth.png"  # depends on redshift.figure_scale only via params


def write_config(path: Path, **changes) -> Path:
    """CONFIG with dotted-key changes, e.g. write_config(p, **{"train.epochs": 9})."""
    config = json.loads(json.dumps(CONFIG))
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path.write_text(yaml.safe_dump(config))
    return path


def start(workdir: Path, configfile: Path, *args) -> subprocess.Popen:
    """snakemake in its own session (so the whole process group can be killed), output to a file."""
    out = open(workdir / "snakemake.out", "a")
    cmd = [sys.executable, "-m", "snakemake", "--configfile", str(configfile), *args]
    return subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, workdir: Path, timeout=420) -> tuple[int, str]:
    rc = proc.wait(timeout=timeout)
    text = (workdir / "snakemake.out").read_text()
    (workdir / "snakemake.out").unlink()
    return rc, text


def snakemake(workdir: Path, configfile: Path, *args, timeout=420) -> tuple[int, str]:
    return finish(start(workdir, configfile, *args), workdir, timeout)


def planned_jobs(output: str) -> dict[str, int]:
    """Jobs Snakemake plans (its first 'Job stats' table), without the `all` target."""
    if "Nothing to be done" in output:
        return {}
    table = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert table, output[-3000:]
    jobs = {name: int(n) for name, n in re.findall(r"^(\S+)\s+(\d+)\s*$", table.group(1), re.M)}
    jobs.pop("all", None)
    return jobs


def kill_after_first_epoch(proc: subprocess.Popen, workdir: Path, timeout=300) -> float:
    """Wait until the training job has saved a checkpoint (>= 1 epoch done), then SIGKILL the group."""
    checkpoint = workdir / "results/models" / MODEL / "checkpoint.pt"
    t0 = time.monotonic()
    while not checkpoint.exists():  # written atomically, so existing means one whole epoch saved
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before the first checkpoint")
        if time.monotonic() - t0 > timeout:
            raise AssertionError("no checkpoint appeared in time")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    base = tmp_path_factory.mktemp("reliability")
    config = write_config(base / "config.yaml")
    a, b, c = (copy_workflow(base / name) for name in "abc")
    procs = {}
    facts = {"dirs": {"a": a, "b": b, "c": c}, "config": config}
    try:
        procs["a"] = start(a, config, "--cores", "2", "all", REDSHIFT_FIGURE)
        procs["c"] = start(c, config, "--cores", "1", METRICS, CKA)  # all but the figure
        procs["b"] = start(b, config, "--cores", "1", METRICS)
        facts["kill_after_s"] = kill_after_first_epoch(procs["b"], b)
        model_dir = b / "results/models" / MODEL
        facts["after_kill"] = {
            "files": sorted(p.name for p in model_dir.iterdir()),
            "epoch": load_training_state(model_dir / "checkpoint.pt")["epoch"],
            "alive": _group_alive(procs["b"].pid),
        }
        finish(procs.pop("b"), b)
        facts["locked"] = snakemake(b, config, "--cores", "1", METRICS)
        facts["unlock"] = snakemake(b, config, "--unlock")
        facts["rerun"] = snakemake(b, config, "--cores", "1", METRICS)
        facts["a"] = finish(procs.pop("a"), a)
        facts["c"] = finish(procs.pop("c"), c)
    finally:
        for proc in procs.values():  # only what this fixture started, by process group id
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for name in ("a", "c", "rerun"):
        assert facts[name][0] == 0, f"{name}: {facts[name][1][-4000:]}"
    return facts


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies awaiting a reaper do not count)."""
    time.sleep(0.5)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# ----------------------------------------------------------------------------- helpers to compare


def metrics_without_timings(path: Path) -> dict:
    metrics = json.loads(path.read_text())
    metrics.pop("seconds")
    for record in [metrics["final"], *metrics["epochs"]]:
        record.pop("seconds"), record.pop("eval_seconds")
    return metrics


def assert_same_model(path_a: Path, path_b: Path) -> None:
    model_a, spec_a, meta_a = load_checkpoint(path_a)
    model_b, spec_b, meta_b = load_checkpoint(path_b)
    assert spec_a == spec_b
    for m in (meta_a, meta_b):
        m["final"].pop("seconds"), m["final"].pop("eval_seconds")
    assert meta_a == meta_b
    state_b = model_b.state_dict()
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, state_b[key]), key


# ----------------------------------------------------------------------------- a killed training job


def test_killed_training_leaves_no_model_and_resumes_bit_identically(study):
    a, b = study["dirs"]["a"], study["dirs"]["b"]
    after = study["after_kill"]
    assert not after["alive"], "the training job outlived the kill of its process group"
    # killed between epochs 1 and EPOCHS: the checkpoint is there, the declared outputs are not
    # (a kill while the checkpoint was being written may add a '.checkpoint.pt.tmp-*' sibling)
    assert 1 <= after["epoch"] < EPOCHS
    assert "model.pt" not in after["files"] and "metrics.json" not in after["files"]
    assert ({f for f in after["files"] if not f.startswith(".checkpoint.pt.tmp-")}
            == {"checkpoint.pt", "train.log"})

    # the killed run's lock stops a plain rerun; --unlock is the documented way on
    rc, out = study["locked"]
    assert rc != 0 and "unlock" in out.lower()
    assert study["unlock"][0] == 0

    rc, out = study["rerun"]
    # the half-done job is not accepted as done: training reruns; the finished data jobs do not
    assert planned_jobs(out) == {"train_model": 1}, out[-3000:]
    log = (b / "results/models" / MODEL / "train.log").read_text()
    assert (f"resuming from checkpoint results/models/{MODEL}/checkpoint.pt: "
            f"{after['epoch']} of {EPOCHS} epochs done") in log
    assert f"epoch {EPOCHS}/{EPOCHS} " in log

    # bit-identical to the uninterrupted run: weights, BatchNorm buffers, every metric but timings
    assert_same_model(a / "results/models" / MODEL / "model.pt", b / "results/models" / MODEL / "model.pt")
    assert metrics_without_timings(a / METRICS) == metrics_without_timings(b / METRICS)
    # the resumable state is gone after success, and no temporary is left anywhere
    assert (sorted(p.name for p in (b / "results/models" / MODEL).iterdir())
            == ["metrics.json", "model.pt", "train.log"])
    assert not list((b / "results").rglob(".*.tmp-*"))


# ----------------------------------------------------------------------------- determinism


def test_same_config_twice_gives_identical_results(study):
    """Two uninterrupted runs in two directories (one with --cores 2, one with --cores 1)."""
    a, c = study["dirs"]["a"], study["dirs"]["c"]
    assert metrics_without_timings(a / METRICS) == metrics_without_timings(c / METRICS)
    assert_same_model(a / "results/models" / MODEL / "model.pt", c / "results/models" / MODEL / "model.pt")

    store = f"results/activations/{MODEL}/acts.zarr"
    acts_a, acts_c = xr.open_zarr(a / store), xr.open_zarr(c / store)
    assert acts_a.attrs == acts_c.attrs and set(acts_a.variables) == set(acts_c.variables)
    assert len(acts_a.attrs["layers"]) == 5
    for name in acts_a.variables:
        assert np.array_equal(acts_a[name].values, acts_c[name].values), name

    cka_a, cka_c = xr.open_dataarray(a / CKA), xr.open_dataarray(c / CKA)
    assert cka_a.shape == (5, 5) and np.isfinite(cka_a).all()
    assert np.array_equal(cka_a.values, cka_c.values)  # exactly, not approximately
    assert cka_a.attrs == cka_c.attrs and list(cka_a.layer_a.values) == list(cka_c.layer_a.values)
    for d in (a, c):
        assert not list((d / "results").rglob(".*.tmp-*"))


# ----------------------------------------------------------------------------- incremental reruns


def test_unchanged_tree_has_nothing_to_do(study):
    a = study["dirs"]["a"]
    rc, out = snakemake(a, study["config"], "-n")
    assert rc == 0 and "Nothing to be done" in out, out[-3000:]


@pytest.mark.parametrize(
    "change,expected",
    [
        # training changes: everything downstream of the model, but not the data preparation
        # (the claims ledger reads blocks.csv)
        ({"train.epochs": EPOCHS + 1},
         {"train_model": 1, "dump_activations": 1, "cka_within": 1, "figure_cka_within_grid": 1,
          "evaluate_model": 1, "probe_table": 1, "block_table": 1, "figure_widedeep": 4, "claims_ledger": 1,
          "claims_table": 1}),
        # the CKA estimator: CKA, blocks and their figures, but not the model evaluation (probes,
        # pruning and predictions do not read the CKA; the pruning figure labels blocks itself)
        ({"cka.batch_size": 10},
         {"cka_within": 1, "figure_cka_within_grid": 1, "block_table": 1, "figure_widedeep": 3,
          "claims_ledger": 1, "claims_table": 1}),
        # where CKA runs changes no result: nothing
        ({"cka.scheduler": "tcp://127.0.0.1:8786"}, {}),
    ],
    ids=["train.epochs", "cka.batch_size", "cka.scheduler"],
)
def test_config_change_reruns_only_dependants(study, tmp_path, change, expected):
    a = study["dirs"]["a"]
    rc, out = snakemake(a, write_config(tmp_path / "changed.yaml", **change), "-n")
    assert rc == 0, out[-3000:]
    assert planned_jobs(out) == expected, out[-3000:]


def test_figure_only_option_reruns_only_that_figure(study, tmp_path):
    """wide_deep has no figure-only option; redshift.figure_scale is one (see docs/reliability.md)."""
    a = study["dirs"]["a"]
    assert (a / REDSHIFT_FIGURE).stat().st_size > 1000
    changed = write_config(tmp_path / "changed.yaml", **{"redshift.figure_scale": 1.0})
    rc, out = snakemake(a, changed, "-n", "all", REDSHIFT_FIGURE)
    assert rc == 0, out[-3000:]
    assert planned_jobs(out) == {"figure_redshift_lines": 1}, out[-3000:]
    assert "Params have changed" in out


# ----------------------------------------------------------------------------- atomic activation stores


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _probe(n=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 10, np.arange(n)


def _dump(model, path, **kw):
    images, labels, index = _probe()
    return activations.dump_activations(model, images, labels, index, path, mean=[0.3], std=[0.4],
                                        layers=["layer1", "layer2"], batch_size=10, **kw)


def _failing_model(exc_type):
    """An MLP whose forward raises on its 2nd batch (after the 1st batch reached the store)."""
    torch.manual_seed(0)
    model = models.mlp(2, 8, in_features=64, n_classes=10)
    calls = []

    def hook(module, args):
        calls.append(1)
        if len(calls) == 2:
            raise exc_type("forward failed on the 2nd batch")

    model.register_forward_pre_hook(hook)
    return model, calls


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_failed_dump_leaves_no_store_and_no_temporary(tmp_path, one_thread, exc_type):
    model, calls = _failing_model(exc_type)
    path = tmp_path / "out" / "acts.zarr"
    with pytest.raises(exc_type, match="2nd batch"):
        _dump(model, path)
    assert len(calls) == 2
    assert not path.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no .acts.zarr.tmp-* sibling either


def test_failed_rewrite_keeps_the_existing_store(tmp_path, one_thread):
    torch.manual_seed(1)
    path = tmp_path / "acts.zarr"
    assert (_dump(models.mlp(2, 8, in_features=64, n_classes=10), path, attrs={"run": 1})
            == ["layer1", "layer2"])
    before = _snapshot(path)
    model, _ = _failing_model(RuntimeError)
    with pytest.raises(RuntimeError, match="2nd batch"):
        _dump(model, path, attrs={"run": 2})
    assert _snapshot(path) == before  # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.zarr"]  # no .tmp-* / .old-* siblings
    assert xr.open_zarr(path).attrs["run"] == 1
