"""The example job through a real Slurm: Makeflow's Slurm batch system, and Work Queue
workers submitted as Slurm jobs by ``eemt-flow workers``; refused submissions and failing
tasks. The cluster (munged, slurmctld, slurmd) is started by tests/slurm_cluster.py."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import EEMT, REPO, cli_env, free_port, read_raster, run_cli
from eemt_flow.workflow.execute import read_progress
from eemt_flow.workflow.local_fit import declared_categories
from slurm_cluster import SlurmCluster

# The example job (examples/job.yaml: 4 tiles, station normals, EEMT-TRAD and -TOPO) made
# quick: one day per month (EEMT needs every month), hourly steps, 24 horizon directions.
DAYS = ",".join(str(15 + 30 * i) for i in range(12))
BASE_JOB = [REPO / "examples" / "job.yaml", "--days", DAYS, "--step-minutes", "60", "--horizon-step", "15"]
# two threads (CORES 2) for the solar tasks, one for the EEMT tasks: two sizes for Slurm to see
JOB = [*BASE_JOB, "--threads-per-task", "2"]
N_TILES = 4
SOLAR = [f"results/solar/monthly/{v}_{m:02d}.tif" for v in ("glob_rad", "flat_glob_rad", "insol_time")
         for m in range(1, 13)]
EEMT_MAPS = [f"results/eemt/EEMT_{model}_normals.tif" for model in ("TRAD", "TOPO")]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()
    for name, proc in cluster.procs.items():
        assert proc.poll() is not None, f"{name} still running after stop()"


@pytest.fixture(scope="module")
def dem(tmp_path_factory):
    path = tmp_path_factory.mktemp("dem") / "example_dem.tif"
    run_cli("example-dem", path)
    return path


@pytest.fixture(scope="module")
def local_run(dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("local") / "run"
    run_cli("run", *JOB, "--dem", dem, "--workdir", work, "--quiet")
    return work


def assert_same_results(work: Path, reference: Path):
    for rel in SOLAR + EEMT_MAPS:
        a, b = read_raster(work / rel), read_raster(reference / rel)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=rel)
        assert np.isfinite(a).sum() > 10_000, rel  # 120 x 120 cells less the nodata corner
        np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True, err_msg=rel)


def declared_resources(workflow: Path) -> dict[str, tuple[int, int]]:
    """CATEGORY -> (CORES, MEMORY MB) as the Makeflow file declares them."""
    return {name: (d.cores, d.memory_mb) for name, d in declared_categories(workflow.read_text()).items()}


def rule_categories(workflow: Path) -> tuple[list[str], list[str]]:
    """The categories of the rules that go to the batch system, and of those that run on the
    manager (LOCAL: the tiles' cuts and the reducer), read from the Makeflow file."""
    remote, local, category = [], [], None
    for line in workflow.read_text().splitlines():
        if m := re.match(r"\.MAKEFLOW CATEGORY (\S+)", line):
            category = m.group(1)
        elif line.startswith("\t"):
            (local if line.strip().startswith("LOCAL ") else remote).append(category)
    return remote, local


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def jobs_in(slurm: SlurmCluster, workdir: Path) -> list[dict]:
    return [j for j in slurm.finished_jobs() if j["workdir"] == str(workdir)]


def test_makeflow_on_slurm_equals_local_and_every_rule_asks_its_resources(slurm, dem, local_run, tmp_path):
    work = tmp_path / "run"
    start = time.monotonic()
    run_cli("run", *JOB, "--dem", dem, "--workdir", work, "--executor", "slurm", "--quiet", env=slurm.env,
            timeout=600)
    elapsed_s = time.monotonic() - start
    assert_same_results(work, local_run)
    remote, local = rule_categories(work / "workflow.mf")
    # on the manager: the 4 tiles' cuts and the reducer's summary; on Slurm: per tile the solar task and
    # the EEMT task, the tiled terrain's 6 stages (each one task for its block of all 4 tiles: blocks of up
    # to 16,000,000 cells, stages.terrain_block_tiles), the terrain's 3 exchanges (the flat one in its own
    # category: it alone still holds every tile's crossing cells) and 1 reduction, and
    # the reducer's 28 map groups (12 months' solar maps, the total, the sky view factor, the
    # terrain layers, the annual EEMT maps and 12 months of them)
    assert collections.Counter(local) == {"cut": N_TILES, "reduce": 1}
    assert collections.Counter(remote) == {"solar-fast": N_TILES, "eemt": N_TILES, "terrain": 6,
                                           "terrain-exchange": 3, "terrain-flats": 1, "reduce-maps": 28}
    n_rules = len(remote) + len(local)
    progress = read_progress(work)
    assert (progress.state, progress.done, progress.total) == ("complete", n_rules, n_rules)

    # Every task ran as a Slurm job that asked for its category's CORES and MEMORY.
    declared = declared_resources(work / "workflow.mf")
    assert declared["solar-fast"][0] == 2 and declared["eemt"][0] == 1  # --threads-per-task 2
    expected = collections.Counter(declared[c] for c in remote)
    wait_for(lambda: len(jobs_in(slurm, work)) >= len(remote), 30, "the jobs' completion records")
    jobs = jobs_in(slurm, work)
    assert collections.Counter((j["cpus"], j["mem_mb"]) for j in jobs) == expected
    assert all(j["state"] == "COMPLETED" for j in jobs)
    # each task's output went to its own log, named by its Slurm job id
    for j in jobs:
        assert (work / "logs" / "tasks" / f"slurm-{j['id']}.log").exists()
    print(f"makeflow -T slurm: {elapsed_s:.1f} s for {n_rules} rules")


def test_manager_job_script_from_the_docs(slurm, dem, local_run, tmp_path):
    """examples/eemt-manager.sbatch (the script docs/hpc.md shows) submitted with sbatch: the
    manager runs as a one-core Slurm job and submits the tasks beside it on the same node."""
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in ("job.yaml", "station_normals.csv"):
        shutil.copy(REPO / "examples" / name, shared / name)
    script = REPO / "examples" / "eemt-manager.sbatch"
    assert script.read_text() in (REPO / "docs" / "hpc.md").read_text(), "docs/hpc.md shows another script"
    env = {**cli_env(), **slurm.env, "EEMT_VENV": str(Path(EEMT).parents[1]),
           "EEMT_BATCH_OPTIONS": "--partition=debug --time=00:10:00"}
    submitted = subprocess.run(["sbatch", "--parsable", "--chdir", str(shared), str(script), "--dem", str(dem),
                                *map(str, BASE_JOB[1:])], env=env, capture_output=True, text=True, check=True)
    manager_id = int(submitted.stdout.strip().split(";")[0])
    wait_for(lambda: any(j["id"] == manager_id for j in slurm.finished_jobs()), 400, "the manager job to end", 1)
    manager = next(j for j in slurm.finished_jobs() if j["id"] == manager_id)
    log = (shared / f"eemt-manager-{manager_id}.log").read_text()
    assert manager["state"] == "COMPLETED", log
    assert (manager["cpus"], manager["mem_mb"]) == (1, 4096)
    assert str(shared / "run" / "results" / "summary.json") in log
    assert_same_results(shared / "run", local_run)
    tasks = jobs_in(slurm, shared / "run")
    remote, _ = rule_categories(shared / "run" / "workflow.mf")
    assert len(tasks) == len(remote) and all(j["state"] == "COMPLETED" for j in tasks)


@pytest.mark.parametrize("batch_options, scheduler_says", [
    ("--partition=nosuch", "invalid partition specified: nosuch"),
    ("--no-such-option", "unrecognized option '--no-such-option'"),
])
def test_refused_submissions_fail_within_a_minute(slurm, dem, tmp_path, batch_options, scheduler_says):
    work = tmp_path / "run"
    start = time.monotonic()
    proc = run_cli("run", *JOB, "--dem", dem, "--workdir", work, "--executor", "slurm", "--batch-options",
                   batch_options, "--quiet", env=slurm.env, check=False, timeout=120)
    elapsed_s = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert elapsed_s < 60, f"took {elapsed_s:.0f} s"
    assert scheduler_says in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not slurm.queue()
    assert not (work / "results" / "summary.json").exists()


def test_failing_task_is_named_with_its_log_and_the_fixed_run_resumes(slurm, dem, local_run, tmp_path):
    work = tmp_path / "run"
    args = ["run", *JOB, "--dem", dem, "--workdir", work, "--executor", "slurm", "--quiet"]
    run_cli("plan", *args[1:], env=slurm.env)
    # tile t0001's solar task is sent to write its months under a file (job.json), where no
    # directory can be made; every other task of the job reads and writes its usual files
    job_file = work / "job.json"
    good = job_file.read_text()
    job = json.loads(good)
    solar = job["tiles"][1]["files"]["solar"]
    job["tiles"][1]["files"]["solar"] = {m: f"job.json/{Path(f).name}" for m, f in solar.items()}
    job_file.write_text(json.dumps(job))

    first = run_cli(*args, env=slurm.env, check=False, timeout=600)
    assert first.returncode == 1, first.stderr
    assert "task failed (exit code 1): eemt-flow task solar-fast --job job.json --tile t0001" in first.stderr
    log = re.search(r"its log, (\S+):", first.stderr).group(1)
    assert re.fullmatch(rf"{re.escape(str(work))}/logs/tasks/slurm-\d+\.log", log)
    # the task's own traceback, from its Slurm log, shown to the user
    assert "| " in first.stderr and "FileExistsError: [Errno 17] File exists: 'job.json'" in first.stderr
    assert not (work / "tiles" / "t0001" / "solar_m01.tif").exists()
    done_before = read_progress(work).done
    assert 0 < done_before < read_progress(work).total
    kept = {p: p.stat().st_mtime_ns for p in (work / "tiles").rglob("solar_m*.tif")}
    jobs_before = len(jobs_in(slurm, work))
    total = read_progress(work).total
    cuts_left = sum(not (work / "tiles" / f"t{i:04d}" / "dem.tif").exists() for i in range(N_TILES))

    job_file.write_text(good)
    second = run_cli(*args, env=slurm.env, timeout=600)
    assert "task failed" not in second.stderr
    assert read_progress(work).state == "complete"
    for path, mtime in kept.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    # the resumed run submitted to Slurm only what was not done: the failed tile's solar
    # task and the EEMT tasks still to do (the reducer and any cut left run on the manager)
    to_slurm = total - done_before - 1 - cuts_left
    wait_for(lambda: len(jobs_in(slurm, work)) - jobs_before >= to_slurm, 30, "job records")
    assert len(jobs_in(slurm, work)) - jobs_before == to_slurm
    assert_same_results(work, local_run)


def _processes(keep=lambda proc: True) -> list[str]:
    """The command lines of the living processes for which ``keep(/proc/PID)`` is true."""
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if keep(proc):
                    lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return lines


def _processes_in(directory: Path) -> list[str]:
    """The command lines of the processes whose program or working directory is in ``directory``."""
    def inside(proc: Path) -> bool:
        paths = [Path(os.readlink(proc / "exe")), Path(os.readlink(proc / "cwd"))]
        return any(p == directory or directory in p.parents for p in paths)
    return _processes(inside)


def test_work_queue_workers_as_slurm_jobs(slurm, dem, local_run, tmp_path):
    password = "wq-test-password-7f3a"
    pw = tmp_path / "wq.password"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    port = free_port()
    work = tmp_path / "run"
    env = {**cli_env(), **slurm.env}
    max_workers, worker_memory_mb = 2, 1500
    # one-core workers: the job's tasks ask for one core each (the default on Work Queue)
    manager = subprocess.Popen([EEMT, "run", *map(str, BASE_JOB), "--dem", str(dem), "--workdir", str(work),
                                "--executor", "wq", "--port", str(port), "--password-file", str(pw), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    factory = None
    factory_log = tmp_path / "factory.log"
    samples = []
    try:
        wait_for(lambda: (work / "workflow.mf.makeflowlog").exists(), 120, "the manager to start its workflow")
        factory = subprocess.Popen([EEMT, "workers", "--batch", "slurm", "--max", str(max_workers), "--cores", "1",
                                    "--memory", str(worker_memory_mb), "--idle-timeout", "10", "--password-file",
                                    str(pw), "--scratch-dir", str(tmp_path / "factory"), f"127.0.0.1:{port}"],
                                   stdout=factory_log.open("w"), stderr=subprocess.STDOUT, text=True, env=env,
                                   start_new_session=True)
        deadline = time.monotonic() + 300
        while manager.poll() is None and time.monotonic() < deadline:
            samples.append(len(slurm.queue()))
            assert not any(password in line for line in _processes()), "the password is on a command line"
            time.sleep(1)
        assert manager.poll() is not None, "the manager did not finish within 300 s"
        out, err = manager.communicate(timeout=60)
        assert manager.returncode == 0, err
        assert_same_results(work, local_run)
        # idle workers leave by themselves while the factory still runs: nothing left in Slurm. A
        # worker exits 10 s (--idle-timeout) after its last task or after the manager has gone;
        # one the factory submitted in its last 30 s cycle may first have to start. Workers that
        # looked for the manager in its status catalog, gone with the manager, never ended.
        ended = time.monotonic()
        while (queue := slurm.queue()) and time.monotonic() - ended < 180:
            time.sleep(1)
        print(f"the workers' Slurm jobs ended {time.monotonic() - ended:.0f} s after the manager")
        assert not queue, f"the idle workers' Slurm jobs still queued 180 s after the manager: {queue}; " \
                          f"factory: {factory_log.read_text()[-2000:]}"
        assert factory.poll() is None, factory_log.read_text()
    finally:
        for proc in (manager, factory):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the factory removes the worker jobs it still has
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert 1 <= max(samples) <= max_workers, samples
    workers = [j for j in slurm.finished_jobs() if j["workdir"] == str(tmp_path / "factory")]
    assert 1 <= len(workers)
    assert all((j["cpus"], j["mem_mb"]) == (1, worker_memory_mb) for j in workers), workers
    assert not slurm.queue()
    # and no worker process is left behind its job (the jobs run in the factory's scratch directory)
    left = _processes_in(tmp_path / "factory")
    assert not left, f"processes outlived their Slurm jobs: {left}"
    # the workers authenticated with the file the factory copied, not with a command-line password
    assert (tmp_path / "factory" / "pwfile").read_text().strip() == password
