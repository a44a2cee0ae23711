"""The jobs API: submit a DEM (with a station CSV and user rasters), list, read, cancel and delete jobs.

A submission is checked with the same :func:`~eemt_flow.dem.raster.read_dem`,
:func:`~eemt_flow.workflow.spec.build_spec` and :func:`~eemt_flow.workflow.eemt_inputs.check_user_raster` as
the command line before it is queued; the
:class:`~eemt_flow.web.runner.Runner` then runs it with :func:`~eemt_flow.workflow.execute.run_job`.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from eemt_flow.dem.raster import Dem, read_dem
from eemt_flow.errors import UserError
from eemt_flow.solar.parameters import format_days
from eemt_flow.web.context import Authorized, Job, JobId, ServicesDep, job_record, summary
from eemt_flow.web.models import (
    ERRORS,
    RASTER_MODELS,
    STATION_CSV_HELP,
    JobCreated,
    JobDetail,
    JobList,
    JobSummary,
    check_eemt_parameters,
    parse_parameters,
)
from eemt_flow.web.runner import RASTER_FIELDS, job_spec
from eemt_flow.web.store import QUEUED
from eemt_flow.web.uploads import DiskFile, Upload, check_filename, display_name
from eemt_flow.workflow.eemt_inputs import USER_RASTERS, check_user_raster
from eemt_flow.workflow.spec import JobSpec

log = logging.getLogger("eemt_flow.web")
router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def raster_band(field: str) -> str:
    """The EEMT static band of an uploaded raster field (eemt_inputs.USER_RASTERS)."""
    return next(band for band, (f, *_) in USER_RASTERS.items() if f == field)


def raster_help(field: str) -> str:
    """What the form field of a user raster takes (for the OpenAPI schema)."""
    _, what, low, high = USER_RASTERS[raster_band(field)]
    span = f"{low:g} to {high:g}" if high is not None else f"{low:g} or more"
    needed = ", needed there" if field in ("ndvi", "canopy_height") else ""
    return (f"{what[0].upper() + what[1:]} raster, values {span}: a GeoTIFF on any grid and CRS that covers the DEM "
            f"(resampled bilinearly). Used by the model(s) {' and '.join(RASTER_MODELS[field])}{needed}; as "
            f"--{field.replace('_', '-')} of the command line and '{field}' of a job file.")


SUBMIT_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["dem"],
    "properties": {"dem": {"type": "string", "format": "binary", "description": "GeoTIFF DEM"},
                   "climate_csv": {"type": "string", "format": "binary",
                                   "description": "Station normals CSV (climate 'station' only): " + STATION_CSV_HELP},
                   "parameters": {"type": "string",
                                  "description": "JSON object of JobParameters, e.g. {\"days\": \"172\"}"},
                   **{field: {"type": "string", "format": "binary", "description": raster_help(field)}
                      for field in RASTER_FIELDS}},
}}}}}


def check_raster_upload(field: str, part: DiskFile, dem: Dem) -> None:
    """The command line's check of a user raster (readable, georeferenced, covers the DEM, values in
    range), its message naming the form field and the client's file name; UserError."""
    try:
        check_user_raster(part.dest, dem, raster_band(field))
    except UserError as exc:
        raise UserError(f"{field}: " + str(exc).replace(str(part.dest), display_name(part.filename))) from None


def check_climate(spec: JobSpec, dem: Dem) -> None:
    """What the climate loader checks before any heavy work or download; UserError with one line.

    Station normals: the whole CSV (every row), the station elevation and lapse rates. DAYMET:
    the years and that the DEM lies inside DAYMET coverage (nothing is fetched here; the
    server's Earthdata credentials are used when the job runs).
    """
    from eemt_flow.climate.daymet import check_years, daymet_region
    from eemt_flow.climate.monthly import is_finite_number, lapse_rate_table
    from eemt_flow.climate.source import DAYMET, STATION, parse_climate_source
    from eemt_flow.climate.station import read_station_normals

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
    for field, raster in up.rasters.items():
        what = f"{RASTER_FIELDS[field]} raster"
        check_filename(raster.filename, what, field, f"{field}.tif")
        if raster.size == 0:
            raise HTTPException(400, f"{field}: {display_name(raster.filename)}: the file is empty; upload the {what} "
                                     "as a GeoTIFF")
    params = parse_parameters(up.parameters)
    check_eemt_parameters(params, has_csv=csv_file is not None, rasters=frozenset(up.rasters))
    name = display_name(dem_part.filename)
    job_id = secrets.token_hex(8)
    upload = data.upload_of(job_id)
    try:
        spec = job_spec(params.model_dump(), dem=part, workdir=data.workdir_of(job_id),
                        executor=settings.executor, climate_csv=csv_part, cache_dir=data.cache,
                        rasters={field: raster.dest for field, raster in up.rasters.items()})
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
    for field, raster in up.rasters.items():
        try:
            await anyio.to_thread.run_sync(lambda: check_raster_upload(field, raster, dem))
        except UserError as exc:
            raise HTTPException(400, str(exc).replace(str(part), name)) from None
    stored = params.model_dump()
    stored["days"] = format_days(spec.days)
    if spec.climate:
        stored["models"] = list(spec.models)
    if up.rasters:
        stored["rasters"] = {field: display_name(raster.filename) for field, raster in up.rasters.items()}
    os.replace(part, upload)
    if csv_file is not None:
        os.replace(csv_part, data.climate_csv_of(job_id))
    for field, raster in up.rasters.items():
        os.replace(raster.dest, data.raster_of(job_id, field))
    rec = await anyio.to_thread.run_sync(
        lambda: svc.store.create(job_id, name, stored, max_active=settings.max_active_jobs))
    if rec is None:
        data.remove_job_files(job_id)
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
