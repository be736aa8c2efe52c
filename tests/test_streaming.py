"""Activation stores and CKA streamed from them, against in-memory computation."""

import numpy as np
import pytest
import torch
import xarray as xr

from repatlas import activations, cka, cka_stores, models


@pytest.fixture
def store(tmp_path):
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    images = np.random.default_rng(0).integers(0, 256, size=(50, 1, 8, 8), dtype=np.uint8)
    path = tmp_path / "acts.zarr"
    layers = activations.dump_activations(
        model, images, np.arange(50) % 10, np.arange(50), path, mean=[0.5], std=[0.25],
        layers=models.representation_layers(model), batch_size=10, attrs={"model": "test"},
    )
    return path, model, images, layers


def test_store_is_plain_xarray_and_matches_forward(store):
    path, model, images, layers = store
    assert layers == ["stem", "block1", "block2", "block3", "pool"]
    ds = xr.open_zarr(path)
    assert ds.attrs["layers"] == layers and ds.attrs["model"] == "test"
    assert ds["pool"].dims == ("example", "unit_pool") and ds["pool"].shape == (50, 64)
    assert ds["stem"].shape == (50, 16 * 8 * 8)
    assert ds["block1"].encoding["chunks"] == (10, 16 * 8 * 8)
    x = (torch.as_tensor(images).float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        expected = model[:-1](x).numpy()  # everything up to the classifier = pool output
    np.testing.assert_allclose(ds["pool"].values, expected, rtol=1e-5, atol=1e-6)


def test_streamed_cka_equals_in_memory_minibatch(store):
    path, *_ = store
    arrays = activations.layer_arrays(path)
    data = {k: np.asarray(v[:]) for k, v in arrays.items()}
    mb = cka.MinibatchCKA(len(data))
    for s in range(0, 50, 10):
        mb.update([v[s : s + 10] for v in data.values()])
    for threads, window in ((1, 1), (2, 2), (2, 8)):
        da = cka_stores.cka_from_stores(path, batch_size=10, threads=threads, window=window)
        assert list(da.layer_a.values) == list(data)
        np.testing.assert_allclose(da.values, mb.compute(), rtol=1e-10)


def test_streamed_cross_store_and_shuffled_epochs(store, tmp_path):
    path, *_ = store
    da = cka_stores.cka_from_stores(path, path, layers_a=["stem", "pool"], layers_b=["block2"], batch_size=10)
    full = cka_stores.cka_from_stores(path, batch_size=10)
    np.testing.assert_allclose(da.values, full.sel(layer_a=["stem", "pool"], layer_b=["block2"]).values)
    shuffled = cka_stores.cka_from_stores(path, batch_size=10, epochs=3, seed=1, window=3)
    again = cka_stores.cka_from_stores(path, batch_size=10, epochs=3, seed=1, window=3)
    np.testing.assert_array_equal(shuffled.values, again.values)
    assert not np.allclose(shuffled.values, full.values)  # other batch compositions
    assert np.abs(shuffled.values - full.values).max() < 0.2  # estimating the same quantity


def test_streaming_bad_input(store):
    path, *_ = store
    with pytest.raises(KeyError, match="unknown layer"):
        cka_stores.cka_from_stores(path, layers_a=["nope"])
    with pytest.raises(ValueError, match="batch_size"):
        cka_stores.cka_from_stores(path, batch_size=3)
    with pytest.raises(FileNotFoundError, match="no such activation store"):
        cka_stores.cka_from_stores(path.with_name("missing.zarr"))


def test_batch_plan_covers_every_example_once():
    rng = np.random.default_rng(0)
    for shuffle in (False, True):
        plan = cka_stores.batch_plan(103, 10, 20, shuffle=shuffle, rng=rng, window=2)
        seen = np.concatenate([b for window in plan for b in window])
        assert sorted(seen.tolist()) == list(range(103))
        assert min(len(b) for window in plan for b in window) >= cka.MIN_BATCH


def test_hooks_keep_repeated_calls():
    shared = torch.nn.Linear(3, 3)
    model = torch.nn.Sequential()
    model.add_module("f", shared)

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = shared

        def forward(self, x):
            return self.f(self.f(x))

    net = Twice()
    with activations.LayerCapture(net, ["f"]) as cap:
        net(torch.randn(5, 3))
        out = cap.pop()
    assert list(out) == ["f", "f@1"]
    with pytest.raises(KeyError, match="unknown layer"):
        activations.LayerCapture(net, ["g"])


def test_shuffled_window_reads_only_its_chunks(store, monkeypatch):
    """A window of non-adjacent chunks must not read the examples between them."""
    path, *_ = store
    arrays = activations.layer_arrays(path)
    batches = [np.array([0, 1, 2, 3, 40, 41, 42]), np.array([4, 43, 44, 45, 46])]

    class Recorder:
        def __init__(self, arr):
            self.arr, self.read = arr, 0

        def __getitem__(self, key):
            out = self.arr[key]
            self.read += len(out)
            return out

    rec = [Recorder(a) for a in arrays.values()]
    cross, self_a, _, count = cka_stores._window_terms(rec, None, batches, list(arrays), None)
    assert all(r.read == 12 for r in rec)  # 5 + 7 rows, not the 47-row span
    data = {k: np.asarray(v[:]) for k, v in arrays.items()}
    mb = cka.MinibatchCKA(len(data))
    for b in batches:
        mb.update([v[b] for v in data.values()])
    np.testing.assert_allclose(cross.numpy(), mb.cross.numpy(), rtol=1e-12)
    assert count == 2


def test_float16_store_halves_storage_and_keeps_cka(tmp_path):
    torch.manual_seed(0)
    model = models.resnet(8, 2, in_channels=1, n_classes=10)
    images = np.random.default_rng(0).integers(0, 256, size=(60, 1, 8, 8), dtype=np.uint8)
    kw = dict(mean=[0.5], std=[0.25], layers=models.representation_layers(model), batch_size=20)
    full, half = tmp_path / "f32.zarr", tmp_path / "f16.zarr"
    activations.dump_activations(model, images, np.zeros(60), np.arange(60), full, **kw)
    activations.dump_activations(model, images, np.zeros(60), np.arange(60), half, dtype="float16", **kw)
    assert xr.open_zarr(half)["block1"].dtype == np.float16
    # half the raw bytes per layer (compressed sizes vary, so compare the arrays' nbytes)
    assert xr.open_zarr(half)["block1"].nbytes * 2 == xr.open_zarr(full)["block1"].nbytes
    a = cka_stores.cka_from_stores(full, batch_size=20).values
    b = cka_stores.cka_from_stores(half, batch_size=20).values
    assert np.abs(a - b).max() < 1e-3
    with pytest.raises(ValueError, match="dtype"):
        activations.dump_activations(model, images, np.zeros(60), np.arange(60), tmp_path / "x.zarr",
                                     dtype="int8", **kw)


@pytest.mark.parametrize("compressor", ["lz4", "none"])
def test_compressors_store_the_same_values(tmp_path, compressor):
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    images = np.random.default_rng(1).integers(0, 256, size=(30, 1, 8, 8), dtype=np.uint8)
    kw = dict(mean=[0.5], std=[0.25], layers=models.representation_layers(model), batch_size=10)
    ref, other = tmp_path / "zstd.zarr", tmp_path / f"{compressor}.zarr"
    activations.dump_activations(model, images, np.zeros(30), np.arange(30), ref, **kw)
    activations.dump_activations(model, images, np.zeros(30), np.arange(30), other, compressor=compressor,
                                 **kw)
    for layer in kw["layers"]:
        np.testing.assert_array_equal(xr.open_zarr(ref)[layer].values, xr.open_zarr(other)[layer].values)
    codecs = xr.open_zarr(other)["stem"].encoding.get("compressors", ())
    assert (len(codecs) == 0) == (compressor == "none")
    with pytest.raises(ValueError, match="compressor"):
        activations.dump_activations(model, images, np.zeros(30), np.arange(30), tmp_path / "x.zarr",
                                     compressor="gzip", **kw)
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_read_rows_equals_zarr(tmp_path, dtype):
    """Uncompressed stores are read from their chunk files directly; every range equals zarr's."""
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    # last chunk partial
    images = np.random.default_rng(2).integers(0, 256, size=(47, 1, 8, 8), dtype=np.uint8)
    kw = dict(mean=[0.5], std=[0.25], layers=models.representation_layers(model), batch_size=10, dtype=dtype)
    raw, packed = tmp_path / "raw.zarr", tmp_path / "zstd.zarr"
    activations.dump_activations(model, images, np.zeros(47), np.arange(47), raw, compressor="none", **kw)
    activations.dump_activations(model, images, np.zeros(47), np.arange(47), packed, **kw)
    for layer, array in activations.layer_arrays(raw).items():
        assert activations._raw_chunk_dir(array) is not None  # the direct path is taken
        zstd = activations.layer_arrays(packed)[layer]
        assert activations._raw_chunk_dir(zstd) is None  # compressed: through zarr
        for start, stop in ((0, 47), (0, 10), (3, 4), (9, 31), (40, 47), (45, 47), (12, 12)):
            got = activations.read_rows(array, start, stop)
            assert got.dtype == np.dtype(dtype) and got.shape == (stop - start, array.shape[1])
            np.testing.assert_array_equal(got, np.asarray(array[start:stop]))
            np.testing.assert_array_equal(activations.read_rows(zstd, start, stop), got)
    # streamed CKA reads the same values from both stores
    np.testing.assert_array_equal(cka_stores.cka_from_stores(raw, batch_size=10).values,
                                  cka_stores.cka_from_stores(packed, batch_size=10).values)
    # a missing chunk file is zarr's business (fill value), not a short read
    stem = activations.layer_arrays(raw)["stem"]
    chunk_file = raw / "stem" / "c" / "2" / "0"
    chunk_file.unlink()
    np.testing.assert_array_equal(activations.read_rows(stem, 15, 35), np.asarray(stem[15:35]))
    assert (activations.read_rows(stem, 20, 30) == 0).all()


def test_scheduler_gives_the_same_cka_as_local_threads(store):
    """cka.scheduler: the windows run on a dask-distributed cluster's workers, same result."""
    distributed = pytest.importorskip("distributed")
    path, *_ = store
    local = cka_stores.cka_from_stores(path, batch_size=10, threads=2, window=2, epochs=2, seed=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = cka_stores.cka_from_stores(path, batch_size=10, window=2, epochs=2, seed=3,
                                     scheduler=cluster.scheduler_address)
        cross = cka_stores.cka_from_stores(path, path, layers_a=["stem"], layers_b=["pool", "block1"],
                                           batch_size=10, scheduler=cluster.scheduler_address)
    np.testing.assert_array_equal(remote.values, local.values)
    np.testing.assert_array_equal(cross.values, cka_stores.cka_from_stores(
        path, path, layers_a=["stem"], layers_b=["pool", "block1"], batch_size=10).values)
    with pytest.raises(OSError, match="cka.scheduler.*127.0.0.1:9"):  # nothing listens there
        cka_stores._compute_on_scheduler("tcp://127.0.0.1:9", [], timeout="1s")
