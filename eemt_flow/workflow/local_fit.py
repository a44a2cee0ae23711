"""Whether this machine can start the tasks makeflow will run on it.

``makeflow -T local`` (and every executor, for the rules marked ``LOCAL``: cutting the DEM
and the reducer) measures the machine once when it starts: its cores, its total memory and
the free disk of the work directory (cctools ``makeflow_local_resources_measure``). A rule
whose ``.MAKEFLOW CATEGORY`` declares more than that is never started: makeflow waits with
nothing running, then ends with "nothing left to do" and exit status 0, and running it again
does the same. Found on a 10^8-cell job whose reducer declared 29,991 MB of disk where 26 GB
were free. :func:`local_shortfalls` names such rules, so that eemt-flow can refuse before makeflow starts.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from eemt_flow.workflow.tasklog import pending_categories

MB = 1024 * 1024
_DIRECTIVE = re.compile(r"^\.MAKEFLOW\s+(CATEGORY|CORES|MEMORY|DISK)\s+(\S+)\s*$")


@dataclass
class Declared:
    """What the rules of one category declare (cores, MB of memory and disk) and whether any of
    them runs on the manager (``LOCAL``)."""

    cores: int = 1
    memory_mb: int = 0
    disk_mb: int = 0
    local: bool = False


def declared_categories(workflow_text: str) -> dict[str, Declared]:
    """The categories of a Makeflow file and what their rules declare."""
    out: dict[str, Declared] = {}
    current = None
    for line in workflow_text.splitlines():
        m = _DIRECTIVE.match(line)
        if m:
            key, value = m.groups()
            if key == "CATEGORY":
                current = out.setdefault(value, Declared())
            elif current is not None:
                setattr(current, {"CORES": "cores", "MEMORY": "memory_mb", "DISK": "disk_mb"}[key], int(float(value)))
        elif current is not None and line.startswith("\t") and line.strip().startswith("LOCAL "):
            current.local = True
    return out


def machine_resources(workdir: Path) -> tuple[int, int, int]:
    """(cores, total memory MB, free disk MB of ``workdir``) as makeflow measures them."""
    memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MB
    return os.cpu_count() or 1, memory_mb, shutil.disk_usage(workdir).free // MB


def local_shortfalls(workflow_text: str, log_path: Path, workdir: Path, all_local: bool) -> str | None:
    """Why makeflow would never start some rules here, in one phrase (None when it would start
    them all): the categories whose rules run on this machine (``all_local``: the local
    executor; else only ``LOCAL`` rules), with a rule not complete yet, that declare more cores,
    memory or disk than this machine has, and what it has."""
    cores, memory_mb, disk_mb = machine_resources(workdir)
    pending = pending_categories(log_path)
    over = []
    for name, d in declared_categories(workflow_text).items():
        if not (all_local or d.local) or (pending is not None and name not in pending):
            continue
        asks = ([f"{d.disk_mb:,} MB of disk"] if d.disk_mb > disk_mb else []) + \
               ([f"{d.memory_mb:,} MB of memory"] if d.memory_mb > memory_mb else []) + \
               ([f"{d.cores} cores"] if d.cores > cores else [])
        if asks:
            over.append(f"{name} tasks declare {' and '.join(asks)}")
    if not over:
        return None
    return (f"{', '.join(over)}, and {workdir} has {disk_mb:,} MB of disk free on a machine with "
            f"{memory_mb:,} MB of memory and {cores} cores")
