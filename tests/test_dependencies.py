"""Declared third-party dependencies against what the code imports, and the conda envs against both.

Imports are read with `ast` from every file of src/ and scripts/, including imports inside
functions (a lazily imported package is still needed when that function runs). Import names are
mapped to distributions with importlib.metadata (sklearn → scikit-learn, yaml → PyYAML).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DECLARED = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PROJECT["dependencies"]}
# Declared but never imported by name, and why they are needed anyway.
NOT_IMPORTED = {
    "netcdf4": "xarray's engine for the .nc artifacts",
    "snakemake": "runs the workflow (rules/*.smk, scripts/*.py get `snakemake` from it)",
}
ENVS = sorted((ROOT / "envs").glob("*.yaml"))


def third_party_imports(*folders: Path) -> dict[str, set[str]]:
    """{top-level import name: files importing it} for imports outside the stdlib and repatlas."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "repatlas":
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions(import_name: str) -> set[str]:
    return {canonicalize_name(d) for d in _packages_distributions().get(import_name, [])}


def test_every_imported_package_is_declared():
    imports = third_party_imports(ROOT / "src", ROOT / "scripts")
    assert {"torch", "scipy", "jsonschema", "distributed"} <= set(imports)  # the scan sees lazy imports
    undeclared = {name: sorted(files) for name, files in imports.items()
                  if not distributions(name) & set(DECLARED)}
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_every_declared_package_is_used():
    imported = set().union(*map(distributions, third_party_imports(ROOT / "src", ROOT / "scripts")))
    unused = set(DECLARED) - imported - set(NOT_IMPORTED)
    assert not unused, f"in pyproject.toml's dependencies but imported nowhere: {unused}"


def env_requirements(path: Path) -> dict[str, Requirement]:
    env = yaml.safe_load(path.read_text())
    pip = [r for d in env["dependencies"] if isinstance(d, dict) for r in d.get("pip", [])]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in pip}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_each_env_has_every_runtime_dependency(env):
    """Each env runs scripts whose imports reach most of the library, so each needs all of it."""
    reqs = env_requirements(env)
    runtime = {name: req for name, req in DECLARED.items() if name != "snakemake"}
    assert set(runtime) <= set(reqs), f"{env.name} lacks {sorted(set(runtime) - set(reqs))}"
    for name, req in runtime.items():
        assert (reqs[name].specifier, reqs[name].extras) == (req.specifier, req.extras), \
            f"{env.name}: {reqs[name]} vs {req}"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_each_env_installs_repatlas_from_the_workflow_root(env, tmp_path):
    """Snakemake runs envs/<name>.post-deploy.sh inside the new env; with a stand-in `python` on
    PATH the script must ask pip for an editable install of REPATLAS_ROOT (set by common.smk)."""
    script = env.with_suffix(".post-deploy.sh")
    assert script.is_file(), f"{script.name} missing: the env would not contain repatlas"
    record = tmp_path / "args"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    fake.chmod(0o755)
    env_vars = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
                "REPATLAS_ROOT": str(ROOT)}
    subprocess.run(["bash", str(script)], env=env_vars, check=True, timeout=60)
    assert record.read_text().split("\n")[:-1] == ["-m", "pip", "install", "--no-deps", "--editable",
                                                   str(ROOT)]
    env_vars.pop("REPATLAS_ROOT")
    result = subprocess.run(["bash", str(script)], env=env_vars, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "REPATLAS_ROOT must be the repatlas workflow root" in result.stderr
    common = (ROOT / "rules" / "common.smk").read_text()
    assert "os.environ.update(REPATLAS_ROOT=workflow.basedir)" in common
