"""The workflow on a real Slurm: configs/ci-tiny.yaml through both cluster profiles, and faults.

The module starts a single-node cluster in a temporary directory (tests/slurm_cluster.py: munge,
MariaDB + slurmdbd, slurmctld, slurmd; partitions `cpu` and `gpu`, the latter with stand-in GPUs)
and stops it at its end, also when a test fails. On it:

* ci-tiny's `TARGETS` through workflow/profiles/slurm (snakemake-executor-plugin-slurm) and, at the same time
  in another copy of the workflow, through workflow/profiles/generic (sbatch and the profile's
  sacct status script). Every job must have run as a Slurm job with the partition, memory, time
  limit, CPUs and GPU its profile gives it (read back with `sacct`), the outputs must equal the
  local run's of all of ci-tiny (`tiny_run`, conftest.py), and a second invocation must plan nothing.
* Faults, with the SLURM profile, in a third copy: a job above its memory request is killed by
  Slurm, reported naming its rule, and retried by the profile with the attempt-scaled request; a
  training job cancelled with `scancel` after its first checkpoint is reported failed, and a rerun
  with the profile resumes from the checkpoint and finishes.

Both profiles are used unchanged, with two command line options a site would not need:
`--cores 1`, because the node has this machine's cores (2 in CI) and `--cores` caps every job's
threads (docs/cluster.md), so jobs fit and two share the node; and, for the SLURM plugin,
`--slurm-init-seconds-before-status-checks 2` instead of its 40 s, since the jobs take seconds.
Job states: the SLURM profile polls `squeue` (plugin 2.8.0 takes sacct's "CANCELLED by <uid>"
for a running job; docs/cluster.md), the generic profile's status script `sacct`, then `squeue`.
Accounting (slurmdbd) runs as on a real site: it is where this module reads every job's limits.

Cost: each cluster job is one (generic) or two (SLURM plugin: the batch script and its `srun`
step) extra Snakemake processes that parse the workflow, ~3 s of CPU each, so the module takes
minutes, not seconds; the docstring of `profile_runs` has the measured times.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from results_equal import result_files, same_but_for_times
from slurm_cluster import cannot_start_reason, slurm_cluster
from workflow_copy import copy_workflow

from repatlas.checkpoints import load_training_state

ROOT = Path(__file__).resolve().parents[1]
TINY = "configs/ci-tiny.yaml"  # relative: each run uses its own copy
PROFILES = ("slurm", "generic")
pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
TIMEOUT = 7200  # s, a guard against hangs: ci-tiny through a profile takes minutes on an idle 2-core machine
# The node's memory, at least: twice ci-tiny's largest request (evaluate_model of ResNet-14 2x,
# 16,256 MB; the rules size jobs for CIFAR, and these use < 1 GB), so that two jobs always fit
# beside each other on a 2-core CI machine with less memory. With the machine's 24 GB, a training
# job (16 GB) blocked every CPU job and Slurm ran one job at a time. Slurm still kills a job above
# its own request (OverMemoryKill), never at the node's total.
NODE_MEMORY_MB = 33000
# What the profiles run: ci-tiny's chain of every rule kind the profiles route (the GPU partition's
# train_model, dump_activations, evaluate_model, train_mitosis_model and mitosis_features; CPU
# analyses and a figure; one job of each other study), 14 jobs. All of ci-tiny (170 jobs) through
# both profiles passed too, but took ~40 minutes on 2 cores: every cluster job adds one or two
# Snakemake processes that parse the workflow, which a CI run cannot afford 340 times.
TARGETS = (
    "results/cka/within/digits-n60/resnet-d8-w1/s0.nc",
    "results/widedeep/probes/digits-n60/resnet-d8-w1/s0.nc",
    "results/mitosis/chunks/digits-n100/mlp-d2-w8/epoch1/s0.nc",
    "results/figures/redshift_summod.png",
    "results/ensembles/digits-feature.nc",
    "results/infinite/cookbook-mlp.nc",
)


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "workflow" / "profiles" / name / "profile.yaml").read_text())


def snakemake_cmd(name: str, *args: str, configfile: str = TINY) -> list[str]:
    """snakemake with the profile `name` as a user runs it, plus what a 2-core test node needs."""
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", f"workflow/profiles/{name}",
           "--configfile", configfile, "--cores", "1", *args]
    if profile(name)["executor"] == "slurm":
        cmd += ["--slurm-init-seconds-before-status-checks", "2"]
    return cmd


def start(cluster, workdir: Path, cmd: list[str]) -> subprocess.Popen:
    """snakemake against the cluster, in its own session, output to workdir/snakemake.out."""
    with open(workdir / "snakemake.out", "w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=cluster.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    proc.started = time.monotonic()
    return proc


def finish(proc: subprocess.Popen, workdir: Path, timeout=TIMEOUT) -> dict:
    rc = proc.wait(timeout=timeout)
    out = (workdir / "snakemake.out").read_text()
    return {"rc": rc, "out": out, "seconds": time.monotonic() - proc.started}


def stop(procs) -> None:
    """Kill what this module started and did not finish (a failure, a timeout, Ctrl-C), by group id."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(cluster, workdir: Path, cmd: list[str], timeout=TIMEOUT) -> dict:
    proc = start(cluster, workdir, cmd)
    try:
        return finish(proc, workdir, timeout)
    finally:
        stop([proc])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = cannot_start_reason()
    if reason:
        pytest.skip(reason)
    for module in ("snakemake_executor_plugin_slurm", "snakemake_executor_plugin_cluster_generic"):
        pytest.importorskip(module, reason="the executor plugins come with pyproject's test extra")
    with slurm_cluster(tmp_path_factory.mktemp("slurm"), memory_mb=NODE_MEMORY_MB) as c:
        yield c


