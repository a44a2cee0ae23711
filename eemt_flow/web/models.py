"""The REST API's request and response models, and the checks of a job's parameters.

The OpenAPI schema is made from these models; a client's ``parameters`` JSON becomes a
:class:`JobParameters` (or a 422 with one line), which :func:`~eemt_flow.web.runner.job_spec`
turns into the same :class:`~eemt_flow.workflow.spec.JobSpec` the command line builds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eemt_flow.solar.parameters import DEFAULT_HORIZON_STEP_DEG, DEFAULT_STEP_MINUTES
from eemt_flow.workflow.spec import DEFAULT_TILE_SIZE_CELLS

YEARS_PATTERN = re.compile(r"\s*\d{4}(-\d{4})?(\s*,\s*\d{4}(-\d{4})?)*\s*")


class JobParameters(BaseModel):
    """What a client may choose about a job. Paths and the executor are the server's."""

    model_config = ConfigDict(extra="forbid")

    days: str | int | list[int] = Field("1-365", description="Days of year: 1-365, 172 or 1,91,172.")
    step_minutes: float = Field(DEFAULT_STEP_MINUTES, description="r.sun time step [minutes], at most 60.")
    linke: float = Field(3.0, description="Linke turbidity (0, 8].")
    albedo: float = Field(0.2, description="Ground albedo [0, 1].")
    tile_size_cells: int = Field(DEFAULT_TILE_SIZE_CELLS, description="Tile core edge [cells].")
    halo_m: float | None = Field(None, description="Halo around tiles = horizon search distance [m]; null = automatic.")
    horizon_step_deg: float = Field(DEFAULT_HORIZON_STEP_DEG, description="Horizon azimuth step [degrees].")
    horizon_method: Literal["auto", "hull", "sweep"] = Field(
        "auto", description="Horizons: hull (cost nearly flat in the search distance), sweep (every ray sampled "
                            "like r.horizon) or auto (the sweep up to 600 cells of search distance, the hull beyond).")
    keep_daily: bool = Field(False, description="Also keep daily maps.")
    reproject: str | None = Field(None, description="Reproject the DEM first, e.g. EPSG:32613.")
    climate: Literal["none", "station", "daymet"] = Field(
        "none", description="Climate for EEMT: none (solar radiation only), station (monthly normals CSV uploaded "
                            "in the file field 'climate_csv', with station_elevation_m) or daymet (DAYMET V4, fetched "
                            "with the server's NASA Earthdata login; needs years).")
    models: list[Literal["trad", "topo", "topo-veg"]] | None = Field(
        None, description="EEMT models with a climate: trad, topo and/or topo-veg (default trad and topo). topo-veg "
                          "needs the NDVI and canopy-height rasters, uploaded in the file fields 'ndvi' and "
                          "'canopy_height'.")
    years: str | None = Field(None, description="DAYMET years, e.g. 2015, 2010-2015 or 2012,2015 (daymet only).")
    station_elevation_m: float | None = Field(None, description="Elevation of the climate station [m] (station only).")
    lapse_tmin_c_per_km: float | list[float] | None = Field(
        None, description="Tmin lapse rate, one value or 12 (Jan..Dec) [°C per km]; default 6.49.")
    lapse_tmax_c_per_km: float | list[float] | None = Field(
        None, description="Tmax lapse rate, one value or 12 (Jan..Dec) [°C per km]; default 6.49.")
    climate_resampling: Literal["bilinear", "nearest", "cubic"] | None = Field(
        None, description="How DAYMET's 1 km grid is resampled to the DEM (daymet only); default bilinear.")
    radiation: Literal["clear", "real"] | None = Field(
        None, description="Radiation of EEMT-TOPO: clear (r.sun's clear sky, the default) or real (real sky from "
                          "DAYMET's srad and dayl; daymet only). DAYMET jobs write the real-sky maps either way.")
    model_parameters: dict[str, float | str | bool] | None = Field(
        None, description="EEMT model parameters, as model_parameters in a job file, e.g. {\"pm_albedo\": 0.23, "
                          "\"pet\": \"thornthwaite\", \"wind_speed_m_s\": 3.0}; each range-checked (docs: The science).")

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v):
        if isinstance(v, str):
            v = [m.strip() for m in v.split(",") if m.strip()]
        if isinstance(v, list):
            v = [m.strip().lower() if isinstance(m, str) else m for m in v]
            if not v:
                raise ValueError("choose at least one of trad, topo, topo-veg (or leave models out for trad and topo)")
            v = list(dict.fromkeys(v))
        return v

    @field_validator("years", mode="before")
    @classmethod
    def _years(cls, v):
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, list) and v and all(isinstance(y, int) and not isinstance(y, bool) for y in v):
            v = ",".join(map(str, v))
        if v is not None and not (isinstance(v, str) and YEARS_PATTERN.fullmatch(v)):
            raise ValueError(f"{v!r} is not a year, a range or a list of them (e.g. 2015, 2010-2015 or 2012,2015)")
        return v.strip() if v is not None else v


