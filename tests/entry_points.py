"""Every library entry point that touches tensors, run with its models and tensors on one device.

`CASES[name](device)` runs one entry point on tiny inputs placed on `device` and returns its
result as host numbers ({key: numpy array or float}). Two tests use the same list:
tests/test_devices.py runs each case on the CPU under `device_guard.BareConstructors` (a tensor
made without device= would land on another device) and requires the same result as without the
guard; tests/test_gpu.py (`-m gpu`) runs each case on CUDA and compares with the CPU, within
`TOLERANCE[name]` (rtol, atol). Training cases compare loosely: on CUDA `train` uses bf16 autocast,
and a few SGD steps amplify float rounding; everything else is float32/float64 on both devices.
"""

from __future__ import annotations

import numpy as np
import torch

from repatlas import (
    activations,
    checkpoints,
    cka,
    cka_models,
    ensembles,
    errors,
    infinite,
    models,
    probes,
    redshift,
    train,
)
from repatlas.steps import data as data_steps
from repatlas.steps import mitosis as mitosis_steps


def _resnet(seed=0):
    torch.manual_seed(seed)
    return models.resnet(8, 1, in_channels=1, n_classes=3).eval()


def _images(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g)


def _labels(n=40):
    return np.arange(n) % 3


def cka_heatmap_within(device):
    da = cka_models.cka_heatmap(_resnet().to(device), _images().to(device), batch_size=16, epochs=2)
    return {"cka": da.values}


def cka_heatmap_across(device):
    da = cka_models.cka_heatmap(_resnet(0).to(device), _images().to(device), model_b=_resnet(1).to(device),
                         batch_size=20)
    return {"cka": da.values}


def minibatch_cka(device):
    g = torch.Generator().manual_seed(2)
    acts = [torch.randn(32, p, generator=g).to(device) + off for p, off in ((5, 0.0), (12, 50.0))]
    mb = cka.MinibatchCKA(2)
    for s in (0, 16):
        mb.update([a[s : s + 16] for a in acts])
    return {"cka": mb.compute()}


def dump_activations(device):
    import tempfile

    import zarr

    images = (np.arange(24 * 64).reshape(24, 1, 8, 8) % 251).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        store = f"{tmp}/acts.zarr"
        layers = activations.dump_activations(_resnet(), images, _labels(24), np.arange(24), store,
                                              mean=[0.5], std=[0.25], layers=["stem", "block2", "pool"],
                                              batch_size=10, device=str(device))
        group = zarr.open_group(store, mode="r")
        return {name: np.asarray(group[name][:]) for name in layers}


def linear_probes(device):
    torch.manual_seed(3)
    model = models.mlp(2, 12, in_features=6, n_classes=3)
    g = np.random.default_rng(3)
    y = _labels(60)
    x = g.normal(size=(60, 6)).astype(np.float32) + y[:, None]
    ds = probes.linear_probes(model, x, y, x[:30], y[:30], epochs=2, batch_size=16, device=str(device))
    return {"train": ds["train_accuracy"].values, "test": ds["test_accuracy"].values}


def pruning(device):
    ds = probes.pruning_experiment(_resnet(), _images(), _labels(), models.representation_layers(_resnet()),
                                   device=str(device))
    return {"accuracy": ds["accuracy"].values, "base": ds.attrs["base_accuracy"]}


def predictions(device):
    return {"labels": errors.predict(_resnet(), _images(), batch_size=16, device=str(device))}


def mitosis_features(device):
    """The features step: last hidden layer and head of a trained checkpoint, on `device`."""
    import tempfile
    from pathlib import Path

    from repatlas import data

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_steps.write_full("digits", tmp / "full.npz")
        data_steps.write_subset(tmp / "full.npz", tmp / "sub.npz", 30, 0)
        full, meta = data.load_npz(tmp / "full.npz")
        spec = {"arch": "mlp", "depth": 1, "width": 8, "input_shape": list(meta["shape"]),
                "n_classes": meta["n_classes"]}
        torch.manual_seed(4)
        checkpoints.save_checkpoint(tmp / "model.pt", models.build_model(**spec), spec)
        mitosis_steps.features_to_file(tmp / "model.pt", tmp / "full.npz", tmp / "sub.npz", tmp / "f.npz",
                                       device=str(device))
        arrays, _ = data.load_npz(tmp / "f.npz")
        return {k: arrays[k] for k in ("features_test", "weight", "logits_test")}


def _mlp_data(n=48, seed=5):
    rng = np.random.default_rng(seed)
    y = _labels(n)
    return (rng.normal(size=(n, 6)) + y[:, None]).astype(np.float32), y


