"""Planning: validate the job, stage tiles, render the Makeflow file, write job.json.

Nothing is run here. The work directory is built under a temporary name beside its
final place and renamed at the end, so a failed plan leaves nothing half-written.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
import rasterio

from . import __version__
from .dem import dem_fingerprint, open_dem
from .dem_scan import DemScan, scan_dem
from .errors import UserError
from .model.calendar import month_of_doy
from .spec import AUTO_HALO_MAX_M, AUTO_HALO_MIN_SUN_ALTITUDE_DEG, JobSpec, format_days
from .tiles import Tile, make_tiles

JOB_FILE = "job.json"
WORKFLOW_FILE = "workflow.mf"
#: Spec fields that only say how to execute; a work dir may be resumed with other values.
#: GDAL's block cache in the planner [MiB]: it reads each block of the DEM once, so a larger
#: cache would only hold copies (GDAL's default is 5 % of the machine's memory).
PLANNER_GDAL_CACHE_MB = 8
EXECUTION_FIELDS = {"executor", "jobs", "port", "password_file", "batch_options", "workdir"}
SOLAR_VARIABLES = ("glob_rad", "flat_glob_rad", "insol_time")
#: Terrain maps written to results/terrain/ when EEMT is computed (tiled terrain layers).
TERRAIN_RESULTS = ("wetness_index", "alpha", "northness", "specific_catchment_area_m")
#: The tiled terrain's grid, written by the planner (eemt_flow.terrain_stages).
TERRAIN_GRID_FILE = "terrain/grid.json"
#: Each climate year, prepared on its own grid (eemt_flow.climate.prepared).
CLIMATE_FILE = "inputs/climate_{year}.npz"


def auto_halo_m(relief_m: float, cell_size_m: tuple[float, float]) -> float:
    """Halo [m] that holds the shadows cast down to a 5° sun: relief / tan(5°), capped.

    A ridge of height ``relief_m`` above a cell casts its shadow up to relief / tan(h) away
    when the sun stands h above the horizon. Below 5° the beam is weak (air mass > 10),
    so those longer shadows change daily sums little. Rounded up to whole cells.
    """
    halo = relief_m / math.tan(math.radians(AUTO_HALO_MIN_SUN_ALTITUDE_DEG))
    cell = max(cell_size_m)
    halo = min(max(halo, cell), AUTO_HALO_MAX_M)
    return math.ceil(halo / cell) * cell


def months_of(days: list[int]) -> dict[int, list[int]]:
    """Group days of year by calendar month (non-leap solar year; May = DOY 121-151)."""
    out: dict[int, list[int]] = {}
    for d in days:
        out.setdefault(int(month_of_doy(d)), []).append(d)
    return out


def terrain_tile_dir(tile: Tile, tile_size_cells: int) -> str:
    """The tiled terrain's directory of a job tile (same size and origin: eemt_flow.terrain_stages)."""
    from .terrain_stages import TERRAIN_DIR, TerrainTile

    ti, tj = tile.row // tile_size_cells, tile.col // tile_size_cells
    return f"{TERRAIN_DIR}/{TerrainTile(ti, tj, tile.row, tile.col, tile.height, tile.width).name}"


def terrain_result_files(shape: tuple[int, int], tile_size_cells: int) -> list[str]:
    """Every terrain tile's TERRAIN_RESULTS rasters and the domain mean of the wetness index."""
    from .terrain_stages import TERRAIN_DIR, terrain_grid

    grid = terrain_grid(shape, tile_size_cells)
    return ([f"{TERRAIN_DIR}/{t.name}/{name}.tif" for t in grid.tiles for name in TERRAIN_RESULTS]
            + [f"{TERRAIN_DIR}/wetness_mean.npz"])


