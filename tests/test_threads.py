import numpy  # noqa: F401  (loads NumPy's BLAS, a pool to pin)
import torch
from threadpoolctl import threadpool_info

from repatlas.threads import pinned_threads


def blas_threads():
    return {pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()}


def test_pins_torch_and_blas_and_restores_them():
    torch.set_num_threads(2)
    before = blas_threads()
    assert before  # at least NumPy's BLAS: the checks below are not vacuous
    try:
        with pinned_threads(1):
            assert torch.get_num_threads() == 1
            assert all(n == 1 for n in blas_threads().values())
        assert torch.get_num_threads() == 2 and blas_threads() == before
        with pinned_threads(None):  # None and 0 leave everything alone
            assert torch.get_num_threads() == 2 and blas_threads() == before
        with pinned_threads(0):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # conftest's setting for the rest of the tests
