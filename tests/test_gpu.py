"""The library on CUDA: every entry point agrees with the CPU, and loops do not wait on the GPU.

Marked `gpu` and skipped without CUDA (CI has none): `pytest -m gpu` on a GPU machine, e.g. via
bench/gpu_check.sh. TF32 is switched off here so that CUDA and CPU differ only in summation order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from entry_points import CASES, TOLERANCE

from repatlas import cka, cka_models, devices, models, train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(autouse=True)
def exact_float32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("name", CASES)
def test_entry_point_on_cuda_matches_cpu(name):
    expected = CASES[name]("cpu")
    got = CASES[name]("cuda")
    rtol, atol = TOLERANCE[name]
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key], dtype=float), np.asarray(expected[key], dtype=float),
                                   rtol=rtol, atol=atol, err_msg=f"{name}: {key}")


def test_cka_accumulates_on_the_gpu():
    torch.manual_seed(0)
    acts = [torch.randn(16, p, device="cuda") for p in (4, 9)]
    mb = cka.MinibatchCKA(2)
    mb.update(acts)
    assert mb.cross.is_cuda and mb.cross.dtype == torch.float64


def _syncs(fn) -> int:
    """Number of synchronising CUDA calls `fn` makes (torch's sync debug mode, as warnings)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _train(n):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = (rng.integers(0, 60, size=(n, 1, 6, 6)) + 60 * y[:, None, None, None]).astype(np.uint8)
    torch.manual_seed(0)
    config = train.TrainConfig(epochs=2, batch_size=8, lr=0.05, crop_pad=1, flip=True)
    train.train(models.mlp(1, 8, in_features=36, n_classes=3), (x, y), (x[:16], y[:16]), mean=[0.5],
                std=[0.3], config=config, device="cuda", progress=False, log=lambda s: None)


def _cka(n):
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=3).cuda()
    cka_models.cka_heatmap(model, torch.randn(n, 1, 8, 8, device="cuda"), batch_size=8, epochs=2)


@pytest.mark.parametrize("loop", [_train, _cka], ids=["train", "cka_heatmap"])
def test_no_synchronisation_per_step(loop):
    loop(24)  # warm-up: one-time allocations and library handles
    assert _syncs(lambda: loop(24)) == _syncs(lambda: loop(96))  # 3 vs 12 steps per epoch


def test_cuda_graph_training_matches_eager():
    """train.compile: reduce-overhead (CUDA graphs) trains the same model as eager, within bf16 noise."""
    rng = np.random.default_rng(0)
    y = np.arange(64) % 3
    x = (rng.integers(0, 60, size=(64, 1, 6, 6)) + 60 * y[:, None, None, None]).astype(np.uint8)
    hist = {}
    for mode in (False, "reduce-overhead"):
        torch.manual_seed(0)
        config = train.TrainConfig(epochs=3, batch_size=16, lr=0.05, compile=mode)
        hist[mode] = train.train(models.mlp(1, 16, in_features=36, n_classes=3), (x, y), (x, y), mean=[0.5],
                                 std=[0.3], config=config, device="cuda", progress=False, log=lambda s: None)
    for a, b in zip(hist[False], hist["reduce-overhead"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=2e-2)


def test_absent_gpu_index_is_one_clear_error():
    count = torch.cuda.device_count()
    assert devices.resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(devices.DeviceUnavailable, match=f"only {count} CUDA device"):
        devices.resolve_device(f"cuda:{count}")