def train_classifier_kd(device):
    x, y = _mlp_data()
    torch.manual_seed(5)
    teacher = ensembles.softmax(np.random.default_rng(6).normal(size=(len(y), 3)), 4.0)
    model = models.mlp(1, 16, in_features=6, n_classes=3).to(device)
    _, hist = ensembles.train_classifier(model, x, y, x, y, epochs=2, batch_size=16, teacher_probs=teacher)
    return {"train_loss": np.array([h["train_loss"] for h in hist]), "test_loss": hist[-1]["test_loss"],
            "logits": ensembles.predict_logits(model, x)}


def linearized_model(device):
    x, y = _mlp_data()
    torch.manual_seed(6)
    lin = ensembles.LinearizedModel(models.mlp(1, 8, in_features=6, n_classes=3)).to(device)
    ensembles.train_classifier(lin, x, y, epochs=1, batch_size=16)
    return {"logits": ensembles.predict_logits(lin, x)}


def compare_methods(device):
    x, y = _mlp_data()
    df = ensembles.compare_methods(x, y, x, y, lambda: models.mlp(1, 8, in_features=6, n_classes=3),
                                   n_seeds=2, epochs=1, batch_size=16, device=str(device))
    return {"test_loss": df["test_loss"].values}


def dropped_units(device):
    x, y = _mlp_data()
    torch.manual_seed(7)
    nets = [models.mlp(1, 16, in_features=6, n_classes=3).to(device) for _ in range(2)]
    res = ensembles.dropped_accuracy(nets, x, y, "layer1", [0.0, 0.5], seed=1)
    return {"ensemble": np.array([res[f]["ensemble"] for f in (0.0, 0.5)]),
            "single": np.array([res[f]["single"] for f in (0.0, 0.5)])}


def empirical_ntk(device):
    net = infinite.ntk_mlp(3, 32, 2, activation="relu", w_std=1.5, b_std=0.05, seed=0, dtype=torch.float64)
    x = torch.as_tensor(np.random.default_rng(8).normal(size=(10, 3)))
    return {"ntk": infinite.empirical_ntk(net.to(device), x.to(device), batch_size=4)}


def finite_ensemble(device):
    x_train, y_train, x_test, _ = infinite.sine_dataset(5, 7)
    run = infinite.train_ensemble_gd(x_train, y_train, x_test, n_models=4, width=16, depth=2,
                                     activation="erf", w_std=1.5, b_std=0.05, lr=0.1, steps=5, record_every=2,
                                     seed=0, dtype=torch.float64, device=device)
    return {"f_test": run["f_test"], "f_train": run["f_train"]}


def redshift_values(device):
    return {"values": redshift.random_mlp_values(12, activation="relu", scale=3.0, depth=3, width=16,
                                                 n_functions=2, device=device)}


def train_loop(device):
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.integers(0, 60, size=(60, 1, 6, 6)) + 60 * y[:, None, None, None]).astype(np.uint8)
    torch.manual_seed(0)
    model = models.mlp(1, 16, in_features=36, n_classes=3)
    config = train.TrainConfig(epochs=2, batch_size=16, lr=0.05, crop_pad=1, flip=True)
    hist = train.train(model, (x, y), (x, y), mean=[0.5], std=[0.3], config=config, device=str(device),
                       progress=False, log=lambda s: None)
    return {"train_loss": np.array([h["train_loss"] for h in hist]), "test_acc": hist[-1]["test_acc"]}


CASES = {f.__name__: f for f in (
    cka_heatmap_within, cka_heatmap_across, minibatch_cka, dump_activations, linear_probes, pruning,
    predictions, mitosis_features, train_classifier_kd, linearized_model, compare_methods, dropped_units,
    empirical_ntk, finite_ensemble, redshift_values, train_loop,
)}

# CUDA vs CPU: (rtol, atol). float32 kernels differ in summation order (cuDNN/cuBLAS; TF32 is
# switched off by the GPU tests); training cases add a few SGD steps (and bf16 autocast in `train`).
TOLERANCE = {name: (1e-4, 1e-5) for name in CASES}
TOLERANCE.update({
    "empirical_ntk": (1e-10, 1e-12), "finite_ensemble": (1e-9, 1e-11),  # float64 throughout
    "predictions": (0, 0), "pruning": (0, 0.03),  # labels: near-ties may flip one of 40
    "linear_probes": (0, 0.05), "dropped_units": (0, 0.05),
    "train_classifier_kd": (1e-3, 1e-4), "linearized_model": (1e-3, 1e-4), "compare_methods": (1e-3, 1e-4),
    "redshift_values": (1e-4, 1e-4),
    "train_loop": (3e-2, 3e-2),  # bf16 autocast on CUDA
})
