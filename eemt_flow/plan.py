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
import numpy as np
import rasterio
import rasterio.windows

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
#: Bands of a tile's EEMT static file (whole-DEM terrain cut to the tile core).
STATIC_BANDS = ("elevation_m", "alpha", "northness", "latitude_deg", "ndvi", "canopy_height_m", "wind_speed_m_s",
                "npp_g_m2_yr")
#: Optional user rasters among STATIC_BANDS: all NaN in the static file when not given.
OPTIONAL_STATIC_BANDS = ("ndvi", "canopy_height_m", "wind_speed_m_s", "npp_g_m2_yr")
#: Bands of a tile's climate file: 12 months of each variable; glob_wh_m2_day is DAYMET's real
#: global horizontal irradiation of the month's mean day, all NaN for other sources.
CLIMATE_VARIABLES = ("tmin_c", "tmax_c", "prcp_mm", "vp_pa", "glob_wh_m2_day")
#: Whole-DEM terrain maps written to results/terrain/ when EEMT is computed.
TERRAIN_RESULTS = ("wetness_index", "alpha", "northness", "specific_catchment_area_m")
WHOLE_TERRAIN = "inputs/terrain_whole.tif"


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


def tile_files(tile: Tile, months: list[int], keep_daily: bool, years: list[str]) -> dict:
    base = f"tiles/{tile.name}"
    return {
        "name": tile.name,
        "dem": f"{base}/dem.tif",
        "terrain": f"{base}/terrain.tif",
        "horizons": f"{base}/horizons.tif",
        "solar": {m: f"{base}/solar_m{m:02d}.tif" for m in months},
        "daily": {m: f"{base}/daily_m{m:02d}.tif" for m in months} if keep_daily else {},
        "static": f"{base}/eemt_static.tif" if years else None,
        "climate": {y: f"{base}/climate_{y}.tif" for y in years},
        "eemt": {y: f"{base}/eemt_{y}.tif" for y in years},
    }


def result_files(months: dict[int, list[int]], keep_daily: bool, model_names: list[str], years: list[str],
                 real_sky: bool = False) -> list[str]:
    files = ["results/summary.json", "results/glob_rad_quicklook.png"]
    if real_sky:
        files += [f"results/solar/monthly/glob_rad_real_{m:02d}.tif" for m in range(1, 13)]
    for m in months:
        files += [f"results/solar/monthly/{v}_{m:02d}.tif" for v in SOLAR_VARIABLES]
    if keep_daily:
        for days in months.values():
            files += [f"results/solar/daily/{v}_day{d:03d}.tif" for d in days for v in SOLAR_VARIABLES]
    if model_names:
        files += [f"results/terrain/{name}.tif" for name in TERRAIN_RESULTS]
    for model in model_names:
        for y in years:
            files += [f"results/eemt/{q}_{model}_{y}.tif" for q in ("EEMT", "E_PPT", "E_BIO")]
            files += [f"results/eemt/monthly/{q}_{model}_{y}_{m:02d}.tif" for q in ("E_PPT", "E_BIO")
                      for m in range(1, 13)]
            files.append(f"results/eemt/QA_{model}_{y}.tif")
            files.append(f"results/eemt/EEMT_{model}_{y}.png")
        if len(years) > 1:
            files.append(f"results/eemt/EEMT_{model}_mean.tif")
    return files


