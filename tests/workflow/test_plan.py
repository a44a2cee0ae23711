"""Planning: the rendered Makeflow file, batch systems, job files, months and tiles."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import run_cli
from eemt_flow.solar.parameters import format_days, parse_days
from eemt_flow.workflow.execute import makeflow_command
from eemt_flow.workflow.layout import months_of
from eemt_flow.workflow.spec import build_spec


def test_days_parsing():
    assert parse_days("1-3,172,170-171") == [1, 2, 3, 170, 171, 172]
    assert format_days([1, 2, 3, 170, 171, 172]) == "1-3,170-172"
    assert len(parse_days("1-365")) == 365


def test_months_of_days_may_includes_151():
    # May is DOY 121-151 of a non-leap year (the previous implementation lost day 151)
    months = months_of(list(range(1, 366)))
    assert months[5] == list(range(121, 152))
    assert months[6][0] == 152
    assert sum(len(d) for d in months.values()) == 365


def test_step_minutes_become_decimal_hours(example_dem):
    # r.sun's step is decimal hours: 3 min = 0.05 h, 15 min = 0.25 h
    assert build_spec({"dem": example_dem, "step_minutes": 3}).step_hours == pytest.approx(0.05)
    assert build_spec({"dem": example_dem}).step_hours == pytest.approx(0.25)


@pytest.fixture(scope="module")
def planned(example_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("plan") / "work"
    run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "31,32,151,152", "--tile-size", "60",
            "--halo", "300", "--horizon-step", "2", "--keep-daily", "--engine", "grass")
    return work


def test_plan_writes_workdir_without_running(planned, example_dem):
    job = json.loads((planned / "job.json").read_text())
    assert len(job["tiles"]) == 4  # 120 x 120 example in tiles of 60
    assert job["months"] == {"01": [31], "02": [32], "05": [151], "06": [152]}
    # the planner copies no DEM: each tile's window is cut by its own rule, on the manager
    assert not (planned / "inputs").exists()
    for t in job["tiles"]:
        assert not (planned / t["files"]["dem"]).exists()
        assert not (planned / t["files"]["terrain"]).exists()
    assert job["dem"]["path"] == str(example_dem.resolve())
    assert job["dem"]["fingerprint"]["size_bytes"] == example_dem.stat().st_size
    assert not (planned / "results").exists()
    assert not (planned / "workflow.mf.makeflowlog").exists()


def test_rules_name_all_inputs_and_outputs(planned):
    text = (planned / "workflow.mf").read_text()
    rules = re.findall(r"^(\S[^:\n]*): ([^\n]*)\n\t([^\n]+)$", text, flags=re.M)
    rules = [r for r in rules if not r[0].startswith(("#", ".", "EEMT"))]
    # 4 cuts + 4 terrain + 4 tiles x 4 months solar + the reducer's 6 map groups (4 months' solar
    # maps, the total's quick look, the sky view factor) + its summary
    assert len(rules) == 4 + 4 + 16 + 6 + 1
    assert json.loads((planned / "job.json").read_text())["n_rules"] == len(rules)
    for outputs, inputs, command in rules:
        # every file the command names is declared: inputs after --dem/--terrain/--horizons, outputs after --*-out
        for flag, declared in (("--dem", inputs), ("--terrain", inputs), ("--horizons", inputs),
                               ("--out", outputs), ("--daily-out", outputs), ("--terrain-out", outputs),
                               ("--horizons-out", outputs)):
            m = re.search(rf"{flag} (\S+)", command)
            if m:
                assert m.group(1) in declared.split(), (flag, m.group(1), declared)
    cuts = [r for r in rules if "task cut-dem" in r[2]]
    assert len(cuts) == 4 and all(r[2].startswith("LOCAL ") and r[1] == "job.json" for r in cuts)
    for category in ("cut", "terrain", "solar", "reduce-maps", "reduce"):
        block = text.split(f".MAKEFLOW CATEGORY {category}")[1]
        for resource in ("CORES", "MEMORY", "DISK"):
            assert re.search(rf"^\.MAKEFLOW {resource} \d+$", block, flags=re.M), (category, resource)
    assert "LOCAL $(EEMT) task reduce" in text


def test_workflow_passes_makeflow_syntax_check(planned):
    proc = subprocess.run(["makeflow_analyze", "-k", "workflow.mf"], cwd=planned, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Syntax OK" in proc.stdout


@pytest.mark.parametrize("executor, expected", [
    ("local", ["-T", "local", "-j", "3"]),
    # Slurm: each task's output in its own log, before the user's options so theirs win
    ("slurm", ["-T", "slurm", "-S", "30", "-B", "--output=logs/tasks/slurm-%j.log --error=logs/tasks/slurm-%j.log "
               "--partition=normal --time=02:00:00"]),
    ("condor", ["-T", "condor", "-S", "30", "-B", "--partition=normal --time=02:00:00"]),
    ("sge", ["-T", "sge", "-S", "30", "-B", "--partition=normal --time=02:00:00"]),
])
def test_batch_systems_render(planned, example_dem, executor, expected):
    values = {"dem": example_dem, "workdir": planned, "executor": executor, "jobs": 3}
    if executor != "local":
        values["batch_options"] = "--partition=normal --time=02:00:00"
        values.pop("jobs")
    cmd = makeflow_command(build_spec(values), planned)
    assert cmd[0] == shutil.which("makeflow")
    assert cmd[1:-2] == expected
    # the log names each rule's category, for the service's metrics (eemt_flow.workflow.tasklog)
    assert cmd[-2:] == ["--log-verbose", "workflow.mf"]


def test_wq_command_uses_password_file(planned, example_dem, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    cmd = makeflow_command(build_spec({"dem": example_dem, "workdir": planned, "executor": "wq", "port": 9200,
                                       "password_file": pw}), planned)
    assert cmd[1:7] == ["-T", "wq", "-p", "9200", "--password", str(pw)]
    # the manager reports its queue to its status catalog on port 9200 + 1 (eemt-flow workers)
    assert cmd[7:11] == ["-N", "eemt-flow-9200", "-C", f"{socket.gethostname()}:9201"]
    assert "s3cret" not in " ".join(cmd)


def test_yaml_job_file_and_flag_override(example_dem, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {example_dem}\ndays: 1-3\nstep_minutes: 30\ntile_size: 60\nhalo: 300\nhorizon_step: 10\n")
    run_cli("plan", job, "--workdir", tmp_path / "w", "--step-minutes", "10")
    params = json.loads((tmp_path / "w" / "job.json").read_text())["parameters"]
    assert params["days"] == "1-3"
    assert params["step_minutes"] == 10  # the flag wins over the file's 30
    assert params["tile_size_cells"] == 60 and params["halo_m"] == 300


def test_auto_halo_from_relief(example_dem, tmp_path):
    run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--days", "1", "--horizon-step", "10")
    job = json.loads((tmp_path / "w" / "job.json").read_text())
    relief = job["grid"]["relief_m"]
    # relief / tan(5°) rounded up to whole 30 m cells, e.g. 500 m / 0.0874887 = 5715 m -> 5730 m
    expected = min(relief / 0.08748866352592401, 10_000)
    assert expected <= job["halo_m"] < expected + 30
    assert job["halo_source"].startswith("auto")


def test_status_command(planned):
    proc = run_cli("status", planned)
    assert proc.stdout.strip() == "planned: 0/31 tasks done"  # 4 cuts + 4 terrain + 16 solar + 6 + 1 reducer


def test_local_fast_tasks_share_the_cores_among_the_tiles(example_dem, tmp_path):
    """Locally, a fast task's threads are the machine's cores (at most 8) shared among the tiles:
    one thread a task once there are as many tiles as cores, all of them for a single tile."""
    cores = min(os.cpu_count() or 1, 8)

    def cores_declared(name, *args):
        run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / name, "--days", "1-3", "--halo", "300", *args)
        job = json.loads((tmp_path / name / "job.json").read_text())
        block = (tmp_path / name / "workflow.mf").read_text().split(".MAKEFLOW CATEGORY solar-fast")[1]
        return len(job["tiles"]), job["threads_per_task"], int(re.search(r"\.MAKEFLOW CORES (\d+)", block).group(1))

    # the example DEM is 120 x 120 cells: 20-cell tiles make 36 of them, more than 8 cores
    n_tiles, threads, declared = cores_declared("many", "--tile-size", "20")
    assert n_tiles == 36 and threads == declared == 1
    n_tiles, threads, declared = cores_declared("one", "--tile-size", "120")
    assert n_tiles == 1 and threads == declared == cores


def test_fast_engine_cores_fit_remote_workers(example_dem, tmp_path):
    # one task per tile; on Work Queue a task may not ask for more cores than a 1-core worker has
    run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "wq", "--days", "1-3", "--executor", "wq",
            "--tile-size", "60", "--halo", "300")
    text = (tmp_path / "wq" / "workflow.mf").read_text()
    block = text.split(".MAKEFLOW CATEGORY solar-fast")[1].split(".MAKEFLOW CATEGORY")[0]
    assert ".MAKEFLOW CORES 1\n" in block
    assert text.count("task solar-fast --job job.json --tile t") == 4
    run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "local", "--days", "1-3", "--threads-per-task", "2",
            "--tile-size", "60", "--halo", "300")
    assert ".MAKEFLOW CORES 2\n" in (tmp_path / "local" / "workflow.mf").read_text()
    job = json.loads((tmp_path / "local" / "job.json").read_text())
    # one cut and one fast task per tile + the reducer: 3 map groups (January, the total, the sky
    # view factor) and the summary
    assert job["n_rules"] == 4 + 4 + 3 + 1


def test_both_engines_declare_the_sky_view_factor(example_dem, planned, tmp_path):
    """Each tile's sky view factor comes from the horizons its tasks compute: the fast engine's
    solar task, the GRASS engine's terrain task (from r.horizon's maps). The reducer reads them
    and mosaics results/terrain/sky_view_factor.tif."""
    run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "fast", "--days", "1-3", "--tile-size", "60",
            "--halo", "300")
    for workdir, task in ((tmp_path / "fast", "task solar-fast --job job.json --tile {name}"),
                          (planned, "task terrain --dem tiles/{name}/dem.tif")):
        job = json.loads((workdir / "job.json").read_text())
        assert "results/terrain/sky_view_factor.tif" in job["results"]
        text = (workdir / "workflow.mf").read_text()
        rules = re.findall(r"^(\S[^:\n]*): ([^\n]*)\n\t([^\n]+)$", text, flags=re.M)
        (reduce_rule,) = [r for r in rules if "task reduce-maps --job job.json --group sky_view" in r[2]]
        assert "results/terrain/sky_view_factor.tif" in reduce_rule[0].split()
        for t in job["tiles"]:
            svf = t["files"]["sky_view"]
            assert svf == f"tiles/{t['name']}/sky_view_factor.tif"
            (rule,) = [r for r in rules if task.format(name=t["name"]) in r[2]]
            assert svf in rule[0].split()
            assert svf in reduce_rule[1].split()


def test_a_work_directory_of_an_earlier_version_resumes(example_dem, tmp_path):
    """A job planned before --results existed (its parameters lack results and
    results_block_cells) is the same job when they take their defaults, and another job when not."""
    args = ["plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--days", "172", "--horizon-step", "30"]
    run_cli(*args)
    path = tmp_path / "w" / "job.json"
    job = json.loads(path.read_text())
    assert (job["parameters"]["results"], job["parameters"]["results_block_cells"]) == ("auto", None)
    del job["parameters"]["results"], job["parameters"]["results_block_cells"]
    path.write_text(json.dumps(job))
    assert run_cli(*args).stdout.startswith("already planned: ")
    assert json.loads(path.read_text()) == job  # kept, not planned again
    proc = run_cli(*args, "--results", "vrt", check=False)
    assert proc.returncode != 0 and "holds a different job" in proc.stderr