def tile_files(tile: Tile, months: list[int], keep_daily: bool, years: list[str], rasters: bool,
               tile_size_cells: int, reduced_halo: bool = False) -> dict:
    """A tile's files. ``dem`` holds its halo window, or, with a ``reduced_halo`` (the hull's
    :class:`~eemt_flow.solar.far_field.HaloTerrain` in ``halo``), its core and one ring;
    ``dem_window`` is the window of the DEM it holds (col_off, row_off, width, height)."""
    base = f"tiles/{tile.name}"
    dem_window = tile.near_window(1) if reduced_halo else tile.halo_window
    return {
        "name": tile.name,
        "dem": f"{base}/dem.tif",
        "dem_window": [int(v) for v in (dem_window.col_off, dem_window.row_off, dem_window.width, dem_window.height)],
        "halo": f"{base}/halo.npz" if reduced_halo else None,
        "terrain": f"{base}/terrain.tif",
        "horizons": f"{base}/horizons.tif",
        "solar": {m: f"{base}/solar_m{m:02d}.tif" for m in months},
        "daily": {m: f"{base}/daily_m{m:02d}.tif" for m in months} if keep_daily else {},
        "rasters": f"{base}/rasters.tif" if rasters else None,
        "alpha": f"{terrain_tile_dir(tile, tile_size_cells)}/alpha.tif" if years else None,
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


def _resources(tile_cells: int, core_cells: int, n_azimuths: int, max_days_per_task: int,
               fast_tile_cells: int | None = None) -> dict:
    """CATEGORY resources [MB]: terrain holds the horizon stack; solar the daily stack.

    ``tile_cells``: the largest halo window; ``core_cells``: the largest core (the fast
    engine computes horizons and radiation for the core only); ``fast_tile_cells``: the
    cells of the halo the fast engine holds (a reduced halo's; default the whole window).
    """
    fast_tile_cells = tile_cells if fast_tile_cells is None else fast_tile_cells
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
        # the core (and one ring of the halo): climate, monthly solar sums, static and output bands;
        # measured 871 MB on a 500 x 500 core (benchmarks/scale.py job), 800 float32 a cell declared
        "eemt": {"memory_mb": int(300 + core_cells * 4 * 800 / mb), "disk_mb": int(100 + core_cells * 4 * 150 / mb)},
        # fast engine: the halo window's float32 terrain, its transpose and two max pyramids
        # (4 + 4 + 2 x 4/3 bytes a cell, 2 more while it is read), the core's byte horizons
        # and one float32 chunk of directions, and one month of the core's daily maps in memory
        "fast": {"memory_mb": int(500 + fast_tile_cells * 16 / mb + core_horizons_mb + horizon_chunk_mb + core_month_mb),
                 "disk_mb": int(100 + 2 * core_month_mb)},
        # the reducer holds one tile's core at a time (all its months' or years' bands)
        "reduce": {"memory_mb": int(500 + core_cells * 4 * 200 / mb), "disk_mb": 1000},
        # a halo window of float32 read and written (and its max pyramid for a reduced halo)
        "cut": {"memory_mb": int(300 + tile_cells * 14 / mb), "disk_mb": int(100 + tile_cells * 4 / mb)},
    }


