"""Execution: makeflow with the chosen batch system, progress from its log, resume, workers.

No scheduling happens here: Makeflow decides what runs when, locally or through Work
Queue, Slurm, HTCondor or SGE. Re-running makeflow on the same work directory resumes
from its log and never redoes finished rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from eemt_flow.errors import UserError
from eemt_flow.processes import RUN_MARKER_ENV, end_run_processes
from eemt_flow.workflow.layout import JOB_FILE, WORKFLOW_FILE
from eemt_flow.workflow.local_fit import local_shortfalls
from eemt_flow.workflow.plan import Plan, plan
from eemt_flow.workflow.spec import JobSpec

MAKEFLOW_LOG = WORKFLOW_FILE + ".makeflowlog"
MAKEFLOW_OUTPUT = "logs/makeflow.out"
#: Seconds makeflow gets after SIGINT to stop its tasks and close its log before the rest of
#: the run is ended for it (the whole stop stays under 10 s).
MAKEFLOW_ABORT_S = 4.0
#: Environment variable naming the Work Queue password file (never the password itself).
PASSWORD_FILE_ENV = "EEMT_WQ_PASSWORD_FILE"
#: Batch systems Makeflow drives for us (makeflow -T NAME).
BATCH_SYSTEMS = {"local": "local", "wq": "wq", "slurm": "slurm", "condor": "condor", "sge": "sge"}
#: Executors that submit every task to a batch scheduler (they need a shared file system).
SCHEDULER_EXECUTORS = ("slurm", "condor", "sge")
#: Seconds Makeflow keeps retrying a refused submission before it says "unable to submit job"
#: (makeflow -S; its retries wait 1, 2, 4, 8, 16 s). eemt-flow then stops the run with the
#: scheduler's own message: a refusal that lasts this long (bad option, no such partition)
#: will not go away, and Makeflow alone would retry it forever.
SUBMIT_TIMEOUT_S = 30
#: Slurm tasks' stdout and stderr, relative to the work directory (%j: the Slurm job id).
#: Makeflow's Slurm driver sends both to /dev/null; the options it takes from -B come later
#: on the sbatch line and win.
SLURM_TASK_LOG = "logs/tasks/slurm-%j.log"
#: Seconds a remote run may sit with a failed rule and nothing running before eemt-flow ends
#: it (see BatchMonitor); a retried rule goes back to waiting at once.
FAILED_STALL_S = 10
#: Lines of a failed task's log that ``eemt-flow run`` shows.
TASK_LOG_TAIL_LINES = 20
#: A Work Queue manager's status port is its port + this: a private CCTools catalog server,
#: started with the manager, to which the manager reports its queue, and which
#: ``eemt-flow workers`` (work_queue_factory) asks how many tasks wait. The factory of this
#: CCTools build cannot ask a manager that has a password directly: its status query does
#: not authenticate, and the manager closes the connection.
STATUS_PORT_OFFSET = 1
#: How long the status catalog keeps a manager's report [s]; managers report every 60 s.
STATUS_LIFETIME_S = 180


def wq_project(port: int | str) -> str:
    """The Work Queue project name of the manager on ``port`` (what the factory looks for)."""
    return f"eemt-flow-{port}"


@dataclass
class Progress:
    """Where a workflow stands, read from the Makeflow log."""

    done: int
    total: int
    running: int = 0
    failed: int = 0
    state: str = "planned"  # planned | running | complete | failed | aborted | cancelled

    def line(self) -> str:
        extra = f", {self.running} running" if self.running else ""
        extra += f", {self.failed} failed" if self.failed else ""
        return f"{self.state}: {self.done}/{self.total} tasks done{extra}"


def count_rules(workdir: Path) -> int:
    return json.loads((Path(workdir) / JOB_FILE).read_text())["n_rules"]


def read_progress(workdir: Path) -> Progress:
    """Parse ``workflow.mf.makeflowlog``.

    Node lines are ``time node_id new_state job_id waiting running complete failed
    aborted total``; ``# COMPLETED``/``# FAILED``/``# ABORTED`` close a run.
    """
    workdir = Path(workdir)
    total = count_rules(workdir)
    log = workdir / MAKEFLOW_LOG
    if not log.exists():
        return Progress(0, total)
    state, counts = "running", None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("# STARTED"):
            state = "running"
        elif line.startswith("# COMPLETED"):
            state = "complete"
        elif line.startswith("# FAILED"):
            state = "failed"
        elif line.startswith("# ABORTED"):
            state = "aborted"
        elif line and not line.startswith("#"):
            parts = line.split()
            if len(parts) >= 10:
                counts = [int(p) for p in parts[4:10]]
    if counts is None:
        return Progress(0, total, state=state)
    _waiting, running, complete, failed, _aborted, node_total = counts
    if state == "complete" and (failed or complete < (node_total or total)):
        # Makeflow writes COMPLETED and exits 0 when a LOCAL rule has failed its retries
        # and nothing else can run: the run did not finish
        state = "failed"
    return Progress(complete, node_total or total, running if state == "running" else 0, failed, state)


def password_file(spec: JobSpec, workdir: Path) -> Path:
    """The Work Queue password file: --password-file, else $EEMT_WQ_PASSWORD_FILE, else a new
    random one in the work directory (mode 0600) whose path workers are given."""
    if spec.password_file is not None:
        path = Path(spec.password_file)
    elif os.environ.get(PASSWORD_FILE_ENV):
        path = Path(os.environ[PASSWORD_FILE_ENV])
    else:
        path = Path(workdir) / "wq.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"Work Queue password file {path} is missing or empty; create one (e.g. openssl rand -hex 32 > FILE)")
    return path.resolve()


def makeflow_command(spec: JobSpec, workdir: Path) -> list[str]:
    """The makeflow command line for the job's executor (run in the work directory)."""
    exe = shutil.which("makeflow")
    if exe is None:
        raise UserError("makeflow is not installed (Debian package coop-computing-tools); run scripts/bootstrap.sh")
    cmd = [exe, "-T", BATCH_SYSTEMS[spec.executor]]
    if spec.executor == "local":
        cmd += ["-j", str(spec.jobs or os.cpu_count() or 1)]
    elif spec.executor == "wq":
        cmd += ["-p", str(spec.port), "--password", str(password_file(spec, workdir)),
                "-N", wq_project(spec.port), "-C", f"{socket.gethostname()}:{spec.port + STATUS_PORT_OFFSET}"]
    if spec.executor in SCHEDULER_EXECUTORS:
        cmd += ["-S", str(SUBMIT_TIMEOUT_S)]
    batch_options = spec.batch_options or ""
    if spec.executor == "slurm":
        # ours first, so that the user's own --output/--error still win
        batch_options = f"--output={SLURM_TASK_LOG} --error={SLURM_TASK_LOG} {batch_options}".strip()
    if batch_options:
        cmd += ["-B", batch_options]
    # --log-verbose: the log names each rule's category (eemt_flow.workflow.tasklog reads it for the metrics)
    cmd += ["--log-verbose", WORKFLOW_FILE]
    return cmd


