"""The service's Prometheus metrics, read at each scrape from the job store, the running
jobs' Work Queue managers and the data directory's file systems.

Nothing here keeps state of its own: counters and histograms are sums over the store's
``job_starts`` and ``task_attempts`` tables, which the runner fills from each job's Makeflow
log (:mod:`eemt_flow.workflow.tasklog`) and which outlive deleted jobs, so they only grow, across
restarts too. docs/monitoring.md says what each metric means.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from eemt_flow import __version__
from eemt_flow.web.runner import DataDir, ExecutorSettings
from eemt_flow.web.store import JobStore
from eemt_flow.web.workqueue import workqueue_status
from eemt_flow.workflow.tasklog import DONE, FAILED, template_categories

#: Upper bounds of the task-duration histogram's buckets [s]: a coarse terrain or EEMT task
#: takes seconds, a year of r.sun on a large tile hours.
TASK_DURATION_BUCKETS_S = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
#: Upper bounds of the queue-wait histogram's buckets [s]: from an idle service to a day's backlog.
QUEUE_WAIT_BUCKETS_S = (1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)


def _volumes(data: DataDir) -> dict[str, Path]:
    """The data directory's parts that Compose puts on volumes of their own (docs/compose.md)."""
    return {"data": data.root, "uploads": data.uploads, "jobs": data.jobs, "cache": data.cache, "temp": data.temp}


class ServiceMetrics(Collector):
    """Every metric of ``/metrics``."""

    def __init__(self, store: JobStore, data: DataDir, executor: ExecutorSettings):
        self.store = store
        self.data = data
        self.executor = executor
        self.categories = template_categories()

    def collect(self):
        yield InfoMetricFamily("eemt_build", "The eemt-flow version serving these metrics.",
                               value={"version": __version__})
        yield from self._jobs()
        yield from self._tasks()
        yield from self._workqueue()
        yield from self._volumes()

    def _jobs(self):
        jobs = GaugeMetricFamily("eemt_jobs", "Jobs by state.", labels=["state"])
        for state, n in self.store.counts_by_state().items():
            jobs.add_metric([state], n)
        yield jobs
        done, total = self.store.running_task_totals()
        yield GaugeMetricFamily("eemt_running_jobs_tasks_done", "Makeflow tasks done, summed over running jobs.",
                                value=done)
        yield GaugeMetricFamily("eemt_running_jobs_tasks", "Makeflow tasks in all, summed over running jobs.",
                                value=total)
        progress = GaugeMetricFamily("eemt_job_last_progress_timestamp_seconds",
                                     "When a running job last moved: its latest start or its latest finished task "
                                     "(Unix time).", labels=["job_id"])
        for job_id, t in sorted(self.store.running_last_progress().items()):
            progress.add_metric([job_id], t)
        yield progress
        wait = HistogramMetricFamily("eemt_job_queue_wait_seconds",
                                     "Time jobs spent queued before they started (each start, resumes included).")
        rows = self.store.queue_wait_buckets(QUEUE_WAIT_BUCKETS_S)
        _label, count, total_s, below = rows[0] if rows else ("", 0, 0.0, [0] * len(QUEUE_WAIT_BUCKETS_S))
        wait.add_metric([], _cumulative(QUEUE_WAIT_BUCKETS_S, below, count), total_s)
        yield wait

    def _tasks(self):
        counts: dict[tuple[str, str], int] = {}
        retried = dict.fromkeys(self.categories, 0)
        for category, outcome, n, retries in self.store.task_attempt_counts():
            counts[category, outcome] = n
            retried[category] = retried.get(category, 0) + int(retries or 0)
        categories = sorted(set(self.categories) | {c for c, _ in counts})
        for outcome, name, what in ((DONE, "eemt_tasks_done", "Makeflow task attempts that completed"),
                                    (FAILED, "eemt_tasks_failed", "Makeflow task attempts that failed")):
            family = CounterMetricFamily(name, f"{what}, by task category.", labels=["category"])
            for c in categories:
                family.add_metric([c], counts.get((c, outcome), 0))
            yield family
        family = CounterMetricFamily("eemt_tasks_retried", "Makeflow task attempts that were a task's second or later "
                                     "(after a failure, or resumed after an abort), by task category.",
                                     labels=["category"])
        for c in categories:
            family.add_metric([c], retried.get(c, 0))
        yield family
        durations = HistogramMetricFamily("eemt_task_duration_seconds", "Time from Makeflow handing a task to the "
                                          "batch system until it completed, by task category.", labels=["category"])
        by_category = {c: (n, s, below) for c, n, s, below in self.store.task_duration_buckets(TASK_DURATION_BUCKETS_S)}
        for c in categories:
            n, total_s, below = by_category.get(c, (0, 0.0, [0] * len(TASK_DURATION_BUCKETS_S)))
            durations.add_metric([c], _cumulative(TASK_DURATION_BUCKETS_S, below, n), total_s)
        yield durations

    def _workqueue(self):
        statuses = [workqueue_status(port, self.executor.password_file) for port in self.executor.ports()]

        def total(key: str) -> int:
            return sum(int(s.get(key, 0)) for s in statuses)

        yield GaugeMetricFamily("eemt_workqueue_workers_connected",
                                "Work Queue workers connected to this service's managers (one per running job).",
                                value=total("workers_connected"))
        yield GaugeMetricFamily("eemt_workqueue_workers_busy", "Connected Work Queue workers running a task.",
                                value=total("workers_busy"))
        yield GaugeMetricFamily("eemt_workqueue_workers_expected",
                                "Workers the operator runs for this service (serve --expected-workers).",
                                value=self.executor.expected_workers if self.executor.executor == "wq" else 0)
        yield CounterMetricFamily("eemt_workqueue_workers_lost", "Workers that disconnected while running a task, "
                                  "since the running jobs' managers started (resets when a job ends).",
                                  value=total("workers_lost"))
        yield GaugeMetricFamily("eemt_workqueue_tasks_waiting", "Tasks waiting in the managers' queues for a worker.",
                                value=total("tasks_waiting"))

    def _volumes(self):
        free = GaugeMetricFamily("eemt_data_volume_free_bytes", "Bytes the service may still write on the file "
                                 "system of each part of its data directory.", labels=["volume"])
        size = GaugeMetricFamily("eemt_data_volume_size_bytes", "Size of the file system of each part of the data "
                                 "directory.", labels=["volume"])
        for name, path in _volumes(self.data).items():
            try:
                st = os.statvfs(path)
            except OSError:
                continue
            free.add_metric([name], st.f_bavail * st.f_frsize)
            size.add_metric([name], st.f_blocks * st.f_frsize)
        yield free
        yield size


def _cumulative(bounds: tuple[float, ...], below: list[int], count: int) -> list[tuple[str, float]]:
    return [(floatToGoString(b), n) for b, n in zip(bounds, below)] + [("+Inf", count)]


def metrics_registry(store: JobStore, data: DataDir, executor: ExecutorSettings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServiceMetrics(store, data, executor))
    return registry
