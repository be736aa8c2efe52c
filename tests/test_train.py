import numpy as np
import pytest
import torch

from repatlas import models, train


def tiny_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = (rng.integers(0, 60, size=(n, 1, 6, 6)) + 60 * y[:, None, None, None]).astype(np.uint8)
    return x, y


def run(seed=0, epochs=3, **cfg):
    torch.manual_seed(seed)
    model = models.mlp(1, 16, in_features=36, n_classes=3)
    x, y = tiny_data()
    config = train.TrainConfig(epochs=epochs, batch_size=16, lr=0.05, seed=seed, **cfg)
    hist = train.train(model, (x, y), (x, y), mean=[0.5], std=[0.3], config=config,
                       device="cpu", progress=False, log=lambda s: None)
    return model, hist


def test_training_learns_and_records_every_epoch():
    model, hist = run(epochs=10)
    assert [h["epoch"] for h in hist] == list(range(1, 11))
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_acc"] > 0.9  # the classes are separable by brightness
    assert hist[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine reaches zero at the end


def test_training_is_deterministic_per_seed():
    a, ha = run(seed=1, crop_pad=1, flip=True)
    b, hb = run(seed=1, crop_pad=1, flip=True)
    c, _ = run(seed=2, crop_pad=1, flip=True)
    def without_time(hist):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in hist]

    assert without_time(ha) == without_time(hb)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), k
    assert not torch.equal(a.layer1[0].weight, c.layer1[0].weight)


def test_augment_crops_and_flips():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    out = train.augment(padded, 1, False, gen)
    assert out.shape == x.shape
    # every crop is a contiguous 4×4 window of the padded image
    windows = [padded[:, :, i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
    for b in range(2):
        assert any(torch.equal(out[b], w[b]) for w in windows)
    flipped = train.augment(x, 0, True, torch.Generator().manual_seed(3))
    for b in range(2):
        assert torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(2))


def test_divergence_names_epoch():
    model = models.mlp(1, 16, in_features=36, n_classes=3)
    with torch.no_grad():
        model.layer1[0].weight.fill_(float("nan"))
    x, y = tiny_data()
    with pytest.raises(train.TrainingDiverged, match="epoch 1"):
        train.train(model, (x, y), (x, y), mean=[0.5], std=[0.3], config=train.TrainConfig(epochs=2),
                    device="cpu", progress=False, log=lambda s: None)


def test_checkpoint_roundtrip(tmp_path):
    model = models.resnet(8, 1, in_channels=1, n_classes=10)
    spec = {"arch": "resnet", "depth": 8, "width": 1, "input_shape": [1, 8, 8], "n_classes": 10}
    train.save_checkpoint(tmp_path / "model.pt", model, spec)
    loaded, spec2, _ = train.load_checkpoint(tmp_path / "model.pt")
    assert spec2 == spec
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), loaded(x))
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt: not a readable repatlas checkpoint"):
        train.load_checkpoint(tmp_path / "bad.pt")
