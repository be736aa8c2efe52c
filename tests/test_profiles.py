"""Cluster profiles, the HTML report, the conda env files and the paper config.

The profiles are checked in two ways:
* always: the YAML itself (keys are snakemake's long options, rule names exist, GPU rules ask for a
  GPU, the generic submit command only uses resources every job has);
* when the executor plugins are installed (`pip install snakemake-executor-plugin-slurm
  snakemake-executor-plugin-cluster-generic`): a dry run of configs/ci-tiny.yaml with each profile,
  and a real submission through each plugin to a fake `sbatch` on PATH that records its
  arguments and refuses the job, so the sbatch flags each rule gets are checked without SLURM.

The snakemake runs are started together in one fixture (they are mostly waiting on single-threaded
DAG building), so the module takes well under a minute when nothing else loads the machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from workflow_copy import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
TINY = "configs/ci-tiny.yaml"  # relative: each run uses its own copy's config
PAPER = ROOT / "configs" / "cifar10-paper.yaml"
PROFILES = {name: ROOT / "workflow" / "profiles" / name / "profile.yaml" for name in ("slurm", "generic")}
PLUGINS = {  # executor name -> (module, pip name, prefix of its command line options)
    "slurm": ("snakemake_executor_plugin_slurm", "snakemake-executor-plugin-slurm", "slurm-"),
    "cluster-generic": (
        "snakemake_executor_plugin_cluster_generic",
        "snakemake-executor-plugin-cluster-generic",
        "cluster-generic-",
    ),
}

def gpu_rules() -> set[str]:
    """Rules that run networks: they declare `gpu=GPU` in their resources."""
    found = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        for name, body in re.findall(r"(?m)^\s*rule (\w+):\n((?:\s{4,}.*\n|\n)*)", smk.read_text()):
            if re.search(r"^\s+gpu=GPU,", body, flags=re.M):
                found.add(name)
    return found


GPU_RULES = gpu_rules()
TIMEOUT = 600


def profile(name: str) -> dict:
    return yaml.safe_load(PROFILES[name].read_text())


def executor_of(name: str) -> str:
    return profile(name)["executor"]


def plugin_installed(executor: str) -> bool:
    return importlib.util.find_spec(PLUGINS[executor][0]) is not None


def needs_plugin(name: str) -> None:
    module, pip_name, _ = PLUGINS[executor_of(name)]
    if not plugin_installed(executor_of(name)):
        pytest.skip(f"{pip_name} is not installed (pip install {pip_name}); only the YAML is checked")


def snakemake_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def fake_slurm(bin_dir: Path, log: Path) -> dict:
    """A PATH with an sbatch that records its arguments and refuses every job, plus the account
    queries the SLURM plugin makes when no slurm_account is set."""
    bin_dir.mkdir()
    write_exe(bin_dir / "sbatch", f'#!/usr/bin/env bash\necho "sbatch $*" >> "{log}"\n'
                                  'echo "sbatch: error: test double, nothing submitted" >&2\nexit 1\n')
    for name in ("sacct", "sacctmgr", "sshare"):
        write_exe(bin_dir / name, "#!/usr/bin/env bash\necho testaccount\n")
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


# Jobs submitted in the fake-sbatch runs: rule -> target. Their inputs are stood in by empty files.
SUBMITTED = {
    "train_model": "results/models/digits-n100/resnet-d8-w1/s0/model.pt",
    "dump_activations": "results/activations/digits-n100/resnet-d8-w1/s1/acts.zarr",
    "cka_within": "results/cka/within/digits-n100/resnet-d14-w2/s0.nc",
    "cka_across": "results/cka/across/digits-n100-resnet-d14-w1-s0__digits-n100-resnet-d8-w2-s0.nc",
    "summod": "results/complexity/summod.nc",
}
STAND_INS = [
    "results/data/digits/full.npz",
    "results/data/digits/train-n100-s0.npz",
    "results/models/digits-n100/resnet-d8-w1/s1/model.pt",
    "results/models/digits-n100/resnet-d8-w1/s1/metrics.json",
]
STAND_IN_DIRS = [
    "results/activations/digits-n100/resnet-d14-w2/s0/acts.zarr",
    "results/activations/digits-n100/resnet-d14-w1/s0/acts.zarr",
    "results/activations/digits-n100/resnet-d8-w2/s0/acts.zarr",
]


def submission_workdir(base: Path) -> Path:
    workdir = copy_workflow(base)
    for f in STAND_INS:
        (workdir / f).parent.mkdir(parents=True, exist_ok=True)
        (workdir / f).touch()
    for d in STAND_IN_DIRS:
        (workdir / d).mkdir(parents=True)
    return workdir


def run_all(jobs: dict) -> dict:
    """Run {name: (cmd, cwd, env)} concurrently; return {name: CompletedProcess}."""

    def run(item):
        name, (cmd, cwd, env) = item
        if isinstance(cmd, str):
            return name, subprocess.run(cmd, shell=True, cwd=cwd, env=env, capture_output=True,
                                        text=True, timeout=TIMEOUT)
        return name, subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, jobs.items()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every snakemake run of this module, started together."""
    base = tmp_path_factory.mktemp("profiles")
    jobs = {
        "help": (snakemake_cmd("--help"), base, None),
        # ci-tiny defines every rule (cka_across_seeds exists only with >= 2 seeds)
        "rules": (snakemake_cmd("--list-rules", "--configfile", TINY), copy_workflow(base / "rules"), None),
    }
    # The report: build one report() figure for real, then the report of that target.
    report_dir = copy_workflow(base / "report")
    target = "results/figures/redshift_functions.png"
    smk = f"{sys.executable} -m snakemake {target} --configfile {TINY}"
    jobs["report"] = (f"{smk} --cores 2 && {smk} --report report.html", report_dir, None)
    jobs["dry-plain"] = (snakemake_cmd("-n", "--configfile", TINY), copy_workflow(base / "dry-plain"), None)
    for name in PROFILES:
        if not plugin_installed(executor_of(name)):
            continue
        prof = f"workflow/profiles/{name}"
        # --cores bounds threads even for cluster jobs in a dry run; give the real values room.
        jobs[f"dry-{name}"] = (
            snakemake_cmd("-n", "--cores", "64", "--workflow-profile", prof, "--configfile", TINY),
            copy_workflow(base / f"dry-{name}"), None,
        )
        workdir = submission_workdir(base / f"submit-{name}")
        log = base / f"sbatch-{name}.log"
        extra = ["--slurm-init-seconds-before-status-checks", "1"] if name == "slurm" else []
        jobs[f"submit-{name}"] = (
            snakemake_cmd(*SUBMITTED.values(), "--workflow-profile", prof, "--retries", "0", *extra,
                          "--configfile", TINY),
            workdir, fake_slurm(base / f"bin-{name}", log),
        )
    results = run_all(jobs)
    results["report_dir"] = report_dir
    results["sbatch_logs"] = {name: base / f"sbatch-{name}.log" for name in PROFILES}
    return results


