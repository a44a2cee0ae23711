"""benchmarks/makespan.py: a hand-computed DAG, dispatch- and link-bound cases, a real planned workflow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli

sys.path.insert(0, str(REPO / "benchmarks"))
from makespan import (CategoryModel, CostModel, Linear, calibrate, load_rules,  # noqa: E402
                      parse_workflow, read_makeflow_log, simulate)

# A diamond (cut -> left, right -> join) and a chain after it (join -> tail).
DIAMOND = """\
EEMT=eemt-flow
.MAKEFLOW CATEGORY cut
.MAKEFLOW CORES 1
a.tif: job.json
\tLOCAL $(EEMT) task cut
.MAKEFLOW CATEGORY left
b.tif: a.tif
\t$(EEMT) task left
.MAKEFLOW CATEGORY right
.MAKEFLOW CORES {right_cores}
.MAKEFLOW MEMORY 500
c.tif: a.tif
\t$(EEMT) task right
.MAKEFLOW CATEGORY join
.MAKEFLOW CORES 1
d.tif: b.tif c.tif
\t$(EEMT) task join
.MAKEFLOW CATEGORY tail
e.tif: d.tif
\t$(EEMT) task tail
"""
TIMES_S = {"cut": 1.0, "left": 2.0, "right": 3.0, "join": 4.0, "tail": 5.0}
NO_LIMIT = dict(dispatch_rate_hz=None, bandwidth_gbps=None)


def _model(times_s, bytes_in=0.0, bytes_out=0.0):
    return CostModel({c: CategoryModel(Linear(0, 0, t), Linear(0, 0, bytes_in), Linear(0, 0, bytes_out))
                      for c, t in times_s.items()})


def _diamond(tmp_path, right_cores=1):
    path = tmp_path / "workflow.mf"
    path.write_text(DIAMOND.format(right_cores=right_cores))
    return parse_workflow(path)


def test_parse_diamond(tmp_path):
    rules = _diamond(tmp_path, right_cores=2)
    assert [r.category for r in rules] == ["cut", "left", "right", "join", "tail"]
    assert [r.cores for r in rules] == [1, 1, 2, 1, 1]
    assert [r.parents for r in rules] == [[], [0], [0], [1, 2], [3]]
    assert [r.local for r in rules] == [True, False, False, False, False]
    assert rules[0].command == "eemt-flow task cut" and rules[2].memory_mb == 500


def test_diamond_one_worker_one_core(tmp_path):
    # 1 core: everything in series, cut on the manager: 1 + 3 + 2 + 4 + 5 = 15 s
    res = simulate(_diamond(tmp_path), _model(TIMES_S), workers=1, cores=1, **NO_LIMIT)
    assert res.makespan_s == pytest.approx(15.0)
    # descending node ids: right (2) runs 1-4, left (1) 4-6: join waits for left
    assert [i for i, _ in res.critical_path] == [0, 1, 3, 4]
    assert res.cpu_hours == pytest.approx((1 + 2 + 3 + 4 + 5) / 3600)  # the manager's LOCAL cut counts


def test_diamond_one_worker_two_cores(tmp_path):
    # 2 cores: left (1-3) and right (1-4) together; join 4-8, tail 8-13: 1 + max(2, 3) + 4 + 5 = 13 s
    res = simulate(_diamond(tmp_path), _model(TIMES_S), workers=1, cores=2, **NO_LIMIT)
    assert res.makespan_s == pytest.approx(13.0)
    assert [c for _, c in res.critical_path] == ["cut", "right", "join", "tail"]
    # cores busy 2 + 3 + 4 + 5 = 14 core-s of 2 cores x 13 s
    assert res.utilisation["workers' cores"] == pytest.approx(14 / 26)
    assert res.busiest_resource == "workers' cores"


def test_diamond_two_core_task_blocks_one_worker(tmp_path):
    # right needs 2 cores: on 1 worker x 2 cores it runs alone (1-4), then left (4-6): 1+3+2+4+5 = 15 s;
    # on 2 workers x 2 cores they overlap again: 1 + 3 + 4 + 5 = 13 s
    rules = _diamond(tmp_path, right_cores=2)
    assert simulate(rules, _model(TIMES_S), workers=1, cores=2, **NO_LIMIT).makespan_s == pytest.approx(15.0)
    assert simulate(rules, _model(TIMES_S), workers=2, cores=2, **NO_LIMIT).makespan_s == pytest.approx(13.0)
    with pytest.raises(ValueError):
        simulate(rules, _model(TIMES_S), workers=4, cores=1, **NO_LIMIT)


def test_diamond_local_on_workers(tmp_path):
    # makeflow -T local -j 1: the LOCAL cut takes the one core as well: still 15 s in series
    res = simulate(_diamond(tmp_path), _model(TIMES_S), workers=1, cores=1, local_on_workers=True, **NO_LIMIT)
    assert res.makespan_s == pytest.approx(15.0)
    assert res.cpu_hours == pytest.approx(15 / 3600)


def _independent(tmp_path, n):
    path = tmp_path / "workflow.mf"
    path.write_text(".MAKEFLOW CATEGORY zero\n.MAKEFLOW CORES 1\n" +
                    "".join(f"f{i}:\n\ttouch f{i}\n" for i in range(n)))
    return parse_workflow(path)


def test_dispatch_rate_bound(tmp_path):
    # 100 zero-second tasks, 1 task/s of dispatch, 10 x 16 cores: the 100th is dispatched in [99, 100]
    # s: makespan = 100 tasks / 1 s^-1 = 100 s, the dispatch resource busy all the time
    res = simulate(_independent(tmp_path, 100), _model({"zero": 0.0}), workers=10, cores=16,
                   dispatch_rate_hz=1.0, bandwidth_gbps=None)
    assert res.makespan_s == pytest.approx(100.0)
    assert res.busiest_resource == "manager dispatch"
    assert res.utilisation["manager dispatch"] == pytest.approx(1.0)


def test_bandwidth_bound(tmp_path):
    # 10 zero-second tasks, each 0.625e9 B in and 0.625e9 B out (5 Gb each way) on a 10 Gb/s link:
    # 0.5 s + 0.5 s per task, serial through the link: 10 x 1 s = 10 s; 12.5e9 B through the manager
    res = simulate(_independent(tmp_path, 10), _model({"zero": 0.0}, 0.625e9, 0.625e9), workers=10, cores=1,
                   dispatch_rate_hz=None, bandwidth_gbps=10.0)
    assert res.makespan_s == pytest.approx(10.0)
    assert res.bytes_through_manager == 12_500_000_000
    assert res.busiest_resource == "manager link"
    # with 68 tasks/s of dispatch on top: the first input starts after 1/68 s, the rest queue behind it
    res = simulate(_independent(tmp_path, 10), _model({"zero": 0.0}, 0.625e9, 0.625e9), workers=10, cores=1,
                   dispatch_rate_hz=68.0, bandwidth_gbps=10.0)
    assert res.makespan_s == pytest.approx(10.0 + 1 / 68)


def test_time_scales_with_cells_and_model_round_trip(tmp_path):
    rules = _independent(tmp_path, 2)
    rules[0].cells, rules[1].cells = 1000, 3000
    m = CostModel({"zero": CategoryModel(Linear(1.0, 0.002, 99.0), Linear(0, 0, 0), Linear(0, 0, 0))})
    m2 = CostModel.load((m.save(tmp_path / "m.json"), tmp_path / "m.json")[1])
    assert m2 == m
    # 1 core: (1 + 0.002 x 1000) + (1 + 0.002 x 3000) = 3 + 7 = 10 s
    assert simulate(rules, m2, 1, 1, **NO_LIMIT).makespan_s == pytest.approx(10.0)


@pytest.fixture(scope="module")
def planned(example_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("mkspan-plan") / "work"
    run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "31,152", "--tile-size", "60",
            "--halo", "300", "--horizon-step", "10")
    return work


def test_parse_real_planned_workflow(planned):
    rules = parse_workflow(planned / "workflow.mf")
    job = json.loads((planned / "job.json").read_text())
    assert len(rules) == job["n_rules"]
    cats = [r.category for r in rules]
    assert cats.count("cut") == len(job["tiles"]) == 4
    assert cats[-1] == "reduce" and rules[-1].local
    assert all(r.local for r in rules if r.category == "cut")
    assert all(not r.local for r in rules if r.category not in ("cut", "reduce"))
    assert all(r.cores == job["threads_per_task"] for r in rules if r.category == "solar-fast")
    # each tile's solar task reads the dem its cut writes; the reducer waits (through its parents) on
    # every solar task
    cut_of = {r.outputs[0]: r.id for r in rules if r.category == "cut"}
    for r in rules:
        if r.category == "solar-fast":
            assert any(cut_of.get(f) in r.parents for f in r.inputs)
    solar = {r.id for r in rules if r.category == "solar-fast"}
    ancestors, todo = set(), list(rules[-1].parents)
    while todo:
        i = todo.pop()
        if i not in ancestors:
            ancestors.add(i)
            todo.extend(rules[i].parents)
    assert solar and solar <= ancestors
    assert ancestors == set(range(len(rules) - 1))  # nothing is left out of the results
    # a tile's tasks have the cells of its halo window (job.json)
    halo_cells = {t["files"]["dem"]: t["halo_height"] * t["halo_width"] for t in job["tiles"]}
    for r in load_rules(planned):
        if r.category == "solar-fast":
            assert r.cells == sum(halo_cells[f] for f in r.inputs if f in halo_cells) > 60 * 60


def test_dispatch_order_is_makeflows(tmp_path):
    # makeflow dispatches the highest ready node id first (the demo run's log: of the 4 ready cuts,
    # nodes 3 and 2 start first on its 2 cores)
    rules = _diamond(tmp_path)
    res = simulate(rules, _model(TIMES_S), workers=1, cores=1, **NO_LIMIT)
    assert (res.start_s[2], res.start_s[1]) == (1.0, 4.0)
    res = simulate(rules, _model(TIMES_S), workers=1, cores=1, descending=False, **NO_LIMIT)
    assert (res.start_s[1], res.start_s[2]) == (1.0, 3.0)


def test_cli_simulate(tmp_path, capsys):
    import makespan
    _diamond(tmp_path)
    _model(TIMES_S).save(tmp_path / "model.json")
    assert makespan.main(["simulate", str(tmp_path), "--model", str(tmp_path / "model.json"),
                          "--workers", "1", "--cores", "2", "--dispatch-rate", "0", "--bandwidth-gbps", "0"]) == 0
    out = capsys.readouterr().out
    assert "makespan: 13.00 s" in out
    assert "cut x1 -> right x1 -> join x1 -> tail x1" in out
