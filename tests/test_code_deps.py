"""Every rule's library inputs are exactly the repatlas files its script imports, transitively.

The rules derive them (`lib=library_of("<script>")` in rules/common.smk, from the imports read with
`ast`); this test recomputes them independently with the standard library's `modulefinder`, which
follows the compiled bytecode of the script and of each repatlas module it reaches (imports
inside functions included), and compares rule by rule. The rerun behaviour these inputs buy is
tested on a finished project in tests/test_workflow.py.
"""

from __future__ import annotations

import ast
import functools
import json
import modulefinder
import re
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
"""  # noqa: E501


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
        assert rule["lib"] == expected, \
            f"rule {name}: lib inputs {rule['lib']}, its script imports {expected}"


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
    assert ({f"src/repatlas/{m}.py" for m in ("data", "ensembles", "mitosis", "plots/mitosis")}
            <= lib["figure_mitosis_ensemble"])
    # plots/ is a package of one module per study: a figure depends on its own study's plotting only
    assert "src/repatlas/plots/widedeep.py" not in lib["figure_mitosis_ensemble"]
    # redshift.py imports complexity.py relatively (from .complexity import ...)
    assert "src/repatlas/complexity.py" in lib["summod"]
    # a script importing a steps module reaches the steps package, the step and what it imports;
    # reading a model needs the checkpoint format and the models, not the training loop
    assert {"src/repatlas/steps/__init__.py", "src/repatlas/steps/activations.py",
            "src/repatlas/checkpoints.py", "src/repatlas/models.py"} <= lib["dump_activations"]
    assert "src/repatlas/train.py" not in lib["dump_activations"]
    # both training rules run one script
    assert lib["train_model"] == lib["train_mitosis_model"]
    # and nothing a script cannot reach: data preparation does not depend on CKA or training
    assert not {"src/repatlas/cka.py", "src/repatlas/train.py"} & lib["prepare_dataset"]


def _imported_files_of_common_smk(src: Path):
    """rules/common.smk's own `_imported_files` (and `_module_file`), run on the tree `src`."""
    text = (ROOT / "rules" / "common.smk").read_text()
    namespace = {"ast": ast, "SRC": src}
    for name in ("_module_file", "_imported_files"):
        exec(re.search(rf"^def {name}\(.*?(?=^\S)", text, re.S | re.M).group(0), namespace)
    return namespace["_imported_files"]


def test_imported_files_resolves_packages_function_imports_and_relative_imports(tmp_path):
    """Each import form a script or module uses maps to the files Python runs for it: a steps
    module imported three ways, an import inside a function, a relative import, a plain name."""
    src = tmp_path / "src"
    pkg = src / "repatlas"
    for rel, body in {
        "__init__.py": "", "steps/__init__.py": "", "steps/a.py": "", "steps/b.py": "", "steps/c.py": "",
        "lazy.py": "", "rel.py": "", "plain.py": "",
        "steps/d.py": "def f():\n    from repatlas import lazy  # inside a function\n\n\n"
                      "from ..rel import g\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(body)
    script = tmp_path / "script.py"
    script.write_text("from repatlas.steps.a import f\nfrom repatlas.steps import b\n"
                      "import repatlas.steps.c\n"
                      "from repatlas.plain import name\nimport numpy\n")
    imported_files = _imported_files_of_common_smk(src)
    names = lambda files: sorted(str(f.relative_to(pkg)) for f in files)  # noqa: E731
    assert names(imported_files(script)) == ["__init__.py", "plain.py", "steps/__init__.py", "steps/a.py",
                                             "steps/b.py", "steps/c.py"]
    assert names(imported_files(pkg / "steps" / "d.py")) == ["__init__.py", "lazy.py", "rel.py"]