def _resources(tile_cells: int, core_cells: int, n_azimuths: int, max_days_per_task: int) -> dict:
    """CATEGORY resources [MB]: terrain holds the horizon stack; solar the daily stack.

    ``tile_cells``: the largest halo window; ``core_cells``: the largest core (the fast
    engine computes horizons and radiation for the core only).
    """
    from .solar.horizon import AZIMUTH_CHUNK

    mb = 1024 * 1024
    horizons_mb = tile_cells * n_azimuths * 4 / mb
    daily_mb = tile_cells * 6 * max_days_per_task * 4 / mb  # the MONTHLY_BANDS of each day
    core_horizons_mb = core_cells * n_azimuths / mb  # uint8, as r.sun stores them
    horizon_chunk_mb = core_cells * min(AZIMUTH_CHUNK, n_azimuths) * 4 / mb  # float32 directions in flight
    core_month_mb = core_cells * 6 * 31 * 4 / mb
    return {
        "terrain": {"memory_mb": int(300 + 2 * horizons_mb / n_azimuths * 8), "disk_mb": int(100 + 2 * horizons_mb)},
        "solar": {"memory_mb": int(300 + 2 * daily_mb), "disk_mb": int(100 + horizons_mb + 2 * daily_mb)},
        "eemt": {"memory_mb": int(300 + tile_cells * 4 * 200 / mb), "disk_mb": int(100 + tile_cells * 4 * 150 / mb)},
        # fast engine: the halo window's terrain, the core's byte horizons and one float32
        # chunk of directions, and one month of the core's daily maps in memory
        "fast": {"memory_mb": int(500 + tile_cells * 40 / mb + core_horizons_mb + horizon_chunk_mb + core_month_mb),
                 "disk_mb": int(100 + 2 * core_month_mb)},
        "reduce": {"memory_mb": 1000, "disk_mb": 1000},
    }


def threads_per_task(spec: JobSpec) -> int:
    """Threads (and declared CORES) of a fast-engine task.

    Locally the task may use this machine's cores (at most 8); elsewhere tasks go to
    workers or nodes of unknown size, and a task that asks for more cores than any worker
    offers would wait forever, so one thread per task unless --threads-per-task says more.
    """
    if spec.engine != "fast":
        return 1
    if spec.threads_per_task:
        return spec.threads_per_task
    return min(os.cpu_count() or 1, 8) if spec.executor == "local" else 1


