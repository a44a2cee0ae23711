"""The work directory's layout: the name of every file a job plans, its tasks write and the
reducer assembles into ``results/``.

The planner (:mod:`.plan`), the Makeflow rules (:mod:`.makeflow`), the tasks (:mod:`.tasks`)
and the reducer (:mod:`.reduce`) all name files through these functions, so a name changes
in one place.
"""

from __future__ import annotations

from eemt_flow.dem.tiles import Tile
from eemt_flow.model.calendar import month_of_doy

#: The planned job: parameters, grid, tiles and their files (read by every task).
JOB_FILE = "job.json"
#: The rendered Makeflow file.
WORKFLOW_FILE = "workflow.mf"
#: Solar maps of every tile and of results/solar/ (the engines' bands without their units).
SOLAR_VARIABLES = ("glob_rad", "flat_glob_rad", "insol_time")
#: Terrain maps written to results/terrain/ when EEMT is computed (tiled terrain layers).
TERRAIN_RESULTS = ("wetness_index", "alpha", "northness", "specific_catchment_area_m")
#: The sky view factor, from the horizons of either engine (eemt_flow.solar.sky_view).
SKY_VIEW_RESULT = "results/terrain/sky_view_factor.tif"
#: The tiled terrain's grid, written by the planner (eemt_flow.terrain.stages).
TERRAIN_GRID_FILE = "terrain/grid.json"
#: The reducer's map groups' statistics (partial sums), merged into results/summary.json.
REDUCE_DIR = "reduce"
#: Each climate year, prepared on its own grid (eemt_flow.climate.prepared).
CLIMATE_FILE = "inputs/climate_{year}.npz"


def months_of(days: list[int]) -> dict[int, list[int]]:
    """Group days of year by calendar month (non-leap solar year; May = DOY 121-151)."""
    out: dict[int, list[int]] = {}
    for d in days:
        out.setdefault(int(month_of_doy(d)), []).append(d)
    return out


def terrain_tile_dir(tile: Tile, tile_size_cells: int) -> str:
    """The tiled terrain's directory of a job tile (same size and origin: eemt_flow.terrain.stages)."""
    from eemt_flow.terrain.stages import TERRAIN_DIR, TerrainTile

    ti, tj = tile.row // tile_size_cells, tile.col // tile_size_cells
    return f"{TERRAIN_DIR}/{TerrainTile(ti, tj, tile.row, tile.col, tile.height, tile.width).name}"


def terrain_result_files(shape: tuple[int, int], tile_size_cells: int) -> list[str]:
    """Every terrain tile's TERRAIN_RESULTS rasters and the domain mean of the wetness index."""
    from eemt_flow.terrain.stages import TERRAIN_DIR, terrain_grid

    grid = terrain_grid(shape, tile_size_cells)
    return ([f"{TERRAIN_DIR}/{t.name}/{name}.tif" for t in grid.tiles for name in TERRAIN_RESULTS]
            + [f"{TERRAIN_DIR}/wetness_mean.npz"])


def tile_files(tile: Tile, months: list[int], keep_daily: bool, years: list[str], rasters: bool,
               tile_size_cells: int, reduced_halo: bool = False, sky_view: bool = False) -> dict:
    """A tile's files. ``dem`` holds its halo window, or, with a ``reduced_halo`` (the hull's
    :class:`~eemt_flow.solar.far_field.HaloTerrain` in ``halo``), its core and one ring;
    ``dem_window`` is the window of the DEM it holds (col_off, row_off, width, height);
    ``sky_view`` the sky view factor (the fast engine's of the core, the GRASS engine's of the window)."""
    base = f"tiles/{tile.name}"
    dem_window = tile.near_window(1) if reduced_halo else tile.halo_window
    return {
        "name": tile.name,
        "dem": f"{base}/dem.tif",
        "dem_window": [int(v) for v in (dem_window.col_off, dem_window.row_off, dem_window.width, dem_window.height)],
        "halo": f"{base}/halo.npz" if reduced_halo else None,
        "terrain": f"{base}/terrain.tif",
        "horizons": f"{base}/horizons.tif",
        "sky_view": f"{base}/sky_view_factor.tif" if sky_view else None,
        "solar": {m: f"{base}/solar_m{m:02d}.tif" for m in months},
        "daily": {m: f"{base}/daily_m{m:02d}.tif" for m in months} if keep_daily else {},
        "rasters": f"{base}/rasters.tif" if rasters else None,
        "pyramid": [],  # the DEM's max-pyramid regions its halo window meets (a reduced halo's, set by the planner)
        "alpha": f"{terrain_tile_dir(tile, tile_size_cells)}/alpha.tif" if years else None,
        "eemt": {y: f"{base}/eemt_{y}.tif" for y in years},
    }


def result_files(months: dict[int, list[int]], keep_daily: bool, model_names: list[str], years: list[str],
                 real_sky: bool = False, sky_view: bool = False) -> list[str]:
    files = ["results/summary.json", "results/glob_rad_quicklook.png", "results/stac/item.json"]
    if sky_view:
        files.append(SKY_VIEW_RESULT)
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


def terrain_tile_cuts(job: dict) -> dict[tuple[int, int], str]:
    """(tile row, tile column) of the tiled terrain -> the job tile's cut DEM; terrain tiles with
    no job tile (no valid cell) are absent."""
    size = job["parameters"]["tile_size_cells"]
    return {(t["row"] // size, t["col"] // size): t["files"]["dem"] for t in job["tiles"]}