def job_resources(job: dict, n_azimuths: int) -> dict:
    """The CATEGORY resources of a planned job, from its largest tile (:func:`_resources`)."""
    max_cells = max((t["halo_height"] * t["halo_width"] for t in job["tiles"]), default=1)
    max_core_cells = max((t["height"] * t["width"] for t in job["tiles"]), default=1)
    max_days = max((len(d) for d in job["months"].values()), default=1)
    from .solar.far_field import near_margin_cells, pyramid_levels

    fast_cells = None
    reduced = job.get("reduced_halo")
    if reduced:
        # the near part (core + the far field's full reach) and at most as much for each pyramid level
        reach = near_margin_cells(reduced["far_field_cells"], reduced["near_field_cells"])
        near = max((t["height"] + 2 * reach) * (t["width"] + 2 * reach) for t in job["tiles"])
        cell = job["grid"]["cell_size_m"][0]
        fast_cells = near * pyramid_levels(job["halo_m"] / cell, reduced["far_field_cells"])
    out = _resources(max_cells, max_core_cells, n_azimuths, max_days, fast_cells)
    # the reducer writes every result map: at most 4 bytes a cell each (QA maps have 3 bands), and
    # while a group of maps is open, their uncompressed mosaics (a month of daily maps is the largest),
    # and the float64 running sum of the months' global radiation (two maps' worth)
    grid_mb = job["grid"]["height"] * job["grid"]["width"] * 4 / (1024 * 1024)
    n_maps = sum(3 if Path(f).name.startswith("QA_") else 1 for f in job["results"] if f.endswith(".tif"))
    n_group = max(6, (1 + max_days) * len(SOLAR_VARIABLES) if job["parameters"]["keep_daily"] else 0)
    out["reduce"]["disk_mb"] = int(1000 + grid_mb * (n_maps + n_group + 2))
    if job["eemt"]:
        for group in terrain_rules(job):
            out[group["category"]] = {"memory_mb": group["memory_mb"], "disk_mb": group["disk_mb"]}
    return out


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
    from .solar.fast_tile import SunReference

    return SunReference(scan.lat_deg, scan.geographic_axes).to_dict()


