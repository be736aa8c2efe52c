import numpy as np
import pytest
import torch

from repatlas import checkpoints, models, train
from repatlas.steps import train as train_steps


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


def test_eval_every_skips_test_evaluation_but_not_the_last_epoch():
    every, hist_every = run(epochs=5)
    sparse, hist_sparse = run(epochs=5, eval_every=2)
    assert ([h["test_acc"] is None for h in hist_sparse]
            == [False if e in (2, 4, 5) else True for e in range(1, 6)])
    # evaluation has no side effect on training: the same weights and test results where evaluated
    for p, q in zip(every.state_dict().values(), sparse.state_dict().values()):
        assert torch.equal(p, q)
    for a, b in zip(hist_every, hist_sparse):
        if b["test_acc"] is not None:
            assert (a["test_acc"], a["test_loss"]) == (b["test_acc"], b["test_loss"])
    assert "not evaluated" in train._epoch_line(hist_sparse[0], 5)


@pytest.mark.parametrize("mode", [True, "reduce-overhead"])
def test_compiled_training_matches_eager(mode):
    """train.compile runs the same computation through torch.compile (inductor, C++ on CPU;
    reduce-overhead's CUDA graphs apply on CUDA only, tests/test_gpu.py)."""
    eager, hist_eager = run(epochs=2)
    compiled, hist_compiled = run(epochs=2, compile=mode)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # the plain module is trained and saved
    for p, q in zip(eager.state_dict().values(), compiled.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    for a, b in zip(hist_eager, hist_compiled):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["test_acc"] == a["test_acc"]


def test_unknown_compile_mode_is_refused():
    with pytest.raises(ValueError, match="compile must be false, true or one of"):
        run(epochs=1, compile="fastest")


def test_epoch_time_counts_training_only():
    _, hist = run(epochs=2)
    assert all(h["seconds"] > 0 and h["eval_seconds"] > 0 for h in hist)


def test_training_is_deterministic_per_seed():
    a, ha = run(seed=1, crop_pad=1, flip=True)
    b, hb = run(seed=1, crop_pad=1, flip=True)
    c, _ = run(seed=2, crop_pad=1, flip=True)
    def without_time(hist):
        return [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in hist]

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


def test_augment_of_an_epoch_order_crops_and_flips_each_sample():
    """With `index`, sample b of the output is a crop of x[index[b]], flipped or not, and both
    choices occur; one gather does both."""
    x = torch.arange(6 * 2 * 5 * 5, dtype=torch.float32).reshape(6, 2, 5, 5)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    index = torch.tensor([4, 0, 5, 5, 2, 1])
    out = train.augment(padded, 1, True, torch.Generator().manual_seed(1), index=index)
    assert out.shape == (6, 2, 5, 5)
    flips = []
    for b, i in enumerate(index.tolist()):
        windows = [padded[i, :, r : r + 5, c : c + 5] for r in range(3) for c in range(3)]
        plain = any(torch.equal(out[b], w) for w in windows)
        flipped = any(torch.equal(out[b], w.flip(2)) for w in windows)
        assert plain or flipped
        flips.append(flipped and not plain)
    assert any(flips) and not all(flips)
    assert torch.equal(train.augment(x, 0, False, torch.Generator(), index=index), x[index])


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
    checkpoints.save_checkpoint(tmp_path / "model.pt", model, spec)
    loaded, spec2, _ = checkpoints.load_checkpoint(tmp_path / "model.pt")
    assert spec2 == spec
    x = torch.randn(3, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), loaded(x))
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.pt: not a readable repatlas checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "bad.pt")


# ----------------------------------------------------------------------------- resumable training


class Interrupted(Exception):
    """Stands in for a kill: raised from the log callback while an epoch is being reported."""