#: sbatch as this CCTools build's Slurm driver (makeflow -T slurm, work_queue_factory -T slurm)
#: should call it. The driver writes the memory request as two words, "--mem=N M"; sbatch
#: takes "M" for the job script, answers "Unable to open file M", and Makeflow retries that
#: submission forever (CCTools fixed the format upstream, to "--mem=NM"). This script, first
#: on the driver's PATH, joins the two words and runs the real sbatch with every other
#: argument unchanged, so each rule's MEMORY reaches Slurm as it is declared; a fixed driver
#: passes through untouched.
_SBATCH_FIX = """#!/bin/bash
# Written by eemt-flow (eemt_flow/workflow/execute.py, sbatch_fix_dir): joins CCTools' "--mem=N M" into
# "--mem=NM" and runs the real sbatch.
args=()
while [ $# -gt 0 ]; do
  if [[ $1 =~ ^--mem=[0-9]+$ && ${{2-}} == M ]]; then args+=("$1M"); shift 2; else args+=("$1"); shift; fi
done
exec {real} "${{args[@]}}"
"""


def sbatch_fix_dir(parent: Path) -> Path:
    """Write the fixed ``sbatch`` (see ``_SBATCH_FIX``) into ``parent/bin`` and return that
    directory, to be put first on the PATH of makeflow or work_queue_factory."""
    bindir = Path(parent) / "bin"
    search = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                             if p and Path(p).resolve() != bindir.resolve())
    real = shutil.which("sbatch", path=search)
    if real is None:
        raise UserError("sbatch is not on PATH: run eemt-flow on a Slurm login node (or install slurm-client)")
    _install_script(bindir / "sbatch", _SBATCH_FIX.format(real=real))
    return bindir


