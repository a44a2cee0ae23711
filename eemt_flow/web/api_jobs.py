"""The jobs API: submit a DEM (and a station CSV), list, read, cancel and delete jobs.

A submission is checked with the same :func:`~eemt_flow.dem.read_dem` and
:func:`~eemt_flow.spec.build_spec` as the command line before it is queued; the
:class:`~eemt_flow.web.runner.Runner` then runs it with :func:`~eemt_flow.execute.run_job`.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from ..dem import Dem, read_dem
from ..errors import UserError
from ..spec import JobSpec, format_days
from .context import Authorized, Job, JobId, ServicesDep, job_record, summary
from .models import (ERRORS, STATION_CSV_HELP, JobCreated, JobDetail, JobList, JobSummary, check_eemt_parameters,
                     parse_parameters)
from .runner import job_spec
from .store import QUEUED
from .uploads import Upload, check_filename, display_name

log = logging.getLogger("eemt_flow.web")
router = APIRouter(prefix="/api/jobs", tags=["jobs"])

SUBMIT_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["dem"],
    "properties": {"dem": {"type": "string", "format": "binary", "description": "GeoTIFF DEM"},
                   "climate_csv": {"type": "string", "format": "binary",
                                   "description": "Station normals CSV (climate 'station' only): " + STATION_CSV_HELP},
                   "parameters": {"type": "string",
                                  "description": "JSON object of JobParameters, e.g. {\"days\": \"172\"}"}},
}}}}}


def check_climate(spec: JobSpec, dem: Dem) -> None:
    """What the climate loader checks before any heavy work or download; UserError with one line.

    Station normals: the whole CSV (every row), the station elevation and lapse rates. DAYMET:
    the years and that the DEM lies inside DAYMET coverage (nothing is fetched here; the
    server's Earthdata credentials are used when the job runs).
    """
    from ..climate.daymet import check_years, daymet_region
    from ..climate.monthly import is_finite_number, lapse_rate_table
    from ..climate.source import DAYMET, STATION, parse_climate_source
    from ..climate.station import read_station_normals

    source = parse_climate_source(spec.climate)
    lapse_rate_table(spec.lapse_tmin_c_per_km, "lapse_tmin_c_per_km")
    lapse_rate_table(spec.lapse_tmax_c_per_km, "lapse_tmax_c_per_km")
    if source.kind == STATION:
        read_station_normals(source.path)
        if not is_finite_number(spec.station_elevation_m):
            raise UserError(f"station_elevation_m: '{spec.station_elevation_m}' is not a number in metres")
    elif source.kind == DAYMET:
        check_years(spec.years)
        daymet_region(dem)


@router.post("", status_code=201, response_model=JobCreated, dependencies=[Authorized], responses=ERRORS,
             summary="Submit a DEM, parameters and (for station climate) a CSV", openapi_extra=SUBMIT_BODY)
async def submit_job(up: Upload, svc: ServicesDep, response: Response) -> JobCreated:
    """Validate the streamed DEM (and station CSV) and the parameters, and queue the job."""
    data, settings = svc.data, svc.settings
    dem_part = up.dem
    if dem_part is None:
        raise HTTPException(400, "no DEM uploaded; send the GeoTIFF as a file in the form field 'dem'")
    check_filename(dem_part.filename)
    if dem_part.size == 0:
        raise HTTPException(400, f"{display_name(dem_part.filename)}: the file is empty; upload a GeoTIFF DEM")
    part = dem_part.dest
    csv_file = up.climate_csv
    csv_name = None
    if csv_file is not None:
        check_filename(csv_file.filename, "station CSV", "climate_csv", "normals.csv")
        csv_name = display_name(csv_file.filename)
        if csv_file.size == 0:
            raise HTTPException(400, f"{csv_name}: the file is empty; upload the station normals CSV ({STATION_CSV_HELP})")
    csv_part = csv_file.dest if csv_file is not None else None
    params = parse_parameters(up.parameters)
    check_eemt_parameters(params, has_csv=csv_file is not None)
    name = display_name(dem_part.filename)
    job_id = secrets.token_hex(8)
    upload = data.upload_of(job_id)
    try:
        spec = job_spec(params.model_dump(), dem=part, workdir=data.workdir_of(job_id),
                        executor=settings.executor, climate_csv=csv_part, cache_dir=data.cache)
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        dem = await anyio.to_thread.run_sync(lambda: read_dem(part, reproject_to=spec.reproject,
                                                              max_cells=spec.max_cells))
    except UserError as exc:
        raise HTTPException(400, str(exc).replace(str(part), name)) from None
    if spec.climate:
        try:
            await anyio.to_thread.run_sync(lambda: check_climate(spec, dem))
        except UserError as exc:
            message = str(exc).replace(str(part), name)
            if csv_part is not None:
                message = message.replace(str(csv_part), csv_name)
            raise HTTPException(400 if params.climate == "station" else 422, message) from None
    stored = params.model_dump()
    stored["days"] = format_days(spec.days)
    if spec.climate:
        stored["models"] = list(spec.models)
    os.replace(part, upload)
    if csv_file is not None:
        os.replace(csv_part, data.climate_csv_of(job_id))
    rec = await anyio.to_thread.run_sync(
        lambda: svc.store.create(job_id, name, stored, max_active=settings.max_active_jobs))
    if rec is None:
        upload.unlink(missing_ok=True)
        data.climate_csv_of(job_id).unlink(missing_ok=True)
        raise HTTPException(503, f"the queue is full ({settings.max_active_jobs} jobs waiting or running); "
                                 "try again later")
    svc.runner.wake()
    response.headers["Location"] = f"/api/jobs/{job_id}"
    log.info("job %s queued (%s, %d bytes, climate %s)", job_id, name, dem_part.size, params.climate)
    return JobCreated(id=job_id, url=f"/api/jobs/{job_id}")


@router.get("", response_model=JobList, responses={422: ERRORS[422]}, summary="List jobs, newest first")
def list_jobs(svc: ServicesDep, state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
              limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> JobList:
    return JobList(jobs=[summary(r) for r in svc.store.list(limit=limit, state=state)])


@router.get("/{job_id}", response_model=JobDetail, responses=ERRORS, summary="A job: state, progress, results, log tail")
def read_job(rec: Job, svc: ServicesDep) -> JobDetail:
    return svc.detail(rec)


@router.post("/{job_id}/cancel", response_model=JobSummary, dependencies=[Authorized], responses=ERRORS,
             summary="Cancel a queued or running job (a running makeflow stops cleanly)")
def cancel_job(job_id: JobId, rec: Job, svc: ServicesDep, response: Response) -> JobSummary:
    if rec.state == QUEUED and svc.store.cancel_if_queued(job_id):
        return summary(job_record(job_id, svc))
    if svc.runner.cancel(job_id):
        response.status_code = 202
        return summary(job_record(job_id, svc))
    rec = job_record(job_id, svc)
    raise HTTPException(409, f"job {job_id} has already {rec.state}; nothing to cancel")


@router.delete("/{job_id}", status_code=204, dependencies=[Authorized], responses=ERRORS,
               summary="Delete a job and its files (a running job is cancelled first)")
def delete_job(job_id: JobId, _rec: Job, svc: ServicesDep):
    for _ in range(3):
        if svc.store.delete_if_not_running(job_id):
            svc.data.remove_job_files(job_id)
            return Response(status_code=204)
        if svc.runner.cancel(job_id, delete=True):
            return JSONResponse({"detail": "cancelling; the job and its files are removed when makeflow stops"},
                                status_code=202)
        if svc.store.get(job_id) is None:
            break
    raise HTTPException(404, f"no job {job_id}")