def resnet_run(tmp_path, *, epochs=4, stop_at=None, checkpoint="state.pt", seed=3, lines=None, **cfg):
    """Train a small ResNet (BatchNorm buffers, crop + flip from the generator) on tiny data.

    `stop_at=k` interrupts while epoch k is being logged, i.e. after the state of epoch k - 1 was saved.
    """
    torch.manual_seed(seed)
    model = models.resnet(8, 1, in_channels=1, n_classes=3)
    x, y = tiny_data()
    cfg = {"batch_size": 16, "lr": 0.05, "crop_pad": 1, "flip": True, **cfg}
    config = train.TrainConfig(epochs=epochs, seed=seed, **cfg)
    lines = [] if lines is None else lines

    def log(line):
        lines.append(line)
        if stop_at is not None and line.startswith(f"epoch {stop_at}/"):
            raise Interrupted

    hist = train.train(model, (x, y), (x, y), mean=[0.5], std=[0.3], config=config, device="cpu",
                       progress=False, log=log, job={"test": "resnet_run"},
                       checkpoint=None if checkpoint is None else tmp_path / checkpoint)
    return model, hist, lines


def without_time(hist):
    return [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in hist]


_REFERENCES = {}


def reference_run(epochs=4, **cfg):
    """An uninterrupted run without checkpoint (cached: several tests compare against it)."""
    key = (epochs, tuple(sorted(cfg.items())))
    if key not in _REFERENCES:
        model, hist, _ = resnet_run(None, epochs=epochs, checkpoint=None, **cfg)
        _REFERENCES[key] = model, without_time(hist)
    return _REFERENCES[key]


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_resumed_training_is_bit_identical(tmp_path):
    reference, ref_hist = reference_run()
    with pytest.raises(Interrupted):
        resnet_run(tmp_path, stop_at=3)
    state = checkpoints.load_training_state(tmp_path / "state.pt")
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    resumed, hist, lines = resnet_run(tmp_path)
    assert any("resuming from checkpoint" in line and "2 of 4 epochs done" in line for line in lines)
    assert without_time(hist) == ref_hist
    assert_same_weights(resumed, reference)


def test_resume_needs_the_generator_state(tmp_path):
    """The bit-identity above is not luck: resuming with the generator reset changes the result."""
    _, ref_hist = reference_run()
    with pytest.raises(Interrupted):
        resnet_run(tmp_path, stop_at=3)
    state = checkpoints.load_training_state(tmp_path / "state.pt")
    state["generator"] = torch.Generator().manual_seed(3).get_state()
    torch.save(state, tmp_path / "state.pt")
    resumed, hist, lines = resnet_run(tmp_path)
    assert any("resuming" in line for line in lines)
    assert without_time(hist)[:2] == ref_hist[:2]
    assert without_time(hist)[2:] != ref_hist[2:]


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    with pytest.raises(Interrupted):
        resnet_run(tmp_path, stop_at=3)
    _, fresh_hist = reference_run(lr=0.02)
    _, hist, lines = resnet_run(tmp_path, lr=0.02)
    ignored = [line for line in lines if "ignoring checkpoint" in line]
    assert ignored and "train_config.lr: 0.05 → 0.02" in ignored[0] and "starting fresh" in ignored[0]
    assert not any("resuming" in line for line in lines)
    assert without_time(hist) == fresh_hist


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


class _Code:  # torch.load(weights_only=True) must refuse to rebuild this
    pass