def _install_script(path: Path, text: str) -> None:
    """Write an executable script whole (a temporary file renamed over ``path``), so that a
    batch job starting meanwhile never runs half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def batch_environment(executor: str, workdir: Path) -> dict:
    """The environment of makeflow: :func:`task_environment`, plus the sbatch fix for Slurm."""
    env = task_environment()
    if executor == "slurm":
        env["PATH"] = str(sbatch_fix_dir(workdir)) + os.pathsep + env["PATH"]
    return env


def start_status_catalog(port: int, workdir: Path) -> subprocess.Popen | None:
    """The manager's status catalog (``catalog_server`` on ``port`` + STATUS_PORT_OFFSET, its
    own log in logs/status-catalog.log), or None with a line in logs/makeflow.out when it
    cannot start: the run goes on, only ``eemt-flow workers`` cannot see this manager."""
    exe = shutil.which("catalog_server")
    status_port = port + STATUS_PORT_OFFSET
    proc = None
    if exe is not None:
        with open(Path(workdir) / "logs" / "status-catalog.log", "a") as log:
            # -u: it reports to itself, never to the public CCTools catalog
            # run in logs/: it keeps its history (catalog.history/) in its working directory
            proc = subprocess.Popen([exe, "-p", str(status_port), "-l", str(STATUS_LIFETIME_S),
                                     "-u", f"localhost:{status_port}"], stdout=log, stderr=log,
                                    cwd=Path(workdir) / "logs", start_new_session=True)
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return proc
    with open(Path(workdir) / MAKEFLOW_OUTPUT, "a") as out:
        why = "catalog_server is not installed" if proc is None else f"the status port {status_port} is taken"
        out.write(f"eemt-flow: {why}; eemt-flow workers cannot see this manager (choose a --port whose next port "
                  f"is free)\n")
    return None


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class BatchMonitor:
    """Watches a makeflow that hands its tasks to Work Queue or a batch scheduler for the
    two ways this Makeflow build never ends by itself.

    * A refused submission (bad option, no such partition) is retried forever: Makeflow gives
      up on it after SUBMIT_TIMEOUT_S (``unable to submit job after N seconds!``), then tries
      again later. :attr:`refusal` is then what the scheduler's submit command said (sbatch's
      own error lines, which reach makeflow's output).
    * After a rule failed for good, the rules that need its outputs stay waiting, and makeflow
      loops forever with nothing running. :attr:`stalled` is set when a rule has failed and
      nothing ran for FAILED_STALL_S (a retried rule is back to waiting at once).
    """

    GAVE_UP = re.compile(r"^unable to submit job after \d+ seconds!")
    MAKEFLOW_OWN = re.compile(r"^(couldn't submit batch job|unable to submit job|submitting job:|submitted job|\$ )"
                              r"|makeflow\[\d+\]")

    def __init__(self, workdir: Path, executor: str, start: int):
        self.workdir, self.offset = Path(workdir), start
        self.watch_submissions = executor in SCHEDULER_EXECUTORS
        self.refusal, self.stalled = "", False
        self._scheduler_lines: list[str] = []
        self._failed_since: float | None = None

    def should_stop(self) -> bool:
        if self.watch_submissions and self._refused():
            return True
        progress = read_progress(self.workdir)
        if progress.failed and not progress.running and progress.state == "running":
            self._failed_since = self._failed_since or time.monotonic()
            self.stalled = time.monotonic() - self._failed_since >= FAILED_STALL_S
        else:
            self._failed_since = None
        return self.stalled

    def _refused(self) -> bool:
        with open(self.workdir / MAKEFLOW_OUTPUT, errors="replace") as fh:
            fh.seek(self.offset)
            text = fh.read()
        complete = text[:text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            line = line.strip()
            if self.GAVE_UP.match(line):
                said = list(dict.fromkeys(self._scheduler_lines))[-3:]
                self.refusal = "; ".join(said) or "no message from the scheduler's submit command"
                return True
            if line and not self.MAKEFLOW_OWN.search(line):
                self._scheduler_lines.append(line)
        return False


@dataclass
class FailedTask:
    """A rule whose command failed in the last makeflow run, and where its output went."""

    command: str
    exit: str  # "exit code N" or "signal N (...)"
    log: Path | None  # the task's own log (Slurm); None where its output is in makeflow.out
    message: str | None = None  # the task's one-line error, where its output is in makeflow.out

    def log_tail(self, lines: int = TASK_LOG_TAIL_LINES) -> list[str]:
        if self.log is None or not self.log.exists():
            return []
        return self.log.read_text(errors="replace").splitlines()[-lines:]


def failed_tasks(workdir: Path) -> list[FailedTask]:
    """The rules that failed in the last makeflow run of ``workdir`` (from logs/makeflow.out).

    Makeflow prints ``submitting job: CMD`` and ``submitted job ID`` for every submission
    and ``CMD failed with exit code N`` for every failure; on Slurm the job id names the
    task's log (:data:`SLURM_TASK_LOG`).
    """
    workdir = Path(workdir)
    out = workdir / MAKEFLOW_OUTPUT
    if not out.exists():
        return []
    text = out.read_text(errors="replace")
    run = text[text.rfind("\n$ ") + 1:]
    slurm = run.startswith("$ ") and " -T slurm " in run.splitlines()[0]
    job_of: dict[str, str] = {}
    submitting = None
    failed: dict[str, FailedTask] = {}
    error = None  # the last one-line error a task printed into makeflow.out (LOCAL and local tasks)
    for line in run.splitlines():
        if line.startswith("Error: "):
            error = line[len("Error: "):]
        elif line.startswith("submitting job: "):
            submitting = line[len("submitting job: "):]
        elif (m := re.match(r"submitted job (\d+)$", line)) and submitting is not None:
            job_of[submitting], submitting = m.group(1), None
        elif m := re.match(r"(.+) (?:failed with (exit code -?\d+)|crashed with (signal .+))$", line):
            command = m.group(1)
            log = None
            if slurm and command in job_of:
                log = workdir / SLURM_TASK_LOG.replace("%j", job_of[command])
            failed[command] = FailedTask(command, m.group(2) or m.group(3), log, None if log else error)
            error = None
    return list(failed.values())


def task_environment() -> dict:
    """The environment tasks run in: this interpreter's scripts (eemt-flow) first on PATH."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return env


