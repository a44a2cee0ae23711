"""The FastAPI app factory: it makes the services and assembles one router per concern.

- :mod:`.api_jobs` submit, list, read, cancel, delete jobs (uploads via :mod:`.uploads`)
- :mod:`.results` result files and zips
- :mod:`.maps` maps index, map tiles and point values
- :mod:`.pages` HTML pages
- :mod:`.service` health and Prometheus metrics (collected by :mod:`.metrics`)
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from eemt_flow import __version__
from eemt_flow.errors import UserError
from eemt_flow.web import api_jobs, catalog, maps, metrics, pages, results, service
from eemt_flow.web.context import TOKEN_ENV, Services, Settings
from eemt_flow.web.runner import DataDir, Runner
from eemt_flow.web.store import JobStore

__all__ = ["TOKEN_ENV", "Settings", "create_app"]
log = logging.getLogger("eemt_flow.web")
HERE = Path(__file__).resolve().parent
#: The methods a route can serve (RFC 9110 section 9, and PATCH), in the order ``Allow`` lists them.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Every method that one of ``routes`` (mounts aside) serves at the path of ``scope``.

    Starlette's 405 names only the methods of the first route whose path matched (``OPTIONS
    /api/jobs`` said ``Allow: POST`` although GET is served there too), so each method is tried
    on a copy of the request: it is allowed when a route would take it. A mount is left out
    because it takes any method and decides inside (the static files name theirs in their 405).
    """
    probe = {"type": "http", "path": scope["path"], "root_path": scope.get("app_root_path", scope.get("root_path", "")),
             "query_string": b"", "headers": []}
    return {method for method in HTTP_METHODS
            if any(route.matches({**probe, "method": method})[0] == Match.FULL
                   for route in routes if not isinstance(route, Mount))}


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

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: HTTPException):
        """RFC 9110: a 405 lists every method the resource serves, for all routes and the mounts."""
        named = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",")}
        served = allowed_methods(app.router.routes, request.scope) | named
        allow = ", ".join(m for m in HTTP_METHODS if m in served)
        return JSONResponse({"detail": f"{request.method} is not allowed here; this path serves {allow or 'nothing'}"},
                            status_code=405, headers={"Allow": allow})

    for router in (api_jobs.router, results.router, catalog.router, maps.router, service.router, pages.router):
        app.include_router(router)
    return app
