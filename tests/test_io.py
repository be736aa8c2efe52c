import os
import subprocess
import sys

import pytest

from repatlas.io import atomic_path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_replaces_a_directory_and_leaves_no_sibling(tmp_path):
    path = tmp_path / "acts.zarr"
    for run in (1, 2):
        with atomic_path(path) as tmp:
            tmp.mkdir()
            (tmp / "value").write_text(str(run))
    assert (path / "value").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acts.zarr"]


def test_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    """SIGKILL between the two renames that replace a directory leaves no store and an .old-<pid>."""
    path = tmp_path / "acts.zarr"
    gone = dead_pid()
    (tmp_path / f".acts.zarr.old-{gone}").mkdir()  # the previous store, moved aside
    (tmp_path / f".acts.zarr.tmp-{gone}-abc123").mkdir()  # a half-written one
    live = tmp_path / f".acts.zarr.tmp-{os.getppid()}-def456"  # another, still running writer's
    live.mkdir()
    unrelated = tmp_path / ".acts.zarr.notes-1"
    unrelated.write_text("mine")
    with atomic_path(path) as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["acts.zarr", live.name, unrelated.name])


def test_failure_keeps_the_old_output(tmp_path):
    path = tmp_path / "x.nc"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]
