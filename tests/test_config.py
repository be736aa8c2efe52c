"""Bad configs stop with one message naming the key (library-level; the workflow test checks the CLI)."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from repatlas.config import ConfigError, apply_overrides, check_schema, check_semantics

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
        (("probe_size",), 200, "cka.batch_size", "120 needs probe_size >= 240.*got probe_size 200"),
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


# ----------------------------------------------------------------------------- --config overrides


def overridden(*args):
    """config.yaml with command-line overrides, parsed and merged by Snakemake's own code, typed
    by apply_overrides, then checked: what common.smk does with `snakemake --config ARGS`."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    overrides = parse_config(list(args))
    config = base()
    update_config(config, overrides)
    apply_overrides(config, overrides)
    return checked(config)


def test_nested_overrides_are_typed_like_a_config_file():
    config = overridden(
        "grid={depth: [8, 14], width: [1]}", "train={epochs: 2, lr: 0.05, weight_decay: 1e-4}",
        "cka={across_seeds: false}", "train={flip: true}", "probe_size=300", "data_dir=/some/path",
        "studies=[wide_deep, infinite]",
    )
    assert config["grid"]["depth"] == [8, 14] and config["grid"]["width"] == [1]
    assert config["grid"]["n"] == [500]  # keys not overridden keep the config file's values
    assert config["train"]["epochs"] == 2 and isinstance(config["train"]["epochs"], int)
    assert config["train"]["lr"] == 0.05 and config["train"]["weight_decay"] == 1e-4
    assert config["train"]["flip"] is True and config["cka"]["across_seeds"] is False
    assert config["train"]["crop_pad"] == 1  # from config.yaml, next to the overridden train keys
    assert config["probe_size"] == 300 and config["data_dir"] == "/some/path"
    assert config["studies"] == ["wide_deep", "infinite"]


def test_only_numerals_become_numbers():
    """Python's float() also reads 'nan' and 'inf'; as config values these are names."""
    config = {}
    apply_overrides(config, {"a": {"b": ["nan", "inf", "-3", "+2.5", "1e-3", ".5", "x1", "0x10"]}})
    assert config == {"a": {"b": ["nan", "inf", -3, 2.5, 0.001, 0.5, "x1", 16]}}


def test_without_typing_snakemake_leaves_nested_values_strings():
    """The failure apply_overrides fixes: Snakemake's parse keeps nested leaves as strings."""
    from snakemake.cli import parse_config

    assert parse_config(["grid={depth: [8]}"]) == {"grid": {"depth": ["8"]}}


@pytest.mark.parametrize(
    "arg,key,expected",
    [
        ("grid={depth: [8}", "grid", "is not valid YAML"),
        ("grid={depth: [8, x]}", "grid.depth.1", "'x' is not of type 'integer'"),
        ("train={epochs: two}", "train.epochs", "'two' is not of type 'integer'"),
        ("cka={across_seeds: maybe}", "cka.across_seeds", "is not of type 'boolean'"),
    ],
)
def test_malformed_override_is_one_line_naming_the_key(arg, key, expected):
    with pytest.raises(ConfigError) as info:
        overridden(arg)
    message = str(info.value)
    assert f"config key '{key}'" in message and expected in message, message
    assert "\n" not in message


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


@pytest.mark.parametrize(
    "path,value,key,expected",
    [
        (("mitosis", "archs", "resnet"), {"depth": 10}, "mitosis.archs.resnet.depth", "6n\\+2"),
        (("mitosis", "archs", "mlp"), {"epochs": 8, "early_epochs": [2, 8]}, "mitosis.archs.mlp.early_epochs",
         "\\[8\\] not before the last epoch \\(8\\); expected epochs between 1 and 7"),
        (("mitosis", "archs"), {"resnet": {}}, "mitosis.ensemble.arch",
         "'mlp' is not swept; expected one of resnet"),
        (("infinite", "cookbook_gap"), {"widths": [64, 128], "pairs": [4]}, "infinite.cookbook_gap.pairs",
         "1 entries for 2 widths"),
        (("infinite", "conv", "n_trains"), [50, 2000], "infinite.conv.n_trains",
         "2000 exceeds the digits training pool; expected values between 2 and 1437"),
        (("infinite", "conv", "n_test"), 400, "infinite.conv.n_test", "400 exceeds the digits test split"),
        (("infinite", "conv", "filter_size"), 4, "infinite.conv.filter_size", "expected an odd size"),
    ],
)
def test_bad_mitosis_or_infinite_config_names_key(path, value, key, expected):
    """The checks the workflow ran in rules/common.smk, now in check_semantics: same messages."""
    with pytest.raises(ConfigError) as info:
        checked(edit(path, value))
    message = str(info.value)
    assert f"config key '{key}'" in message and pytest.importorskip("re").search(expected, message), message
    assert "\n" not in message
