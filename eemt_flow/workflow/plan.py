"""Planning: validate the job, stage tiles, render the Makeflow file (:mod:`.makeflow`), write job.json.

Nothing is run here. The work directory is built under a temporary name beside its
final place and renamed at the end, so a failed plan leaves nothing half-written.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import rasterio

from eemt_flow import __version__
from eemt_flow.dem.raster import dem_fingerprint, open_dem
from eemt_flow.dem.scan import DemScan, scan_dem
from eemt_flow.dem.tiles import make_tiles
from eemt_flow.errors import UserError
from eemt_flow.solar.parameters import AUTO_HALO_MIN_SUN_ALTITUDE_DEG, auto_halo_m
from eemt_flow.workflow.layout import (
    CLIMATE_FILE,
    JOB_FILE,
    TERRAIN_GRID_FILE,
    WORKFLOW_FILE,
    months_of,
    result_files,
    tile_files,
)
from eemt_flow.workflow.makeflow import count_rules, render_workflow
from eemt_flow.workflow.spec import JobSpec
from eemt_flow.workflow.vrt import default_block_cells, resolved_form, vrt_path

#: GDAL's block cache in the planner [MiB]: it reads each block of the DEM once, so a larger
#: cache would only hold copies (GDAL's default is 5 % of the machine's memory).
PLANNER_GDAL_CACHE_MB = 8
#: Spec fields that only say how to execute; a work dir may be resumed with other values.
EXECUTION_FIELDS = {"executor", "jobs", "port", "password_file", "batch_options", "workdir"}


def threads_per_task(spec: JobSpec, n_tiles: int) -> int:
    """Threads (and declared CORES) of a fast-engine task.

    Locally, this machine's cores (at most 8) shared among the tiles: one thread a task once
    there are as many tiles as cores. Tasks then fill the cores by themselves, with no
    threading overhead, and a one-core task (EEMT, terrain) runs beside a solar task instead of
    waiting for a core it cannot have (measured on a 9-tile EEMT-TOPO job on 2 cores: the
    solar task took 8.2 s on 2 threads and 10.6 s on one, and the whole run 2.8 min with 2
    threads a task, 2.1 min with one; docs/performance.md). Fewer tiles than cores get the
    spare cores as threads. Elsewhere tasks go to workers or nodes of unknown size, and a task
    that asks for more cores than any worker offers would wait forever, so one thread per task
    unless --threads-per-task says more.
    """
    if spec.engine != "fast":
        return 1
    if spec.threads_per_task:
        return spec.threads_per_task
    if spec.executor != "local":
        return 1
    return max(1, min(os.cpu_count() or 1, 8) // max(1, n_tiles))


def fast_reference(scan: DemScan) -> dict:
    """The whole DEM's sun and horizon reference geometry, shared by every fast-engine tile."""
    from eemt_flow.solar.fast_tile import SunReference

    return SunReference(scan.lat_deg, scan.geographic_axes).to_dict()


def software_versions() -> dict:
    import numpy

    from eemt_flow.solar.grass import grass_version

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
class EemtPlan:
    """What the EEMT tasks need besides the solar sums, checked for the whole DEM and small:
    the model parameters, each climate year prepared on its own grid, the user rasters' paths."""

    params: object  # eemt_flow.model.eemt.ModelParameters
    climates: list  # eemt_flow.climate.prepared.GridClimate | StationClimate, one per year
    rasters: dict[str, str]  # static band -> user raster path (cut per tile by the cut rules)

    @property
    def years(self) -> list[str]:
        return [str(c.year) for c in self.climates]

    @property
    def real_sky(self) -> bool:
        """Whether the climate brings real global radiation (DAYMET), so real-sky maps are made."""
        return any(getattr(c, "global_radiation", None) is not None for c in self.climates)

    def metadata(self, spec: JobSpec) -> dict:
        return {
            "models": spec.model_names,
            "climate_source": spec.climate,
            "climate": [{"year": str(c.year), "source": c.source, "days_in_month": [int(d) for d in c.days_in_month]}
                        for c in self.climates],
            "climate_files": {str(c.year): CLIMATE_FILE.format(year=c.year) for c in self.climates},
            "terrain_grid": TERRAIN_GRID_FILE,
            "rasters": self.rasters,
            "years": self.years,
            "model_parameters": self.params.as_dict(),
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
                "Catchment area: D-infinity (Tarboton 1997) on the sink-filled DEM (Priority-Flood level, flats "
                "raised towards lower terrain), computed in tiles that exchange their perimeters (Barnes 2016, "
                "2017) and equal to the whole-DEM computation; alpha = lambda / domain mean of lambda.",
            ] + (["NPP of TOPO and TOPO-VEG from the user's NPP raster, not from VZJ 2015 Eqs. 11 and 12."]
                 if spec.npp else [])
              + (["Real-sky radiation (results/solar/monthly/glob_rad_real_MM.tif, mean day over the years): "
                  "DAYMET srad x dayl, diffuse fraction after Erbs et al. (1982), applied to r.sun's clear-sky beam, "
                  "diffuse and reflected parts as r.sun applies coeff_bh/coeff_dh. EEMT-TOPO uses "
                  + ("it (radiation: real)." if spec.radiation == "real" else "the clear-sky ratio (radiation: clear).")]
                 if self.real_sky else []),
        }


