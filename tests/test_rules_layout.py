"""How the rule files are laid out (read as text; nothing runs): model ids come from one module,
figure rules share their boilerplate, and functions stay out of the files that hold rules."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
RULE = re.compile(r"(?m)^\s*rule (\w+):\n((?:\s{4,}.*\n|\n)*)")


def test_rules_neither_spell_nor_parse_model_ids():
    """repatlas.model_ids writes model paths and ids and parses them back; a second spelling in
    the rules would drift from it (there were five parsers in common.smk)."""
    spelled = re.compile(r"\{dataset\}-n\{n\}[-/]\{arch\}|-d\{depth\}-w\{width\}|"  # a path or id pattern
                         r"\bre\.(?:fullmatch|match|search)\(|\.split\(\"-\"")  # or a parser
    for path in RULE_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not spelled.search(line), f"{path.name}:{number}: {line.strip()}"


def test_every_figure_rule_uses_the_shared_figure_parts():
    rules = {name: body for path in RULE_FILES for name, body in RULE.findall(path.read_text())}
    figure_rules = {name: body for name, body in rules.items() if name.startswith("figure_")}
    assert len(figure_rules) >= 15
    for name, body in figure_rules.items():
        for part in ("**figure_output(", "figure_log(", "figure_benchmark(", "**figure_resources("):
            assert part in body, f"rule {name} does not use {part}"


def test_functions_and_rules_live_in_separate_files():
    """snakemake --lint asks for it; here the split is by name: <stage>_targets.smk, common.smk and
    targets.smk hold the functions, every other rule file only rules."""
    for path in RULE_FILES:
        text = path.read_text()
        has_rules, has_functions = bool(RULE.search(text)), bool(re.search(r"(?m)^def \w+", text))
        if path.name.endswith("_targets.smk") or path.name in ("common.smk", "targets.smk"):
            assert not has_rules, path.name
        else:
            assert not has_functions, path.name