def run_job(spec: JobSpec, *, on_planned: Callable[[Plan], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None) -> tuple[Plan, Progress]:
    """Plan (or find the plan of) ``spec`` and run its workflow to the end.

    This is what ``eemt-flow run`` does and what the web service runs for each job.
    """
    p = plan(spec)
    if on_planned:
        on_planned(p)
    return p, run_workflow(spec, p.workdir, on_progress=on_progress, cancel=cancel)


def run_workflow(spec: JobSpec, workdir: Path, *, on_progress: Callable[[Progress], None] | None = None,
                 cancel: threading.Event | None = None, poll_s: float = 0.5) -> Progress:
    """Run (or resume) the job's makeflow to the end; report progress while it runs.

    Interrupts (SIGINT, SIGTERM, or ``cancel`` being set) stop the run within
    :data:`MAKEFLOW_ABORT_S` + :data:`~eemt_flow.processes.TERM_GRACE_S` seconds: makeflow gets
    SIGINT (it stops its tasks and closes its log, so the next run resumes), then every
    process of the run still alive, wherever it was re-parented, is ended (see
    :mod:`eemt_flow.processes`).
    """
    workdir = Path(workdir)
    cmd = makeflow_command(spec, workdir)
    shortfalls = local_shortfalls((workdir / WORKFLOW_FILE).read_text(), workdir / MAKEFLOW_LOG, workdir,
                                  all_local=spec.executor == "local")
    if shortfalls:
        raise UserError(f"makeflow would never start some of this job's tasks here: {shortfalls}; "
                        f"free space there (or plan into a work directory on a larger file system, or run on a "
                        f"larger machine), then run the same command again")
    out_path = workdir / MAKEFLOW_OUTPUT
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if spec.executor == "slurm":
        (workdir / SLURM_TASK_LOG).parent.mkdir(parents=True, exist_ok=True)
    env = batch_environment(spec.executor, workdir)
    env[RUN_MARKER_ENV] = str(workdir.resolve())
    stop = threading.Event()
    with open(out_path, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        monitor = BatchMonitor(workdir, spec.executor, out.tell()) if spec.executor != "local" else None
        catalog = start_status_catalog(spec.port, workdir) if spec.executor == "wq" else None
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

        def request_stop(_signum, _frame):
            stop.set()

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)} \
            if _in_main_thread() else {}
        try:
            while proc.poll() is None:
                if stop.is_set() or (cancel is not None and cancel.is_set()):
                    _stop_makeflow(proc, workdir)
                    break
                if monitor is not None and monitor.should_stop():
                    _stop_makeflow(proc, workdir)
                    break
                if on_progress:
                    on_progress(read_progress(workdir))
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:  # an exception in a progress callback
                _stop_makeflow(proc, workdir)
            proc.wait()
            # Whatever outlived makeflow (orted, a task its abort missed) ends with it.
            end_run_processes(workdir)
            for s, h in previous.items():
                signal.signal(s, h)
            stop_process(catalog)
    if monitor is not None and monitor.refusal:
        raise UserError(f"{spec.executor} refused to take the tasks for {SUBMIT_TIMEOUT_S} s: {monitor.refusal}; "
                        f"fix --batch-options or the cluster, then run the same command again")
    progress = read_progress(workdir)
    if on_progress:
        on_progress(progress)
    if proc.returncode != 0 and progress.state == "complete":
        progress.state = "failed"
    if monitor is not None and monitor.stalled:
        progress.state = "failed"
    elif cancel is not None and cancel.is_set() and progress.state != "complete":
        progress.state = "cancelled"
    elif proc.returncode != 0 and progress.state == "running":
        progress.state = "aborted" if proc.returncode < 0 or proc.returncode in (130, 143) or stop.is_set() else "failed"
    return progress


