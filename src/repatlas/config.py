"""Study configuration checks: one clear message naming the key, before any job runs.

The JSON schema (workflow/schemas/config.schema.yaml) says what each key may be; `check_schema`
reports the first violation as `config key 'a.b': <what is wrong>; expected <what is allowed>`.
`check_semantics` adds the rules a schema cannot express (ResNet depths of the form 6n+2,
subsets no larger than the dataset, at least two CKA batches in the probe set, counts of the
infinite-width, mitosis and ensembles studies that must fit together).
`apply_overrides` types the values of nested `--config` overrides, which Snakemake passes on as
strings, before either check runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import yaml

from repatlas.data import DATASET_SIZES
from repatlas.formats import default_data_dir


def resnet_blocks_per_stage(depth: int) -> int:
    """n in ResNet depth = 6n + 2; raises for depths not of that form.

    Lives here rather than in repatlas.models so that checking a config (at every Snakemake
    start, and in every cluster job) does not import torch.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 26, ...); got {depth}")
    return (depth - 2) // 6


class ConfigError(ValueError):
    """The study configuration is invalid."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _expected(error: jsonschema.ValidationError) -> str:
    s = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        return "one of " + ", ".join(sorted(s.get("properties", {}))) if s.get("properties") else "no keys"
    if error.validator == "enum":
        return "one of " + ", ".join(map(repr, error.validator_value))
    if error.validator == "type":
        return f"type {error.validator_value}"
    if "description" in s:
        return s["description"]
    return f"{error.validator} {error.validator_value!r}"


def check_schema(config: dict, schema: dict) -> None:
    """Raise ConfigError for the first schema violation (most specific one), naming its key."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (-len(e.absolute_path), str(e.message)))
    if not errors:
        return
    err = jsonschema.exceptions.best_match(errors) or errors[0]
    path = list(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        path = path + [extra[0]] if extra else path
        raise ConfigError(f"config key {_key(path)!r} is not a known key; expected {_expected(err)}")
    raise ConfigError(f"config key {_key(path)!r}: {err.message}; expected {_expected(err)}")


def _typed(value, key: str):
    """A command-line value read as a config file would read it: numbers, booleans, lists and
    mappings from their YAML spelling; other strings stay strings."""
    if isinstance(value, dict):
        return {k: _typed(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v, f"{key}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if re.fullmatch(r"[-+]?\d+", value):
        return int(value)
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value):
        return float(value)  # as Snakemake reads top-level values (YAML 1.1 would keep 1e-3 a string)
    try:
        return yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(
            f"config key {key!r}: --config value {value!r} is not valid YAML ({problem}); expected "
            f"e.g. --config 'grid={{depth: [8, 14], width: [1]}}' 'train={{epochs: 2}}'"
        ) from None


def _merge(config: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


def apply_overrides(config: dict, overrides: dict) -> None:
    """Give `--config` overrides their YAML types in `config` (in place), so nested keys work as
    typed: `--config 'grid={depth: [8]}' 'train={epochs: 2}' 'cka={across_seeds: false}'`.

    Snakemake reads a nested override with YAML's base loader, which keeps every leaf a string
    ({"grid": {"depth": ["8"]}}), and merges it into `config`; `overrides` is that raw mapping
    (Snakemake's `workflow.config_settings.config`). Each string leaf is read again as YAML (after
    int and float, as Snakemake reads top-level values) and written back at its place. A value
    that is not valid YAML raises ConfigError naming its key. Dotted keys (`grid.depth=[8]`) are
    refused by Snakemake itself before the workflow is read.
    """
    _merge(config, {key: _typed(value, key) for key, value in overrides.items()})


def check_semantics(config: dict) -> None:
    """Checks beyond the schema; `config` must already have its defaults filled in."""
    grid = config["grid"]
    if grid["arch"] == "resnet":
        for depth in grid["depth"]:
            try:
                resnet_blocks_per_stage(depth)
            except ValueError as exc:
                raise ConfigError(f"config key 'grid.depth': {exc}") from None
    if config["dataset"] != "digits":
        data_dir = config["data_dir"] or default_data_dir(config["dataset"])
        if data_dir is None or not Path(data_dir).is_dir():
            raise ConfigError(
                f"config key 'data_dir': dataset {config['dataset']!r} needs the dataset's files; "
                f"expected an existing directory holding them, got {data_dir!r}"
            )
    n_train, n_test = DATASET_SIZES[config["dataset"]]
    too_big = [n for n in grid["n"] if n > n_train]
    if too_big:
        raise ConfigError(
            f"config key 'grid.n': subset size(s) {too_big} exceed the {config['dataset']} "
            f"training pool of {n_train} examples; expected values between 1 and {n_train}"
        )
    batch = config["cka"]["batch_size"]
    if "wide_deep" in config["studies"] and config["probe_size"] < 2 * batch:
        raise ConfigError(
            f"config key 'cka.batch_size': {batch} needs probe_size >= {2 * batch} (minibatch CKA "
            f"averages over batches; one batch of {config['probe_size']} examples is a different, "
            f"noisier estimate); expected probe_size >= 2 x cka.batch_size, got probe_size "
            f"{config['probe_size']}"
        )
    red = config["redshift"]
    degrees = [red["chebyshev_degree"], *red["chebyshev_sensitivity"]["degree"]]
    if max(degrees) >= red["chebyshev_nodes"]:
        raise ConfigError(
            f"config key 'redshift.chebyshev_nodes': {red['chebyshev_nodes']} nodes interpolate degrees "
            f"up to {red['chebyshev_nodes'] - 1}, but degree {max(degrees)} is asked for "
            f"(redshift.chebyshev_degree, redshift.chebyshev_sensitivity.degree); expected more nodes "
            "than the largest degree"
        )
    if config["probe_size"] > n_test:
        raise ConfigError(
            f"config key 'probe_size': {config['probe_size']} exceeds the {config['dataset']} test "
            f"split of {n_test} examples; expected a value between 4 and {n_test}"
        )
    _check_infinite(config["infinite"], config["dataset"])
    _check_mitosis(config["mitosis"])
    if "ensembles" in config["studies"]:
        _check_ensembles(config["ensembles"])


def _check_infinite(inf: dict, dataset: str) -> None:
    """What the schema cannot say about the infinite-width study: one pair count per cookbook-gap
    width; conv sizes fit the dataset."""
    gap = inf["cookbook_gap"]
    if len(gap["pairs"]) != len(gap["widths"]):
        raise ConfigError(f"config key 'infinite.cookbook_gap.pairs': {len(gap['pairs'])} entries for "
                          f"{len(gap['widths'])} widths; expected one pair count per width")
    conv = inf["conv"]
    conv_dataset = conv["dataset"] or dataset
    n_train, n_test = DATASET_SIZES[conv_dataset]
    if max(conv["n_trains"]) > n_train:
        raise ConfigError(f"config key 'infinite.conv.n_trains': {max(conv['n_trains'])} exceeds the "
                          f"{conv_dataset} training pool; expected values between 2 and {n_train}")
    if conv["n_test"] > n_test:
        raise ConfigError(f"config key 'infinite.conv.n_test': {conv['n_test']} exceeds the {conv_dataset} "
                          f"test split; expected a value between 2 and {n_test}")
    if conv["filter_size"] % 2 == 0:
        raise ConfigError(f"config key 'infinite.conv.filter_size': {conv['filter_size']}; expected an odd "
                          "size (SAME padding)")


def _check_mitosis(mitosis: dict) -> None:
    """What the schema cannot say about the mitosis study: ResNet depths are 6n+2; snapshots come
    before the last epoch; the ensemble's arch is a swept one."""
    archs = mitosis["archs"]
    if "resnet" in archs:
        try:
            resnet_blocks_per_stage(archs["resnet"]["depth"])
        except ValueError as exc:
            raise ConfigError(f"config key 'mitosis.archs.resnet.depth': {exc}") from None
    for arch, a in archs.items():
        late = [e for e in a["early_epochs"] if e >= a["epochs"]]
        if late:
            raise ConfigError(f"config key 'mitosis.archs.{arch}.early_epochs': {late} not before the last "
                              f"epoch ({a['epochs']}); expected epochs between 1 and {a['epochs'] - 1}")
    if mitosis["ensemble"]["arch"] not in archs:
        raise ConfigError(f"config key 'mitosis.ensemble.arch': {mitosis['ensemble']['arch']!r} is not "
                          f"swept; expected one of {', '.join(archs)} (the keys of mitosis.archs)")


def _check_ensembles(ens: dict) -> None:
    """What the schema cannot say about the ensembles study: counts that must fit together."""
    if ens["students"] > ens["seeds"]:
        raise ConfigError(f"config key 'ensembles.students': {ens['students']} students need as many members "
                          f"to self-distil from; expected at most ensembles.seeds = {ens['seeds']}")
    mv = ens["multiview"]
    features = mv["n_classes"] * mv["views_per_class"]
    if mv["dim"] < features:
        raise ConfigError(f"config key 'ensembles.multiview.dim': {mv['dim']} cannot hold {features} "
                          f"orthonormal views; expected at least n_classes · views_per_class = {features}")
    if mv["other_views"] > features - mv["views_per_class"]:
        raise ConfigError(f"config key 'ensembles.multiview.other_views': {mv['other_views']} exceeds the "
                          f"{features - mv['views_per_class']} views of other classes")
    needed = mv["patches_per_view"] * (mv["views_per_class"] + mv["other_views"])
    if mv["patches"] < needed:
        raise ConfigError(f"config key 'ensembles.multiview.patches': {mv['patches']} patches cannot hold "
                          f"{mv['views_per_class'] + mv['other_views']} features of {mv['patches_per_view']} "
                          f"patches each; expected at least {needed}")
    for key in ("view_weight", "other_weight", "weak_weight", "single_other_weight"):
        lo, hi = mv[key]
        if lo > hi:
            raise ConfigError(f"config key 'ensembles.multiview.{key}': {mv[key]} is not an interval; "
                              f"expected [lo, hi] with lo <= hi")