def software_versions() -> dict:
    import numpy

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
    a :class:`~eemt_flow.dem.DemGrid`, read in chunks where a base elevation needs it)."""
    from .climate.source import prepare_climate
    from .eemt_inputs import USER_RASTERS, check_user_raster
    from .model.eemt import ModelParameters

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
    if not isinstance(job, dict) or job.get("parameters") != _job_parameters(spec):
        raise UserError(
            f"--workdir {workdir} holds a different job (its parameters differ); give a new --workdir to plan this one"
        )
    return job


def plan(spec: JobSpec) -> Plan:
    """Validate ``spec`` and write its work directory; reuse it when it already holds this job.

    The DEM is read in blocks (:func:`~eemt_flow.dem_scan.scan_dem`) and never copied here:
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
    from .solar.horizon import FAR_FIELD_CELLS, NEAR_FIELD_CELLS, resolved_method

    # the hull reads the halo at full resolution only near the core: tiles keep that and a max pyramid
    reduced_halo = spec.engine == "fast" and resolved_method(spec.horizon_method, halo_m, grid.cell_size_m[0]) == "hull"
    files = [tile_files(t, list(months), spec.keep_daily, years, bool(eemt and eemt.rasters), spec.tile_size_cells,
                        reduced_halo) for t in tiles]
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
        "threads_per_task": threads_per_task(spec, len(tiles)),
        "fast_reference": fast_reference(scan) if spec.engine == "fast" else None,
        "halo_source": "given" if spec.halo_m is not None else f"auto: relief / tan({AUTO_HALO_MIN_SUN_ALTITUDE_DEG:g}°)",
        "months": {f"{m:02d}": days for m, days in months.items()},
        "tiles": [dict(t.to_dict(), files=f) for t, f in zip(tiles, files)],
        "results": result_files(months, spec.keep_daily, spec.model_names, years, bool(eemt and eemt.real_sky)),
        "eemt": eemt.metadata(spec) if eemt else None,
        "software": software_versions(),
    }

    parent = workdir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.planning-", dir=parent))
    try:
        if eemt:
            from .climate.prepared import save_prepared
            from .terrain_stages import write_grid

            for climate in eemt.climates:
                save_prepared(climate, staging / CLIMATE_FILE.format(year=climate.year))
            write_grid(staging, grid.shape, spec.tile_size_cells, grid.transform, grid.crs.to_wkt())
        workflow = render_workflow(spec, job, files, n_az)
        job["n_rules"] = count_rules(workflow)
        # of the rules the workflow has (a fast-engine job has no r.sun categories)
        job["largest_task_memory_mb"] = max(int(m) for m in re.findall(r"^\.MAKEFLOW MEMORY (\d+)$", workflow, re.M))
        (staging / WORKFLOW_FILE).write_text(workflow)
        (staging / JOB_FILE).write_text(json.dumps(job, indent=2))
        if workdir.exists():
            workdir.rmdir()  # empty (checked above); rename needs the name free
        os.rename(staging, workdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Plan(workdir, job, resumed=False)


def count_rules(workflow: str) -> int:
    """Rules in a rendered Makeflow file: lines that start a command (a tab after a rule line)."""
    return sum(1 for line in workflow.splitlines() if line.startswith("\t"))


def terrain_tile_cuts(job: dict) -> dict[tuple[int, int], str]:
    """(tile row, tile column) of the tiled terrain -> the job tile's cut DEM; terrain tiles with
    no job tile (no valid cell) are absent."""
    size = job["parameters"]["tile_size_cells"]
    return {(t["row"] // size, t["col"] // size): t["files"]["dem"] for t in job["tiles"]}


def terrain_rules(job: dict) -> list[dict]:
    """The tiled terrain's Makeflow rules (:func:`eemt_flow.terrain_stages.stage_list`) in two
    categories, ``terrain`` (the per-tile stages) and ``terrain-exchange`` (the exchanges of
    the tiles' edges and the mean wetness index), each declaring the largest memory and disk
    of its rules [MB], in execution order.

    Terrain tiles are the job's tiles (same size, same origin); a tile the planner dropped
    (no valid cell) still runs its trivial terrain stages, on no DEM. The DEM comes from each
    tile's cut (its halo holds the 1-cell ring the stages need). The grid file is written
    by the planner.
    """
    from .terrain_stages import stage_list

    size = job["parameters"]["tile_size_cells"]
    cut = terrain_tile_cuts(job)
    mb = 1024 * 1024
    groups: list[dict] = []
    for rule in stage_list((job["grid"]["height"], job["grid"]["width"]), size):
        if rule.stage == "grid":
            continue
        inputs = [i for i in rule.inputs if i != "DEM"]
        command = f"$(EEMT) task terrain-stage --job job.json --stage {rule.stage}"
        if rule.tile is not None:
            command += f" --tile-row {rule.tile.ti} --tile-col {rule.tile.tj}"
            if rule.reads_dem and (rule.tile.ti, rule.tile.tj) in cut:
                inputs.append(cut[rule.tile.ti, rule.tile.tj])
        category = "terrain" if rule.tile is not None else "terrain-exchange"
        if not groups or groups[-1]["stage"] != rule.stage:
            groups.append({"stage": rule.stage, "category": category, "rules": []})
        groups[-1]["rules"].append({"outputs": " ".join(rule.outputs), "inputs": " ".join(["job.json", *inputs]),
                                    "command": command, "memory_mb": math.ceil(rule.memory_bytes / mb),
                                    "disk_mb": math.ceil(rule.disk_bytes / mb)})
    for category in ("terrain", "terrain-exchange"):
        rules = [r for g in groups if g["category"] == category for r in g["rules"]]
        first = True
        for g in groups:
            if g["category"] == category:
                g["memory_mb"] = max(r["memory_mb"] for r in rules)
                g["disk_mb"] = max(r["disk_mb"] for r in rules)
                g["first"], first = first, False  # a category's resources are declared once
    return groups


def render_workflow(spec: JobSpec, job: dict, files: list[dict], n_azimuths: int) -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("eemt_flow.makeflows").joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    months = [{"month": int(m), "days_text": format_days(d)} for m, d in job["months"].items()]
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
        resources=job_resources(job, n_azimuths),
        reduce_outputs=job["results"],
        terrain_stages=terrain_rules(job) if job["eemt"] else [],
        terrain_results=terrain_result_files((job["grid"]["height"], job["grid"]["width"]),
                                             spec.tile_size_cells) if job["eemt"] else [],
        climate_files=(job["eemt"] or {}).get("climate_files", {}),
        eemt_command="eemt-flow",
    )