CORRUPTIONS = {
    "garbage": lambda p: p.write_bytes(b"not a checkpoint"),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": _truncate,
    "code object": lambda p: torch.save({"format": 1, "x": _Code()}, p),
    "other format": lambda p: torch.save({"format": 99}, p),
    "missing keys": lambda p: torch.save({"format": 1, "epoch": 2}, p),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_checkpoint_is_reported_and_training_starts_fresh(tmp_path, corruption):
    _, fresh_hist = reference_run(epochs=2)
    with pytest.raises(Interrupted):
        resnet_run(tmp_path, epochs=2, stop_at=2)
    CORRUPTIONS[corruption](tmp_path / "state.pt")
    with pytest.raises(ValueError, match="state.pt: "):
        checkpoints.load_training_state(tmp_path / "state.pt")
    _, hist, lines = resnet_run(tmp_path, epochs=2)
    assert any(line.startswith("ignoring checkpoint:") and "state.pt" in line for line in lines), lines
    assert not any("resuming" in line for line in lines)
    assert without_time(hist) == fresh_hist
    assert checkpoints.load_training_state(tmp_path / "state.pt")["epoch"] == 2  # replaced by a sound one


@pytest.mark.parametrize("damage", ["history disagrees", "weights of another model"])
def test_inconsistent_checkpoint_is_not_trusted(tmp_path, damage):
    """A checkpoint with the right fingerprint but inconsistent content is ignored as a whole."""
    _, fresh_hist = reference_run(epochs=3)
    with pytest.raises(Interrupted):
        resnet_run(tmp_path, epochs=3, stop_at=3)
    state = checkpoints.load_training_state(tmp_path / "state.pt")
    if damage == "history disagrees":
        state["history"] = state["history"][:1]
    else:
        state["model"] = {k: v[..., :1] if v.ndim else v for k, v in state["model"].items()}
    torch.save(state, tmp_path / "state.pt")
    _, hist, lines = resnet_run(tmp_path, epochs=3)
    assert any(line.startswith("ignoring checkpoint") for line in lines), lines
    assert without_time(hist) == fresh_hist


CHECKPOINT_DAMAGE = {
    "garbage": lambda p: p.write_bytes(b"garbage"),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": _truncate,
    "code object": lambda p: torch.save({"spec": _Code(), "state_dict": {}}, p),
    "no spec": lambda p: torch.save({"state_dict": {}}, p),
    "wrong weights": lambda p: torch.save(
        {"spec": {"arch": "mlp", "depth": 1, "width": 4, "input_shape": [1, 2, 2], "n_classes": 2},
         "state_dict": {"layer1.0.weight": torch.zeros(3, 3)}}, p),
}


@pytest.mark.parametrize("damage", sorted(CHECKPOINT_DAMAGE))
def test_load_checkpoint_names_the_path(tmp_path, damage):
    model = models.mlp(1, 4, in_features=4, n_classes=2)
    spec = {"arch": "mlp", "depth": 1, "width": 4, "input_shape": [1, 2, 2], "n_classes": 2}
    path = tmp_path / "model.pt"
    checkpoints.save_checkpoint(path, model, spec)
    CHECKPOINT_DAMAGE[damage](path)
    with pytest.raises(ValueError, match=r"model\.pt: not a readable repatlas checkpoint") as info:
        checkpoints.load_checkpoint(path)
    assert "\n" not in str(info.value)  # one line, not torch's multi-paragraph weights_only advice
    with pytest.raises(FileNotFoundError):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- train_to_files


def to_files(digits_files, out, depth=2, **cfg):
    sub, full = digits_files
    config = train.TrainConfig(**{"epochs": 3, "batch_size": 20, "lr": 0.05, "crop_pad": 1, **cfg})
    return train_steps.train_to_files(sub, full, out / "model.pt", out / "metrics.json", out / "train.log",
                                arch="mlp", depth=depth, width=16, config=config, device="cpu",
                                progress=False)


def test_train_to_files_resumes_and_removes_its_state(tmp_path, digits_files, monkeypatch):
    reference = to_files(digits_files, tmp_path / "a")
    assert not train_steps.resume_path(tmp_path / "a" / "model.pt").exists()  # deleted after success

    save = train.save_training_state
    def save_then_die(path, state):
        save(path, state)
        if state["epoch"] == 2:
            raise Interrupted
    monkeypatch.setattr(train, "save_training_state", save_then_die)
    with pytest.raises(Interrupted):
        to_files(digits_files, tmp_path / "b")
    monkeypatch.undo()
    out = tmp_path / "b"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "train.log"]
    # what a kill mid-write leaves (repatlas.io.atomic_path names temporaries by pid; this pid
    # is above any kernel's pid_max, so no process has it)
    (out / ".model.pt.tmp-99999999-leftover").write_bytes(b"half a file")
    resumed = to_files(digits_files, out)
    assert "resuming from checkpoint" in (out / "train.log").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt", "train.log"]
    assert without_time(resumed["epochs"]) == without_time(reference["epochs"])
    a, _, _ = checkpoints.load_checkpoint(tmp_path / "a" / "model.pt")
    b, _, _ = checkpoints.load_checkpoint(out / "model.pt")
    assert_same_weights(a, b)