def _stop_makeflow(proc: subprocess.Popen, workdir: Path) -> None:
    """SIGINT to makeflow, a short wait for its own abort, then end every process of the run."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=MAKEFLOW_ABORT_S)
    except subprocess.TimeoutExpired:
        pass
    end_run_processes(workdir)
    proc.wait()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def worker_command(manager: str, *, cores: int | None, password_path: Path, idle_timeout_s: int,
                   workdir: Path | None = None, exit_on_disconnect: bool = False) -> list[str]:
    """``work_queue_worker`` joining ``HOST:PORT`` with the password file and a core count.

    The worker looks HOST up once; ``exit_on_disconnect`` (``--single-shot``) ends it when the
    manager goes away, so that a restarted manager with a new address (a container) is found
    by the worker its supervisor starts next.
    """
    exe = shutil.which("work_queue_worker")
    if exe is None:
        raise UserError("work_queue_worker is not installed (Debian package coop-computing-tools); run scripts/bootstrap.sh")
    host, port = _manager_address(manager)
    cmd = [exe, "--password", str(password_path), "--cores", str(cores or os.cpu_count() or 1),
           "-t", str(idle_timeout_s)]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    if exit_on_disconnect:
        cmd += ["--single-shot"]
    return cmd + [host, port]


def _manager_address(manager: str) -> tuple[str, str]:
    host, sep, port = manager.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"manager '{manager}' is not HOST:PORT (e.g. eemt-master:9123)")
    return host, port


#: The factory's worker command, pointed at the manager's HOST PORT instead of its status
#: catalog. The factory of this CCTools build starts each worker with ``-M PROJECT -C
#: CATALOG``; the status catalog ends with the manager, and a worker that then looks for its
#: manager in the catalog retries for ever (``unable to contact catalog, still trying...``),
#: ignoring both its --timeout and SIGTERM, so its batch job never ends. Given the address,
#: the same worker exits --timeout seconds after the manager has gone, and on SIGTERM.
#: Every other argument (password file, cores, memory, timeout) passes through.
_WORKER_WRAPPER = """#!/bin/sh
# Written by eemt-flow workers (eemt_flow/workflow/execute.py, worker_wrapper): runs the
# work_queue_worker beside it for the manager of eemt-flow workers, without the factory's -M and -C.
n=$#
while [ "$n" -gt 0 ]; do
    a=$1; shift; n=$((n - 1))
    case $a in
        -M|-C) shift; n=$((n - 1)) ;;
        *) set -- "$@" "$a" ;;
    esac
