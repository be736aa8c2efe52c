"""Atomic outputs: every artifact is written to a temporary sibling and renamed into place.

A job killed midway then leaves at most a `.tmp-<pid>-*` (or, between the two renames that replace
a directory, an `.old-<pid>`) sibling behind, never a half-written file or store under the real
name that downstream rules would trust; the next write of that path removes such leftovers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_stale_siblings(path: Path) -> None:
    """Remove `.{name}.tmp-<pid>-*` / `.{name}.old-<pid>` left by a killed writer of `path` (its
    pid no longer runs); a live writer's siblings are left alone."""
    for sibling in path.parent.glob(f".{path.name}.*-*"):
        kind, _, rest = sibling.name[len(path.name) + 2 :].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("tmp", "old") and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _remove(sibling)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling path; on success rename it to `path` (file or directory).

    The caller creates whatever it likes at the yielded path. On an exception the temporary is
    removed and `path` is left as it was. Siblings carry the writer's pid, so temporaries of a
    killed earlier writer (SIGKILL runs no cleanup) are removed by the next write of `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    tmp.rmdir()  # only the unique name is wanted; the caller creates file or directory
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # os.replace cannot overwrite a non-empty directory: move the old one aside first.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def write_netcdf(obj, path) -> None:
    """Write an xarray Dataset or DataArray to netCDF atomically."""
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp)
