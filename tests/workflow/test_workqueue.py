"""Work Queue and resume: real makeflow -T wq, real work_queue_worker on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import EEMT, cli_env, free_port, read_raster, run_cli
from eemt_flow.workflow.execute import read_progress

# 4 tiles x 3 months = 12 solar tasks + 4 terrain tasks + 4 cuts (LOCAL) + the reducer's 5 map
# groups (3 months' solar maps, the total, the sky view factor) and its summary (LOCAL) = 26 rules
JOB = ["--days", "1,2,32,33,60,61", "--tile-size", "60", "--halo", "300", "--horizon-step", "10", "--keep-daily",
       "--engine", "grass"]
N_RULES = 26
MONTHLY = [f"results/solar/monthly/{v}_{m:02d}.tif" for v in ("glob_rad", "flat_glob_rad", "insol_time")
           for m in (1, 2, 3)]


def _env():
    return cli_env()


@pytest.fixture(scope="module")
def local_run(example_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("local") / "work"
    run_cli("run", "--dem", example_dem, "--workdir", work, "--quiet", *JOB)
    return work


@pytest.fixture
def password(tmp_path):
    path = tmp_path / "wq.password"
    path.write_text("test-password-not-a-secret\n")
    path.chmod(0o600)
    return path


def start_worker(port, password, tmp_path, name):
    scratch = tmp_path / f"worker-{name}"
    scratch.mkdir()
    return subprocess.Popen([EEMT, "worker", f"127.0.0.1:{port}", "--password-file", str(password), "--cores", "1",
                             "--idle-timeout", "120", "--workdir", str(scratch)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)


def start_manager(example_dem, work, port, password):
    return subprocess.Popen([EEMT, "run", "--dem", str(example_dem), "--workdir", str(work), "--executor", "wq",
                             "--port", str(port), "--password-file", str(password), "--quiet", *JOB],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_same_results(work, reference):
    for rel in MONTHLY:
        a, b = read_raster(work / rel), read_raster(reference / rel)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True, err_msg=rel)


def wait_for(predicate, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_wq_two_workers_same_as_local(example_dem, local_run, tmp_path, password):
    port = free_port()
    work = tmp_path / "work"
    manager = start_manager(example_dem, work, port, password)
    workers = [start_worker(port, password, tmp_path, n) for n in ("a", "b")]
    try:
        out, err = manager.communicate(timeout=600)
        assert manager.returncode == 0, err
    finally:
        for w in workers:
            stop(w)
    assert_same_results(work, local_run)
    progress = read_progress(work)
    assert (progress.state, progress.done, progress.total) == ("complete", N_RULES, N_RULES)
    # both workers ran tasks: each sandbox saw a task directory
    for name in ("a", "b"):
        assert any((tmp_path / f"worker-{name}").rglob("*")), f"worker {name} never ran a task"


def test_wq_worker_killed_mid_run(example_dem, local_run, tmp_path, password):
    port = free_port()
    work = tmp_path / "work"
    manager = start_manager(example_dem, work, port, password)
    victim = start_worker(port, password, tmp_path, "victim")
    survivor = start_worker(port, password, tmp_path, "survivor")
    try:
        wait_for(lambda: (work / "workflow.mf.makeflowlog").exists() and read_progress(work).done >= 2, 300,
                 "two finished tasks")
        stop(victim)  # SIGKILL: its running task is lost and must be redone elsewhere
        out, err = manager.communicate(timeout=600)
        assert manager.returncode == 0, err
    finally:
        stop(victim)
        stop(survivor)
    assert_same_results(work, local_run)
    assert read_progress(work).state == "complete"


def test_interrupted_run_resumes(example_dem, local_run, tmp_path):
    work = tmp_path / "work"
    args = [EEMT, "run", "--dem", str(example_dem), "--workdir", str(work), "--jobs", "1", "--quiet", *JOB]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    wait_for(lambda: (work / "workflow.mf.makeflowlog").exists() and read_progress(work).done >= 3, 300,
             "three finished tasks")
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=180)
    assert first.returncode != 0
    assert "run the same command again to resume" in err
    before = read_progress(work)
    assert 3 <= before.done < N_RULES
    assert not (work / "results" / "summary.json").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in (work / "tiles").rglob("*.tif") if "solar_m" in p.name or "terrain" in p.name}

    second = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=600)
    assert second.returncode == 0, second.stderr
    assert read_progress(work).state == "complete"
    # finished outputs were not recomputed
    for path, mtime in mtimes.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    # makeflow submitted only what was not done in the first run
    log = (work / "logs" / "makeflow.out").read_text()
    second_part = log.rsplit("$ ", 1)[1]
    submitted = len(re.findall(r"^submitting job", second_part, flags=re.M))
    assert submitted <= N_RULES - before.done
    assert_same_results(work, local_run)