#: Deprecated parameters of earlier versions (recorded only), translated to ``climate``/``models``.
LEGACY_MODELS = {"solar": None, "eemt-trad": "trad", "eemt-topo": "topo", "eemt-topo-veg": "topo-veg"}
LEGACY_CLIMATES = {"none": "none", "daymet": "daymet", "stations": "station", "grids": None}


def upgrade_legacy_parameters(data: dict) -> dict:
    """Translate the deprecated ``model`` and ``climate_source`` of earlier clients.

    Earlier versions recorded them without using them; ``climate_source`` "none" keeps that
    meaning (solar radiation only, ``model`` and ``years`` dropped). 422 for a mix with the
    new names, for an unknown value, and for ``grids`` (not taken by the web service).
    """
    if "model" not in data and "climate_source" not in data:
        return data
    data = dict(data)
    model = data.pop("model", "solar")
    source = data.pop("climate_source", "none")
    if ("models" in data or "climate" in data):
        raise HTTPException(422, "model, climate_source: deprecated; give climate and models instead, not both")
    if model not in LEGACY_MODELS:
        raise HTTPException(422, f"model: {model!r} is not one of {', '.join(LEGACY_MODELS)} (deprecated; use "
                                 "climate and models, e.g. {\"climate\": \"station\", \"models\": [\"topo\"]})")
    if source not in LEGACY_CLIMATES:
        raise HTTPException(422, f"climate_source: {source!r} is not one of {', '.join(LEGACY_CLIMATES)} "
                                 "(deprecated; use climate: none, station or daymet)")
    if source == "grids":
        raise HTTPException(422, "climate_source: user climate grids are not taken by the web service; use climate "
                                 "station or daymet, or the command line (--climate grids:DIR)")
    if LEGACY_CLIMATES[source] == "none":
        data.pop("years", None)
        return data
    data["climate"] = LEGACY_CLIMATES[source]
    if data["climate"] == "station":
        data.pop("years", None)
    if LEGACY_MODELS[model] is not None:
        data["models"] = [LEGACY_MODELS[model]]
    return data


def stored_parameters(parameters: dict) -> JobParameters:
    """The parameters of a job row; rows of earlier versions (``model``, ``climate_source``) ran solar only."""
    d = dict(parameters)
    d.pop("rasters", None)  # the uploaded rasters' names, shown as JobDetail.rasters
    if "climate" not in d:
        for key in ("model", "climate_source", "years"):
            d.pop(key, None)
    try:
        return JobParameters.model_validate(d)
    except ValidationError:
        return JobParameters.model_construct(**d)


class JobCreated(BaseModel):
    id: str
    url: str


class ResultFile(BaseModel):
    name: str = Field(description="Path under the job's results/ directory.")
    url: str
    size_bytes: int


class JobSummary(BaseModel):
    id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    filename: str = Field(description="The uploaded file's name as the client gave it (display only).")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    tasks_done: int
    tasks_total: int
    error: str | None
    note: str | None
    cancel_requested: bool


class MapImage(BaseModel):
    name: str = Field(description="Path under the job's results/ directory.")
    url: str
    title: str


class JobDetail(JobSummary):
    parameters: JobParameters
    updated_at: dt.datetime
    results: list[ResultFile]
    results_zip_url: str | None
    map_url: str | None = Field(description="Global radiation quick-look PNG.")
    eemt_maps: list[MapImage] = Field(description="EEMT maps (PNG), one per model and year.")
    eemt_geotiffs: list[ResultFile] = Field(description="Annual EEMT, E_PPT and E_BIO GeoTIFFs.")
    files_removed: bool = Field(description="True when retention cleanup removed the job's files.")
    rasters: dict[str, str] = Field(default_factory=dict, description="User rasters uploaded with the job: form "
                                    "field (ndvi, canopy_height, wind_speed, npp) -> the client's file name.")
    log_tail: str


class JobList(BaseModel):
    jobs: list[JobSummary]


