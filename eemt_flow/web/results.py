"""Results API: a job's result files one by one or all in a zip, only by their listed names."""

from __future__ import annotations

import os
import tempfile
import zipfile

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from eemt_flow.web.context import Job, JobId, ServicesDep
from eemt_flow.web.models import ERRORS

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["results"])
MEDIA_TYPES = {".tif": "image/tiff", ".png": "image/png", ".json": "application/json"}


@router.get("/results.zip", responses=ERRORS, summary="All results in one zip", response_class=FileResponse)
def results_zip(job_id: JobId, rec: Job, svc: ServicesDep):
    files = [(name, svc.result_path(rec, name)) for name in rec.results]
    files = [(name, path) for name, path in files if path is not None]
    if not files:
        raise HTTPException(404 if rec.purged_at is None else 410, f"job {job_id} has no results"
                            + (" (its files were removed by the retention policy)" if rec.purged_at else ""))
    fd, tmp = tempfile.mkstemp(prefix=f"{job_id}-", suffix=".zip", dir=svc.data.temp)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, path in files:
                zf.write(path, f"eemt-{job_id}/results/{name}")
    except BaseException:
        os.unlink(tmp)
        raise
    return FileResponse(tmp, media_type="application/zip", filename=f"eemt-{job_id}-results.zip",
                        background=BackgroundTask(os.unlink, tmp))


@router.get("/results/{name:path}", responses=ERRORS, response_class=FileResponse,
            summary="One result file (name = path under results/, as listed in the job)")
def result_file(job_id: JobId, name: str, rec: Job, svc: ServicesDep):
    path = svc.result_path(rec, name)
    if path is None:
        raise HTTPException(404, f"job {job_id} has no result '{name}'")
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    if media == "image/png":
        return FileResponse(path, media_type=media)
    return FileResponse(path, media_type=media, filename=f"{job_id}-{name.replace('/', '_')}")
