"""Atomic outputs: every artifact is written to a temporary sibling and renamed into place.

A job killed midway then leaves at most a `.tmp-*` sibling behind, never a half-written file or
store under the real name that downstream rules would trust.
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling path; on success rename it to `path` (file or directory).

    The caller creates whatever it likes at the yielded path. On an exception the temporary is
    removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
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
