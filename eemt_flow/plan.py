"""Planning: validate the job, stage tiles, render the Makeflow file, write job.json.

Nothing is run here. The work directory is built under a temporary name beside its
final place and renamed at the end, so a failed plan leaves nothing half-written.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from . import __version__
from .dem import Dem, read_dem, write_geotiff
from .errors import UserError
from .model.calendar import month_of_doy
from .spec import AUTO_HALO_MAX_M, AUTO_HALO_MIN_SUN_ALTITUDE_DEG, JobSpec, format_days
from .tiles import Tile, make_tiles, stage_tile

JOB_FILE = "job.json"
WORKFLOW_FILE = "workflow.mf"
DEM_INPUT = "inputs/dem.tif"
#: Spec fields that only say how to execute; a work dir may be resumed with other values.
EXECUTION_FIELDS = {"executor", "jobs", "port", "password_file", "batch_options", "workdir"}
SOLAR_VARIABLES = ("glob_rad", "flat_glob_rad", "insol_time")


def auto_halo_m(dem: Dem) -> float:
    """Halo [m] that holds the shadows cast down to a 5° sun: relief / tan(5°), capped.

    A ridge of height ``relief`` above a cell casts its shadow up to relief / tan(h) away
    when the sun stands h above the horizon. Below 5° the beam is weak (air mass > 10),
    so those longer shadows change daily sums little. Rounded up to whole cells.
    """
    halo = dem.relief_m / math.tan(math.radians(AUTO_HALO_MIN_SUN_ALTITUDE_DEG))
    cell = max(dem.cell_size_m)
    halo = min(max(halo, cell), AUTO_HALO_MAX_M)
    return math.ceil(halo / cell) * cell


def months_of(days: list[int]) -> dict[int, list[int]]:
    """Group days of year by calendar month (non-leap solar year; May = DOY 121-151)."""
    out: dict[int, list[int]] = {}
    for d in days:
        out.setdefault(int(month_of_doy(d)), []).append(d)
    return out


def tile_files(tile: Tile, months: list[int], keep_daily: bool) -> dict:
    base = f"tiles/{tile.name}"
    return {
        "name": tile.name,
        "dem": f"{base}/dem.tif",
        "terrain": f"{base}/terrain.tif",
        "horizons": f"{base}/horizons.tif",
        "solar": {m: f"{base}/solar_m{m:02d}.tif" for m in months},
        "daily": {m: f"{base}/daily_m{m:02d}.tif" for m in months} if keep_daily else {},
    }


def result_files(months: dict[int, list[int]], keep_daily: bool) -> list[str]:
    files = ["results/summary.json", "results/glob_rad_quicklook.png"]
    for m in months:
        files += [f"results/solar/monthly/{v}_{m:02d}.tif" for v in SOLAR_VARIABLES]
    if keep_daily:
        for days in months.values():
            files += [f"results/solar/daily/{v}_day{d:03d}.tif" for d in days for v in SOLAR_VARIABLES]
    return files


def _resources(tile_cells: int, n_azimuths: int, max_days_per_task: int) -> dict:
    """CATEGORY resources [MB]: terrain holds the horizon stack; solar the daily stack."""
    mb = 1024 * 1024
    horizons_mb = tile_cells * n_azimuths * 4 / mb
    daily_mb = tile_cells * 3 * max_days_per_task * 4 / mb
    return {
        "terrain": {"memory_mb": int(300 + 2 * horizons_mb / n_azimuths * 8), "disk_mb": int(100 + 2 * horizons_mb)},
        "solar": {"memory_mb": int(300 + 2 * daily_mb), "disk_mb": int(100 + horizons_mb + 2 * daily_mb)},
        "reduce": {"memory_mb": 1000, "disk_mb": 1000},
    }


def software_versions() -> dict:
    import numpy
    import rasterio

    from .solar.grass import grass_version

    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"

    return {
        "eemt_flow": __version__,
        "grass": grass_version(),
        "makeflow": first_line(["makeflow", "--version"]),
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "numpy": numpy.__version__,
    }


@dataclass
class Plan:
    workdir: Path
    job: dict
    resumed: bool


def _job_parameters(spec: JobSpec) -> dict:
    d = spec.to_yaml_dict()
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def _existing(workdir: Path, spec: JobSpec) -> dict | None:
    """The job already planned in ``workdir`` when it is this same job; error if another."""
    job_path = workdir / JOB_FILE
    if not workdir.exists():
        return None
    if not workdir.is_dir():
        raise UserError(f"--workdir {workdir} is a file; give a directory")
    if not job_path.exists():
        if any(workdir.iterdir()):
            raise UserError(f"--workdir {workdir} exists and is not an eemt-flow work directory; give a new or empty directory")
        return None
    job = json.loads(job_path.read_text())
    if job.get("parameters") != _job_parameters(spec):
        raise UserError(
            f"--workdir {workdir} holds a different job (its parameters differ); give a new --workdir to plan this one"
        )
    return job


def plan(spec: JobSpec) -> Plan:
    """Validate ``spec`` and write its work directory; reuse it when it already holds this job."""
    workdir = Path(spec.workdir).resolve()
    # The DEM is checked first, before anything is written.
    dem = read_dem(spec.dem, reproject_to=spec.reproject, max_cells=spec.max_cells)
    existing = _existing(workdir, spec)
    if existing is not None:
        return Plan(workdir, existing, resumed=True)

    halo_m = spec.halo_m if spec.halo_m is not None else auto_halo_m(dem)
    tiles = make_tiles(dem, spec.tile_size_cells, halo_m)
    months = months_of(spec.days)
    files = [tile_files(t, list(months), spec.keep_daily) for t in tiles]
    n_az = round(360 / spec.horizon_step_deg)
    job = {
        "eemt_flow_job": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": _job_parameters(spec),
        "dem_source": str(Path(spec.dem).resolve()),
        "dem_input": DEM_INPUT,
        "grid": {
            "width": dem.shape[1],
            "height": dem.shape[0],
            "transform": list(dem.transform)[:6],
            "crs_wkt": dem.crs.to_wkt(),
            "cell_size_m": list(dem.cell_size_m),
            "relief_m": dem.relief_m,
        },
        "halo_m": halo_m,
        "halo_source": "given" if spec.halo_m is not None else f"auto: relief / tan({AUTO_HALO_MIN_SUN_ALTITUDE_DEG:g}°)",
        "months": {f"{m:02d}": days for m, days in months.items()},
        "tiles": [dict(t.to_dict(), files=f) for t, f in zip(tiles, files)],
        "results": result_files(months, spec.keep_daily),
        "software": software_versions(),
    }

    parent = workdir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.planning-", dir=parent))
    try:
        write_geotiff(staging / DEM_INPUT, dem.elevation_m, dem.transform, dem.crs)
        for tile, f in zip(tiles, files):
            stage_tile(dem, tile, staging / f["dem"])
        (staging / WORKFLOW_FILE).write_text(render_workflow(spec, job, files, n_az))
        (staging / JOB_FILE).write_text(json.dumps(job, indent=2))
        if workdir.exists():
            workdir.rmdir()  # empty (checked above); rename needs the name free
        os.rename(staging, workdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Plan(workdir, job, resumed=False)


def render_workflow(spec: JobSpec, job: dict, files: list[dict], n_azimuths: int) -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("eemt_flow.makeflows").joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    months = [{"month": int(m), "days_text": format_days(d)} for m, d in job["months"].items()]
    max_cells = max((t["halo_height"] * t["halo_width"] for t in job["tiles"]), default=1)
    max_days = max((len(d) for d in job["months"].values()), default=1)
    return env.get_template("solar.mf.j2").render(
        version=__version__,
        dem_shape=(job["grid"]["height"], job["grid"]["width"]),
        tiles=files,
        tile_size_cells=spec.tile_size_cells,
        halo_m=f"{job['halo_m']:g}",
        n_days=len(spec.days),
        step_minutes=f"{spec.step_minutes:g}",
        linke=f"{spec.linke:g}",
        albedo=f"{spec.albedo:g}",
        horizon_step_deg=f"{spec.horizon_step_deg:g}",
        engine=spec.engine,
        keep_daily=spec.keep_daily,
        months=months,
        resources=_resources(max_cells, n_azimuths, max_days),
        reduce_outputs=job["results"],
        dem_input=DEM_INPUT,
        eemt_command="eemt-flow",
    )
