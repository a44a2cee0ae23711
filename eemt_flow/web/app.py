"""The FastAPI app factory: it makes the services and assembles one router per concern.

- :mod:`.api_jobs` submit, list, read, cancel, delete jobs (uploads via :mod:`.uploads`)
- :mod:`.results` result files and zips
- :mod:`.pages` HTML pages
- :mod:`.service` health and Prometheus metrics (collected by :mod:`.metrics`)
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from eemt_flow import __version__
from eemt_flow.errors import UserError
from eemt_flow.web import api_jobs, metrics, pages, results, service
from eemt_flow.web.context import TOKEN_ENV, Services, Settings
from eemt_flow.web.runner import DataDir, Runner
from eemt_flow.web.store import JobStore

__all__ = ["TOKEN_ENV", "Settings", "create_app"]
log = logging.getLogger("eemt_flow.web")
HERE = Path(__file__).resolve().parent


def create_app(settings: Settings) -> FastAPI:
    """Build the app over ``settings.data_dir``; the lifespan starts and stops the job runner."""
    data = DataDir.create(settings.data_dir)
    store = JobStore(data.database)
    store.init()
    runner = Runner(store, data, settings.executor, keep_succeeded_days=settings.keep_succeeded_days,
                    keep_failed_days=settings.keep_failed_days, retention_interval_s=settings.retention_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        await anyio.to_thread.run_sync(runner.start)
        log.info("eemt-flow web: data dir %s, executor %s, %d job(s) at once, API token %s", data.root,
                 settings.executor.executor, settings.executor.max_concurrent_jobs,
                 "required" if settings.api_token else "not set")
        yield
        log.info("stopping: running jobs are interrupted and resume at the next start")
        await anyio.to_thread.run_sync(runner.shutdown)

    app = FastAPI(title="eemt-flow", version=__version__, lifespan=lifespan,
                  description="Solar radiation and EEMT maps for a DEM, computed by a tiled GRASS workflow on Makeflow.")
    app.state.services = Services(settings=settings, data=data, store=store, runner=runner)
    app.state.metrics_registry = metrics.metrics_registry(store, data, settings.executor)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(UserError)
    async def _user_error(_request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, exc: RequestValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p not in ("path", "query", "body"))
        return JSONResponse({"detail": f"{where}: {err['msg']}"}, status_code=422)

    for router in (api_jobs.router, results.router, service.router, pages.router):
        app.include_router(router)
    return app