@pytest.fixture(scope="module")
def profile_runs(cluster, tmp_path_factory):
    """ci-tiny's `TARGETS` through each profile, concurrently, each in its own copy; then a dry
    rerun of each."""
    base = tmp_path_factory.mktemp("profile-runs")
    dirs = {name: copy_workflow(base / name) for name in PROFILES}
    procs = {}
    try:
        for name in PROFILES:
            procs[name] = start(cluster, dirs[name], snakemake_cmd(name, *TARGETS))
        runs = {name: finish(proc, dirs[name]) for name, proc in procs.items()}
    finally:
        stop(procs.values())
    for name in PROFILES:
        runs[name]["workdir"] = dirs[name]
        runs[name]["again"] = run(cluster, dirs[name], snakemake_cmd(name, "-n", *TARGETS), timeout=600)
    return runs


# ----------------------------------------------------------------------------- every job on Slurm


def planned_jobs(output: str) -> dict[str, int]:
    """The first 'Job stats' table Snakemake prints, without the `all` target."""
    table = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert table, output[-3000:]
    jobs = {name: int(n) for name, n in re.findall(r"^(\S+)\s+(\d+)\s*$", table.group(1), re.M)}
    jobs.pop("all", None)
    return jobs


def submitted_jobs(output: str) -> list[dict]:
    """Every job Snakemake started: rule, its resources as planned, and the Slurm job id it got."""
    slurm_ids = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    slurm_ids |= dict(re.findall(r"Submitted job (\d+) with external jobid '(\d+)", output))
    jobs = []
    for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n?)*)", output, flags=re.M):
        if rule == "all":
            continue
        jobid = re.search(r"^\s+jobid: (\d+)", body, re.M).group(1)
        resources = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"resources: (.*)", body).group(1)))
        threads = re.search(r"^\s+threads: (\d+)", body, re.M)
        jobs.append({"rule": rule, "jobid": jobid, "slurm_id": slurm_ids.get(jobid),
                     "resources": resources, "threads": int(threads.group(1)) if threads else 1})
    return jobs


def minutes(timelimit: str) -> int:
    """sacct's Timelimit ([D-]HH:MM:SS) in minutes."""
    days, _, hms = timelimit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (s > 0)


