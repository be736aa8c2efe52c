"""Every rule's library inputs are exactly the repatlas files its script imports, transitively.

The rules derive them (`lib=library_of("<script>")` in rules/common.smk, from the imports read with
`ast`); this test recomputes them independently with the standard library's `modulefinder`, which
follows the compiled bytecode of the script and of each repatlas module it reaches (imports
inside functions included), and compares rule by rule. The rerun behaviour these inputs buy is
tested on a finished project in tests/test_workflow.py.
"""

from __future__ import annotations

import functools
import json
import modulefinder
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_copy import copy_workflow

ROOT = Path(__file__).resolve().parents[1]

# Loads the workflow (no DAG, no jobs) through Snakemake's API and prints each rule's script and
# library inputs. `_workflow` is the API's own accessor for the parsed workflow (it has no public
# one); ci-tiny defines every rule (cka_across_seeds needs two seeds).
DUMP_RULES = """
import functools
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=Path("Snakefile"), workdir=Path.cwd(),
                            config_settings=ConfigSettings(configfiles=[Path("configs/ci-tiny.yaml")]))._workflow
    rules = {r.name: {"script": r.script, "lib": list(r.input.get("lib", [])), "inputs": len(r.input)}
             for r in workflow.rules}
print("RULES=" + json.dumps(rules))
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("rules"))
    result = subprocess.run([sys.executable, "-c", DUMP_RULES], cwd=workdir, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RULES="))
    return json.loads(line[len("RULES="):])


@functools.cache
def import_closure(script: Path) -> list[str]:
    """repatlas files (relative to the workflow root) that running `script` can import."""
    finder = modulefinder.ModuleFinder(path=[str(ROOT / "src")])  # only repatlas is findable: fast
    finder.run_script(str(script))
    files = {Path(m.__file__).resolve() for m in finder.modules.values() if m.__file__}
    return sorted(str(f.relative_to(ROOT)) for f in files if f.is_relative_to(ROOT / "src" / "repatlas"))


def test_every_rule_with_a_script_declares_its_import_closure(rules):
    scripted = {name: r for name, r in rules.items() if r["script"]}
    assert len(scripted) >= 30 and "ensembles_summary" in scripted
    for name, rule in scripted.items():
        script = ROOT / "scripts" / Path(rule["script"]).name
        expected = import_closure(script)
        assert "src/repatlas/__init__.py" in expected and len(expected) >= 2, (name, expected)
        assert rule["lib"] == expected, f"rule {name}: lib inputs {rule['lib']}, its script imports {expected}"


def test_library_inputs_are_relative_paths(rules):
    for name, rule in rules.items():
        assert all(not Path(f).is_absolute() and f.startswith("src/repatlas/") for f in rule["lib"]), name


def test_closure_follows_imports_inside_functions_and_relative_imports(rules):
    """The cases the old hand-kept lists got wrong, checked by name."""
    lib = {name: set(r["lib"]) for name, r in rules.items()}
    # ensembles_summary's script imports repatlas.ensembles; models.py imports config.py
    assert "src/repatlas/ensembles.py" in lib["ensembles_summary"]
    assert "src/repatlas/config.py" in lib["train_model"]
    # figure_mitosis_ensemble's step imports data, ensembles, mitosis and its study's plots module
    assert {f"src/repatlas/{m}.py" for m in ("data", "ensembles", "mitosis", "plots/mitosis")} <= lib["figure_mitosis_ensemble"]
    # plots/ is a package of one module per study: a figure depends on its own study's plotting only
    assert "src/repatlas/plots/widedeep.py" not in lib["figure_mitosis_ensemble"]
    # redshift.py imports complexity.py relatively (from .complexity import ...)
    assert "src/repatlas/complexity.py" in lib["summod"]
    # activations.py imports train.py inside a function (dump_from_checkpoint)
    assert "src/repatlas/train.py" in lib["dump_activations"]
    # and nothing a script cannot reach: data preparation does not depend on CKA or training
    assert not {"src/repatlas/cka.py", "src/repatlas/train.py"} & lib["prepare_dataset"]
