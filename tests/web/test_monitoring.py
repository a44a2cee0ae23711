"""Monitoring: the metrics' sources, the alerting rules (promtool) and the console dashboard.

Real components throughout: makeflow writes the logs the task metrics come from, SQLite holds
the store, Debian's promtool checks and unit-tests ``monitoring/alerts.yml`` (every alert is
shown to fire and to stay quiet; a broken alert must make those tests fail), and Debian's
prometheus serves the console templates. The containers' monitoring profile is tested in
tests/test_containers.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, free_port
from eemt_flow.web.metrics import TASK_DURATION_BUCKETS_S, metrics_registry
from eemt_flow.web.runner import DataDir, ExecutorSettings
from eemt_flow.web.store import JobStore
from eemt_flow.workflow.tasklog import TaskAttempt, task_attempts, template_categories

MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERT_TESTS = MONITORING / "alerts_test.yml"
#: Names of the rule files' copies in tmp_path: no "alert" in them, since tests/web/test_web_api.py
#: checks that no file of the session's temporary tree has one (an uploaded file name).
RULES_COPY, RULE_TESTS_COPY = "rules.yml", "rules_test.yml"
#: The issue's four alerts, and one for the scrape itself (without it none of them can fire).
ALERT_NAMES = {"EemtJobStuck", "EemtWorkersMissing", "EemtTasksFailed", "EemtDataVolumeFull", "EemtServiceDown"}


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing (Debian package prometheus): run scripts/bootstrap.sh"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


# -- task attempts from Makeflow logs ---------------------------------------------------------

#: A hand-written log (times in µs): node 0 terrain done in 4 s; node 1 solar fails after 6 s,
#: is retried, aborted with the workflow at 1012 s, and done in 30 s when the workflow
#: resumes; node 3 eemt is started twice with no end logged between (the first attempt was
#: lost), then done 5 s after its second start; node 2 reduce still runs; one line cut short.
HAND_LOG = """\
# NODE\t0\teemt-flow task terrain
# CATEGORY\t0\tterrain
# CATEGORY\t1\tsolar
# CATEGORY\t2\treduce
# CATEGORY\t3\teemt
# STARTED 1000000000
1000000000 0 1 11 3 1 0 0 0 4
1004000000 0 2 11 3 0 1 0 0 4
1004100000 1 1 12 2 1 1 0 0 4
1005000000 3 1 16 1 2 1 0 0 4
1010100000 1 3 12 1 1 1 1 0 4
1010200000 1 0 12 2 1 1 0 0 4
1010300000 1 1 13 1 2 1 0 0 4
1012000000 1 4 13 1 1 1 0 1 4
# ABORTED 1012000000
# STARTED 1099000000
1020000000 3 1 17 1 2 1 0 0 4
1025000000 3 2 17 1 1 2 0 0 4
1100000000 1 1 14 1 1 2 0 0 4
1130000000 1 2 14 1 0 3 0 0 4
1130500000 2 1 15 0 1 3 0 0 4
11310
"""


def test_task_attempts_from_a_hand_written_log(tmp_path):
    log = tmp_path / "workflow.mf.makeflowlog"
    log.write_text(HAND_LOG)
    got = {(a.node_id, a.attempt): a for a in task_attempts(log)}
    want = [
        TaskAttempt(0, 1, "terrain", "done", 1000.0, 1004.0),      # 1004 - 1000 = 4 s
        TaskAttempt(1, 1, "solar", "failed", 1004.1, 1010.1),      # 6 s, then back to waiting
        TaskAttempt(1, 2, "solar", "aborted", 1010.3, 1012.0),
        TaskAttempt(1, 3, "solar", "done", 1100.0, 1130.0),        # 30 s
        TaskAttempt(3, 1, "eemt", "aborted", 1005.0, 1020.0),      # started again at 1020 with no end
        TaskAttempt(3, 2, "eemt", "done", 1020.0, 1025.0),         # 5 s
        TaskAttempt(2, 1, "reduce", "running", 1130.5, None),
    ]
    assert set(got) == {(a.node_id, a.attempt) for a in want}
    for a in want:
        g = got[a.node_id, a.attempt]
        assert (g.category, g.outcome) == (a.category, a.outcome), g
        assert g.started_s == pytest.approx(a.started_s, abs=1e-6)
        assert (g.finished_s is None) == (a.finished_s is None)
        if a.finished_s is not None:
            assert g.finished_s == pytest.approx(a.finished_s, abs=1e-6)
    assert task_attempts(tmp_path / "no-such.makeflowlog") == []


def test_task_attempts_from_a_real_makeflow_run(tmp_path):
    """makeflow --log-verbose (as eemt-flow runs it) names each rule's category; a rule that
    fails once is retried by makeflow itself and then succeeds."""
    (tmp_path / "wf.mf").write_text(
        ".MAKEFLOW CATEGORY terrain\n"
        "a.txt:\n\techo a > a.txt\n"
        ".MAKEFLOW CATEGORY solar\n"
        # fails on its first run (no flag yet), succeeds on the second
        "b.txt: a.txt\n\tif [ -e flag ]; then cat a.txt > b.txt; else touch flag; exit 1; fi\n")
    proc = subprocess.run(["makeflow", "-T", "local", "--log-verbose", "wf.mf"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    attempts = task_attempts(tmp_path / "wf.mf.makeflowlog")
    summary = sorted((a.category, a.attempt, a.outcome) for a in attempts)
    assert summary == [("solar", 1, "failed"), ("solar", 2, "done"), ("terrain", 1, "done")]
    assert all(a.finished_s >= a.started_s for a in attempts)


def test_categories_are_those_of_the_workflow_templates():
    """The categories the templates spell out and those they take from the rules (terrain stages,
    reducer), and no template expression such as '{{' (which the metrics once counted as a category)."""
    text = "".join(p.read_text() for p in (REPO / "makeflows").glob("*.j2"))
    spelled = set(re.findall(r"^\.MAKEFLOW CATEGORY ([a-z-]+)$", text, re.M))
    assert spelled == {"pyramid", "cut", "solar-fast", "terrain", "solar", "eemt", "reduce"}
    assert template_categories() == sorted(spelled | {"terrain-exchange", "terrain-flats", "reduce-maps", "reduce-tree"})


# -- /metrics from the store ------------------------------------------------------------------

def samples(registry) -> dict[tuple, float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_count_each_attempt_once_and_outlive_the_job(tmp_path):
    data = DataDir.create(tmp_path / "data")
    store = JobStore(data.database)
    store.init()
    job_id = "0123456789abcdef"
    store.create(job_id, "dem.tif", {})
    rec = store.claim_next()
    log = tmp_path / "workflow.mf.makeflowlog"
    log.write_text(HAND_LOG)
    # read twice, as the runner does while the log grows: nothing is counted twice
    store.record_task_attempts(job_id, task_attempts(log))
    store.record_task_attempts(job_id, task_attempts(log))
    registry = metrics_registry(store, data, ExecutorSettings(executor="wq", wq_port=free_port(), expected_workers=5))
    m = samples(registry)

    def v(name, **labels):
        return m[name, tuple(sorted(labels.items()))]

    for category, done, failed, retried in (("terrain", 1, 0, 0), ("solar", 1, 1, 2), ("eemt", 1, 0, 1),
                                            ("reduce", 0, 0, 0)):
        assert v("eemt_tasks_done_total", category=category) == done, category
        assert v("eemt_tasks_failed_total", category=category) == failed, category
        assert v("eemt_tasks_retried_total", category=category) == retried, category
    # durations of done attempts: terrain 4 s, solar 30 s, eemt 5 s (bucket bounds are upper, inclusive)
    assert TASK_DURATION_BUCKETS_S[:4] == (1.0, 5.0, 10.0, 30.0)
    for category, d, first_bucket in (("terrain", 4.0, "5.0"), ("solar", 30.0, "30.0"), ("eemt", 5.0, "5.0")):
        assert v("eemt_task_duration_seconds_sum", category=category) == pytest.approx(d, abs=1e-3)
        assert v("eemt_task_duration_seconds_count", category=category) == 1
        buckets = {b: v("eemt_task_duration_seconds_bucket", category=category, le=b)
                   for b in ("1.0", "5.0", "10.0", "30.0", "+Inf")}
        assert [b for b, n in buckets.items() if n == 1][0] == first_bucket, (category, buckets)
    assert v("eemt_task_duration_seconds_count", category="reduce") == 0

    # the queue wait of the job's start: started_at - created_at of its row
    assert v("eemt_job_queue_wait_seconds_count") == 1
    assert v("eemt_job_queue_wait_seconds_sum") == pytest.approx(rec.started_at - rec.created_at, abs=1e-6)
    # last progress of the running job: its latest done task (1130 s) is older than its start
    assert v("eemt_job_last_progress_timestamp_seconds", job_id=job_id) == pytest.approx(rec.started_at)
    assert v("eemt_jobs", state="running") == 1
    assert v("eemt_build_info", version=__import__("eemt_flow").__version__) == 1
    # no manager listens on the port: nothing connected; what the operator configured
    assert v("eemt_workqueue_workers_connected") == 0 and v("eemt_workqueue_workers_expected") == 5
    st = os.statvfs(data.jobs)
    assert v("eemt_data_volume_size_bytes", volume="jobs") == st.f_blocks * st.f_frsize
    assert abs(v("eemt_data_volume_free_bytes", volume="jobs") - st.f_bavail * st.f_frsize) < 64 * 2**20

    # counters never go down: deleting the job keeps what it did
    store.finish(job_id, "succeeded")
    assert store.delete_if_not_running(job_id)
    after = samples(registry)
    assert after["eemt_tasks_done_total", (("category", "solar"),)] == 1
    assert after["eemt_tasks_retried_total", (("category", "solar"),)] == 2
    assert after["eemt_job_queue_wait_seconds_count", ()] == 1
    assert ("eemt_job_last_progress_timestamp_seconds", (("job_id", job_id),)) not in after


# -- alerting rules ---------------------------------------------------------------------------

def test_rules_and_config_pass_promtool_check():
    proc = promtool("check", "rules", str(ALERTS))
    assert proc.returncode == 0 and f"SUCCESS: {len(ALERT_NAMES)} rules found" in proc.stdout, proc.stdout + proc.stderr
    proc = promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == ALERT_NAMES


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests():
    proc = promtool("test", "rules", ALERT_TESTS.name)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    fires, quiet = set(), set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == ALERT_NAMES, f"alerts never shown to fire: {ALERT_NAMES - fires}"
    assert quiet == ALERT_NAMES, f"alerts never shown to stay quiet: {ALERT_NAMES - quiet}"


@pytest.mark.parametrize("broken_expr, why", [("vector(0) > 1", "never fires"), ("vector(1)", "always fires")])
def test_the_unit_tests_catch_a_broken_alert(tmp_path, broken_expr, why):
    """Each alert's tests fail when that alert's expression is replaced by one that {why}."""
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == [ALERTS.name]
    tests["rule_files"] = [RULES_COPY]
    (tmp_path / RULE_TESTS_COPY).write_text(yaml.safe_dump(tests))
    for name in sorted(ALERT_NAMES):
        rules = yaml.safe_load(ALERTS.read_text())
        for rule in rules["groups"][0]["rules"]:
            if rule["alert"] == name:
                rule["expr"] = broken_expr
        (tmp_path / RULES_COPY).write_text(yaml.safe_dump(rules))
        proc = promtool("test", "rules", RULE_TESTS_COPY, cwd=tmp_path)
        assert proc.returncode != 0, f"{name}: an expression that {why} passes its tests"
        assert f"alertname: {name}" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# -- the console dashboard --------------------------------------------------------------------

def test_prometheus_loads_the_rules_and_serves_the_console(tmp_path):
    """Debian's prometheus with the shipped configuration, rules and console templates."""
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing (Debian package prometheus): run scripts/bootstrap.sh"
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == [ALERTS.name]
    config["rule_files"] = [RULES_COPY]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ALERTS, tmp_path / RULES_COPY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "prometheus.log", "w") as out:
        proc = subprocess.Popen([exe, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 f"--web.console.templates={MONITORING / 'consoles'}",
                                 f"--web.console.libraries={MONITORING / 'console_libraries'}"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.2)
        rules = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"] if r["type"] == "alerting"} == ALERT_NAMES
        page = httpx.get(f"{base}/consoles/eemt.html", timeout=10)
        assert page.status_code == 200, page.text[-2000:]
        for heading in ("Jobs", "Tasks by category", "Work Queue workers", "Data volumes"):
            assert f"<h2>{heading}</h2>" in page.text
        # every script and style sheet the console loads is served (Debian's packaged libraries)
        assets = re.findall(r'(?:src|href)="(/classic/static/[^"]+)"', page.text)
        assert len(assets) >= 6
        for asset in assets:
            assert httpx.get(base + asset, timeout=10, follow_redirects=True).status_code == 200, asset
    finally:
        proc.terminate()
        proc.wait(30)
