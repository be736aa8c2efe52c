"""Snapshots of a training run at chosen epochs (the mitosis study's early-stopped models):
checked against the resumable state the loop saves after every epoch, through kills and resumes."""

import pytest
import torch

from repatlas import checkpoints, train
from repatlas.steps import train as train_steps


class Interrupted(Exception):
    """Stands in for a kill right after an epoch's resumable state was written."""




def to_files(digits_files, out, snapshot_epochs=(1, 3), epochs=4):
    sub, full = digits_files
    config = train.TrainConfig(epochs=epochs, batch_size=20, lr=0.05, crop_pad=1)
    return train_steps.train_to_files(sub, full, out / "model.pt", out / "metrics.json", out / "train.log",
                                arch="mlp", depth=2, width=16, config=config, device="cpu", progress=False,
                                snapshot_epochs=snapshot_epochs, snapshots_dir=out / "snapshots")


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def dying_after(epoch, saved=None):
    """A stand-in for train.save_training_state that records each epoch's weights, and dies after `epoch`."""
    save = train.save_training_state

    def save_state(path, state):
        save(path, state)
        if saved is not None:
            saved[state["epoch"]] = {k: v.clone() for k, v in state["model"].items()}
        if state["epoch"] == epoch:
            raise Interrupted

    return save_state


def test_snapshots_are_the_runs_own_weights(tmp_path, digits_files, monkeypatch):
    saved = {}
    monkeypatch.setattr(train, "save_training_state", dying_after(None, saved))  # records, never dies
    metrics = to_files(digits_files, tmp_path)
    monkeypatch.undo()
    snaps = tmp_path / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == ["epoch-1.pt", "epoch-3.pt"]
    assert not (tmp_path / "snapshots.partial").exists()
    for e in (1, 3):
        # the weights the resumable state held after epoch e (written by another code path)
        assert_same(weights(checkpoints.snapshot_path(snaps, e)), saved[e])
        model, spec, meta = checkpoints.load_checkpoint(checkpoints.snapshot_path(snaps, e))
        assert spec == metrics["model"] and meta["epoch"] == e
        assert meta["record"] == metrics["epochs"][e - 1]
    assert_same(weights(tmp_path / "model.pt"), saved[4])
    assert not torch.equal(saved[1]["layer1.0.weight"], saved[4]["layer1.0.weight"])
    assert "wrote snapshots of epochs [1, 3]" in (tmp_path / "train.log").read_text()


def killed_after_epoch_3(digits_files, tmp_path, monkeypatch):
    """A reference run in tmp_path/ref, and the same run killed after epoch 3's state in tmp_path/b."""
    to_files(digits_files, tmp_path / "ref")
    monkeypatch.setattr(train, "save_training_state", dying_after(3))
    with pytest.raises(Interrupted):
        to_files(digits_files, tmp_path / "b")
    monkeypatch.undo()
    return tmp_path / "b"


def test_a_killed_run_resumes_with_its_snapshots(tmp_path, digits_files, monkeypatch):
    out = killed_after_epoch_3(digits_files, tmp_path, monkeypatch)
    # what survives a kill: the state and the staged snapshots; nothing declared
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "snapshots.partial", "train.log"]
    to_files(digits_files, out)
    assert "resuming from checkpoint" in (out / "train.log").read_text()
    for name in ("epoch-1.pt", "epoch-3.pt"):
        assert_same(weights(out / "snapshots" / name), weights(tmp_path / "ref" / "snapshots" / name))
    assert_same(weights(out / "model.pt"), weights(tmp_path / "ref" / "model.pt"))


def test_resume_is_refused_when_a_passed_snapshot_is_missing(tmp_path, digits_files, monkeypatch):
    out = killed_after_epoch_3(digits_files, tmp_path, monkeypatch)
    (out / "snapshots.partial" / "epoch-1.pt").unlink()
    to_files(digits_files, out)
    log = (out / "train.log").read_text()
    assert "not resuming" in log and "[1]" in log and "resuming from checkpoint" not in log
    for name in ("epoch-1.pt", "epoch-3.pt"):
        assert_same(weights(out / "snapshots" / name), weights(tmp_path / "ref" / "snapshots" / name))


def test_snapshot_epochs_must_lie_in_the_run(tmp_path, digits_files):
    with pytest.raises(ValueError, match="snapshot_epochs"):
        to_files(digits_files, tmp_path, snapshot_epochs=(5,), epochs=4)
    with pytest.raises(ValueError, match="snapshot_epochs"):
        to_files(digits_files, tmp_path, snapshot_epochs=(0,), epochs=4)
    # no snapshots requested: an empty folder (a rule's declared output) all the same
    to_files(digits_files, tmp_path / "none", snapshot_epochs=())
    assert list((tmp_path / "none" / "snapshots").iterdir()) == []
