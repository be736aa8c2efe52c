"""Bad configs stop with one message naming the key (library-level; the workflow test checks the CLI)."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from repatlas.config import ConfigError, check_schema, check_semantics

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def checked(config):
    schema = yaml.safe_load(SCHEMA.read_text())
    check_schema(config, schema)
    validate(config, schema=str(SCHEMA))
    check_semantics(config)
    return config


def base():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_shipped_configs_are_valid(tmp_path):
    for path in [ROOT / "config.yaml", *sorted((ROOT / "configs").glob("*.yaml"))]:
        config = yaml.safe_load(path.read_text())
        needs_files = config.get("dataset", "digits") != "digits"
        if needs_files and not Path(config.get("data_dir") or "/nonexistent").is_dir():
            config["data_dir"] = str(tmp_path)  # data files are not part of the checkout
        checked(config)


def test_defaults_are_filled():
    config = checked({"dataset": "digits"})
    assert config["train"]["momentum"] == 0.9
    assert config["cka"]["batch_size"] == 120
    assert config["grid"]["arch"] == "resnet"


def edit(path, value):
    config = base()
    node = config
    *parents, last = path
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


@pytest.mark.parametrize(
    "path,value,key,expected",
    [
        (("trian",), {}, "trian", "expected one of .*train"),
        (("train", "epoch"), 3, "train.epoch", "expected one of .*epochs"),
        (("train", "epochs"), "ten", "train.epochs", "not of type 'integer'"),
        (("train", "lr"), -0.1, "train.lr", "less than or equal to the minimum"),
        (("dataset",), "imagenet", "dataset", "expected one of 'digits', 'fashion_mnist'"),
        (("dataset",), "cifar10", "data_dir", "needs the dataset's files"),
        (("grid", "depth"), [8, 10], "grid.depth", "6n\\+2"),
        (("grid", "depth"), [], "grid.depth", "should be non-empty"),
        (("grid", "n"), [5000], "grid.n", "exceed the digits training pool of 1437"),
        (("grid", "n"), [-5], "grid.n.0", "less than the minimum"),
        (("grid", "arch"), "vgg", "grid.arch", "expected one of 'resnet', 'mlp'"),
        (("device",), "tpu", "device", "does not match"),
        (("probe_size",), 1000, "probe_size", "exceeds the digits test split of 360"),
    ],
)
def test_bad_config_names_key(path, value, key, expected):
    with pytest.raises(ConfigError) as info:
        checked(edit(path, value))
    message = str(info.value)
    assert f"'{key}'" in message
    assert pytest.importorskip("re").search(expected, message), message
    assert "\n" not in message  # one line, not a schema dump


def test_check_does_not_mutate_on_error():
    config = edit(("train", "epochs"), "ten")
    snapshot = copy.deepcopy(config)
    with pytest.raises(ConfigError):
        checked(config)
    assert config == snapshot


@pytest.mark.parametrize(
    "ensembles,key,expected",
    [
        ({"students": 6}, "ensembles.students", "at most ensembles.seeds = 5"),
        ({"multiview": {"dim": 19}}, "ensembles.multiview.dim", "at least n_classes · views_per_class = 20"),
        ({"multiview": {"patches": 5}}, "ensembles.multiview.patches", "expected at least 6"),
        ({"multiview": {"other_views": 19}}, "ensembles.multiview.other_views", "exceeds the 18 views"),
        ({"multiview": {"weak_weight": [0.2, 0.1]}}, "ensembles.multiview.weak_weight", "lo <= hi"),
        ({"multiview": {"view_weight": [1.0]}}, "ensembles.multiview.view_weight", "too short"),
        ({"multiview": {"mu": [1.5]}}, "ensembles.multiview.mu.0", "greater than the maximum"),
    ],
)
def test_bad_ensembles_config_names_key(ensembles, key, expected):
    config = {**base(), "studies": ["ensembles"], "ensembles": ensembles}
    with pytest.raises(ConfigError) as info:
        checked(config)
    message = str(info.value)
    assert f"'{key}'" in message and pytest.importorskip("re").search(expected, message), message
    assert "\n" not in message
