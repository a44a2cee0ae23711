"""The FastAPI application: REST API, HTML pages, health and Prometheus metrics.

Handlers stay thin: uploads are streamed to disk and validated with the same
:func:`read_dem` and :func:`build_spec` as the command line, jobs are rows in the
:class:`JobStore`, and the :class:`Runner` runs them with :func:`run_job`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import anyio
import jinja2
from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask

from .. import __version__
from ..dem import Dem, read_dem
from ..errors import UserError
from ..spec import DEFAULT_HORIZON_STEP_DEG, DEFAULT_STEP_MINUTES, DEFAULT_TILE_SIZE_CELLS, JobSpec, format_days
from .runner import DataDir, ExecutorSettings, Runner, job_spec, log_tail
from .store import ACTIVE_STATES, QUEUED, SUCCEEDED, JobRecord, JobStore

log = logging.getLogger("eemt_flow.web")

HERE = Path(__file__).resolve().parent
#: Environment variable holding the API token that guards mutating endpoints.
TOKEN_ENV = "EEMT_API_TOKEN"
#: Largest non-file form field (the parameters JSON) [bytes].
MAX_FIELD_BYTES = 64 * 1024
#: Largest station normals CSV (12 rows; the limit only stops abuse) [bytes].
MAX_CLIMATE_CSV_BYTES = 1024 * 1024
#: Bytes of an oversized upload still read (and discarded) so the client gets its 413 instead of a reset.
OVERSIZE_DRAIN_BYTES = 32 * 1024 * 1024
#: Job ids are server-generated hex; anything else is not a job.
JOB_ID_PATTERN = r"^[0-9a-f]{16}$"
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="Job id (16 hex digits).")]
#: Our pages load nothing but their own script, style and images (defence in depth against markup in names).
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: Annual EEMT results (not the monthly components): the maps and GeoTIFFs a job page shows first.
EEMT_RESULT = re.compile(r"eemt/(?P<q>EEMT|E_PPT|E_BIO)_(?P<model>TOPO_VEG|TRAD|TOPO)_(?P<year>\d{4}|normals|mean)\.(?P<ext>tif|png)")
MEDIA_TYPES = {".tif": "image/tiff", ".png": "image/png", ".json": "application/json"}


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


# -- API models ------------------------------------------------------------------------------

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
    keep_daily: bool = Field(False, description="Also keep daily maps.")
    reproject: str | None = Field(None, description="Reproject the DEM first, e.g. EPSG:32613.")
    climate: Literal["none", "station", "daymet"] = Field(
        "none", description="Climate for EEMT: none (solar radiation only), station (monthly normals CSV uploaded "
                            "in the file field 'climate_csv', with station_elevation_m) or daymet (DAYMET V4, fetched "
                            "with the server's NASA Earthdata login; needs years).")
    models: list[Literal["trad", "topo"]] | None = Field(
        None, description="EEMT models with a climate: trad and/or topo (default both). topo-veg needs NDVI and "
                          "canopy-height rasters, which the web service does not take; use the command line.")
    years: str | None = Field(None, description="DAYMET years, e.g. 2015, 2010-2015 or 2012,2015 (daymet only).")
    station_elevation_m: float | None = Field(None, description="Elevation of the climate station [m] (station only).")
    lapse_tmin_c_per_km: float | list[float] | None = Field(
        None, description="Tmin lapse rate, one value or 12 (Jan..Dec) [°C per km]; default 6.49.")
    lapse_tmax_c_per_km: float | list[float] | None = Field(
        None, description="Tmax lapse rate, one value or 12 (Jan..Dec) [°C per km]; default 6.49.")

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v):
        if isinstance(v, str):
            v = [m.strip() for m in v.split(",") if m.strip()]
        if isinstance(v, list):
            v = [m.strip().lower() if isinstance(m, str) else m for m in v]
            if "topo-veg" in v:
                raise ValueError("topo-veg needs NDVI and canopy-height rasters on the DEM grid, which the web "
                                 "service does not take; choose trad and/or topo, or run topo-veg with the command "
                                 "line (--ndvi, --canopy-height)")
            if not v:
                raise ValueError("choose at least one of trad, topo (or leave models out for both)")
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


# -- helpers -----------------------------------------------------------------------------------

def _time(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc)


def display_name(filename: str) -> str:
    """The client's file name for display only: control characters dropped, 200 characters at most."""
    clean = "".join(c for c in filename if unicodedata.category(c)[0] != "C")
    return clean[:200] or "dem.tif"