class Health(BaseModel):
    status: Literal["ok", "error"]
    database: str
    executor: str
    version: str


class ErrorMessage(BaseModel):
    detail: str


ERRORS = {code: {"model": ErrorMessage} for code in (400, 401, 404, 409, 413, 415, 422, 503)}


def parse_parameters(raw: bytes | None) -> JobParameters:
    """The ``parameters`` form field: JSON object → JobParameters; 422 with one line otherwise."""
    if raw is None or not raw.strip():
        return JobParameters()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, f"parameters: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "parameters: must be a JSON object such as {\"days\": \"172\"}")
    data = upgrade_legacy_parameters(data)
    try:
        return JobParameters.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Union members' tags (e.g. "float" of float | list[float]) are dropped; list indices kept.
        loc = err["loc"][:1] + tuple(p for p in err["loc"][1:] if isinstance(p, int))
        where = ".".join(str(p) for p in loc) or "parameters"
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise HTTPException(422, f"{where}: {msg}") from None


STATION_CSV_HELP = "header month,tmin_c,tmax_c,prcp_mm,vp_pa and 12 monthly rows"


#: Models that use each uploadable raster (eemt_inputs.USER_RASTERS fields).
RASTER_MODELS = {"ndvi": ("topo-veg",), "canopy_height": ("topo-veg",), "wind_speed": ("topo", "topo-veg"),
                 "npp": ("topo", "topo-veg")}
DEFAULT_MODELS = ("trad", "topo")


def check_eemt_parameters(params: JobParameters, *, has_csv: bool, rasters: frozenset[str] = frozenset()) -> None:
    """Options that go together: 422 (or 400 for a missing or stray file) with one line naming them.

    ``rasters``: the raster fields the submission uploaded (ndvi, canopy_height, wind_speed, npp).
    """
    given = {k for k in ("models", "years", "station_elevation_m", "lapse_tmin_c_per_km", "lapse_tmax_c_per_km",
                         "climate_resampling", "model_parameters", "radiation") if getattr(params, k) is not None}
    if params.climate == "none":
        if given:
            raise HTTPException(422, f"{', '.join(sorted(given))}: EEMT needs a climate; choose climate 'station' or "
                                     "'daymet' (or leave these out for solar radiation only)")
        if has_csv:
            raise HTTPException(400, "climate_csv: a station CSV is used only with climate 'station'")
        if rasters:
            raise HTTPException(400, f"{', '.join(sorted(rasters))}: the rasters are used only by EEMT; choose "
                                     "climate 'station' or 'daymet' (or leave them out for solar radiation only)")
        return
    if params.climate == "station":
        if not has_csv:
            raise HTTPException(400, f"climate 'station' needs the station normals CSV ({STATION_CSV_HELP}) "
                                     "as a file in the form field 'climate_csv'")
        if params.station_elevation_m is None:
            raise HTTPException(422, "station_elevation_m: climate 'station' needs the station's elevation in metres")
        if params.years is not None:
            raise HTTPException(422, "years: station normals have no years; leave years out (they apply to daymet)")
        if params.climate_resampling is not None:
            raise HTTPException(422, "climate_resampling: station normals are not resampled; it applies to daymet")
        if params.radiation == "real":
            raise HTTPException(422, "radiation: 'real' needs DAYMET's shortwave radiation; choose climate 'daymet' "
                                     "or radiation 'clear'")
    elif params.climate == "daymet":
        if params.years is None:
            raise HTTPException(422, "years: climate 'daymet' needs the years to fetch, e.g. 2019 or 2015-2019")
        if params.station_elevation_m is not None:
            raise HTTPException(422, "station_elevation_m: applies to climate 'station' only, not daymet")
        if has_csv:
            raise HTTPException(400, "climate_csv: a station CSV is used only with climate 'station', not daymet")
    models = params.models or DEFAULT_MODELS
    if "topo-veg" in models and not {"ndvi", "canopy_height"} <= rasters:
        missing = " and ".join(f"'{f}'" for f in ("ndvi", "canopy_height") if f not in rasters)
        raise HTTPException(400, f"models: topo-veg needs NDVI and canopy-height rasters; upload {missing} as "
                                 "GeoTIFF file fields (any grid and CRS covering the DEM)")
    for field in sorted(rasters):
        if not set(RASTER_MODELS[field]) & set(models):
            raise HTTPException(400, f"{field}: this raster is used only by the model(s) "
                                     f"{', '.join(RASTER_MODELS[field])}; add one to models or leave the file out")