def fast_reference(dem: Dem) -> dict:
    """The whole DEM's sun and horizon reference geometry, shared by every fast-engine tile."""
    from .solar.fast_tile import SunReference

    return SunReference.of_dem(dem.elevation_m, dem.transform, dem.crs).to_dict()


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
class EemtInputs:
    """Everything the EEMT tasks need besides the solar sums, on the whole DEM grid."""

    terrain: object  # eemt_flow.terrain.Terrain
    latitude_deg: np.ndarray
    ndvi: np.ndarray | None
    canopy_height_m: np.ndarray | None
    climates: list  # eemt_flow.climate.MonthlyClimate, one per year
    wind_speed_m_s: np.ndarray | None = None  # user wind raster at 2 m [m s-1]
    npp_g_m2_yr: np.ndarray | None = None  # user annual NPP raster [g m-2 yr-1]

    def static_layers(self, dem: Dem) -> dict[str, np.ndarray]:
        """The STATIC_BANDS on the whole DEM grid; optional rasters not given are all NaN."""
        nan = np.full(dem.shape, np.nan, dtype="float32")
        layers = {"elevation_m": dem.elevation_m, "alpha": self.terrain.alpha, "northness": self.terrain.northness,
                  "latitude_deg": self.latitude_deg}
        for name in OPTIONAL_STATIC_BANDS:
            value = getattr(self, name)
            layers[name] = nan if value is None else value
        return layers

    def stage(self, tile: Tile, files: dict, staging: Path, dem: Dem) -> None:
        """Cut the static layers and each year's climate to the tile core."""
        win = tile.core_window
        rs = slice(win.row_off, win.row_off + win.height)
        cs = slice(win.col_off, win.col_off + win.width)
        transform = rasterio.windows.transform(win, dem.transform)
        layers = self.static_layers(dem)
        static = [layers[name] for name in STATIC_BANDS]
        write_geotiff(staging / files["static"], np.stack([a[rs, cs] for a in static]), transform, dem.crs,
                      descriptions=list(STATIC_BANDS))
        for climate in self.climates:
            stack = np.concatenate([climate_variable(climate, v)[:, rs, cs] for v in CLIMATE_VARIABLES])
            names = [f"{v}_m{m:02d}" for v in CLIMATE_VARIABLES for m in range(1, 13)]
            write_geotiff(staging / files["climate"][str(climate.year)], stack, transform, dem.crs, descriptions=names)

    @property
    def real_sky(self) -> bool:
        """Whether the climate brings real global radiation (DAYMET), so real-sky maps are made."""
        return any(c.glob_wh_m2_day is not None for c in self.climates)

    def metadata(self, spec: JobSpec) -> dict:
        from .model.eemt import ModelParameters

        params = ModelParameters.from_mapping(spec.model_parameters)
        return {
            "models": spec.model_names,
            "climate_source": spec.climate,
            "climate": [{"year": str(c.year), "source": c.source, "days_in_month": [int(d) for d in c.days_in_month]}
                        for c in self.climates],
            "years": [str(c.year) for c in self.climates],
            "mean_wetness_index": float(self.terrain.mean_wetness_index),
            "model_parameters": params.as_dict(),
            "lapse_tmin_c_per_km": spec.lapse_tmin_c_per_km,
            "lapse_tmax_c_per_km": spec.lapse_tmax_c_per_km,
            "station_elevation_m": spec.station_elevation_m,
            "wind_speed_raster": str(spec.wind_speed) if spec.wind_speed else None,
            "npp_raster": str(spec.npp) if spec.npp else None,
            "radiation": spec.radiation,
            "real_sky": self.real_sky,
            "notes": [
                "NPP_TOPO (VZJ 2015 Eq. 11) and NPP_VEG (Eq. 12) were fitted in the Santa Catalina Mountains, "
                "Arizona; elsewhere they are extrapolations.",
                "Monthly radiation R_m = mean daily glob_rad over the requested days of the solar month "
                "x days of the climate month x 3600 (EEMT-SPEC section 2).",
                "Catchment area: D-infinity (Tarboton 1997) on the sink-filled whole DEM; alpha = lambda / "
                "domain mean of lambda.",
            ] + (["NPP of TOPO and TOPO-VEG from the user's NPP raster, not from VZJ 2015 Eqs. 11 and 12."]
                 if spec.npp else [])
              + (["Real-sky radiation (results/solar/monthly/glob_rad_real_MM.tif, mean day over the years): "
                  "DAYMET srad x dayl, diffuse fraction after Erbs et al. (1982), applied to r.sun's clear-sky beam, "
                  "diffuse and reflected parts as r.sun applies coeff_bh/coeff_dh. EEMT-TOPO uses "
                  + ("it (radiation: real)." if spec.radiation == "real" else "the clear-sky ratio (radiation: clear).")]
                 if self.real_sky else []),
        }


def climate_variable(climate, name: str) -> np.ndarray:
    """One of CLIMATE_VARIABLES of a MonthlyClimate, (12, rows, cols); an absent optional one is all NaN."""
    value = getattr(climate, name)
    return np.full((12, *climate.shape), np.nan, dtype="float32") if value is None else value


def _raster_on_dem(path: Path, dem: Dem, what: str, low: float | None, high: float | None) -> np.ndarray:
    """A user raster (any grid and CRS) resampled bilinearly onto the DEM grid, range-checked."""
    from .climate.resample import read_geotiff_grid, warp_to_dem

    values, transform, crs = read_geotiff_grid(path, what=what)
    values = values[:1]
    finite = values[np.isfinite(values)]
    if finite.size and ((low is not None and finite.min() < low) or (high is not None and finite.max() > high)):
        raise UserError(f"{path}: {what} values span {finite.min():g} to {finite.max():g}, outside "
                        f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]")
    on_dem = warp_to_dem(values[0], transform, crs, dem)
    if np.isnan(on_dem[np.isfinite(dem.elevation_m)]).any():
        raise UserError(f"{path}: the {what} raster does not cover the whole DEM")
    return on_dem


