"""Shared click options: one definition per option, so it means the same everywhere."""

from __future__ import annotations

import click

from eemt_flow.dem.raster import DEFAULT_MAX_CELLS
from eemt_flow.solar.parameters import DEFAULT_STEP_MINUTES
from eemt_flow.workflow.spec import DEFAULT_TILE_SIZE_CELLS, DEFAULT_WQ_PORT

# Every job option defaults to None: a flag given on the command line overrides the YAML
# job file, a flag left out keeps the file's value (or the JobSpec default).
JOB_OPTIONS = [
    click.option("--dem", type=click.Path(dir_okay=True, path_type=str), help="DEM GeoTIFF (projected, metres)."),
    click.option("--workdir", type=click.Path(path_type=str), help="Work directory; results land in DIR/results/. [default: eemt-work]"),
    click.option("--days", help="Days of year: 1-365, 172 or 1,91,172. [default: 1-365]"),
    click.option("--step-minutes", type=float,
                 help=f"r.sun time step in minutes (converted to r.sun's decimal hours). [default: {DEFAULT_STEP_MINUTES:g}]"),
    click.option("--linke", type=float, help="Linke turbidity. [default: 3.0]"),
    click.option("--albedo", type=float, help="Ground albedo. [default: 0.2]"),
    click.option("--tile-size", "tile_size_cells", type=int, help=f"Tile core edge in cells. [default: {DEFAULT_TILE_SIZE_CELLS}]"),
    click.option("--halo", "halo_m", type=float,
                 help="Halo around each tile in metres = horizon search distance; default relief / tan(5°)."),
    click.option("--horizon-step", "horizon_step_deg", type=float,
                 help="Horizon azimuth step in degrees. [default: 1]"),
    click.option("--horizon-method", type=click.Choice(["auto", "hull", "sweep"]),
                 help="Fast engine horizons: hull (cost nearly flat in the search distance), sweep (every ray "
                      "sampled like r.horizon), or auto (the sweep up to 600 cells of search distance). [default: auto]"),
    click.option("--keep-daily/--no-keep-daily", default=None, help="Also write daily maps."),
    click.option("--reproject", help="Reproject the DEM to this CRS first, e.g. EPSG:32613."),
    click.option("--max-cells", type=int, help=f"Refuse DEMs with more cells. [default: {DEFAULT_MAX_CELLS:,}]"),
    click.option("--engine", type=click.Choice(["fast", "grass"]),
                 help="Solar engine: fast (eemt-flow's own r.sun kernel) or grass (GRASS r.sun). [default: fast]"),
    click.option("--threads-per-task", type=int, help="Fast engine: threads (declared CORES) per tile task; workers must offer as many cores. "
                 "[default: local: the cores (up to 8) shared among the tiles, 1 once there are as many tiles as cores; 1 on wq and batch systems]"),
    click.option("--executor", type=click.Choice(["local", "wq", "slurm", "condor", "sge"]),
                 help="Where tasks run: local makeflow, Work Queue, or a batch system. [default: local]"),
    click.option("--jobs", type=int, help="Local executor: tasks at once. [default: one per core]"),
    click.option("--port", type=int, help=f"Work Queue manager port. [default: {DEFAULT_WQ_PORT}]"),
    click.option("--password-file", type=click.Path(path_type=str),
                 help="Work Queue password file (or $EEMT_WQ_PASSWORD_FILE)."),
    click.option("--batch-options", help="Passed to makeflow -B (e.g. Slurm partition and account)."),
    click.option("--climate", help="Climate source: station:FILE.csv, grids:DIR or daymet[:DAYMET_1KM_DEM.tif]. "
                 "Without it the job computes solar radiation only."),
    click.option("--model", "models", help="EEMT models: trad, topo, topo-veg, comma-separated. [default: trad,topo]"),
    click.option("--years", help="Climate years, e.g. 2018-2020 (DAYMET, grids); station normals give one year."),
    click.option("--station-elevation", "station_elevation_m", type=float, help="Station elevation in metres (station:)."),
    click.option("--lapse-tmin", "lapse_tmin_c_per_km",
                 help="Tmin lapse rate, °C per km: one value or 12 comma-separated (Jan..Dec). [default: 6.49]"),
    click.option("--lapse-tmax", "lapse_tmax_c_per_km",
                 help="Tmax lapse rate, °C per km: one value or 12 comma-separated (Jan..Dec). [default: 6.49]"),
    click.option("--ndvi", type=click.Path(path_type=str), help="NDVI raster (topo-veg)."),
    click.option("--canopy-height", type=click.Path(path_type=str), help="Canopy height raster in metres (topo-veg)."),
    click.option("--wind-speed", type=click.Path(path_type=str),
                 help="Wind speed raster at 2 m, m/s (topo, topo-veg); default the constant wind_speed_m_s (2.0)."),
    click.option("--npp", type=click.Path(path_type=str),
                 help="Annual NPP raster, g m-2 yr-1, used by topo and topo-veg instead of the "
                      "site-specific regressions (VZJ 2015 Eqs. 11, 12)."),
    click.option("--radiation", type=click.Choice(["clear", "real"]),
                 help="Radiation of EEMT-TOPO and TOPO-VEG: r.sun's clear sky, or real sky from DAYMET's srad and dayl "
                      "(--climate daymet). [default: clear]"),
    click.option("--cache-dir", type=click.Path(path_type=str), help="Cache of DAYMET responses."),
    click.option("--climate-resampling", type=click.Choice(["bilinear", "nearest", "cubic"]),
                 help="How climate grids (DAYMET, grids:) are resampled to the DEM. [default: bilinear]"),
    click.option("--results", "results", type=click.Choice(["cog", "vrt", "auto"]),
                 help="Form of the result maps: single COGs, or a VRT over block COGs with overviews from a tree "
                      "of tasks (no task writes a whole map); auto: COGs up to 10^8 cells. [default: auto]"),
    click.option("--results-block", "results_block_cells", type=int,
                 help="The VRT form's block edge in cells (even). [default: the multiple of the tile size nearest 8192]"),
    click.option("--exchange-group", "exchange_group_tiles", type=int,
                 help="Tiles per side of a terrain exchange group (≥ 2): no fill or flow exchange task holds "
                      "more than its group's members' perimeters. [default: the widest of 8, 4, 2 whose tasks "
                      "declare at most 2,000 MB]"),
]


def job_options(func):
    for option in reversed(JOB_OPTIONS):
        func = option(func)
    return func


verbosity = [
    click.option("--quiet", "-q", is_flag=True, help="Print only errors and the result paths."),
    click.option("--verbose", "-v", is_flag=True, help="Print the makeflow command and task details."),
]


def verbosity_options(func):
    for option in reversed(verbosity):
        func = option(func)
    return func
