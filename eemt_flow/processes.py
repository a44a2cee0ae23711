"""Process lifetime: end every process a run started, wherever it was re-parented.

Batch schedulers, systemd and container runtimes stop a job with SIGTERM to its main
process only, and makeflow stops its local tasks with SIGTERM to the task's shell only: a
GRASS module, a task whose shell did not pass the signal on, or OpenMPI's ``orted`` (which
this makeflow build starts as an MPI singleton, in its own session) would go on running,
re-parented to init, and write into a work directory that a resumed run is using.

Two mechanisms, one per level:

- a run marks its makeflow's environment with ``EEMT_RUN_WORKDIR=<work dir>``; every
  process below it inherits the mark (re-parenting and new sessions do not remove it), so
  :func:`end_run_processes` finds and ends them all, even after their parents died;
- a task that starts child processes does it inside :func:`children_end_with_me`, so a
  SIGTERM or SIGINT to the task ends its children before the task exits.

Linux only (``/proc``), like the rest of the workflow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

#: Environment variable that marks every process of a run with the run's work directory.
RUN_MARKER_ENV = "EEMT_RUN_WORKDIR"
#: Seconds processes get between SIGTERM and SIGKILL.
TERM_GRACE_S = 3.0
_POLL_S = 0.05


def _alive(pid: int) -> bool:
    """Running (a zombie has ended; only its parent's wait is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pids() -> Iterable[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def marked_processes(workdir: Path | str) -> list[int]:
    """Processes (not this one) whose environment carries the run mark of ``workdir``."""
    mark = f"{RUN_MARKER_ENV}={Path(workdir).resolve()}".encode()
    me = os.getpid()
    found = []
    for pid in _pids():
        if pid == me:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if mark in environ.split(b"\0") and _alive(pid):
            found.append(pid)
    return found


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` in the process tree (children first)."""
    children: dict[int, list[int]] = {}
    for p in _pids():
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        children.setdefault(int(fields[1]), []).append(p)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return [p for p in out if _alive(p)]


def end_processes(find: Callable[[], list[int]], grace_s: float = TERM_GRACE_S) -> list[int]:
    """SIGTERM what ``find`` returns, SIGKILL what is left after ``grace_s``; returns the survivors.

    ``find`` is called again while waiting, so processes started meanwhile are ended too.
    """
    deadline = time.monotonic() + grace_s
    signalled: set[int] = set()
    sig = signal.SIGTERM
    while True:
        pids = find()
        if not pids:
            return []
        for pid in pids:
            if sig == signal.SIGKILL or pid not in signalled:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
                signalled.add(pid)
        if sig == signal.SIGKILL:
            time.sleep(0.2)
            return find()
        if time.monotonic() >= deadline:
            sig = signal.SIGKILL
            continue
        time.sleep(_POLL_S)


def end_run_processes(workdir: Path | str, grace_s: float = TERM_GRACE_S) -> list[int]:
    """End every process of the run in ``workdir`` (see :data:`RUN_MARKER_ENV`)."""
    return end_processes(lambda: marked_processes(workdir), grace_s)


@contextlib.contextmanager
def children_end_with_me(grace_s: float = TERM_GRACE_S):
    """While active, SIGTERM or SIGINT to this process ends its descendants, then exits 128+signal.

    The exit is a :class:`SystemExit` raised in the main thread, so ``finally`` blocks
    (scratch directories) still run. Outside the main thread signals cannot be caught and
    this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    me = os.getpid()

    def handler(signum, _frame):
        end_processes(lambda: descendants(me), grace_s)
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