def prepare_eemt(spec: JobSpec, dem: Dem) -> EemtInputs:
    """Whole-DEM terrain (never per tile), latitude, optional vegetation rasters and the climate."""
    from .climate import load_climate
    from .model.constants import NPP_RASTER_RANGE_G_M2_YR, PARAMETER_RANGES
    from .model.eemt import ModelParameters
    from .solar.geography import cell_geography
    from .terrain import compute_terrain

    try:
        params = ModelParameters.from_mapping(spec.model_parameters)
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"model_parameters: {exc}") from None
    try:
        terrain = compute_terrain(dem.elevation_m, dem.cell_size_m, params.tan_beta_min)
    except ValueError as exc:
        raise UserError(f"{spec.dem}: {exc}") from None
    ndvi = _raster_on_dem(spec.ndvi, dem, "NDVI", -1.0, 1.0) if spec.ndvi else None
    canopy = _raster_on_dem(spec.canopy_height, dem, "canopy height", 0.0, None) if spec.canopy_height else None
    wind = (_raster_on_dem(spec.wind_speed, dem, "wind speed (m/s)", *PARAMETER_RANGES["wind_speed_m_s"])
            if spec.wind_speed else None)
    npp = _raster_on_dem(spec.npp, dem, "NPP (g m-2 yr-1)", *NPP_RASTER_RANGE_G_M2_YR) if spec.npp else None
    climates = load_climate(spec.climate, dem, years=spec.years, station_elevation_m=spec.station_elevation_m,
                            lapse_tmin_c_per_km=spec.lapse_tmin_c_per_km, lapse_tmax_c_per_km=spec.lapse_tmax_c_per_km,
                            cache_dir=spec.cache_dir, resampling=spec.climate_resampling, radiation=True)
    latitude = cell_geography(dem.crs, dem.transform, dem.shape)[0].astype("float32")
    latitude[~np.isfinite(dem.elevation_m)] = np.nan
    return EemtInputs(terrain, latitude, ndvi, canopy, climates, wind, npp)


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
    eemt = prepare_eemt(spec, dem) if spec.climate else None
    years = [str(c.year) for c in eemt.climates] if eemt else []
    files = [tile_files(t, list(months), spec.keep_daily, years) for t in tiles]
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
        "threads_per_task": threads_per_task(spec),
        "fast_reference": fast_reference(dem) if spec.engine == "fast" else None,
        "halo_source": "given" if spec.halo_m is not None else f"auto: relief / tan({AUTO_HALO_MIN_SUN_ALTITUDE_DEG:g}°)",
        "months": {f"{m:02d}": days for m, days in months.items()},
        "tiles": [dict(t.to_dict(), files=f) for t, f in zip(tiles, files)],
        "n_rules": len(tiles) * ((1 if spec.engine == "fast" else 1 + len(months)) + len(years)) + 1,
        "results": result_files(months, spec.keep_daily, spec.model_names, years, bool(eemt and eemt.real_sky)),
        "eemt": eemt.metadata(spec) if eemt else None,
        "software": software_versions(),
    }

    parent = workdir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.planning-", dir=parent))
    try:
        write_geotiff(staging / DEM_INPUT, dem.elevation_m, dem.transform, dem.crs)
        for tile, f in zip(tiles, files):
            stage_tile(dem, tile, staging / f["dem"])
            if eemt:
                eemt.stage(tile, f, staging, dem)
        if eemt:
            write_geotiff(staging / WHOLE_TERRAIN, np.stack([getattr(eemt.terrain, n) for n in TERRAIN_RESULTS]),
                          dem.transform, dem.crs, descriptions=list(TERRAIN_RESULTS))
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
    max_core_cells = max((t["height"] * t["width"] for t in job["tiles"]), default=1)
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
        n_azimuths=n_azimuths,
        threads_per_task=job["threads_per_task"],
        years=(job["eemt"] or {}).get("years", []),
        resources=_resources(max_cells, max_core_cells, n_azimuths, max_days),
        reduce_outputs=job["results"],
        dem_input=DEM_INPUT,
        whole_terrain=WHOLE_TERRAIN,
        eemt_command="eemt-flow",
    )
