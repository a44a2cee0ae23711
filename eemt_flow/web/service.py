"""Service endpoints: ``/health`` for load balancers and ``/metrics`` for Prometheus."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import __version__
from .context import ServicesDep
from .models import Health
from .runner import ExecutorSettings
from .store import JobStore
from .workqueue import workqueue_workers

router = APIRouter(tags=["service"])


class JobMetrics(Collector):
    """Prometheus metrics read from the store at each scrape."""

    def __init__(self, store: JobStore, executor: ExecutorSettings):
        self.store = store
        self.executor = executor

    def collect(self):
        jobs = GaugeMetricFamily("eemt_jobs", "Jobs by state.", labels=["state"])
        for state, n in self.store.counts_by_state().items():
            jobs.add_metric([state], n)
        yield jobs
        done, total = self.store.running_task_totals()
        yield GaugeMetricFamily("eemt_tasks_done", "Makeflow tasks done, summed over running jobs.", value=done)
        yield GaugeMetricFamily("eemt_tasks_total", "Makeflow tasks in all, summed over running jobs.", value=total)
        yield GaugeMetricFamily("eemt_workqueue_workers", "Work Queue workers connected to this service's managers.",
                                value=sum(workqueue_workers(port, self.executor.password_file)
                                          for port in self.executor.ports()))


def metrics_registry(store: JobStore, executor: ExecutorSettings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(JobMetrics(store, executor))
    return registry


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(svc: ServicesDep):
    try:
        svc.store.ping()
        database = "ok"
    except Exception as exc:
        database = f"error: {exc}"
    executor = "ok"
    settings = svc.settings
    if shutil.which("makeflow") is None:
        executor = "error: makeflow is not on PATH (Debian package coop-computing-tools)"
    elif settings.executor.executor == "wq":
        pw = settings.executor.password_file
        if pw is None or not Path(pw).is_file():
            executor = f"error: Work Queue password file {pw} is missing"
    ok = database == "ok" and executor == "ok"
    body = Health(status="ok" if ok else "error", database=database, executor=executor, version=__version__)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(request: Request):
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
