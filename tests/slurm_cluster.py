"""A throwaway single-node Slurm cluster on localhost, for tests that submit real jobs.

`slurm_cluster(root)` starts, in this order and all inside `root`: a munge daemon with a fresh
key, a MariaDB server, slurmdbd (accounting, so `sacct` answers as on a real site), slurmctld
and slurmd. The node is this machine, with the cores and memory `slurmd -C` reports (the caller
may declare more memory), and two stand-in GPUs: a GRES whose device files are /dev/null, so
`--gpus=1` is scheduled and accounted as on a GPU node while torch in the job still sees no
CUDA. Two partitions, `cpu` and `gpu`, carry the names the workflow profiles use. Memory
requests are enforced the portable way, without cgroups: jobacct_gather samples every job step's
memory each second and kills a step above its request (`OverMemoryKill`); `task/affinity` binds
each step to its CPUs, as real sites do.

Nothing is shared with another instance or a system Slurm: free ports picked at start, a unique
cluster name, every socket, pid, state, spool and log file under `root`. Clients find the
cluster through `SLURM_CONF` in `cluster.env`. On leaving the context everything is stopped —
jobs cancelled, daemons terminated, and any process still carrying this cluster's `SLURM_CONF`
in its environment (job steps, `slurmstepd`, a Snakemake started with `cluster.env`) killed by
pid — also when the body raised. Daemons also get SIGTERM if the test process itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ["munged", "munge", "unmunge", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd",
            "sbatch", "squeue", "sacct", "sacctmgr", "scancel", "scontrol", "srun", "sinfo"]
DEBIAN_PACKAGES = "slurm-wlm slurmdbd munge mariadb-server"
GPUS = 2  # stand-in GPUs on the node, so two GPU jobs can run at once as on a real GPU node
START_TIMEOUT = 120  # seconds for each daemon to answer; slurmdbd creates its tables on first start
SMALL_DB = ["--innodb-buffer-pool-size=64M", "--innodb-log-file-size=8M"]  # not MariaDB's 96 MB redo log


def _find(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/usr/local/sbin", "/sbin") if (p := Path(d) / name).exists()), None)


def missing_programs() -> list[str]:
    """Programs the cluster needs that are not installed (Debian: apt-get install DEBIAN_PACKAGES)."""
    return [name for name in PROGRAMS if _find(name) is None]


def cannot_start_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = missing_programs()
    if missing:
        return f"Slurm test cluster needs {', '.join(missing)} (Debian: apt-get install {DEBIAN_PACKAGES})"
    if os.geteuid() != 0:
        return "Slurm test cluster needs root: slurmd starts job steps as the submitting user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    name: str
    conf: Path
    env: dict
    cpus: int
    memory_mb: int
    procs: dict = field(default_factory=dict)  # daemon -> Popen, in start order

    def run(self, *cmd, check=True, timeout=60) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        result = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): "
                               f"{result.stderr}{result.stdout}")
        return result

    def sacct(self, *fields: str, extra=()) -> list[dict]:
        """One dict per job allocation (not its steps) that accounting knows of, all users."""
        out = self.run("sacct", "-X", "-a", "-n", "-P", "--starttime", "now-1days",
                       "-o", ",".join(fields), *extra).stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def log_tail(self, n: int = 40) -> str:
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def _wait(what: str, ready, cluster: SlurmCluster, proc: subprocess.Popen | None, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{cluster.log_tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout} s\n{cluster.log_tail()}")


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def this_machine() -> dict[str, str]:
    """What slurmd sees of this machine (`slurmd -C`): CPUs, sockets, cores, RealMemory in MB, ..."""
    out = subprocess.run([_find("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    return dict(f.split("=", 1) for f in out.splitlines()[0].split())


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@contextlib.contextmanager
def slurm_cluster(root: Path, memory_mb: int | None = None):
    """Start a single-node cluster under `root`, yield a SlurmCluster, stop everything on exit.

    memory_mb: the node's RealMemory; default what `slurmd -C` measures. A larger value is
    accepted (SlurmdParameters=config_overrides) so that requests sized for a real cluster still
    fit a small CI machine; jobs are killed on their own request, not on the node's total.
    """
    root = Path(root)
    for d in ("munge", "db", "state", "spool", "log", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o711)  # munged wants its socket reachable by every user
    host = socket.gethostname().split(".")[0]
    machine = this_machine()
    cpus, memory_mb = int(machine["CPUs"]), max(memory_mb or 0, int(machine["RealMemory"]))
    hardware = " ".join(f"{k}={machine[k]}" for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket",
                                                        "ThreadsPerCore") if k in machine)
    name = "ra" + uuid.uuid4().hex[:8]
    ports = {k: free_port() for k in ("ctld", "slurmd", "dbd", "mysql")}
    munge_socket = root / "munge" / "munge.socket"
    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"

    conf = _write(root / "slurm.conf", f"""\