done
exec "$(dirname "$0")/work_queue_worker" "$@" {host} {port}
"""


def worker_wrapper(scratch_dir: Path, host: str, port: str) -> Path:
    """Write the worker wrapper (see ``_WORKER_WRAPPER``) into ``scratch_dir/bin`` and the
    real work_queue_worker into ``scratch_dir``, where the factory's batch jobs start; return
    the wrapper, for ``--worker-binary`` (which the factory copies into ``scratch_dir``)."""
    real = shutil.which("work_queue_worker")
    if real is None:
        raise UserError("work_queue_worker is not installed (Debian package coop-computing-tools); run scripts/bootstrap.sh")
    tmp = Path(scratch_dir) / ".work_queue_worker.tmp"
    shutil.copy2(real, tmp)
    os.replace(tmp, Path(scratch_dir) / "work_queue_worker")
    script = Path(scratch_dir) / "bin" / "eemt-flow-worker"
    _install_script(script, _WORKER_WRAPPER.format(host=shlex.quote(host), port=int(port)))
    return script


def factory_command(manager: str, *, batch_system: str, max_workers: int, cores: int, memory_mb: int,
                    idle_timeout_s: int, password_path: Path, batch_options: str | None = None,
                    scratch_dir: Path | None = None) -> tuple[list[str], Path]:
    """``work_queue_factory`` keeping up to ``max_workers`` workers for ``HOST:PORT`` as batch jobs.

    Every 30 s the factory asks the manager's status catalog (``HOST``:``PORT`` +
    STATUS_PORT_OFFSET) how many tasks wait and run, submits workers (``cores`` cores and
    ``memory_mb`` MB each) up to that need and ``max_workers``, and keeps no minimum: workers
    exit after ``idle_timeout_s`` idle seconds, and the factory removes the jobs it still has
    when it is stopped. It copies the password file into its scratch
    directory and hands workers that file (``-P pwfile``), never the password itself. The
    workers connect to ``HOST:PORT`` itself (see ``_WORKER_WRAPPER``), not through the
    catalog. The batch jobs start in the scratch directory (worker binary and wrapper,
    password copy), so on a real cluster it must be on a file system the compute nodes see;
    the tasks need none.
    Returns the command and the scratch directory to run it in.
    """
    exe = shutil.which("work_queue_factory")
    if exe is None:
        raise UserError("work_queue_factory is not installed (Debian package coop-computing-tools); run scripts/bootstrap.sh")
    host, port = _manager_address(manager)
    if scratch_dir is None:
        scratch_dir = Path.home() / ".cache" / "eemt-flow" / "wq-factory" / f"{host}-{port}"
    scratch_dir = Path(scratch_dir).resolve()
    scratch_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch_dir, 0o700)  # it will hold a copy of the password file
    status = f"{host}:{int(port) + STATUS_PORT_OFFSET}"
    cmd = [exe, "-T", BATCH_SYSTEMS[batch_system], "--manager-name", f"^{wq_project(port)}$", "--catalog", status,
           "--password", str(Path(password_path).resolve()), "--min-workers", "0", "--max-workers", str(max_workers),
           "--cores", str(cores), "--memory", str(memory_mb), "--timeout", str(idle_timeout_s),
           "--scratch-dir", str(scratch_dir), "--worker-binary", str(worker_wrapper(scratch_dir, host, port))]
    if batch_options:
        cmd += ["--batch-options", batch_options]
    return cmd, scratch_dir


def factory_environment(batch_system: str, scratch_dir: Path) -> dict:
    """The factory's environment, which its batch jobs inherit (eemt-flow on PATH for the
    tasks), with the sbatch fix: the factory shares Makeflow's Slurm driver and its bug."""
    env = task_environment()
    if batch_system == "slurm":
        env["PATH"] = str(sbatch_fix_dir(scratch_dir)) + os.pathsep + env["PATH"]
    return env