def test_divergence_in_train_to_files_names_model_and_epoch(tmp_path, digits_files):
    # lr 1e4 stays finite through epoch 1 (so a resumable state exists) and is NaN in epoch 2
    with pytest.raises(train.TrainingDiverged) as info:
        to_files(digits_files, tmp_path, depth=1, lr=1e4, crop_pad=0)
    message = str(info.value)
    assert "mlp-d1-w16 seed=0" in message and "at epoch 2" in message and "'arch': 'mlp'" in message
    assert str(tmp_path / "model.pt") in message
    assert message in (tmp_path / "train.log").read_text()
    # no model, no metrics, and no resumable state (a rerun would diverge the same way)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.log"]


# -------------------------------------------------------------------- the recipe: schedule and gradient norms


def test_lr_factor_is_linear_warmup_then_cosine():
    total, warmup = 50, 10
    factors = [train.lr_factor(s, total, warmup) for s in range(total + 3)]
    np.testing.assert_allclose(factors[:warmup], np.arange(1, warmup + 1) / warmup)  # 0.1, ..., 1.0
    decay = np.arange(total - warmup) / (total - warmup)
    np.testing.assert_allclose(factors[warmup:total], 0.5 * (1 + np.cos(np.pi * decay)))
    assert factors[total:] == [0.0, 0.0, 0.0]
    # no warmup: the plain cosine from the first step
    assert [train.lr_factor(s, 4, 0) for s in range(4)] == pytest.approx(
        [1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5, 0.5 + 0.5 * np.cos(3 * np.pi / 4)])


@pytest.mark.parametrize("epochs, per_epoch, total, expected",
                         [(1.0, 8, 160, 8), (0.5, 5, 50, 2), (0.01, 8, 160, 1), (0.0, 8, 160, 0),
                          (30.0, 8, 160, 160)])
def test_warmup_steps(epochs, per_epoch, total, expected):
    config = train.TrainConfig(warmup_epochs=epochs)
    assert train.warmup_steps(config, per_epoch, total) == expected


def test_training_follows_the_warmup_schedule():
    """60 examples at batch 16 = 4 steps per epoch; warmup 1 epoch = 4 steps, then cosine over 8."""
    _, hist = run(epochs=3, warmup_epochs=1.0)
    # `lr` is recorded after the epoch's last scheduler step, i.e. the factor of the next step
    expected = [0.05 * train.lr_factor(4 * e, 12, 4) for e in (1, 2, 3)]
    assert [h["lr"] for h in hist] == pytest.approx(expected)
    assert hist[0]["lr"] == pytest.approx(0.05)  # the first step after warmup runs at the full rate
    _, cold = run(epochs=3, warmup_epochs=0.0)
    assert cold[0]["lr"] == pytest.approx(0.05 * 0.5 * (1 + np.cos(np.pi * 4 / 12)))


def test_grad_norm_is_the_global_l2_norm():
    torch.manual_seed(0)
    model = models.resnet(8, 1, in_channels=1, n_classes=3)
    loss = model(torch.randn(4, 1, 6, 6)).square().sum()
    loss.backward()
    by_hand = np.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()
                          if p.grad is not None))
    assert float(train.grad_norm(model)) == pytest.approx(by_hand, rel=1e-5)
    model.zero_grad(set_to_none=True)
    assert float(train.grad_norm(model)) == 0.0


def test_history_records_gradient_norms():
    _, hist = run(epochs=2)
    for record in hist:
        assert 0 < record["grad_norm_mean"] <= record["grad_norm_max"] < np.inf
