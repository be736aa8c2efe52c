"""Test-wide settings."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from workflow_copy import copy_workflow

# Tiny test workloads run fastest single-threaded; on a busy 2-core machine idle OpenMP threads
# spin and slow tests down more than tenfold. Tests that need threads set them explicitly.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """configs/ci-tiny.yaml run locally (`--cores 2`) in a copy of the workflow: (workdir, result).

    Session-wide: test_workflow.py checks its artifacts, test_slurm.py compares the cluster runs'
    outputs with it, and it runs once.
    """
    workdir = copy_workflow(tmp_path_factory.mktemp("ci-tiny"))
    cmd = [sys.executable, "-m", "snakemake", "--configfile",
           str(Path(__file__).resolve().parents[1] / "configs" / "ci-tiny.yaml"), "--cores", "2"]
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, result


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """(training subset of 100 digits, full digits file), for the train_to_files tests. test_mitosis.py
    has its own fixture of this name (its files in the other order)."""
    from repatlas.steps import data as data_steps

    d = tmp_path_factory.mktemp("digits")
    data_steps.write_full("digits", d / "full.npz")
    data_steps.write_subset(d / "full.npz", d / "sub.npz", 100, 0)
    return d / "sub.npz", d / "full.npz"