@pytest.fixture(scope="module")
def long_options(runs) -> set[str]:
    assert runs["help"].returncode == 0, runs["help"].stderr
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", runs["help"].stdout))


@pytest.fixture(scope="module")
def rule_names(runs) -> set[str]:
    result = runs["rules"]
    assert result.returncode == 0, result.stderr[-3000:]
    return {line.strip() for line in result.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


# ----------------------------------------------------------------------------- the profile files


@pytest.mark.parametrize("name", PROFILES)
def test_profile_keys_are_snakemake_options(name, long_options):
    executor = executor_of(name)
    assert executor in PLUGINS
    for key in profile(name):
        plugin_prefix = PLUGINS[executor][2]
        if key.startswith(plugin_prefix) and not plugin_installed(executor):
            continue  # the plugin adds these options; checked when it is installed
        assert key in long_options, f"{PROFILES[name]}: {key!r} is not an option of snakemake"


@pytest.mark.parametrize("name", PROFILES)
def test_profile_rules_exist(name, rule_names):
    assert {"train_model", "dump_activations", "cka_within", "cka_across"} <= rule_names
    prof = profile(name)
    for section in ("set-resources", "set-threads"):
        unknown = set(prof.get(section, {})) - rule_names
        assert not unknown, f"{PROFILES[name]}: {section} names rules the workflow lacks: {unknown}"


def test_gpu_rules_are_the_ones_that_run_networks():
    assert ({"train_model", "dump_activations", "evaluate_model", "train_mitosis_model", "mitosis_features"}
            <= GPU_RULES)
    assert not GPU_RULES & {"cka_within", "cka_across", "cka_across_seeds", "block_table", "error_analysis"}


def test_every_rule_declares_resources_log_and_benchmark(runs):
    """Without any profile: each job of the CI study has mem_mb, runtime, a log and a benchmark
    file from its rule, and the rules that run networks ask for a GPU."""
    result = runs["dry-plain"]
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    blocks = [(rule, text) for rule, text in job_blocks(result.stdout) if rule != "all"]
    assert len({rule for rule, _ in blocks}) > 30
    for rule, text in blocks:
        resources = re.search(r"resources: (.*)", text).group(1)
        assert re.search(r"\bmem_mb=\d+", resources) and re.search(r"\bruntime=\d+", resources), \
            (rule, resources)
        assert ("gpu=1" in resources) == (rule in GPU_RULES), (rule, resources)
        # --resources gpu_slots=K
        assert ("gpu_slots=1" in resources) == (rule in GPU_RULES), (rule, resources)
        assert re.search(r"^\s+log: results/", text, flags=re.M), rule
        assert re.search(r"^\s+benchmark: results/benchmarks/", text, flags=re.M), rule


def test_gpu_profile_runs_several_network_jobs_on_one_gpu(long_options):
    """workflow/profiles/gpu: a local profile (no executor) whose gpu_slots let K > 1 network
    jobs share the GPU (tests/test_devices.py runs the limit for real)."""
    prof = yaml.safe_load((ROOT / "workflow" / "profiles" / "gpu" / "profile.yaml").read_text())
    assert set(prof) <= long_options and "executor" not in prof
    slots = [int(r.split("=")[1]) for r in prof["resources"] if r.startswith("gpu_slots=")]
    assert len(slots) == 1 and slots[0] > 1


def test_gpu_rules_request_a_gpu_on_a_gpu_partition():
    slurm = profile("slurm")
    cpu_partition = slurm["default-resources"]["slurm_partition"]
    for rule in GPU_RULES:
        res = slurm["set-resources"][rule]
        assert res["gpu"] >= 1 and "gres" not in res  # the plugin refuses gpu together with gres
        assert res["slurm_partition"] != cpu_partition
    for rule, res in slurm["set-resources"].items():
        if rule not in GPU_RULES:
            assert "gpu" not in res and res.get("slurm_partition", cpu_partition) == cpu_partition
    generic = profile("generic")
    assert "{resources.sbatch_gpus}" in generic["cluster-generic-submit-cmd"]
    for rule in GPU_RULES:
        res = generic["set-resources"][rule]
        assert res["gpu"] >= 1 and "--gpus=" in res["sbatch_gpus"]
        assert res["slurm_partition"] != generic["default-resources"]["slurm_partition"]


def test_generic_submit_command_uses_only_resources_every_job_has():
    generic = profile("generic")
    used = set(re.findall(r"\{resources\.(\w+)\}", generic["cluster-generic-submit-cmd"]))
    assert used and used <= set(generic["default-resources"])


def test_generic_status_script(tmp_path):
    script = ROOT / "workflow" / "profiles" / "generic" / profile("generic")["cluster-generic-status-cmd"]
    assert os.access(script, os.X_OK)
    expected = {"COMPLETED": "success", "RUNNING": "running", "PENDING": "running",
                "TIMEOUT": "failed", "OUT_OF_MEMORY": "failed", "CANCELLED by 123": "failed",
                "NODE_FAIL": "failed"}
    for state, status in expected.items():
        bin_dir = tmp_path / re.sub(r"\W", "_", state)
        bin_dir.mkdir()
        write_exe(bin_dir / "sacct", f'#!/usr/bin/env bash\n[ "$2" = 42 ] && echo "{state}"\n')
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        out = subprocess.run([str(script), "42;cluster"], env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == status, (state, out.stdout, out.stderr)


# ----------------------------------------------------------------------------- with the plugins


def job_blocks(output: str) -> list[tuple[str, str]]:
    """(rule, text) of every job a dry run prints."""
    return re.findall(r"^rule (\w+):\n((?:    .*\n?)*)", output, flags=re.M)


@pytest.mark.parametrize("name", PROFILES)
def test_dry_run_with_profile(name, runs):
    needs_plugin(name)
    result = runs[f"dry-{name}"]
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    blocks = job_blocks(result.stdout)
    assert {rule for rule, _ in blocks} >= GPU_RULES | {"cka_within", "cka_across", "summod"}
    gpu_partition = profile(name)["set-resources"]["train_model"]["slurm_partition"]
    for rule, text in blocks:
        resources = re.search(r"resources: (.*)", text).group(1)
        assert re.search(r"\bruntime=\d+", resources) and re.search(r"\bmem_mb=\d+", resources), \
            (rule, resources)
        wants_gpu = re.search(r"\bgpu=[1-9]", resources) is not None
        assert wants_gpu or rule not in GPU_RULES, (rule, resources)
        # any rule asking for a GPU (in the profile or in the workflow) goes to the GPU partition
        assert (f"slurm_partition={gpu_partition}," in resources + ",") == wants_gpu, (rule, resources)
        if rule in ("cka_within", "cka_across"):
            assert "threads: 8" in text


@pytest.mark.parametrize("name", PROFILES)
def test_submission_flags(name, runs):
    """Each plugin's real sbatch call, caught by a fake sbatch."""
    needs_plugin(name)
    result = runs[f"submit-{name}"]
    log = runs["sbatch_logs"][name]
    assert log.is_file(), (result.stdout + result.stderr)[-4000:]
    calls = log.read_text().splitlines()
    by_rule = {}
    for call in calls:
        rule = re.search(r"--comment rule_(\w+?)(?:_wildcards|\s)|--job-name=smk-(\w+)", call)
        by_rule[rule.group(1) or rule.group(2)] = call
    assert set(by_rule) == set(SUBMITTED), calls
    if name == "slurm":
        flags = dict(partition=r" -p (\S+)", mem=r" --mem (\d+)", time=r" -t (\d+)",
                     cpus=r" --cpus-per-task=(\d+)", gpus=r" --gpus=(\S+)")
    else:
        flags = dict(partition=r" --partition=(\S+)", mem=r" --mem=(\d+)", time=r" --time=(\d+)",
                     cpus=r" --cpus-per-task=(\d+)", gpus=r" --gpus=(\S+)")
    got = {rule: {k: (m.group(1) if (m := re.search(p, call)) else None) for k, p in flags.items()}
           for rule, call in by_rule.items()}
    for rule in GPU_RULES & set(SUBMITTED):
        assert (got[rule]["gpus"] == "1" and got[rule]["partition"] == "gpu"
                and got[rule]["cpus"] == "4"), got[rule]
    for rule in set(SUBMITTED) - GPU_RULES:
        assert got[rule]["gpus"] is None and got[rule]["partition"] == "cpu", got[rule]
    assert got["cka_within"]["cpus"] == got["cka_across"]["cpus"] == "8"
    assert got["summod"]["cpus"] == "1"
    assert all(int(g["mem"]) >= 4000 and int(g["time"]) >= 15 for g in got.values()), got
    # memory grows with the model: cka_within of d14-w2 (2 blocks per stage, width 2) > 8 GB
    assert int(got["cka_within"]["mem"]) > 8000


# ----------------------------------------------------------------------------- report, envs, configs


def test_report_of_a_built_figure(runs):
    """`snakemake --report` needs its figures built: build one report() figure, then its report."""
    result = runs["report"]
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    html = (runs["report_dir"] / "report.html").read_text(errors="replace")
    assert "redshift_functions.png" in html
    caption = (ROOT / "workflow" / "report" / "redshift_functions.rst").read_text().split()
    assert " ".join(caption[:3]) in html  # the caption is rendered


def requirements(path: Path) -> dict[str, Requirement]:
    env = yaml.safe_load(path.read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    reqs = [Requirement(r) for block in pip for r in block["pip"]]
    return {r.name.lower(): r for r in reqs}


def test_envs_pin_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {r.name.lower(): r for r in map(Requirement, project["dependencies"])}
    runtime = {name for name in deps if name != "snakemake"}  # snakemake runs the envs, it is not in them
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    listed = set()
    for path in envs:
        env = yaml.safe_load(path.read_text())
        python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
        version = python.split("=", 1)[1]
        assert Requirement(f"python{project['requires-python']}").specifier.contains(version + ".0"), path
        for name, req in requirements(path).items():
            assert name in deps, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert req.specifier == deps[name].specifier, f"{path.name}: {req} but pyproject has {deps[name]}"
            assert req.extras == deps[name].extras, f"{path.name}: {req} but pyproject has {deps[name]}"
            listed.add(name)
    assert runtime <= listed, f"in pyproject.toml but in no env file: {runtime - listed}"
    for name in ("torch", "zarr", "seaborn"):
        assert str(deps[name].specifier).startswith("=="), name  # the pins the envs must repeat


def test_paper_config_is_the_published_grid(tmp_path):
    from snakemake.utils import validate

    from repatlas.config import check_schema, check_semantics

    schema_path = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    config = yaml.safe_load(PAPER.read_text())
    assert config["data_dir"] == "data/cifar10"
    config["data_dir"] = str(tmp_path)  # the CIFAR-10 batches are not shipped
    check_schema(config, yaml.safe_load(schema_path.read_text()))
    validate(config, schema=str(schema_path))
    check_semantics(config)
    assert config["dataset"] == "cifar10" and config["probe_size"] == 10000
    assert config["grid"] == {"arch": "resnet", "depth": [14, 20, 26, 38, 44, 56, 110, 164],
                              "width": [1, 2, 4, 8, 10], "n": [50000, 25000, 12500, 3125],
                              "seed": list(range(10))}
    train = config["train"]
    assert ((train["epochs"], train["batch_size"], train["momentum"], train["weight_decay"])
            == (300, 128, 0.9, 1e-4))
    assert (train["crop_pad"], train["flip"]) == (4, True)
    assert (config["cka"]["batch_size"], config["cka"]["epochs"]) == (256, 10)
