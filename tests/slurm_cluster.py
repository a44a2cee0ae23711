"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd.

Everything lives under one directory (configuration, munge key and socket, state, spool,
logs), the daemons listen on free private ports and use their own munge socket, so the
cluster clashes neither with a system munged nor with another test run on the machine.
The Debian packages are ``munge slurmctld slurmd slurm-client`` (scripts/bootstrap.sh).

Run this file to get a cluster for manual experiments::

    .venv/bin/python tests/slurm_cluster.py /tmp/slurm   # prints SLURM_CONF=...; Ctrl-C stops it
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: The node's size in slurm.conf. Two CPUs as on the CI machines; memory is a consumable
#: resource (CR_Core_Memory), so every job's --mem must fit in it.
NODE_CPUS = 2
NODE_REAL_MEMORY_MB = 20000
PARTITION = "debug"
#: How long the daemons may take to bring the node to IDLE.
START_TIMEOUT_S = 60.0

DAEMONS = ("munged", "slurmctld", "slurmd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(f"{tool} is not installed: run scripts/bootstrap.sh (Debian munge slurmctld slurmd slurm-client)")
    return path


class SlurmCluster:
    """munged + slurmctld + slurmd on this host, configured in ``root``.

    ``env`` is what a client (sbatch, squeue, eemt-flow) needs: ``SLURM_CONF``.
    """

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.jobcomp_log = self.root / "log" / "jobcomp.log"
        self.slurmctld_log = self.root / "log" / "slurmctld.log"
        self.slurmd_log = self.root / "log" / "slurmd.log"
        self.procs: dict[str, subprocess.Popen] = {}
        self._err_files: list = []
        self.user = getpass.getuser()  # root here and in CI; the daemons run as this user

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        return env

    def _write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}", "--force"], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        ctld_port, slurmd_port = _free_port(), _free_port()
        self.conf.write_text(f"""\
# Written by tests/slurm_cluster.py: a one-node Slurm under {self.root}
ClusterName=eemttest
SlurmctldHost={self.node}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={self.user}
SlurmdUser={self.user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# One line per finished job with its TRES (cpu=, mem=): how the tests see what each job asked for.
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp_log}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldPidFile={self.root / 'slurmctld.pid'}
SlurmdPidFile={self.root / 'slurmd.pid'}
SlurmctldLogFile={self.slurmctld_log}
SlurmdLogFile={self.slurmd_log}
SlurmctldDebug=info
SlurmdDebug=info
MinJobAge=60
InactiveLimit=0
KillWait=5
NodeName={self.node} CPUs={NODE_CPUS} RealMemory={NODE_REAL_MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self) -> "SlurmCluster":
        """Start the daemons and wait for the node to be idle; on failure stop what started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._write_config()
        munge_dir = self.root / "munge"
        # munged refuses to run as root unless forced; the key, socket, pid, seed and log are ours.
        self.procs["munged"] = subprocess.Popen(
            [_which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}",
             f"--key-file={munge_dir / 'munge.key'}", f"--pid-file={munge_dir / 'munged.pid'}",
             f"--seed-file={munge_dir / 'munged.seed'}", f"--log-file={self.root / 'log' / 'munged.log'}"],
            stdout=subprocess.DEVNULL, stderr=self._err("munged"), start_new_session=True)
        self._wait(lambda: self.munge_socket.exists(), "munged's socket")
        self.procs["slurmctld"] = subprocess.Popen(
            [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=self._err("slurmctld"), start_new_session=True)
        self.procs["slurmd"] = subprocess.Popen(
            [_which("slurmd"), "-D", "-f", str(self.conf)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=self._err("slurmd"), start_new_session=True)
        self._wait(lambda: self.node_state() == "idle", "the node to be idle in sinfo")

    def _err(self, daemon: str):
        handle = open(self.root / "log" / f"{daemon}.err", "w")
        self._err_files.append(handle)
        return handle

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {START_TIMEOUT_S:g} s waiting for {what}:\n{self.logs()}")

    def node_state(self) -> str:
        out = subprocess.run([_which("sinfo"), "-h", "-N", "-n", self.node, "-o", "%T"], env=self.env,
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip()

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)

    def queue(self) -> list[dict]:
        """Jobs in the queue (any state squeue shows), as {id, name, state}."""
        out = subprocess.run([_which("squeue"), "-h", "-o", "%i|%j|%T"], env=self.env, capture_output=True,
                             text=True, timeout=30, check=True)
        return [dict(zip(("id", "name", "state"), line.split("|"))) for line in out.stdout.splitlines() if line]

    def finished_jobs(self) -> list[dict]:
        """Every job that ended, from the jobcomp log: JobId, Name, JobState, TRES cpu and mem [MB]."""
        if not self.jobcomp_log.exists():
            return []
        jobs = []
        for line in self.jobcomp_log.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            tres = dict(item.split("=", 1) for item in fields.get("Tres", "").split(",") if "=" in item)
            jobs.append({"id": int(fields["JobId"]), "name": fields.get("Name"), "state": fields.get("JobState"),
                         "cpus": int(tres.get("cpu", 0)), "mem_mb": _mem_mb(tres.get("mem", "0")),
                         "workdir": os.path.normpath(fields.get("WorkDir", ""))})
        return jobs

    def stop(self) -> None:
        """scancel what is left, then SIGTERM the daemons (SIGKILL after 20 s)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            subprocess.run([_which("scancel"), "--full", "-u", self.user], env=self.env, capture_output=True, timeout=30)
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for handle in self._err_files:
            handle.close()


def _mem_mb(text: str) -> int:
    """Slurm's memory text (``300M``, ``2G``, ``1000``) in MB."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?)", text)
    if not m:
        raise ValueError(f"unexpected Slurm memory value {text!r}")
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return round(float(m.group(1)) * scale)


if __name__ == "__main__":
    cluster = SlurmCluster(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/eemt-slurm")).start()
    print(f"SLURM_CONF={cluster.conf}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