def megabytes(reqmem: str) -> int:
    """sacct's ReqMem (e.g. 16000M, 8G; older Slurm appends n or c) in MB."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT])[nc]?", reqmem).groups()
    return round(float(number) * {"K": 2**-10, "M": 1, "G": 2**10, "T": 2**20}[unit])


@pytest.mark.parametrize("name", PROFILES)
def test_every_job_ran_as_a_slurm_job_with_the_profiles_limits(name, profile_runs, cluster):
    result = profile_runs[name]
    assert result["rc"] == 0, result["out"][-6000:]
    planned = planned_jobs(result["out"])
    jobs = submitted_jobs(result["out"])
    assert len(jobs) == sum(planned.values()) >= 14, (planned, len(jobs))
    assert all(job["slurm_id"] for job in jobs), [job for job in jobs if not job["slurm_id"]][:3]

    fields = ("JobID", "State", "Partition", "ReqMem", "Timelimit", "ReqCPUS", "ReqTRES", "WorkDir")
    sacct = {row["JobID"]: row for row in cluster.sacct(*fields)}
    prof = profile(name)
    default_partition = prof["default-resources"]["slurm_partition"]
    for job in jobs:
        row = sacct.get(job["slurm_id"])
        assert row is not None, f"{job['rule']}: Slurm job {job['slurm_id']} is not in sacct"
        assert row["State"] == "COMPLETED" and row["WorkDir"] == str(result["workdir"]), (job, row)
        # the partition and GPU come from the profile, read here from its YAML
        routed = prof["set-resources"].get(job["rule"], {})
        assert row["Partition"] == routed.get("slurm_partition", default_partition), (job, row)
        assert ("gres/gpu=1" in row["ReqTRES"]) == (routed.get("gpu", 0) == 1), (job, row)
        # memory and time limit as Snakemake sized the job (rule × attempt), threads as capped
        assert megabytes(row["ReqMem"]) == int(job["resources"]["mem_mb"]), (job, row)
        assert minutes(row["Timelimit"]) == int(job["resources"]["runtime"]), (job, row)
        assert int(row["ReqCPUS"]) == job["threads"] == 1, (job, row)
    assert {job["rule"] for job in jobs} >= {*prof["set-resources"], "cka_within", "summod", "figure_summod"}


@pytest.mark.parametrize("name", PROFILES)
def test_second_invocation_plans_nothing(name, profile_runs):
    again = profile_runs[name]["again"]
    assert again["rc"] == 0 and "Nothing to be done" in again["out"], again["out"][-3000:]


# ----------------------------------------------------------------------------- same outputs as a local run


@pytest.mark.parametrize("name", PROFILES)
def test_outputs_equal_the_local_run(name, profile_runs, tiny_run):
    local, _ = tiny_run
    remote = profile_runs[name]["workdir"]
    assert profile_runs[name]["rc"] == 0, profile_runs[name]["out"][-4000:]
    files = result_files(remote)
    assert files and files <= result_files(local), files - result_files(local)
    assert {f"results/{rel}" for rel in files} >= set(TARGETS)
    identical = 0
    for rel in sorted(files):
        a, b = local / "results" / rel, remote / "results" / rel
        if a.read_bytes() == b.read_bytes():
            identical += 1
        else:
            assert same_but_for_times(rel, a, b), f"results/{rel} differs from the local run's"
    # data, activation stores, CKA and every analysis, figures: byte for byte
    assert identical > len(files) / 2, (identical, len(files))


# ----------------------------------------------------------------------------- faults


FAULT_MODEL = "digits-n1000/resnet-d8-w1/s0"
FAULT_EPOCHS = 40  # long enough (tens of seconds) to cancel it between checkpoints
FAULT_CONFIG = {
    "dataset": "digits",
    "probe_size": 40,
    "grid": {"arch": "resnet", "depth": [8], "width": [1], "n": [1000], "seed": [0]},
    "train": {"epochs": FAULT_EPOCHS, "batch_size": 32},
    "cka": {"batch_size": 20},  # two batches of the 40 probe examples
    "studies": ["wide_deep"],
}
REPORT_TIMEOUT = 300  # seconds Snakemake may take to notice the cancelled job and stop
FAULT_CONFIG_FILE = "configs/slurm-faults.yaml"  # written into the faults' copy of the workflow
MEMORY_RULE, MEMORY_TARGET = "prepare_dataset", "results/data/digits/full.npz"
# The test-only profile: the real SLURM profile with one rule's first attempt given far too little
# memory (any Python job needs more than 200 MB); its retries ask for the profile's default
# 4000 MB × attempt. The real profile keeps honest sizes.
TOO_SMALL = f"200 if attempt == 1 else {profile('slurm')['default-resources']['mem_mb']}"


def cancel_after_first_checkpoint(cluster, proc: subprocess.Popen, workdir: Path, timeout=1200) -> str:
    """Wait until the training job has saved a checkpoint, then `scancel` its Slurm job."""
    checkpoint = workdir / "results/models" / FAULT_MODEL / "checkpoint.pt"
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        assert proc.poll() is None, f"snakemake ended (rc {proc.returncode}) before the first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared in time"
        time.sleep(0.1)
    jobs = cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i %k").stdout.split("\n")
    slurm_id = next(line.split()[0] for line in jobs if "rule_train_model" in line)
    cluster.run("scancel", slurm_id)
    return slurm_id


@pytest.fixture(scope="module")
def faults(cluster, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("faults"))
    (workdir / FAULT_CONFIG_FILE).write_text(yaml.safe_dump(FAULT_CONFIG))
    slurm = profile("slurm")
    slurm["set-resources"].setdefault(MEMORY_RULE, {})["mem_mb"] = TOO_SMALL
    (workdir / "workflow/profiles/slurm-memory-fault").mkdir()
    (workdir / "workflow/profiles/slurm-memory-fault/profile.yaml").write_text(yaml.safe_dump(slurm))
    facts = {"workdir": workdir}

    # 1. over the memory request: killed, reported, retried with attempt 2's memory
    cmd = snakemake_cmd("slurm", MEMORY_TARGET, configfile=FAULT_CONFIG_FILE)
    cmd[cmd.index("workflow/profiles/slurm")] = "workflow/profiles/slurm-memory-fault"
    facts["memory"] = run(cluster, workdir, cmd)

    # 2. scancel mid-training: no retry in this invocation, so the failure ends it
    model = f"results/models/{FAULT_MODEL}/model.pt"
    proc = start(cluster, workdir,
                 snakemake_cmd("slurm", model, "--retries", "0", configfile=FAULT_CONFIG_FILE))
    try:
        facts["cancelled_id"] = cancel_after_first_checkpoint(cluster, proc, workdir)
        try:
            facts["cancelled"] = finish(proc, workdir, timeout=REPORT_TIMEOUT)
        except subprocess.TimeoutExpired:  # still waiting for a job Slurm has cancelled
            facts["cancelled"] = {"rc": None, "out": (workdir / "snakemake.out").read_text()}
    finally:
        stop([proc])
    checkpoint = workdir / "results/models" / FAULT_MODEL / "checkpoint.pt"
    facts["epoch_at_cancel"] = load_training_state(checkpoint)["epoch"] if checkpoint.exists() else None

    # 3. the rerun, with the profile as it is (a controller killed above left its lock behind)
    if facts["cancelled"]["rc"] is None:
        run(cluster, workdir, snakemake_cmd("slurm", "--unlock", configfile=FAULT_CONFIG_FILE))
    facts["rerun"] = run(cluster, workdir, snakemake_cmd("slurm", model, configfile=FAULT_CONFIG_FILE))
    return facts


def test_job_over_its_memory_request_fails_naming_the_rule_and_the_retry_succeeds(faults, cluster):
    result = faults["memory"]
    assert result["rc"] == 0, result["out"][-5000:]
    assert f"Error in rule {MEMORY_RULE}:" in result["out"]
    rows = [r for r in cluster.sacct("JobID", "State", "ReqMem", "Comment", "WorkDir")
            if r["WorkDir"] == str(faults["workdir"]) and r["Comment"].startswith(f"rule_{MEMORY_RULE}")]
    # attempt 1 at 200 MB killed by Slurm, attempt 2 at 2 × 4000 MB done
    assert ([(r["State"], megabytes(r["ReqMem"])) for r in rows]
            == [("FAILED", 200), ("COMPLETED", 8000)]), rows
    log = next((faults["workdir"] / ".snakemake/slurm_logs").rglob(f"{rows[0]['JobID']}.log"))
    assert "exceeded memory limit" in log.read_text().lower()
    assert (faults["workdir"] / MEMORY_TARGET).is_file()


def test_cancelled_training_is_reported_and_a_rerun_resumes_from_its_checkpoint(faults, cluster):
    out = faults["cancelled"]["out"]
    assert faults["cancelled"]["rc"] is not None, (
        f"Snakemake still waited for the cancelled job {REPORT_TIMEOUT} s after `scancel`:\n{out[-3000:]}")
    assert faults["cancelled"]["rc"] != 0, out[-4000:]
    assert "Error in rule train_model:" in out and "CANCELLED" in out, out[-4000:]
    epoch = faults["epoch_at_cancel"]
    assert epoch is not None and 1 <= epoch < FAULT_EPOCHS, epoch

    rerun = faults["rerun"]
    assert rerun["rc"] == 0, rerun["out"][-5000:]
    assert planned_jobs(rerun["out"]) == {"train_model": 1}
    model_dir = faults["workdir"] / "results/models" / FAULT_MODEL
    log = (model_dir / "train.log").read_text()
    assert (f"resuming from checkpoint results/models/{FAULT_MODEL}/checkpoint.pt: "
            f"{epoch} of {FAULT_EPOCHS} epochs done") in log
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) == FAULT_EPOCHS
    assert sorted(p.name for p in model_dir.iterdir()) == ["metrics.json", "model.pt", "train.log"]
    states = {r["JobID"]: r["State"] for r in cluster.sacct("JobID", "State", "WorkDir")
              if r["WorkDir"] == str(faults["workdir"])}
    assert states[faults["cancelled_id"]].startswith("CANCELLED")
