"""One way to pin compute threads: BLAS (via threadpoolctl) and torch intra-op threads.

Many small products run far faster on one thread than on several contending for busy cores
(OpenMP threads wait for each other), and Dask workers must not each start a full BLAS pool:
every library function that takes `threads` runs its work inside `pinned_threads(threads)`.
"""

from __future__ import annotations

import contextlib
import sys

from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def pinned_threads(n: int | None):
    """Limit BLAS and torch intra-op threads to `n` for the block, restoring them afterwards;
    None or 0 leaves them alone. torch is pinned only if already imported: a NumPy-only caller
    does not pay torch's import."""
    if not n:
        yield
        return
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(int(n))
    try:
        with threadpool_limits(limits=int(n)):
            yield
    finally:
        if torch:
            torch.set_num_threads(old)