def check_filename(filename: str, what: str = "DEM", field_name: str = "dem", example: str = "dem.tif") -> None:
    """Refuse names that try to leave their directory (``../x``, ``/etc/x``, ``C:\\x``).

    The name is never used as a path (uploads get server-generated names); a client that
    sends such a name is confused or hostile, so it gets a clear 400 rather than silence.
    """
    if not filename.strip():
        raise HTTPException(400, f"the uploaded {what} has no file name; send it as a file in the form field '{field_name}'")
    parts = re.split(r"[\\/]", filename)
    if ".." in parts or filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", filename) or "\0" in filename:
        raise HTTPException(400, f"file name {display_name(filename)!r} is a path that leaves its directory; "
                                 f"send a plain file name such as {example}")


@dataclass
class _FilePart:
    """One file of a multipart request, streamed to ``dest``."""

    field: str
    what: str
    dest: Path
    max_bytes: int
    filename: str | None = None
    size: int = 0
    too_large: bool = False
    fh: object = None


class _Upload:
    """State of one streamed multipart request: file fields go to disk, ``parameters`` to memory."""

    def __init__(self, files: list[_FilePart]):
        self.expected = {f.field: f for f in files}
        self.files: dict[str, _FilePart] = {}
        self.fields: dict[str, bytearray] = {}
        self._part: dict = {}
        self._header_field = b""
        self._header_value = b""
        self.pending: list[tuple[_FilePart, bytes]] = []
        self.error: str | None = None

    @property
    def too_large(self) -> _FilePart | None:
        return next((f for f in self.files.values() if f.too_large), None)

    def on_part_begin(self):
        self._part = {"headers": {}}

    def on_header_field(self, data, start, end):
        self._header_field += data[start:end]

    def on_header_value(self, data, start, end):
        self._header_value += data[start:end]

    def on_header_end(self):
        self._part["headers"][self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self):
        _, options = parse_options_header(self._part["headers"].get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        self._part["name"] = name
        self._part["file"] = None
        if b"filename" in options:
            part = self.expected.get(name)
            if part is None or name in self.files:
                self.error = (f"unexpected file field '{name}'; send one DEM in the form field 'dem' "
                              "(and, for climate 'station', one CSV in 'climate_csv')")
                return
            part.filename = options[b"filename"].decode("utf-8", errors="replace")
            part.fh = open(part.dest, "xb")
            self.files[name] = part
            self._part["file"] = part
        elif name != "parameters":
            self.error = f"unknown form field '{name}'; send 'dem' (file), 'parameters' (JSON) and optionally 'climate_csv' (file)"
        else:
            self.fields[name] = bytearray()

    def on_part_data(self, data, start, end):
        if self.error:
            return
        chunk = data[start:end]
        part = self._part.get("file")
        if part is not None:
            part.size += len(chunk)
            if part.size > part.max_bytes:
                part.too_large = True
            elif chunk:
                self.pending.append((part, bytes(chunk)))
        else:
            buf = self.fields.get(self._part.get("name"))
            if buf is not None:
                if len(buf) + len(chunk) > MAX_FIELD_BYTES:
                    self.error = f"form field '{self._part['name']}' is over {MAX_FIELD_BYTES // 1024} KiB"
                else:
                    buf.extend(chunk)

    def on_part_end(self):
        pass

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished")}

    def flush(self) -> None:
        """Write the pending chunks, each to its own file (a network chunk may end one part and begin the next)."""
        pending, self.pending = self.pending, []
        for part, data in pending:
            if not part.too_large:
                part.fh.write(data)

    def close(self) -> None:
        for part in self.files.values():
            if part.fh is not None:
                part.fh.close()


async def receive_upload(request: Request, files: list[_FilePart]) -> _Upload:
    """Stream a multipart body's files to disk in chunks; 413 past a file's limit, 400 for a malformed body."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in options:
        raise HTTPException(415, "send multipart/form-data with a file field 'dem' and a JSON field 'parameters'")
    max_total = sum(f.max_bytes for f in files)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_total + MAX_FIELD_BYTES + OVERSIZE_DRAIN_BYTES:
        raise HTTPException(413, f"the upload is over the limit of {files[0].max_bytes / 2**20:g} MiB")
    up = _Upload(files)
    parser = MultipartParser(options[b"boundary"], up.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            parser.write(chunk)
            if up.pending:
                await anyio.to_thread.run_sync(up.flush)
            if up.too_large and received > max_total + OVERSIZE_DRAIN_BYTES:
                break
            if up.error:
                break
        if not up.too_large and not up.error:
            parser.finalize()
    except FormParserError:
        raise HTTPException(400, "malformed multipart body; send a file field 'dem' and a JSON field 'parameters'") from None
    finally:
        up.close()
    big = up.too_large
    if big is not None:
        what = "the upload" if big.field == "dem" else f"the {big.what} ('{big.field}')"
        raise HTTPException(413, f"{what} is over the limit of {big.max_bytes / 2**20:g} MiB")
    if up.error:
        raise HTTPException(400, up.error)
    return up


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


def check_eemt_parameters(params: JobParameters, *, has_csv: bool) -> None:
    """Options that go together: 422 (or 400 for a stray file) with one line naming them."""
    given = {k for k in ("models", "years", "station_elevation_m", "lapse_tmin_c_per_km", "lapse_tmax_c_per_km")
             if getattr(params, k) is not None}
    if params.climate == "none":
        if given:
            raise HTTPException(422, f"{', '.join(sorted(given))}: EEMT needs a climate; choose climate 'station' or "
                                     "'daymet' (or leave these out for solar radiation only)")
        if has_csv:
            raise HTTPException(400, "climate_csv: a station CSV is used only with climate 'station'")
    elif params.climate == "station":
        if not has_csv:
            raise HTTPException(400, f"climate 'station' needs the station normals CSV ({STATION_CSV_HELP}) "
                                     "as a file in the form field 'climate_csv'")
        if params.station_elevation_m is None:
            raise HTTPException(422, "station_elevation_m: climate 'station' needs the station's elevation in metres")
        if params.years is not None:
            raise HTTPException(422, "years: station normals have no years; leave years out (they apply to daymet)")
    elif params.climate == "daymet":
        if params.years is None:
            raise HTTPException(422, "years: climate 'daymet' needs the years to fetch, e.g. 2019 or 2015-2019")
        if params.station_elevation_m is not None:
            raise HTTPException(422, "station_elevation_m: applies to climate 'station' only, not daymet")
        if has_csv:
            raise HTTPException(400, "climate_csv: a station CSV is used only with climate 'station', not daymet")


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


def workqueue_workers(port: int, password_file: Path | None, timeout_s: float = 3.0) -> int:
    """Workers connected to the Work Queue manager on ``port`` (0 when no manager answers).

    This asks the manager what ``work_queue_status -W localhost PORT`` asks (``worker_status``),
    but first answers its password challenge (CCTools' ``link_auth_password``: each side sends
    a random key and proves it holds the password with SHA1(password + " " + key)), which
    Debian's work_queue_status 8.0 cannot do; our managers always run with a password.
    """
    try:
        password = Path(password_file).read_bytes() if password_file else None
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock, \
                sock.makefile("rwb") as link:
            def send(line: bytes) -> None:
                link.write(line + b"\n")
                link.flush()

            if password is not None:
                ident = b"auth password sha1"
                send(ident)
                if link.readline().strip() != ident:
                    return 0
                my_key = secrets.token_hex(32).encode()
                send(my_key)
                peer_key = link.readline().rstrip(b"\n")
                send(hashlib.sha1(password + b" " + peer_key).hexdigest().encode())
                peer_ok = link.readline().rstrip(b"\n") == hashlib.sha1(password + b" " + my_key).hexdigest().encode()
                send(b"ok" if peer_ok else b"failure")
                if not peer_ok or link.readline().strip() != b"ok":
                    return 0
            send(b"worker_status")
            workers = json.loads(link.read(4 * 1024 * 1024) or b"[]")
    except (OSError, ValueError):
        return 0
    return len(workers) if isinstance(workers, list) else 0


# -- the app -----------------------------------------------------------------------------------

def create_app(settings: Settings) -> FastAPI:
    """Build the app over ``settings.data_dir``; the lifespan starts and stops the job runner."""
    data = DataDir.create(settings.data_dir)
    store = JobStore(data.database)
    store.init()
    runner = Runner(store, data, settings.executor, keep_succeeded_days=settings.keep_succeeded_days,
                    keep_failed_days=settings.keep_failed_days, retention_interval_s=settings.retention_interval_s)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(JobMetrics(store, settings.executor))

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
    app.state.settings, app.state.store, app.state.runner, app.state.data = settings, store, runner, data
    templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                                       autoescape=True))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(UserError)
    async def _user_error(_request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, exc: RequestValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p not in ("path", "query", "body"))
        return JSONResponse({"detail": f"{where}: {err['msg']}"}, status_code=422)

    def require_token(request: Request) -> None:
        token = settings.api_token
        if not token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "a valid API token is required: send 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})

    Authorized = Depends(require_token)

    def get_job(job_id: str) -> JobRecord:
        rec = store.get(job_id)
        if rec is None:
            raise HTTPException(404, f"no job {job_id}")
        return rec

    def summary(rec: JobRecord) -> JobSummary:
        return JobSummary(id=rec.id, state=rec.state, filename=rec.filename, created_at=_time(rec.created_at),
                          started_at=_time(rec.started_at), finished_at=_time(rec.finished_at),
                          tasks_done=rec.tasks_done, tasks_total=rec.tasks_total, error=rec.error, note=rec.note,
                          cancel_requested=rec.cancel_requested)

    def result_path(rec: JobRecord, name: str) -> Path | None:
        """The file of result ``name`` when it is one of the job's results and exists; never a raw path.

        Only a succeeded job has results: while the reducer runs, files may be half written.
        """
        if rec.state != SUCCEEDED or name not in rec.results:
            return None
        results_dir = data.workdir_of(rec.id) / "results"
        path = data.inside(results_dir / name, results_dir)
        return path if path is not None and path.is_file() else None

    def detail(rec: JobRecord) -> JobDetail:
        base = f"/api/jobs/{rec.id}"
        results = []
        for name in rec.results:
            path = result_path(rec, name)
            if path is not None:
                results.append(ResultFile(name=name, url=f"{base}/results/{name}", size_bytes=path.stat().st_size))
        names = {r.name for r in results}
        workdir = data.workdir_of(rec.id)
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
                         files_removed=rec.purged_at is not None,
                         log_tail=log_tail(workdir) if workdir.is_dir() else "")

    # -- REST API ------------------------------------------------------------------------------

    @app.post("/api/jobs", status_code=201, response_model=JobCreated, dependencies=[Authorized],
              responses=ERRORS, tags=["jobs"], summary="Submit a DEM, parameters and (for station climate) a CSV",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["dem"],
                  "properties": {"dem": {"type": "string", "format": "binary", "description": "GeoTIFF DEM"},
                                 "climate_csv": {"type": "string", "format": "binary",
                                                 "description": "Station normals CSV (climate 'station' only): "
                                                                + STATION_CSV_HELP},
                                 "parameters": {"type": "string",
                                                "description": "JSON object of JobParameters, e.g. {\"days\": \"172\"}"}},
              }}}}})
    async def submit_job(request: Request, response: Response) -> JobCreated:
        """Stream the DEM (and a station CSV) to disk, validate them and the parameters, and queue the job."""
        token = secrets.token_hex(8)
        part = data.uploads / f".{token}.part"
        csv_part = data.uploads / f".{token}.csv.part"
        try:
            up = await receive_upload(request, [
                _FilePart("dem", "DEM", part, settings.max_upload_bytes),
                _FilePart("climate_csv", "station CSV", csv_part, MAX_CLIMATE_CSV_BYTES)])
            dem_part = up.files.get("dem")
            if dem_part is None:
                raise HTTPException(400, "no DEM uploaded; send the GeoTIFF as a file in the form field 'dem'")
            check_filename(dem_part.filename)
            if dem_part.size == 0:
                raise HTTPException(400, f"{display_name(dem_part.filename)}: the file is empty; upload a GeoTIFF DEM")
            csv_file = up.files.get("climate_csv")
            csv_name = None
            if csv_file is not None:
                check_filename(csv_file.filename, "station CSV", "climate_csv", "normals.csv")
                csv_name = display_name(csv_file.filename)
                if csv_file.size == 0:
                    raise HTTPException(400, f"{csv_name}: the file is empty; upload the station normals CSV "
                                             f"({STATION_CSV_HELP})")
            params = parse_parameters(up.fields.get("parameters"))
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
                    message = str(exc).replace(str(csv_part), csv_name or "station CSV").replace(str(part), name)
                    raise HTTPException(400 if params.climate == "station" else 422, message) from None
            stored = params.model_dump()
            stored["days"] = format_days(spec.days)
            if spec.climate:
                stored["models"] = list(spec.models)
            os.replace(part, upload)
            if csv_file is not None:
                os.replace(csv_part, data.climate_csv_of(job_id))
            rec = await anyio.to_thread.run_sync(
                lambda: store.create(job_id, name, stored, max_active=settings.max_active_jobs))
            if rec is None:
                upload.unlink(missing_ok=True)
                data.climate_csv_of(job_id).unlink(missing_ok=True)
                raise HTTPException(503, f"the queue is full ({settings.max_active_jobs} jobs waiting or running); "
                                         "try again later")
        finally:
            part.unlink(missing_ok=True)
            csv_part.unlink(missing_ok=True)
        runner.wake()
        response.headers["Location"] = f"/api/jobs/{job_id}"
        log.info("job %s queued (%s, %d bytes, climate %s)", job_id, name, dem_part.size, params.climate)
        return JobCreated(id=job_id, url=f"/api/jobs/{job_id}")

    @app.get("/api/jobs", response_model=JobList, tags=["jobs"], summary="List jobs, newest first")
    def list_jobs(state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
                  limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> JobList:
        return JobList(jobs=[summary(r) for r in store.list(limit=limit, state=state)])

    @app.get("/api/jobs/{job_id}", response_model=JobDetail, responses=ERRORS, tags=["jobs"],
             summary="A job: state, progress, results, log tail")
    def read_job(job_id: JobId) -> JobDetail:
        return detail(get_job(job_id))

    @app.get("/api/jobs/{job_id}/results.zip", responses=ERRORS, tags=["results"], summary="All results in one zip",
             response_class=FileResponse)
    def results_zip(job_id: JobId):
        rec = get_job(job_id)
        files = [(name, result_path(rec, name)) for name in rec.results]
        files = [(name, path) for name, path in files if path is not None]
        if not files:
            raise HTTPException(404 if rec.purged_at is None else 410, f"job {job_id} has no results"
                                + (" (its files were removed by the retention policy)" if rec.purged_at else ""))
        fd, tmp = tempfile.mkstemp(prefix=f"{job_id}-", suffix=".zip", dir=data.temp)
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, path in files:
                    zf.write(path, f"eemt-{job_id}/results/{name}")
        except BaseException:
            os.unlink(tmp)
            raise
        return FileResponse(tmp, media_type="application/zip", filename=f"eemt-{job_id}-results.zip",
                            background=BackgroundTask(os.unlink, tmp))

    @app.get("/api/jobs/{job_id}/results/{name:path}", responses=ERRORS, tags=["results"],
             summary="One result file (name = path under results/, as listed in the job)", response_class=FileResponse)
    def result_file(job_id: JobId, name: str):
        rec = get_job(job_id)
        path = result_path(rec, name)
        if path is None:
            raise HTTPException(404, f"job {job_id} has no result '{name}'")
        media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        if media == "image/png":
            return FileResponse(path, media_type=media)
        return FileResponse(path, media_type=media, filename=f"{job_id}-{name.replace('/', '_')}")

    @app.post("/api/jobs/{job_id}/cancel", response_model=JobSummary, dependencies=[Authorized], responses=ERRORS,
              tags=["jobs"], summary="Cancel a queued or running job (a running makeflow stops cleanly)")
    def cancel_job(job_id: JobId, response: Response) -> JobSummary:
        rec = get_job(job_id)
        if rec.state == QUEUED and store.cancel_if_queued(job_id):
            return summary(get_job(job_id))
        if runner.cancel(job_id):
            response.status_code = 202
            return summary(get_job(job_id))
        rec = get_job(job_id)
        raise HTTPException(409, f"job {job_id} has already {rec.state}; nothing to cancel")

    @app.delete("/api/jobs/{job_id}", status_code=204, dependencies=[Authorized], responses=ERRORS, tags=["jobs"],
                summary="Delete a job and its files (a running job is cancelled first)")
    def delete_job(job_id: JobId, response: Response):
        get_job(job_id)
        for _ in range(3):
            if store.delete_if_not_running(job_id):
                data.remove_job_files(job_id)
                return Response(status_code=204)
            if runner.cancel(job_id, delete=True):
                return JSONResponse({"detail": "cancelling; the job and its files are removed when makeflow stops"},
                                    status_code=202)
            if store.get(job_id) is None:
                break
        raise HTTPException(404, f"no job {job_id}")

    @app.get("/health", response_model=Health, responses={503: {"model": Health}}, tags=["service"])
    def health():
        try:
            store.ping()
            database = "ok"
        except Exception as exc:
            database = f"error: {exc}"
        executor = "ok"
        if shutil.which("makeflow") is None:
            executor = "error: makeflow is not on PATH (Debian package coop-computing-tools)"
        elif settings.executor.executor == "wq":
            pw = settings.executor.password_file
            if pw is None or not Path(pw).is_file():
                executor = f"error: Work Queue password file {pw} is missing"
        ok = database == "ok" and executor == "ok"
        body = Health(status="ok" if ok else "error", database=database, executor=executor, version=__version__)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"], summary="Prometheus metrics")
    def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- HTML pages ----------------------------------------------------------------------------

    def page(request: Request, name: str, **context) -> HTMLResponse:
        response = templates.TemplateResponse(request, name, {"token_required": bool(settings.api_token), **context})
        response.headers.update(PAGE_SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        return page(request, "index.html", max_upload_mb=settings.max_upload_bytes / 2**20,
                    defaults=JobParameters(), recent=[summary(r) for r in store.list(limit=10)])

    @app.get("/jobs", response_class=HTMLResponse, include_in_schema=False)
    def jobs_page(request: Request):
        return page(request, "jobs.html", jobs=[summary(r) for r in store.list(limit=1000)])

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: JobId):
        rec = get_job(job_id)
        return page(request, "job.html", job=detail(rec), active=rec.state in ACTIVE_STATES)

    return app
