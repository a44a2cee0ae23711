"""Task attempts read from a Makeflow log: which rule ran when, in which category, and how it ended.

``makeflow --log-verbose`` (as :func:`eemt_flow.workflow.execute.makeflow_command` runs it) writes the
workflow's structure at the top of ``workflow.mf.makeflowlog``, among it one
``# CATEGORY <node id> <name>`` line per rule, the name of the ``.MAKEFLOW CATEGORY`` the
rule belongs to. Every state change of a rule follows as a node line::

    <time µs> <node id> <new state> <batch job id> <waiting> <running> <complete> <failed> <aborted> <total>

An *attempt* of a rule starts with a change to RUNNING (makeflow handed it to the batch
system: a local process, a Work Queue task, a Slurm job) and ends with the next change to
COMPLETE, FAILED or ABORTED. A rule that failed and is tried again, or that was aborted and
runs again when the workflow resumes, has a second attempt. The log only grows, so the
attempts read from it never change once ended; the web service records them by (node id,
attempt number) and counts each one once however often it reads the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: Node states in the Makeflow log (cctools makeflow/src/dag_node.h).
NODE_WAITING, NODE_RUNNING, NODE_COMPLETE, NODE_FAILED, NODE_ABORTED = 0, 1, 2, 3, 4
#: How an attempt ended: COMPLETE -> done, FAILED -> failed, ABORTED (or a new attempt with
#: no end of the old one logged, as after a killed makeflow) -> aborted; running: not yet.
DONE, FAILED, ABORTED, RUNNING = "done", "failed", "aborted", "running"
OUTCOMES = (DONE, FAILED, ABORTED, RUNNING)
_ENDS = {NODE_COMPLETE: DONE, NODE_FAILED: FAILED, NODE_ABORTED: ABORTED}
#: Category of rules in a log written without --log-verbose (jobs planned by older versions).
UNKNOWN_CATEGORY = "unknown"
#: Microseconds per second (Makeflow log times are Unix microseconds).
US_PER_S = 1_000_000
_CATEGORY_DIRECTIVE = re.compile(r"^\.MAKEFLOW\s+CATEGORY\s+(\S+)", re.M)


@dataclass(frozen=True)
class TaskAttempt:
    """One attempt of one rule: ``finished_s`` is None while it runs; times are Unix seconds."""

    node_id: int
    attempt: int  # 1 for the first run of the rule, 2 for its first retry, ...
    category: str
    outcome: str  # one of OUTCOMES
    started_s: float
    finished_s: float | None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_s is None else self.finished_s - self.started_s


def _read_log(log_path: Path) -> str | None:
    try:
        return Path(log_path).read_text(errors="replace")
    except FileNotFoundError:
        return None


def _records(text: str):
    """The log's ``# CATEGORY`` lines as ("category", node id, name) and its node lines as
    ("state", time µs, node id, new state), in order; lines cut short while makeflow writes
    them are left out."""
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("# CATEGORY"):
            if len(parts) >= 4 and parts[2].isdigit():
                yield "category", int(parts[2]), parts[3]
        elif line and not line.startswith("#") and len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            yield "state", int(parts[0]), int(parts[1]), int(parts[2])


def task_attempts(log_path: Path) -> list[TaskAttempt]:
    """Every attempt in the Makeflow log at ``log_path`` (empty when there is no log yet)."""
    text = _read_log(log_path)
    if text is None:
        return []
    categories: dict[int, str] = {}
    ended: list[TaskAttempt] = []
    open_attempts: dict[int, TaskAttempt] = {}
    attempts_of: dict[int, int] = {}
    for record in _records(text):
        if record[0] == "category":
            categories[record[1]] = record[2]
            continue
        time_s, node, state = record[1] / US_PER_S, record[2], record[3]
        current = open_attempts.pop(node, None)
        if state == NODE_RUNNING:
            if current is not None:  # started again with no end logged: the old attempt was lost
                ended.append(_ended(current, ABORTED, time_s))
            n = attempts_of[node] = attempts_of.get(node, 0) + 1
            open_attempts[node] = TaskAttempt(node, n, categories.get(node, UNKNOWN_CATEGORY), RUNNING, time_s, None)
        elif current is not None:
            if state in _ENDS:
                ended.append(_ended(current, _ENDS[state], time_s))
            else:  # back to waiting with no end logged (makeflow's recovery)
                ended.append(_ended(current, ABORTED, time_s))
    return sorted(ended + list(open_attempts.values()), key=lambda a: (a.started_s, a.node_id))


def pending_categories(log_path: Path) -> set[str] | None:
    """Categories with a rule not complete in the Makeflow log at ``log_path`` (None when there
    is no log yet: every category is)."""
    text = _read_log(log_path)
    if text is None:
        return None
    category: dict[int, str] = {}
    state: dict[int, int] = {}
    for record in _records(text):
        if record[0] == "category":
            category[record[1]] = record[2]
        else:
            state[record[2]] = record[3]
    return {name for node, name in category.items() if state.get(node) != NODE_COMPLETE}


def _ended(a: TaskAttempt, outcome: str, time_s: float) -> TaskAttempt:
    return TaskAttempt(a.node_id, a.attempt, a.category, outcome, a.started_s, time_s)


def template_categories() -> list[str]:
    """The ``.MAKEFLOW CATEGORY`` names of the workflow templates in ``makeflows/``, sorted: those
    the templates spell out, and those they take from the terrain's and the reducer's rules."""
    from eemt_flow.workflow.makeflow import TERRAIN_CATEGORIES
    from eemt_flow.workflow.reduce import REDUCE_RULE_CATEGORIES

    names = set(TERRAIN_CATEGORIES) | set(REDUCE_RULE_CATEGORIES)
    for entry in resources.files("eemt_flow.makeflows").iterdir():
        if entry.name.endswith(".j2"):
            names.update(n for n in _CATEGORY_DIRECTIVE.findall(entry.read_text()) if not n.startswith("{{"))
    return sorted(names)
