"""Device handling, checked on the CPU: no tensor made on the default device by library code,
no host sync per step or batch, one clear line for a device this host lacks, GPU job slots.

The CUDA counterpart of the entry-point check is tests/test_gpu.py (`-m gpu`).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from device_guard import LIBRARY, BareConstructors, HostSyncs
from entry_points import CASES
from workflow_copy import copy_workflow

from repatlas import cka, cka_models, cka_stores, devices, ensembles, models, probes, train

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a host without CUDA")


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


# ----------------------------------------------------------------------------- the guard itself


class OldAccumulator:
    """MinibatchCKA's accumulators as they were when `cka_heatmap` failed on CUDA: created on the
    default device, then given the terms of whatever device the model ran on."""

    def __init__(self, n):
        self.cross = torch.zeros(n, n, dtype=torch.float64)

    def add(self, cross):
        self.cross += torch.as_tensor(cross, dtype=torch.float64)

    def compute(self):
        return self.cross.numpy()


def test_guard_fails_the_old_accumulator_and_passes_a_device_following_one():
    terms = torch.eye(3)
    old = OldAccumulator(3)
    old.add(terms)
    np.testing.assert_array_equal(old.compute(), np.eye(3))  # fine where everything is on the CPU
    with BareConstructors(__file__) as guard:
        with pytest.raises((RuntimeError, TypeError, NotImplementedError)):
            old = OldAccumulator(3)
            old.add(terms)
            old.compute()
    assert guard.redirected and guard.redirected[0][0] == "zeros"
    with BareConstructors(LIBRARY, __file__) as guard:
        new = cka.MinibatchCKA(3)
        new.add(terms, terms.diagonal())
        assert new.cross.device.type == "cpu"
    assert guard.redirected == []


# ----------------------------------------------------------------------------- every entry point


@pytest.mark.parametrize("name", CASES)
def test_entry_point_makes_every_tensor_on_its_inputs_device(name):
    """Run on the CPU with tensors made without device= sent to the meta device: the library
    makes none (`redirected` is empty) and the result is unchanged."""
    expected = CASES[name]("cpu")
    with BareConstructors(LIBRARY) as guard:
        got = CASES[name]("cpu")
    assert guard.redirected == []
    assert_same(got, expected)


def test_streamed_cka_makes_no_tensor_on_the_default_device(tmp_path):
    """cka_from_stores reads zarr stores on the CPU (it moves nothing to a device); it too makes
    every tensor explicitly. Its windows run in Dask worker threads, where a torch function mode
    (thread-local) does not reach: the window function is also run under the guard directly."""
    from repatlas import activations

    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=3)
    images = (np.arange(48 * 64).reshape(48, 1, 8, 8) % 251).astype(np.uint8)
    store = tmp_path / "acts.zarr"
    activations.dump_activations(model, images, np.zeros(48), np.arange(48), store, mean=[0.5], std=[0.25],
                                 layers=["stem", "block1", "pool"], batch_size=16)
    expected = cka_stores.cka_from_stores(store, batch_size=16, epochs=2, threads=1)
    with BareConstructors(LIBRARY) as guard:
        got = cka_stores.cka_from_stores(store, batch_size=16, epochs=2, threads=1)
    assert guard.redirected == []
    np.testing.assert_array_equal(got.values, expected.values)
    arrays = list(activations.layer_arrays(store).values())
    batches = [np.arange(0, 16), np.arange(16, 32)]
    names = ["stem", "block1", "pool"]
    expected = cka_stores._window_terms(arrays, None, batches, names, None)
    with BareConstructors(LIBRARY) as guard:
        got = cka_stores._window_terms(arrays, None, batches, names, None)
    assert guard.redirected == []
    for a, b in zip(got[:3], expected[:3]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ----------------------------------------------------------------------------- host syncs


def _tiny_images(n, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return (rng.integers(0, 60, size=(n, 1, 6, 6)) + 60 * y[:, None, None, None]).astype(np.uint8), y


def _train(n):
    x, y = _tiny_images(n)
    model = models.mlp(1, 8, in_features=36, n_classes=3)
    config = train.TrainConfig(epochs=2, batch_size=8, lr=0.05, crop_pad=1, flip=True)
    train.train(model, (x, y), (x[:16], y[:16]), mean=[0.5], std=[0.3], config=config, device="cpu",
                progress=False, log=lambda s: None)


def _cka_heatmap(n):
    torch.manual_seed(0)
    cka_models.cka_heatmap(models.resnet(8, 1, in_channels=1, n_classes=3), torch.randn(n, 1, 8, 8),
                           batch_size=8, epochs=2)


def _probes(n):
    x, y = _tiny_images(n)
    probes.linear_probes(models.mlp(1, 8, in_features=36, n_classes=3), x.astype(np.float32) / 255, y,
                         x[:8].astype(np.float32) / 255, y[:8], epochs=2, batch_size=8)


def _train_classifier(n):
    x, y = _tiny_images(n)
    x = x.reshape(n, -1).astype(np.float32) / 255
    ensembles.train_classifier(models.mlp(1, 8, in_features=36, n_classes=3), x, y, x[:16], y[:16], epochs=2,
                               batch_size=8)


@pytest.mark.parametrize("loop", [_train, _cka_heatmap, _probes, _train_classifier],
                         ids=lambda f: f.__name__[1:])
def test_host_reads_do_not_grow_with_the_number_of_steps(loop):
    """On a GPU each read of a value to the host waits for all queued work: the loops read per
    epoch (or at the end), never per step or batch. 3 and 9 batches per epoch, same count."""
    counts = []
    for n in (24, 72):
        torch.manual_seed(0)
        with HostSyncs(LIBRARY) as syncs:
            loop(n)
        counts.append(syncs.calls)
    assert len(counts[0]) == len(counts[1]), counts


# ----------------------------------------------------------------------------- absent devices


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_absent_cuda_is_one_clear_error(device):
    with pytest.raises(devices.DeviceUnavailable, match=rf"device '{device}' is not available on host "
                                                       rf"{re.escape(socket.gethostname())}: "):
        devices.resolve_device(device)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device("cpu") == torch.device("cpu")


@no_cuda
def test_job_device_prints_one_line_and_exits(tmp_path, capfd):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as stop:
        devices.job_device("cuda:0", log)
    assert stop.value.code == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "config key 'device': device 'cuda:0' is not available on host")
    assert log.read_text().strip() == err[0]
    assert devices.job_device("auto", log) == "cpu"


# ----------------------------------------------------------------------------- the workflow

ROOT = Path(__file__).resolve().parents[1]
TINY = "configs/ci-tiny.yaml"
TRAIN = "results/models/digits-n60/resnet-d{}-w{}/s{}/metrics.json"


def snakemake(workdir, *args, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", *args, "--configfile", TINY]  # last: it takes several values
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


@pytest.mark.workflow
@no_cuda
def test_absent_gpu_stops_the_job_with_one_line_but_plans(tmp_path):
    """`device: cuda` still plans on a host without CUDA (a submit host often has none); the
    training job then stops at its start with one line on the console and in its log."""
    workdir = copy_workflow(tmp_path)
    target = TRAIN.format(8, 1, 0)
    dry = snakemake(workdir, "-n", target, "--config", "device=cuda")
    assert dry.returncode == 0, dry.stderr[-3000:]
    run = snakemake(workdir, target, "--cores", "1", "--config", "device=cuda")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    lines = [line for line in out.splitlines() if "config key 'device'" in line]
    assert len(lines) == 1 and "device 'cuda' is not available on host" in lines[0], out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    log = workdir / target.replace("metrics.json", "train.log")
    assert log.read_text().strip() == lines[0].strip()


@pytest.mark.workflow
def test_gpu_slots_bound_concurrent_gpu_jobs(tmp_path):
    """Four training jobs ready at once, eight cores: `--resources gpu_slots=2` runs exactly two
    at a time (device auto asks for a GPU slot; on this CPU machine the jobs then run on the CPU)."""
    workdir = copy_workflow(tmp_path)
    targets = [TRAIN.format(d, w, 0) for d in (8, 14) for w in (1, 2)]
    run = snakemake(workdir, *targets, "--cores", "8", "--resources", "gpu_slots=2",
                    "--set-threads", "train_model=1", "--config", "device=auto")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "gpu_slots=1" in out  # every training job asks for one slot
    running, most, in_train_block = set(), 0, False
    for line in out.splitlines():  # a job's block starts "rule <name>:" and names its "jobid: N"
        if re.match(r"\s*(local)?rule \w+:", line):
            in_train_block = line.strip().endswith("rule train_model:")
        elif (m := re.match(r"\s*jobid: (\d+)$", line)) and in_train_block:
            running.add(m.group(1))
            most = max(most, len(running))
        elif m := re.search(r"Finished jobid: (\d+)", line):
            running.discard(m.group(1))
    assert most == 2, out[-3000:]