ClusterName={name}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
{auth}StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}
SlurmdPidFile={root / 'run' / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['dbd']}
AccountingStoragePass={munge_socket}
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
GresTypes=gpu
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=300
ReturnToService=2
KillWait=5
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 {hardware} RealMemory={memory_mb} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP
""")
    # stand-in GPUs: device files named like NVIDIA's (Slurm takes the index from the name) that
    # are /dev/null underneath, so nothing can use them and CUDA stays unavailable in jobs
    (root / "dev").mkdir(exist_ok=True)
    for i in range(GPUS):
        (root / "dev" / f"nvidia{i}").symlink_to("/dev/null")
    _write(root / "gres.conf", f"NodeName={host} Name=gpu File={root / 'dev'}/nvidia[0-{GPUS - 1}]\n")
    _write(root / "slurmdbd.conf", f"""\
{auth}DbdHost={host}
DbdAddr=127.0.0.1
DbdPort={ports['dbd']}
SlurmUser=root
PidFile={root / 'run' / 'slurmdbd.pid'}
LogFile={root / 'log' / 'slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mysql']}
StorageUser=root
StorageLoc=slurm_acct_db
""", mode=0o600)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_", "SACCT_"))}
    env["SLURM_CONF"] = str(conf)
    # A real site's clients find slurm.conf in /etc/slurm (or configless); ours only through
    # SLURM_CONF, which the SLURM executor plugin's job step (slurm-jobstep 0.6.1) strips with every
    # other SLURM_* variable before it calls `srun` inside the job. This srun restores it.
    (root / "bin").mkdir(exist_ok=True)
    _write(root / "bin" / "srun", f'#!/bin/sh\nSLURM_CONF={conf} exec {_find("srun")} "$@"\n', mode=0o755)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cluster = SlurmCluster(root=root, name=name, conf=conf, env=env, cpus=cpus, memory_mb=memory_mb)

    def start(daemon: str, *args: str):
        log = open(root / "log" / f"{daemon}.out.log", "w")
        cluster.procs[daemon] = subprocess.Popen([_find(daemon), *args], env=env, stdout=log,
                                                 stderr=subprocess.STDOUT, start_new_session=True,
                                                 preexec_fn=_die_with_parent)
        log.close()
        return cluster.procs[daemon]

    try:
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        munged = start("munged", "-F", "-f", f"--socket={munge_socket}", f"--key-file={key}",
                       f"--pid-file={root / 'run' / 'munged.pid'}",
                       f"--log-file={root / 'log' / 'munged.log'}",
                       f"--seed-file={root / 'munge' / 'munged.seed'}")
        _wait("munged", lambda: subprocess.run(
            f"{_find('munge')} -n -S {munge_socket} | {_find('unmunge')} -S {munge_socket}",
            shell=True, capture_output=True).returncode == 0, cluster, munged)

        subprocess.run([_find("mariadb-install-db"), "--no-defaults", f"--datadir={root / 'db'}",
                        "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db",
                        *SMALL_DB],
                       capture_output=True, text=True, check=True, timeout=300)
        mysql = start("mariadbd", "--no-defaults", f"--datadir={root / 'db'}", "--user=root",
                      "--bind-address=127.0.0.1", f"--port={ports['mysql']}",
                      f"--socket={root / 'run' / 'mysql.sock'}",
                      f"--pid-file={root / 'run' / 'mariadbd.pid'}",
                      f"--log-error={root / 'log' / 'mariadbd.log'}", "--skip-grant-tables",
                      "--innodb-lock-wait-timeout=900", *SMALL_DB)
        _wait("mariadbd", lambda: _listening(ports["mysql"]), cluster, mysql)

        dbd = start("slurmdbd", "-D")  # reads slurmdbd.conf beside $SLURM_CONF, as slurmd reads gres.conf
        _wait("slurmdbd", lambda: _listening(ports["dbd"]), cluster, dbd)
        # the cluster must exist in accounting before slurmctld registers with slurmdbd
        cluster.run("sacctmgr", "-i", "add", "cluster", name)

        ctld = start("slurmctld", "-D", "-i", "-f", str(conf))
        _wait("slurmctld", lambda: cluster.run("scontrol", "ping").stdout.count("UP") >= 1, cluster, ctld)
        slurmd = start("slurmd", "-D", "-f", str(conf))
        _wait("slurmd",
              lambda: cluster.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()[0] in ("idle", "mixed"),
              cluster, slurmd)
        yield cluster
    finally:
        _stop(cluster)


def _stop(cluster: SlurmCluster, grace: float = 20):
    """Cancel jobs, stop daemons (newest first), then kill whatever still carries our SLURM_CONF."""
    if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
        with contextlib.suppress(Exception):
            cluster.run("scancel", "--full", "-u", pwd.getpwuid(os.geteuid()).pw_name, check=False,
                        timeout=20)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and cluster.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
    for name, proc in reversed(list(cluster.procs.items())):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
    for pid in _pids_with_env("SLURM_CONF", str(cluster.conf)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _die_with_parent():
    """In the daemon before exec: SIGTERM it when the test process dies, even by SIGKILL, where
    no finalizer runs (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _pids_with_env(key: str, value: str) -> list[int]:
    needle = f"{key}={value}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
    return pids
