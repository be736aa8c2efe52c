"""Failures a user meets at run time: one line naming the file and what to do, the traceback in the log.

Covers repatlas.joblog (every script's stderr and uncaught errors), damaged activation stores
(library reads and `repatlas info --verify`), and a dataset folder without its files, run through
snakemake.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from workflow_copy import copy_workflow

from repatlas import activations, blocks, cka_models, cka_stores, cli, models

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- job logs


def run_job(tmp_path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run `body` as a script that starts like every pipeline script; return (process, log text)."""
    log = tmp_path / "job.log"
    script = tmp_path / "job.py"
    script.write_text(f"import sys\nfrom repatlas.joblog import log_to\nlog_to({str(log)!r})\n"
                      + textwrap.dedent(body))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    return result, log.read_text()


def test_uncaught_error_is_one_console_line_and_a_traceback_in_the_log(tmp_path):
    result, log = run_job(tmp_path, """
        from repatlas.data import load_npz
        print("started", file=sys.stderr)
        load_npz("results/data/nope/full.npz")
    """)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("repatlas: DataError: results/data/nope/full.npz: no such file")
    assert lines[0].endswith(f"[traceback: {tmp_path / 'job.log'}]")
    assert log.startswith("started\n") and "Traceback (most recent call last)" in log and "load_npz" in log


def test_multiline_messages_become_one_line(tmp_path):
    result, _ = run_job(tmp_path, 'raise RuntimeError("first\\nsecond")')
    assert result.stderr.splitlines() == [
        f"repatlas: RuntimeError: first second [traceback: {tmp_path / 'job.log'}]"]


def test_log_shared_with_a_second_writer_keeps_both(tmp_path):
    """Training appends its own lines to the log its job's stderr goes to: nothing is overwritten."""
    result, log = run_job(tmp_path, f"""
        print("one", file=sys.stderr)
        with open({str(tmp_path / 'job.log')!r}, "a") as other:
            print("two", file=other, flush=True)
            print("three", file=sys.stderr)
            print("four", file=other, flush=True)
        print("five", file=sys.stderr)
    """)
    assert result.returncode == 0 and result.stderr == ""
    assert log.split() == ["one", "two", "three", "four", "five"]


def test_every_script_logs_through_log_to():
    """Each script's first statement after its imports sends stderr to the rule's log."""
    for script in sorted((ROOT / "scripts").glob("*.py")):
        body = [node for node in ast.parse(script.read_text()).body
                if not isinstance(node, (ast.Import, ast.ImportFrom))]
        assert ast.unparse(body[0]) == "log_to(snakemake.log[0])", script.name
        assert "sys.stderr =" not in script.read_text(), script.name


# ----------------------------------------------------------------------------- damaged stores


@pytest.fixture(params=["zstd", "none"])
def store(tmp_path, request):
    torch.manual_seed(0)
    model = models.mlp(2, 12, in_features=64, n_classes=10)
    images = np.random.default_rng(0).integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
    path = tmp_path / "acts.zarr"
    activations.dump_activations(model, images, np.arange(40) % 10, np.arange(40), path, mean=[0.5],
                                 std=[0.25], layers=["layer1", "layer2"], batch_size=8,
                                 compressor=request.param)
    return path, request.param


def damage(path: Path, layer: str, chunk: int, compressor: str) -> Path:
    """Overwrite part of a compressed chunk (the codec fails) or truncate a raw one (wrong size)."""
    file = path / layer / "c" / str(chunk) / "0"
    data = bytearray(file.read_bytes())
    if compressor == "none":
        file.write_bytes(bytes(data[:-5]))
    else:
        data[20:40] = b"\xff" * 20
        file.write_bytes(bytes(data))
    return file


def test_damaged_chunk_names_store_layer_chunk_and_what_to_do(store):
    path, compressor = store
    arrays = activations.layer_arrays(path)
    intact = activations.read_rows(arrays["layer2"], 0, 40)
    file = damage(path, "layer2", 2, compressor)
    arrays = activations.layer_arrays(path)
    np.testing.assert_array_equal(activations.read_rows(arrays["layer2"], 0, 16), intact[:16])  # chunks 0, 1
    for read in (lambda: activations.read_rows(arrays["layer2"], 8, 32),
                 lambda: cka_stores.cka_from_stores(path, batch_size=8),
                 lambda: blocks.first_pc_analysis(path)):
        with pytest.raises(activations.DamagedStoreError) as info:
            read()
        message = str(info.value)
        assert f"{path}: layer 'layer2', chunk 2 (examples 16-23, file {file})" in message, message
        assert f"delete it (rm -r {path}) and rerun snakemake" in message and "\n" not in message


def test_info_verify_lists_damaged_chunks(store, capsys):
    path, compressor = store
    assert cli.main(["info", str(path), "--verify"]) == 0
    assert '"damaged": []' in capsys.readouterr().out
    damage(path, "layer1", 4, compressor)
    assert cli.main(["info", str(path), "--verify"]) == 1
    out, err = capsys.readouterr()
    assert '"chunk": 4' in out and "layer 'layer1', chunk 4" in out
    assert err.splitlines() == [f"repatlas info: {path}: 1 of 12 chunks cannot be read "
                                "(listed under verify.damaged); "
                                f"delete the store (rm -r {path}) and rerun snakemake, which writes it again"]
    assert cli.main(["info", str(path)]) == 0  # without --verify nothing is read


def test_probe_set_smaller_than_two_batches_warns_and_records_batch_size(store):
    path, _ = store
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = cka_stores.cka_from_stores(path, batch_size=20)  # 40 examples: two batches, no warning
    assert full.attrs["batch_size"] == 20 and full.attrs["n_batches"] == 2
    with pytest.warns(UserWarning, match="from 40 examples with batch_size 120: fewer than two batches"):
        one = cka_stores.cka_from_stores(path, batch_size=120)
    assert one.attrs["batch_size"] == 40 and one.attrs["n_batches"] == 1  # what was used, not what was asked
    model = models.mlp(1, 8, in_features=10, n_classes=3)
    with pytest.warns(UserWarning, match="from 30 examples with batch_size 120"):
        in_memory = cka_models.cka_heatmap(model, torch.randn(30, 10), batch_size=120)
    assert in_memory.attrs["batch_size"] == 30 and in_memory.attrs["n_batches"] == 1


# ----------------------------------------------------------------------------- through snakemake


@pytest.mark.workflow
def test_dataset_folder_without_files_is_one_line_on_the_console(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    empty = tmp_path / "no-data"
    empty.mkdir()
    target = "results/data/fashion_mnist/full.npz"
    result = subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "1", "--config",
                             "dataset=fashion_mnist", f"data_dir={empty}"],
                            cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("repatlas: ")]
    assert len(ours) == 1, result.stderr[-3000:]
    assert f"{empty}" in ours[0] and "dataset-fashion-mnist" in ours[0], ours[0]
    log = workdir / "results/logs/data/fashion_mnist/full.log"
    assert "Traceback (most recent call last)" in log.read_text()
