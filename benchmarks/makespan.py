"""Makespan: simulate a job's Makeflow DAG on N workers x C cores, from a calibrated cost model.

    .venv/bin/python benchmarks/makespan.py calibrate WORKDIR --out model.json
    .venv/bin/python benchmarks/makespan.py simulate WORKFLOW_DIR --model model.json --workers 100 --cores 16 [--bandwidth-gbps 10] [--dispatch-rate 68]
    .venv/bin/python benchmarks/makespan.py validate WORKDIR --workers 1 --cores 2

``calibrate`` reads a finished run's ``workflow.mf``, its Makeflow log
(``workflow.mf.makeflowlog``: ``timestamp_us node_id new_state job_id ...``; node ids are the
rules in file order, checked against the log's ``# NODE id command`` lines) and the sizes of
the rules' files on disk, and fits per category: task time = a + b * cells, bytes in and out
(cells from job.json: the halo windows of the tiles a rule touches). A category whose tasks
all have the same cells gets a = 0 and b = mean time / mean cells (time proportional to cells).

``simulate`` runs a discrete-event simulation: ready rules are dispatched in makeflow's order
(descending node id, as makeflow's logs show: it walks its node list from the last rule),
each remote task first takes 1/dispatch_rate s of the manager's single dispatch resource,
then its input bytes pass serially through the manager's link, it computes on a worker
holding its CORES, then its output bytes pass through the link; LOCAL tasks run on the
manager (``--local-slots``, unlimited by default) with no dispatch or transfer.

``validate`` calibrates from a run's own log and simulates the same workflow on the machine
it ran on (makeflow -T local: LOCAL tasks share the workers' cores, no dispatch or link
limit), then prints simulated and measured wall time.

Calibrate from a makeflow -T local run: under -T wq makeflow logs a task as running when it
hands it to Work Queue, so the log's durations include the time it queued for a worker
(a 2-worker run's log gives twice its wall time).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Work Queue's dispatch rate, one manager: 68 tasks/s measured by `benchmarks/scale.py dispatch`.
DISPATCH_RATE_HZ = 68.0
# The manager's network link, Gb/s (10 GbE).
BANDWIDTH_GBPS = 10.0
BITS_PER_BYTE = 8
US_PER_S = 1_000_000
# Makeflow log node states (makeflow/src/dag_node.h): 0 waiting, 1 running, 2 complete, 3 failed.
STATE_RUNNING, STATE_COMPLETE = 1, 2
# A category whose cells vary by less than this (relative spread) is fitted time ~ cells.
CELLS_SPREAD_FOR_FIT = 0.1


@dataclass
class Rule:
    id: int
    outputs: list[str]
    inputs: list[str]
    command: str
    category: str
    cores: int
    memory_mb: int | None
    disk_mb: int | None
    local: bool
    parents: list[int] = field(default_factory=list)
    cells: int | None = None


@dataclass
class Linear:
    """y = a + b * cells; ``mean`` where the cells are not known."""
    a: float
    b: float
    mean: float

    def at(self, cells: int | None) -> float:
        return self.mean if cells is None else max(0.0, self.a + self.b * cells)


@dataclass
class CategoryModel:
    time_s: Linear
    bytes_in: Linear
    bytes_out: Linear
    n_tasks: int = 0


@dataclass
class CostModel:
    categories: dict[str, CategoryModel]
    source: str = ""

    def to_json(self) -> str:
        return json.dumps({"source": self.source,
                           "categories": {k: asdict(v) for k, v in self.categories.items()}}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> CostModel:
        d = json.loads(text)
        cats = {k: CategoryModel(time_s=Linear(**v["time_s"]), bytes_in=Linear(**v["bytes_in"]),
                                 bytes_out=Linear(**v["bytes_out"]), n_tasks=v.get("n_tasks", 0))
                for k, v in d["categories"].items()}
        return cls(categories=cats, source=d.get("source", ""))

    def save(self, path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path) -> CostModel:
        return cls.from_json(Path(path).read_text())


@dataclass
class Result:
    makespan_s: float
    critical_path: list[tuple[int, str]]
    utilisation: dict[str, float]
    busiest_resource: str
    cpu_hours: float
    bytes_through_manager: int
    n_tasks: int
    start_s: dict[int, float] = field(default_factory=dict, repr=False)
    end_s: dict[int, float] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------- parsing

_VAR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_DIRECTIVE = re.compile(r"^\.MAKEFLOW\s+(CATEGORY|CORES|MEMORY|DISK)\s+(\S+)")


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)


def parse_workflow(path) -> list[Rule]:
    """The rules of a Makeflow file, in file order (= makeflow's node ids), with their parents."""
    lines = Path(path).read_text().splitlines()
    variables: dict[str, str] = {}
    category, cores, memory, disk = "default", 1, None, None
    rules: list[Rule] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _DIRECTIVE.match(s)
        if m:
            key, val = m.groups()
            if key == "CATEGORY":
                category = val
            elif key == "CORES":
                cores = int(float(val))
            elif key == "MEMORY":
                memory = int(float(val))
            else:
                disk = int(float(val))
            continue
        if s.startswith("."):
            continue
        m = _VAR.match(s)
        if m and ":" not in s.split("=", 1)[0]:
            variables[m.group(1)] = m.group(2).strip()
            continue
        if ":" in s and not line.startswith("\t"):
            outs, ins = s.split(":", 1)
            command = ""
            if i < len(lines) and lines[i].startswith("\t"):
                command = lines[i].strip()
                i += 1
            local = command.startswith("LOCAL ")
            if local:
                command = command[len("LOCAL "):]
            rules.append(Rule(id=len(rules), outputs=_expand(outs, variables).split(),
                              inputs=_expand(ins, variables).split(),
                              command=_expand(command, variables), category=category,
                              cores=cores, memory_mb=memory, disk_mb=disk, local=local))
    producer = {f: r.id for r in rules for f in r.outputs}
    for r in rules:
        r.parents = sorted({producer[f] for f in r.inputs if f in producer and producer[f] != r.id})
    return rules


def assign_cells(rules: list[Rule], job_json) -> None:
    """Each rule's cells: the halo windows of the tiles whose directories its files are in; a
    block of the VRT form's overview tree (``reduce-tree``): its pixels, block_cells^2 at most."""
    job = json.loads(Path(job_json).read_text())
    dir_cells: dict[str, tuple[str, int]] = {}
    for t in job.get("tiles", []):
        cells = int(t.get("halo_height", t.get("height", 0))) * int(t.get("halo_width", t.get("width", 0)))
        for v in t.get("files", {}).values():
            for p in (v.values() if isinstance(v, dict) else [v]):
                if isinstance(p, str) and "/" in p:
                    dir_cells[os.path.dirname(p)] = (t["name"], cells)
    block = (job.get("results_form") or {}).get("block_cells")
    for r in rules:
        tiles = {dir_cells[os.path.dirname(f)] for f in r.inputs + r.outputs if os.path.dirname(f) in dir_cells}
        r.cells = sum(c for _, c in tiles) if tiles else None
        if r.category == "reduce-tree" and block:
            r.cells = block * block


def load_rules(workflow_dir) -> list[Rule]:
    d = Path(workflow_dir)
    rules = parse_workflow(d / "workflow.mf")
    if (d / "job.json").exists():
        assign_cells(rules, d / "job.json")
    return rules


# --------------------------------------------------------------------------- calibration

@dataclass
class LogRun:
    durations_s: dict[int, float]
    wall_s: float
    node_commands: dict[int, str]
    node_categories: dict[int, str]


def read_makeflow_log(path) -> LogRun:
    """Task durations (first running -> complete, of the last run in the log) and the wall time."""
    commands, categories = {}, {}
    events: list[tuple[int, int, int]] = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            parts = line[2:].split("\t")
            head = parts[0].split()
            if head and head[0] == "STARTED":
                events = []  # a resumed run: keep the last run's events
            elif parts[0] in ("NODE", "CATEGORY") and len(parts) >= 3:
                (commands if parts[0] == "NODE" else categories)[int(parts[1])] = parts[2]
            continue
        f = line.split()
        if len(f) >= 3:
            events.append((int(f[0]), int(f[1]), int(f[2])))
    started: dict[int, int] = {}
    durations: dict[int, float] = {}
    for ts, node, state in events:
        if state == STATE_RUNNING:
            started[node] = ts
        elif state == STATE_COMPLETE and node in started:
            durations[node] = (ts - started[node]) / US_PER_S
    wall = (max(e[0] for e in events) - min(e[0] for e in events)) / US_PER_S if events else 0.0
    return LogRun(durations, wall, commands, categories)


def _fit(xs: list[int | None], ys: list[float]) -> Linear:
    mean_y = sum(ys) / len(ys)
    known = [(x, y) for x, y in zip(xs, ys) if x]
    if not known:
        return Linear(0.0, 0.0, mean_y)
    cx = [x for x, _ in known]
    mean_x = sum(cx) / len(cx)
    spread = (max(cx) - min(cx)) / mean_x
    if spread < CELLS_SPREAD_FOR_FIT or len(known) < 3:
        return Linear(0.0, sum(y for _, y in known) / len(known) / mean_x, mean_y)
    my = sum(y for _, y in known) / len(known)
    b = sum((x - mean_x) * (y - my) for x, y in known) / sum((x - mean_x) ** 2 for x in cx)
    a = my - b * mean_x
    if a < 0 or b < 0:  # keep it physical: proportional
        a, b = 0.0, my / mean_x
    return Linear(a, b, mean_y)


def _size(workdir: Path, f: str) -> int:
    p = workdir / f
    return p.stat().st_size if p.is_file() else 0


def calibrate(workdir) -> CostModel:
    """A cost model per category from a finished run's log and the file sizes in its work dir."""
    workdir = Path(workdir)
    rules = load_rules(workdir)
    log = read_makeflow_log(workdir / "workflow.mf.makeflowlog")
    for r in rules:  # node ids are the rules in file order: check it
        cmd = log.node_commands.get(r.id)
        if cmd is not None and cmd.strip() != r.command.strip():
            raise ValueError(f"node {r.id} of the log runs {cmd!r}, rule {r.id} of workflow.mf {r.command!r}")
    by_cat: dict[str, list[Rule]] = defaultdict(list)
    for r in rules:
        if r.id in log.durations_s:
            by_cat[r.category].append(r)
    cats = {}
    for cat, rs in by_cat.items():
        xs = [r.cells for r in rs]
        cats[cat] = CategoryModel(
            time_s=_fit(xs, [log.durations_s[r.id] for r in rs]),
            bytes_in=_fit(xs, [float(sum(_size(workdir, f) for f in r.inputs)) for r in rs]),
            bytes_out=_fit(xs, [float(sum(_size(workdir, f) for f in r.outputs)) for r in rs]),
            n_tasks=len(rs))
    return CostModel(cats, source=str(workdir))


# --------------------------------------------------------------------------- simulation

def simulate(rules: list[Rule], model: CostModel, workers: int, cores: int,
             dispatch_rate_hz: float | None = DISPATCH_RATE_HZ,
             bandwidth_gbps: float | None = BANDWIDTH_GBPS,
             local_slots: int | None = None, local_on_workers: bool = False,
             descending: bool = True) -> Result:
    """Discrete-event makespan of ``rules`` on ``workers`` x ``cores``.

    ``dispatch_rate_hz`` / ``bandwidth_gbps`` None: no limit. ``local_on_workers``: LOCAL tasks
    take one core of the workers (makeflow -T local), else ``local_slots`` manager slots
    (None: unlimited). ``descending``: makeflow's dispatch order (highest ready node id first).
    """
    n = len(rules)
    dispatch_s = 0.0 if not dispatch_rate_hz else 1.0 / dispatch_rate_hz
    s_per_byte = 0.0 if not bandwidth_gbps else BITS_PER_BYTE / (bandwidth_gbps * 1e9)

    def cost(r: Rule):
        c = model.categories.get(r.category)
        if c is None:
            return 0.0, 0, 0
        return c.time_s.at(r.cells), int(c.bytes_in.at(r.cells)), int(c.bytes_out.at(r.cells))

    costs = [cost(r) for r in rules]
    need = [1 if r.local else max(1, r.cores) for r in rules]
    on_workers = [(not r.local) or local_on_workers for r in rules]
    remote = [not r.local for r in rules]
    if any(need[i] > cores for i in range(n) if on_workers[i]):
        raise ValueError(f"a task needs more than {cores} cores")
    children: list[list[int]] = [[] for _ in range(n)]
    waiting = [len(r.parents) for r in rules]
    for r in rules:
        for p in r.parents:
            children[p].append(r.id)

    free = [cores] * workers
    wheap = [(-cores, w) for w in range(workers)]  # lazy max-heap of free cores
    local_free = math.inf if local_slots is None else local_slots
    ready: list[int] = []  # tasks for the workers' cores, keyed in dispatch order
    ready_local: list[int] = []  # LOCAL tasks on the manager's slots
    key = (lambda i: -i) if descending else (lambda i: i)

    def make_ready(i: int) -> None:
        heapq.heappush(ready if on_workers[i] else ready_local, key(i))

    for i in range(n):
        if waiting[i] == 0:
            make_ready(i)
    events: list[tuple[float, int, int, int]] = []  # (time, seq, kind, task); kind 0 computed, 1 done
    seq = 0
    dispatch_free = link_free = 0.0
    dispatch_busy = link_busy = core_busy = local_busy = 0.0
    cpu_s = 0.0
    bytes_total = 0
    where = [-1] * n
    start, end = {}, {}
    min_need = min((need[i] for i in range(n) if on_workers[i]), default=1)
    now = 0.0
    done = 0

    def max_free() -> tuple[int, int]:
        while wheap and -wheap[0][0] != free[wheap[0][1]]:
            heapq.heappop(wheap)
        return (-wheap[0][0], wheap[0][1]) if wheap else (0, -1)

    def start_task(i: int) -> None:
        nonlocal seq, dispatch_free, link_free, dispatch_busy, link_busy, cpu_s, bytes_total
        t, bin_, _ = costs[i]
        start[i] = now
        ready_at = now
        if remote[i]:
            ds = max(now, dispatch_free)
            dispatch_free = ds + dispatch_s
            dispatch_busy += dispatch_s
            ls = max(dispatch_free, link_free)
            link_free = ls + bin_ * s_per_byte
            link_busy += bin_ * s_per_byte
            bytes_total += bin_
            ready_at = link_free
        cpu_s += need[i] * t
        seq += 1
        heapq.heappush(events, (ready_at + t, seq, 0, i))

    def schedule() -> None:
        nonlocal local_free
        while ready_local and local_free >= 1:  # LOCAL tasks on the manager's slots
            local_free -= 1
            start_task(key(heapq.heappop(ready_local)))
        skipped = []
        while ready:  # in makeflow's order, each on the worker with the most free cores
            mf, w = max_free()
            if mf < min_need:
                break
            i = key(heapq.heappop(ready))
            if mf < need[i]:
                skipped.append(i)
                continue
            free[w] -= need[i]
            heapq.heappush(wheap, (-free[w], w))
            where[i] = w
            start_task(i)
        for i in skipped:
            heapq.heappush(ready, key(i))

    schedule()
    while events:
        now, _, kind, i = heapq.heappop(events)
        if kind == 0:
            if remote[i]:
                bout = costs[i][2]
                os_ = max(now, link_free)
                link_free = os_ + bout * s_per_byte
                link_busy += bout * s_per_byte
                bytes_total += bout
                seq += 1
                heapq.heappush(events, (link_free, seq, 1, i))
                continue
            kind = 1
        # done
        end[i] = now
        done += 1
        if on_workers[i]:
            w = where[i]
            free[w] += need[i]
            heapq.heappush(wheap, (-free[w], w))
            core_busy += need[i] * (now - start[i])
        else:
            local_free += 1
            local_busy += now - start[i]
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                make_ready(c)
        schedule()
    if done != n:
        raise ValueError(f"{n - done} rules never ran (a cycle, or a task that fits nowhere)")
    makespan = max(end.values(), default=0.0)
    # Critical path as simulated: from the last task, back through the parent that ended last.
    path = []
    i = max(end, key=end.get) if end else None
    while i is not None:
        path.append((i, rules[i].category))
        ps = rules[i].parents
        i = max(ps, key=lambda p: end[p]) if ps else None
    path.reverse()
    util = {}
    if makespan > 0:
        util["workers' cores"] = core_busy / (workers * cores * makespan)
        util["manager dispatch"] = dispatch_busy / makespan
        util["manager link"] = link_busy / makespan
        if local_slots is not None and not local_on_workers:
            util["manager local slots"] = local_busy / (local_slots * makespan) if local_slots else 0.0
    busiest = max(util, key=util.get) if util else ""
    return Result(makespan_s=makespan, critical_path=path, utilisation=util, busiest_resource=busiest,
                  cpu_hours=cpu_s / 3600, bytes_through_manager=bytes_total, n_tasks=n,
                  start_s=start, end_s=end)


# --------------------------------------------------------------------------- CLI

def summarise_path(path: list[tuple[int, str]]) -> str:
    """Runs of the same category: 'cut x1 -> solar-fast x1 -> ...'."""
    runs: list[list] = []
    for _, cat in path:
        if runs and runs[-1][0] == cat:
            runs[-1][1] += 1
        else:
            runs.append([cat, 1])
    return " -> ".join(f"{c} x{k}" for c, k in runs)


def print_result(res: Result) -> None:
    print(f"tasks: {res.n_tasks}")
    print(f"makespan: {res.makespan_s:.2f} s ({res.makespan_s / 3600:.3f} h)")
    print(f"critical path ({len(res.critical_path)} tasks): {summarise_path(res.critical_path)}")
    print("utilisation: " + ", ".join(f"{k} {v:.1%}" for k, v in res.utilisation.items()))
    print(f"busiest resource: {res.busiest_resource} ({res.utilisation.get(res.busiest_resource, 0):.1%})")
    print(f"cpu-hours: {res.cpu_hours:.3f}")
    print(f"bytes through the manager: {res.bytes_through_manager:,}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate", help="fit a cost model from a finished run")
    c.add_argument("workdir")
    c.add_argument("--out", required=True)
    s = sub.add_parser("simulate", help="simulate a workflow with a cost model")
    s.add_argument("workflow_dir")
    s.add_argument("--model", required=True)
    v = sub.add_parser("validate", help="calibrate from a run's log, simulate it, compare")
    v.add_argument("workdir")
    for p in (s, v):
        p.add_argument("--workers", type=int, default=1)
        p.add_argument("--cores", type=int, default=2)
    s.add_argument("--bandwidth-gbps", type=float, default=BANDWIDTH_GBPS, help="0: no limit")
    s.add_argument("--dispatch-rate", type=float, default=DISPATCH_RATE_HZ, help="tasks/s; 0: no limit")
    s.add_argument("--local-slots", type=int, default=None, help="LOCAL tasks at once on the manager")
    s.add_argument("--unscaled", default="", help="categories (comma-separated) that take their calibrated "
                   "mean time and bytes whatever their cells (e.g. reduce,terrain-exchange: they read the "
                   "tiles' perimeters or summaries, not the tiles)")
    # validate: a run on this machine, by default makeflow -T local (no dispatch or link limit,
    # LOCAL tasks on the same cores); --local-slots N for a -T wq run (LOCAL on the manager's N).
    v.add_argument("--bandwidth-gbps", type=float, default=0.0, help="0: no limit")
    v.add_argument("--dispatch-rate", type=float, default=0.0, help="tasks/s; 0: no limit")
    v.add_argument("--local-slots", type=int, default=None,
                   help="a -T wq run: LOCAL tasks on N manager slots (default: on the workers' cores)")
    a = ap.parse_args(argv)
    if a.cmd == "calibrate":
        m = calibrate(a.workdir)
        m.save(a.out)
        for k, cm in m.categories.items():
            print(f"{k}: {cm.n_tasks} tasks, mean {cm.time_s.mean:.3f} s, a {cm.time_s.a:.3f} s, "
                  f"b {cm.time_s.b:.3e} s/cell, in {cm.bytes_in.mean:,.0f} B, out {cm.bytes_out.mean:,.0f} B")
        print(f"wrote {a.out}")
    elif a.cmd == "simulate":
        rules = load_rules(a.workflow_dir)
        unscaled = {c for c in a.unscaled.split(",") if c}
        for r in rules:
            if r.category in unscaled:
                r.cells = None
        missing = sorted({r.category for r in rules} - set(CostModel.load(a.model).categories))
        if missing:
            print(f"not in the model (0 s, 0 bytes): {', '.join(missing)}")
        res = simulate(rules, CostModel.load(a.model), a.workers, a.cores,
                       dispatch_rate_hz=a.dispatch_rate or None, bandwidth_gbps=a.bandwidth_gbps or None,
                       local_slots=a.local_slots)
        print_result(res)
    else:
        m = calibrate(a.workdir)
        log = read_makeflow_log(Path(a.workdir) / "workflow.mf.makeflowlog")
        res = simulate(load_rules(a.workdir), m, a.workers, a.cores,
                       dispatch_rate_hz=a.dispatch_rate or None, bandwidth_gbps=a.bandwidth_gbps or None,
                       local_slots=a.local_slots, local_on_workers=a.local_slots is None)
        print_result(res)
        rel = (res.makespan_s - log.wall_s) / log.wall_s if log.wall_s else float("nan")
        print(f"simulated {res.makespan_s:.2f} s, measured {log.wall_s:.2f} s, difference {rel:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