def plan_eemt(spec: JobSpec, grid) -> EemtPlan:
    """Check the model parameters, the user rasters and the climate for the whole DEM (on disk:
    a :class:`~eemt_flow.dem.raster.DemGrid`, read in chunks where a base elevation needs it)."""
    from eemt_flow.climate.source import prepare_climate
    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.workflow.eemt_inputs import USER_RASTERS, check_user_raster

    try:
        params = ModelParameters.from_mapping(spec.model_parameters)
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"model_parameters: {exc}") from None
    rasters = {}
    for band, (field, _, _, _) in USER_RASTERS.items():
        path = getattr(spec, field)
        if path:
            check_user_raster(Path(path), grid, band)
            rasters[band] = str(Path(path).resolve())
    climates = prepare_climate(spec.climate, grid, years=spec.years, station_elevation_m=spec.station_elevation_m,
                               lapse_tmin_c_per_km=spec.lapse_tmin_c_per_km,
                               lapse_tmax_c_per_km=spec.lapse_tmax_c_per_km, cache_dir=spec.cache_dir,
                               resampling=spec.climate_resampling, radiation=True)
    return EemtPlan(params, climates, rasters)


@dataclass
class Plan:
    workdir: Path
    job: dict
    resumed: bool


def _job_parameters(spec: JobSpec) -> dict:
    d = spec.to_yaml_dict()
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def _same_parameters(planned, given: dict) -> bool:
    """Whether a work directory's parameters are ``given``; a parameter it lacks (planned by an
    earlier version, before the parameter existed) counts as its default."""
    if not isinstance(planned, dict):
        return False
    defaults = JobSpec.model_construct().to_yaml_dict() if set(given) - set(planned) else {}
    return all(planned[k] == v if k in planned else defaults.get(k) == v for k, v in given.items()) \
        and set(planned) <= set(given)


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
    try:
        job = json.loads(job_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"--workdir {workdir}: its job.json is not an eemt-flow job file (damaged?); "
                        "give a new --workdir to plan this job") from None
    if not isinstance(job, dict) or not _same_parameters(job.get("parameters"), _job_parameters(spec)):
        raise UserError(
            f"--workdir {workdir} holds a different job (its parameters differ); give a new --workdir to plan this one"
        )
    return job


