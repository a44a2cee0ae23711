"""Execution: makeflow with the chosen batch system, progress from its log, resume, workers.

No scheduling happens here: Makeflow decides what runs when, locally or through Work
Queue, Slurm, HTCondor or SGE. Re-running makeflow on the same work directory resumes
from its log and never redoes finished rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UserError
from .plan import JOB_FILE, WORKFLOW_FILE, Plan, plan
from .processes import RUN_MARKER_ENV, end_run_processes
from .spec import JobSpec

MAKEFLOW_LOG = WORKFLOW_FILE + ".makeflowlog"
MAKEFLOW_OUTPUT = "logs/makeflow.out"
#: Seconds makeflow gets after SIGINT to stop its tasks and close its log before the rest of
#: the run is ended for it (the whole stop stays under 10 s).
MAKEFLOW_ABORT_S = 4.0
#: Environment variable naming the Work Queue password file (never the password itself).
PASSWORD_FILE_ENV = "EEMT_WQ_PASSWORD_FILE"
#: Batch systems Makeflow drives for us (makeflow -T NAME).
BATCH_SYSTEMS = {"local": "local", "wq": "wq", "slurm": "slurm", "condor": "condor", "sge": "sge"}


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
        cmd += ["-p", str(spec.port), "--password", str(password_file(spec, workdir))]
    if spec.batch_options:
        cmd += ["-B", spec.batch_options]
    cmd += [WORKFLOW_FILE]
    return cmd


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
    out_path = workdir / MAKEFLOW_OUTPUT
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = task_environment()
    env[RUN_MARKER_ENV] = str(workdir.resolve())
    stop = threading.Event()
    with open(out_path, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
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
    progress = read_progress(workdir)
    if on_progress:
        on_progress(progress)
    if proc.returncode != 0 and progress.state == "complete":
        progress.state = "failed"
    if cancel is not None and cancel.is_set() and progress.state != "complete":
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
    host, sep, port = manager.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"manager '{manager}' is not HOST:PORT (e.g. eemt-master:9123)")
    cmd = [exe, "--password", str(password_path), "--cores", str(cores or os.cpu_count() or 1),
           "-t", str(idle_timeout_s)]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    if exit_on_disconnect:
        cmd += ["--single-shot"]
    return cmd + [host, port]
