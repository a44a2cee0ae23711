"""What every router shares: the settings, the services on ``app.state``, and the dependencies
that guard a route (API token) or find its job."""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Path as PathParam, Request

from eemt_flow.web.models import JobDetail, JobSummary, MapImage, ResultFile, stored_parameters
from eemt_flow.web.runner import DataDir, ExecutorSettings, Runner, log_tail
from eemt_flow.web.store import SUCCEEDED, JobRecord, JobStore

#: Environment variable holding the API token that guards mutating endpoints.
TOKEN_ENV = "EEMT_API_TOKEN"
#: Job ids are server-generated hex; anything else is not a job.
JOB_ID_PATTERN = r"^[0-9a-f]{16}$"
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="Job id (16 hex digits).")]
#: Annual EEMT results (not the monthly components): the maps and GeoTIFFs a job page shows first.
EEMT_RESULT = re.compile(r"eemt/(?P<q>EEMT|E_PPT|E_BIO)_(?P<model>TOPO_VEG|TRAD|TOPO)_(?P<year>\d{4}|normals|mean)\.(?P<ext>tif|png)")


@dataclass
class Settings:
    """Everything the app needs to know; filled by :func:`eemt_flow.web.server.serve`."""

    data_dir: Path
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    max_upload_bytes: int = 512 * 1024 * 1024
    keep_succeeded_days: float = 30.0
    keep_failed_days: float = 7.0
    api_token: str | None = None
    #: Jobs that may be queued or running at once; more submissions get 503.
    max_active_jobs: int = 200
    retention_interval_s: float = 3600.0


@dataclass
class Services:
    """The app's long-lived objects, made once by the app factory (``app.state.services``)."""

    settings: Settings
    data: DataDir
    store: JobStore
    runner: Runner

    def result_path(self, rec: JobRecord, name: str) -> Path | None:
        """The file of result ``name`` when it is one of the job's results and exists; never a raw path.

        Only a succeeded job has results: while the reducer runs, files may be half written.
        """
        if rec.state != SUCCEEDED or name not in rec.results:
            return None
        results_dir = self.data.workdir_of(rec.id) / "results"
        path = self.data.inside(results_dir / name, results_dir)
        return path if path is not None and path.is_file() else None

    def detail(self, rec: JobRecord) -> JobDetail:
        base = f"/api/jobs/{rec.id}"
        results = []
        for name in rec.results:
            path = self.result_path(rec, name)
            if path is not None:
                results.append(ResultFile(name=name, url=f"{base}/results/{name}", size_bytes=path.stat().st_size))
        names = {r.name for r in results}
        workdir = self.data.workdir_of(rec.id)
        maps, geotiffs = [], []
        for r in results:
            m = EEMT_RESULT.fullmatch(r.name)
            if m is None:
                continue
            if m["ext"] == "png":
                title = f"EEMT-{m['model'].replace('_', '-')}, {m['year'].replace('normals', 'station normals')}"
                maps.append(MapImage(name=r.name, url=r.url, title=f"{title} [MJ m⁻² yr⁻¹]"))
            else:
                geotiffs.append(r)
        return JobDetail(**summary(rec).model_dump(), parameters=stored_parameters(rec.parameters),
                         updated_at=_time(rec.updated_at),
                         results=results, results_zip_url=f"{base}/results.zip" if results else None,
                         map_url=f"{base}/results/glob_rad_quicklook.png" if "glob_rad_quicklook.png" in names else None,
                         eemt_maps=maps, eemt_geotiffs=geotiffs,
                         files_removed=rec.purged_at is not None, rasters=dict(rec.parameters.get("rasters") or {}),
                         log_tail=log_tail(workdir) if workdir.is_dir() else "")


def _time(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc)


def summary(rec: JobRecord) -> JobSummary:
    return JobSummary(id=rec.id, state=rec.state, filename=rec.filename, created_at=_time(rec.created_at),
                      started_at=_time(rec.started_at), finished_at=_time(rec.finished_at),
                      tasks_done=rec.tasks_done, tasks_total=rec.tasks_total, error=rec.error, note=rec.note,
                      cancel_requested=rec.cancel_requested)


def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


def require_token(request: Request, svc: ServicesDep) -> None:
    """401 unless the request carries the configured API token (no token configured: open)."""
    token = svc.settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "a valid API token is required: send 'Authorization: Bearer TOKEN'",
                            headers={"WWW-Authenticate": "Bearer"})


Authorized = Depends(require_token)


def job_record(job_id: JobId, svc: ServicesDep) -> JobRecord:
    """The job of the path's ``job_id``; 404 when there is none."""
    rec = svc.store.get(job_id)
    if rec is None:
        raise HTTPException(404, f"no job {job_id}")
    return rec


Job = Annotated[JobRecord, Depends(job_record)]