def plan(spec: JobSpec) -> Plan:
    """Validate ``spec`` and write its work directory; reuse it when it already holds this job.

    The DEM is read in blocks (:func:`~eemt_flow.dem.scan.scan_dem`) and never copied here:
    each tile's window is cut by its own rule, on the manager, where the DEM is.
    """
    workdir = Path(spec.workdir).resolve()
    # The DEM is checked first, before anything is written.
    grid = open_dem(spec.dem, reproject_to=spec.reproject, max_cells=spec.max_cells)
    with rasterio.Env(GDAL_CACHEMAX=PLANNER_GDAL_CACHE_MB):
        scan = scan_dem(grid, spec.tile_size_cells)
    existing = _existing(workdir, spec)
    if existing is not None:
        return Plan(workdir, existing, resumed=True)

    halo_m = spec.halo_m if spec.halo_m is not None else auto_halo_m(scan.relief_m, grid.cell_size_m)
    tiles = make_tiles(grid.shape, grid.cell_size_m, spec.tile_size_cells, halo_m, scan.tile_valid)
    months = months_of(spec.days)
    with rasterio.Env(GDAL_CACHEMAX=PLANNER_GDAL_CACHE_MB):
        eemt = plan_eemt(spec, grid) if spec.climate else None
    years = eemt.years if eemt else []
    from eemt_flow.solar.horizon import FAR_FIELD_CELLS, NEAR_FIELD_CELLS, resolved_method

    # the hull reads the halo at full resolution only near the core: tiles keep that and a max pyramid
    reduced_halo = spec.engine == "fast" and resolved_method(spec.horizon_method, halo_m, grid.cell_size_m[0]) == "hull"
    sky_view = True  # from the horizons that the solar (fast) or terrain (GRASS) tasks compute
    files = [tile_files(t, list(months), spec.keep_daily, years, bool(eemt and eemt.rasters), spec.tile_size_cells,
                        reduced_halo, sky_view) for t in tiles]
    pyramid = None
    if reduced_halo:
        # the DEM's max pyramid, built once by region tasks; each cut reads the regions its window meets
        from eemt_flow.solar.far_field import PyramidRegions

        pyramid = PyramidRegions.for_dem(grid.shape, halo_m / abs(grid.transform.a), FAR_FIELD_CELLS)
        for t, f in zip(tiles, files):
            f["pyramid"] = [pyramid.file(i, j) for i, j in pyramid.met(t.halo_row, t.halo_col, t.halo_height,
                                                                          t.halo_width)]
    n_az = round(360 / spec.horizon_step_deg)
    job = {
        "eemt_flow_job": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": _job_parameters(spec),
        "dem_source": str(grid.path),
        "dem": dict(grid.to_dict(), fingerprint=dem_fingerprint(grid.path)),
        "grid": {
            "width": grid.width,
            "height": grid.height,
            "transform": list(grid.transform)[:6],
            "crs_wkt": grid.crs.to_wkt(),
            "cell_size_m": list(grid.cell_size_m),
            "relief_m": scan.relief_m,
            "scanned": scan.source,
        },
        "halo_m": halo_m,
        "reduced_halo": {"far_field_cells": FAR_FIELD_CELLS, "near_field_cells": NEAR_FIELD_CELLS} if reduced_halo
        else None,
        "pyramid": pyramid.to_dict() if pyramid else None,
        "threads_per_task": threads_per_task(spec, len(tiles)),
        "fast_reference": fast_reference(scan) if spec.engine == "fast" else None,
        "halo_source": "given" if spec.halo_m is not None else f"auto: relief / tan({AUTO_HALO_MIN_SUN_ALTITUDE_DEG:g}°)",
        "months": {f"{m:02d}": days for m, days in months.items()},
        "tiles": [dict(t.to_dict(), files=f) for t, f in zip(tiles, files)],
        "results": result_files(months, spec.keep_daily, spec.model_names, years, bool(eemt and eemt.real_sky),
                                sky_view),
        "eemt": eemt.metadata(spec) if eemt else None,
        "software": software_versions(),
    }
    form = resolved_form(spec.results, grid.width * grid.height)
    job["results_form"] = {"form": form}
    if form == "vrt":
        job["results_form"]["block_cells"] = spec.results_block_cells or default_block_cells(spec.tile_size_cells)
        job["results"] = [vrt_path(f) if f.endswith(".tif") else f for f in job["results"]]

    parent = workdir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.planning-", dir=parent))
    try:
        if eemt:
            from eemt_flow.climate.prepared import save_prepared
            from eemt_flow.terrain.stages import write_grid

            for climate in eemt.climates:
                save_prepared(climate, staging / CLIMATE_FILE.format(year=climate.year))
            write_grid(staging, grid.shape, spec.tile_size_cells, grid.transform, grid.crs.to_wkt(),
                       spec.exchange_group_tiles)
        render_workflow(spec, job, files, n_az, staging / WORKFLOW_FILE)
        # of the rules the workflow has (a fast-engine job has no r.sun categories)
        job["n_rules"], job["largest_task_memory_mb"] = count_rules(staging / WORKFLOW_FILE)
        (staging / JOB_FILE).write_text(json.dumps(job, indent=2))
        if workdir.exists():
            workdir.rmdir()  # empty (checked above); rename needs the name free
        os.rename(staging, workdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Plan(workdir, job, resumed=False)


