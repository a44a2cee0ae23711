"""Service endpoints: ``/health`` for load balancers and ``/metrics`` for Prometheus."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eemt_flow import __version__
from eemt_flow.web.context import ServicesDep
from eemt_flow.web.models import Health

router = APIRouter(tags=["service"])


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


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (see docs/monitoring.md)")
def metrics(request: Request):
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
