"""Task entry points: what the Makeflow rules call (``eemt-flow task …``).

Each reads only the files its rule declares and writes only the files it declares, so a
Work Queue worker with no shared file system can run it.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import numpy as np
import rasterio
from rasterio import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from eemt_flow.dem.raster import read_float32, write_geotiff
from eemt_flow.dem.tiles import Tile, crop_core
from eemt_flow.solar import grass
from eemt_flow.solar.bands import DAILY_KEYS, MONTHLY_BANDS

#: GDAL's block cache in a task [MiB] (GDAL_CACHEMAX, unless the environment sets it).
TASK_GDAL_CACHE_MB = 64


def _check_dem(grid, job: dict) -> None:
    """Refuse a DEM that is gone or changed since the job was planned."""
    from eemt_flow.dem.raster import dem_fingerprint
    from eemt_flow.errors import UserError

    try:
        fingerprint = dem_fingerprint(grid.path)
    except OSError:
        raise UserError(f"{grid.path}: the DEM this job was planned from is gone; restore it or plan a new job") from None
    if fingerprint != job["dem"]["fingerprint"]:
        raise UserError(f"{grid.path} changed after the job was planned; restore it or plan a new job in a new --workdir")


def cut_dem_task(job_file: Path, tile_name: str) -> None:
    """Cut one tile's halo window from the job's DEM into the tile's own GeoTIFF.

    Runs on the manager, where the DEM is (a LOCAL rule), so that a worker needs nothing
    but the tile. The DEM must be the file the job was planned from (same size and time).
    """
    import json

    from eemt_flow.dem.raster import DemGrid

    job = json.loads(Path(job_file).read_text())
    entry = next(t for t in job["tiles"] if t["name"] == tile_name)
    grid = DemGrid.from_dict(job["dem"])
    _check_dem(grid, job)
    tile = Tile.from_dict(entry)
    files = entry["files"]
    reduced = job.get("reduced_halo")
    if files.get("halo") and job.get("pyramid"):
        # the halo as the hull reads it (full resolution near the core, the DEM's max pyramid
        # beyond, from the regions' files): only the near part of the window is read
        from eemt_flow.solar.far_field import HaloTerrain, PyramidRegions, near_margin_cells

        read = tile.near_window(near_margin_cells(reduced["far_field_cells"], reduced["near_field_cells"]))
        block = grid.read(read)
        origin = (int(read.row_off), int(read.col_off))
        HaloTerrain.of_regions(block, origin, PyramidRegions.from_dict(job["pyramid"]), Path("."),
                               (tile.halo_row, tile.halo_col, tile.halo_height, tile.halo_width), tile.core_in_halo,
                               far_field_cells=reduced["far_field_cells"],
                               near_field_cells=reduced["near_field_cells"]).save(Path(files["halo"]))
    else:
        read = tile.halo_window
        block = grid.read(read)
        origin = (tile.halo_row, tile.halo_col)
        if files.get("halo"):
            # a job planned before the pyramid regions: the pyramid from the whole window
            from eemt_flow.solar.far_field import HaloTerrain

            HaloTerrain.of_window(block, tile.core_in_halo, max_distance_cells=job["halo_m"] / abs(grid.transform.a),
                                  far_field_cells=reduced["far_field_cells"],
                                  near_field_cells=reduced["near_field_cells"], origin=origin).save(Path(files["halo"]))
    staged = Window(*files["dem_window"])
    in_block = Window(staged.col_off - origin[1], staged.row_off - origin[0], staged.width, staged.height)
    write_geotiff(Path(files["dem"]), block[in_block.toslices()], window_transform(staged, grid.transform), grid.crs)
    rasters = (job.get("eemt") or {}).get("rasters") or {}
    if rasters:
        from eemt_flow.dem.raster import Dem
        from eemt_flow.workflow.eemt_inputs import user_raster_on

        core = Dem(block[tile.core_in(read)], window_transform(tile.core_window, grid.transform), grid.crs)
        write_geotiff(Path(entry["files"]["rasters"]), np.stack([user_raster_on(Path(p), core, b) for b, p in rasters.items()]),
                      core.transform, core.crs, descriptions=list(rasters))


def pyramid_task(job_file: Path, region: tuple[int, int]) -> None:
    """Build one region of the DEM's max pyramid (:class:`~eemt_flow.solar.far_field.PyramidRegions`)
    from its cells. Runs on the manager, where the DEM is (a LOCAL rule)."""
    import json

    from eemt_flow.dem.raster import DemGrid
    from eemt_flow.errors import UserError
    from eemt_flow.solar.far_field import PyramidRegions

    job = json.loads(Path(job_file).read_text())
    grid = DemGrid.from_dict(job["dem"])
    _check_dem(grid, job)
    if not job.get("pyramid"):
        raise UserError(f"{job_file}: this job has no max pyramid (its tiles keep their whole halo windows)")
    regions = PyramidRegions.from_dict(job["pyramid"])
    i, j = region
    if (i, j) not in regions.regions():
        raise UserError(f"region {i},{j} is not one of this job's {regions.grid[0]} x {regions.grid[1]} pyramid regions")
    r0, c0, h, w = regions.window(i, j)
    regions.build(grid.read(Window(c0, r0, w, h)), i, j, Path(regions.file(i, j)))


def terrain_stage_task(job_file: Path, stage: str, tiles: tuple[int, int, int, int] | None = None,
                       group: tuple[int, int, int] | None = None) -> None:
    """One stage of the tiled terrain (:mod:`eemt_flow.terrain.stages`) for a block of terrain
    tiles (first row, last row + 1, first column, last column + 1 in the terrain grid), one after
    the other, for one exchange group (level, row, column), or for one exchange. The stages
    that read the DEM read each job tile's cut (its halo holds the ring they need); a terrain
    tile with no job tile (no valid cell) reads no DEM."""
    import json

    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.terrain.stages import STAGE_FUNCTIONS

    job = json.loads(Path(job_file).read_text())
    fn = STAGE_FUNCTIONS[stage]
    if group is not None:
        fn(*group, ".")
        return
    if tiles is None:
        fn(".")
        return
    from eemt_flow.workflow.layout import terrain_tile_cuts

    cuts = terrain_tile_cuts(job) if stage in ("fill_local", "flow_finish") else {}
    tan_beta_min = (ModelParameters.from_mapping(job["eemt"]["model_parameters"]).tan_beta_min
                    if stage == "flow_finish" else None)
    r0, r1, c0, c1 = tiles
    for tile_row in range(r0, r1):
        for tile_col in range(c0, c1):
            args: list = [tile_row, tile_col, "."]
            if stage in ("fill_local", "flow_finish"):
                args.insert(0, cuts.get((tile_row, tile_col)))
            if stage == "flow_finish":
                args.append(tan_beta_min)
            fn(*args)


def terrain_task(dem: Path, terrain_out: Path, horizons_out: Path, *, search_distance_m: float,
                 horizon_step_deg: float, sky_view_out: Path | None = None) -> None:
    """The GRASS engine's terrain of one tile window (:func:`grass.compute_terrain`) and, with
    ``sky_view_out``, the window's sky view factor from the same horizons (the reducer keeps
    the core)."""
    grass.compute_terrain(dem, terrain_out, horizons_out, search_distance_m=search_distance_m,
                          horizon_step_deg=horizon_step_deg)
    if sky_view_out is not None:
        with rasterio.open(dem) as src:
            transform, crs = src.transform, src.crs
        write_geotiff(sky_view_out, grass.sky_view_factor(terrain_out, horizons_out), transform, crs,
                      descriptions=["sky_view_factor"])


def solar_task(dem: Path, terrain: Path, horizons: Path, days: list[int], *, step_minutes: float, linke: float,
               albedo: float, horizon_step_deg: float, out: Path, daily_out: Path | None = None) -> None:
    """Daily radiation for ``days`` on one tile, summed into ``out`` (bands MONTHLY_BANDS).

    With ``daily_out`` the daily maps are kept too: bands ``{variable}_day{DDD}``, variable-major.
    """
    daily = grass.compute_days(dem, terrain, horizons, days, step_hours=step_minutes / 60.0, linke=linke,
                               albedo=albedo, horizon_step_deg=horizon_step_deg)
    with rasterio.open(dem) as src:
        transform, crs = src.transform, src.crs
    write_month(daily, days, transform, crs, out=out, daily_out=daily_out)


def write_month(daily: dict[str, np.ndarray], days: list[int], transform, crs, *, out: Path,
                daily_out: Path | None) -> None:
    """Write one tile-month of either engine: the sums over ``days`` (bands MONTHLY_BANDS) to
    ``out`` and, with ``daily_out``, the daily maps (bands ``{variable}_day{DDD}``, variable-major).

    ``daily`` maps each of MONTHLY_BANDS to an array (len(days), rows, cols).
    """
    if daily_out is not None:
        names = [f"{k}_day{d:03d}" for k in DAILY_KEYS for d in days]
        write_geotiff(daily_out, np.concatenate([daily[k] for k in DAILY_KEYS]), transform, crs, descriptions=names)
    write_month_sums({k: daily[k].sum(axis=0, dtype="float64") for k in MONTHLY_BANDS}, transform, crs, out=out)


def write_month_sums(sums: dict[str, np.ndarray], transform, crs, *, out: Path) -> None:
    """Write one tile-month's sums over its days (each of MONTHLY_BANDS, float64) to ``out``."""
    # stacked as float32 (as written): 4 more bytes a band and cell, not 8 + 4
    write_geotiff(out, np.stack([sums[k].astype("float32") for k in MONTHLY_BANDS]), transform, crs,
                  descriptions=list(MONTHLY_BANDS))


def _read_stack(src, window: Window | None = None) -> np.ndarray:
    """An open raster's bands (of ``window``) as float64, NaN for nodata."""
    return src.read(window=window, masked=True).astype("float64").filled(np.nan)


#: QA layers of each model and year: how many of its 12 months were flagged [months].
QA_LAYERS = {
    "QA_SI_MONTHS": "months where S_i was clamped to [s_min, s_max] or set to 1 (flat sum 0 or nodata; TOPO, TOPO-VEG)",
    "QA_SMALL_P_MONTHS": "months with precipitation below small_p_mm (Budyko's PET/P very large)",
    "QA_FROZEN_MONTHS": "months with T_mean <= 0 degC (F = 0 in TOPO and TOPO-VEG)",
}


def eemt_bands(model: str) -> list[str]:
    """Band names of one model's block in a tile's EEMT file [MJ m-2 per year or month; QA: months]."""
    return ([f"EEMT_{model}", f"E_PPT_{model}", f"E_BIO_{model}"]
            + [f"E_PPT_{model}_m{m:02d}" for m in range(1, 13)] + [f"E_BIO_{model}_m{m:02d}" for m in range(1, 13)]
            + [f"{qa}_{model}" for qa in QA_LAYERS])


#: Bands of real-sky global radiation appended to a tile's EEMT file when the climate is
#: DAYMET: the mean day of each solar month [Wh m-2 day-1].
REAL_SKY_BANDS = tuple(f"glob_rad_real_m{m:02d}" for m in range(1, 13))


def eemt_task(job_file: Path, tile_name: str, year: str, strip_rows: int | None = None) -> None:
    """EEMT of one tile and one climate year, for every selected model (EEMT-SPEC §4-6).

    Puts the tile's static layers (its DEM window, α from the terrain stage, its cut of the
    user rasters) and the year's prepared climate on the tile's core, takes the 12 monthly
    solar sums; writes annual EEMT, E_PPT, E_BIO, the monthly E_PPT and E_BIO [MJ m⁻²] and
    the QA counts.

    Every cell's EEMT is its own cell's (the slope needs its 3 x 3 neighbours, the climate its
    position), so the core is computed in strips of ``strip_rows`` rows (default
    :func:`~eemt_flow.workflow.makeflow.eemt_strip_rows`), each read, computed and written
    in turn: the task's memory is a strip's, whatever the tile's size.
    """
    import json

    from eemt_flow.climate.prepared import load_prepared
    from eemt_flow.dem.raster import Dem
    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.workflow.eemt_inputs import climate_stack, tile_static
    from eemt_flow.workflow.makeflow import eemt_strip_rows

    job = json.loads(Path(job_file).read_text())
    meta = job["eemt"]
    entry = next(t for t in job["tiles"] if t["name"] == tile_name)
    files = entry["files"]
    tile = Tile.from_dict(entry)
    days_in_month = next(c["days_in_month"] for c in meta["climate"] if c["year"] == year)
    params = ModelParameters.from_mapping(meta["model_parameters"])
    real_sky = meta.get("real_sky", False)
    n_requested = {month: len(job["months"][f"{month:02d}"]) for month in range(1, 13)}
    prepared = load_prepared(Path(meta["climate_files"][year]))
    grid_transform = Affine(*job["grid"]["transform"])
    strip_rows = strip_rows or eemt_strip_rows(tile.width, len(meta["models"]))
    names = [n for model in meta["models"] for n in eemt_bands(model)] + (list(REAL_SKY_BANDS) if real_sky else [])
    core_rows, core_cols = tile.core_in(Window(*files["dem_window"]))
    with contextlib.ExitStack() as stack:
        dem = stack.enter_context(rasterio.open(files["dem"]))
        alpha = stack.enter_context(rasterio.open(files["alpha"]))
        rasters = stack.enter_context(rasterio.open(files["rasters"])) if meta.get("rasters") else None
        solar = {m: stack.enter_context(rasterio.open(files["solar"][str(m)])) for m in range(1, 13)}
        out = stack.enter_context(_StripWriter(Path(files["eemt"][year]), len(names), tile.height, tile.width,
                                               strip_rows, window_transform(tile.core_window, grid_transform),
                                               dem.crs, names))
        for top in range(0, tile.height, strip_rows):
            rows = slice(core_rows.start + top, core_rows.start + min(top + strip_rows, tile.height))
            # the strip and one ring of the window around it (Horn's slope at its edge)
            r0, c0 = max(rows.start - 1, 0), max(core_cols.start - 1, 0)
            ring = Window(c0, r0, min(core_cols.stop + 1, dem.width) - c0, min(rows.stop + 1, dem.height) - r0)
            elevation = read_float32(dem, ring)
            in_ring = (slice(rows.start - r0, rows.stop - r0), slice(core_cols.start - c0, core_cols.stop - c0))
            height = rows.stop - rows.start
            strip = Window(0, top, tile.width, height)  # of the core
            user = dict(zip(meta["rasters"], _read_stack(rasters, strip))) if rasters is not None else {}
            static = tile_static(elevation, dem.window_transform(ring), dem.crs, in_ring,
                                 read_float32(alpha, strip), user)
            strip_transform = window_transform(Window(tile.col, tile.row + top, tile.width, height), grid_transform)
            climate = climate_stack(prepared.on_dem(Dem(elevation[in_ring], strip_transform, dem.crs)))
            sums = {m: _read_stack(src, _core_strip(tile, src, strip)) for m, src in solar.items()}
            strip_names, values = tile_eemt(static, climate, sums, n_requested, days_in_month, meta["models"], params,
                                            radiation=meta.get("radiation", "clear"), real_sky=real_sky)
            assert strip_names == names
            out.write(values, top)
            del elevation, static, climate, sums, values


def _core_strip(tile: Tile, src, strip: Window) -> Window:
    """``strip`` (a window of the tile's core) in a file of the core or of the halo window (crop_core's two forms)."""
    if (src.height, src.width) == (tile.height, tile.width):
        return strip
    rs, cs = tile.core_in_halo
    return Window(cs.start + strip.col_off, rs.start + strip.row_off, strip.width, strip.height)


class _StripWriter:
    """A float32 GeoTIFF written strip by strip, as :func:`~eemt_flow.dem.raster.write_geotiff`
    writes it whole (NaN nodata, deflate with the floating-point predictor, band-interleaved,
    renamed into place when complete), each strip completing its blocks."""

    def __init__(self, path: Path, count: int, height: int, width: int, strip_rows: int, transform, crs, names):
        self.path, self.tmp = path, path.with_name(path.name + ".part")
        # write_geotiff's 256 x 256 blocks where the strips are whole block rows (or one strip is the
        # whole raster), else blocks a strip high
        block_rows = 256 if strip_rows >= height or strip_rows % 256 == 0 else strip_rows
        tiled = height >= 256 and width >= 256 and block_rows % 16 == 0
        self.profile = dict(driver="GTiff", width=width, height=height, count=count, dtype="float32", crs=crs,
                            transform=transform, nodata=float("nan"), compress="deflate", predictor=3,
                            BIGTIFF="IF_SAFER", interleave="band" if count > 1 else "pixel", tiled=tiled,
                            **({"blockxsize": 256, "blockysize": block_rows} if tiled else {}))
        self.names = names

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dst = rasterio.open(self.tmp, "w", **self.profile)
        return self

    def write(self, values: np.ndarray, top: int) -> None:
        self.dst.write(values, window=Window(0, top, values.shape[2], values.shape[1]))

    def __exit__(self, kind, value, tb):
        if kind is None:
            for i, text in enumerate(self.names, start=1):
                self.dst.set_band_description(i, text)
        self.dst.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def tile_eemt(static: dict[str, np.ndarray], climate: np.ndarray, solar: dict[int, np.ndarray],
              n_requested: dict[int, int], days_in_month, models: list[str], params,
              radiation: str = "clear", real_sky: bool | None = None) -> tuple[list[str], np.ndarray]:
    """EEMT of one tile and climate year for each model: the computation of :func:`eemt_task`.

    Parameters
    ----------
    static : the tile's STATIC_BANDS arrays (elevation [m], alpha, northness, latitude [deg], NDVI, canopy height [m],
        wind speed [m s-1], annual NPP [g m-2 yr-1]); the last two all NaN unless the user gave rasters
    climate : array (5, 12, rows, cols): Tmin, Tmax [°C], precipitation [mm month-1], vapour pressure [Pa],
        real global horizontal irradiation of the month's mean day [Wh m-2 day-1] (DAYMET; all NaN otherwise)
    solar : month -> array (6, rows, cols) of MONTHLY_BANDS, sums over the month's requested days
    n_requested : month -> number of requested days summed in ``solar``
    days_in_month : 12 climate month lengths [days]
    models : TRAD, TOPO and/or TOPO_VEG
    params : :class:`~eemt_flow.model.eemt.ModelParameters`
    radiation : ``clear`` (S_i and R_m from r.sun's clear sky) or ``real`` (from the real-sky
        radiation, which needs the climate's real global irradiation)
    real_sky : whether to compute real-sky radiation (the job's; every tile must agree on its
        bands); None: when the climate has real global irradiation in this tile

    Returns
    -------
    (band names, float32 array (bands, rows, cols)): per model :func:`eemt_bands` [MJ m-2], then, when the
    climate has real global irradiation, REAL_SKY_BANDS [Wh m-2 day-1]; NaN off the DEM
    """
    from eemt_flow.model.calendar import monthly_mean_daylength_h, solar_days_in_month
    from eemt_flow.model.eemt import annual_eemt_mj, eemt_topo_month, eemt_topo_veg_month, eemt_trad_month
    from eemt_flow.model.pet import thornthwaite_heat_index, thornthwaite_pet_mm
    from eemt_flow.model.topoclimate import radiation_ratio_clamped
    from eemt_flow.solar.realsky import monthly_real_sky_wh_m2

    tmin, tmax, prcp, vp, real_global = climate
    if real_sky is None:
        real_sky = bool(np.isfinite(real_global).any())
    if radiation == "real" and not real_sky:
        raise ValueError("radiation 'real' needs the climate's real global irradiation (DAYMET srad, dayl)")
    real_maps = []
    # Thornthwaite's heat index is the whole year's, per cell
    heat_index = thornthwaite_heat_index(0.5 * (tmin + tmax), axis=0) if params.pet == "thornthwaite" else None
    results = {model: [] for model in models}
    shape = static["alpha"].shape
    # optional user rasters: present when any cell has a value (every DEM cell does when given)
    wind = static.get("wind_speed_m_s")
    wind = wind if wind is not None and np.isfinite(wind).any() else None
    npp = static.get("npp_g_m2_yr")
    npp = npp if npp is not None and np.isfinite(npp).any() else None
    qa = {model: {name: np.zeros(shape, dtype="float32") for name in QA_LAYERS} for model in models}
    for month in range(1, 13):
        # Sums over the requested days scaled to the whole solar month (mean day x days); S_i is unaffected.
        scale = solar_days_in_month(month) / n_requested[month]
        s_topo, s_flat = solar[month][0] * scale, solar[month][1] * scale
        i, dm = month - 1, days_in_month[month - 1]
        if real_sky:
            glob_sum, flat_sum, _, beam_sum, refl_sum, flat_beam_sum = solar[month]
            real_day, _ = monthly_real_sky_wh_m2(glob_sum, flat_sum, beam_sum, refl_sum, flat_beam_sum,
                                                 n_requested[month], real_global[i], static["latitude_deg"], month)
            real_maps.append(real_day)
            if radiation == "real":  # S_i = real topographic / real horizontal; R_m from the real topographic
                s_topo, s_flat = real_day * solar_days_in_month(month), real_global[i] * solar_days_in_month(month)
        for model in models:
            if model == "TRAD":
                daylength_h = monthly_mean_daylength_h(static["latitude_deg"], month)
                pet_mm = (None if heat_index is None else
                          thornthwaite_pet_mm(0.5 * (tmin[i] + tmax[i]), daylength_h, dm, heat_index))
                r = eemt_trad_month(tmin[i], tmax[i], prcp[i], daylength_h, dm, pet_mm=pet_mm, params=params)
            elif model == "TOPO":
                r = eemt_topo_month(tmin[i], tmax[i], prcp[i], vp[i], static["elevation_m"], s_topo, s_flat,
                                    static["alpha"], static["northness"], month, dm, wind_speed_m_s=wind,
                                    npp_annual_g_m2=npp, params=params)
            else:
                r = eemt_topo_veg_month(tmin[i], tmax[i], prcp[i], vp[i], static["elevation_m"], s_topo, s_flat,
                                        static["alpha"], static["ndvi"], static["canopy_height_m"], month, dm,
                                        wind_speed_m_s=wind, npp_annual_g_m2=npp, params=params)
            results[model].append(r)
            if r.s_i_guarded is not None:
                qa[model]["QA_SI_MONTHS"] += np.broadcast_to(
                    r.s_i_guarded | radiation_ratio_clamped(s_topo, s_flat, params.s_min, params.s_max), shape)
            qa[model]["QA_SMALL_P_MONTHS"] += np.broadcast_to(prcp[i] < params.small_p_mm, shape)
            qa[model]["QA_FROZEN_MONTHS"] += np.broadcast_to(np.asarray(r.t_mean_c) <= 0.0, shape)
    bands, names = [], []
    for model, months in results.items():
        annual = annual_eemt_mj(months)
        bands += [np.broadcast_to(annual.eemt_mj_m2, shape), np.broadcast_to(annual.e_ppt_mj_m2, shape),
                  np.broadcast_to(annual.e_bio_mj_m2, shape)]
        bands += [np.broadcast_to(np.asarray(r.e_ppt_j_m2) / 1e6, shape) for r in months]
        bands += [np.broadcast_to(np.asarray(r.e_bio_j_m2) / 1e6, shape) for r in months]
        bands += [qa[model][name] for name in QA_LAYERS]
        names += eemt_bands(model)
    if real_sky:
        bands += [np.broadcast_to(r, shape) for r in real_maps]
        names += list(REAL_SKY_BANDS)
    stack = np.stack(bands).astype("float32")
    stack[:, ~np.isfinite(static["elevation_m"])] = np.nan
    return names, stack


def solar_fast_task(job_file: Path, tile_name: str, strip_rows: int | None = None) -> None:
    """The fast engine on one tile: horizons once, then every requested day, summed per month.

    Everything comes from job.json: the days, r.sun's parameters, the halo (horizon search
    distance) and the sun reference geometry of the whole DEM, so every tile of a job sees
    the sun from the same positions and a tiled run equals an untiled one. Horizons and
    radiation are computed for the tile's core only; the halo is there for the horizon
    rays and the slope at the core's edge. Writes the core's monthly files (bands as
    MONTHLY_BANDS), with keep_daily its daily files, and the core's sky view factor from
    the same horizons (where the job names a ``sky_view`` file).

    A cell's horizons and radiation are its own (the horizons' lines are fixed on the DEM's
    grid), so the core is computed in strips of ``strip_rows`` rows (default
    :func:`~eemt_flow.workflow.makeflow.fast_strip_rows`), horizons, sky view and days of one
    strip at a time, each file written strip by strip: the horizons held are a strip's.
    """
    import json

    from eemt_flow.solar.fast_tile import SunReference, surface_daily_radiation, surface_sky_view_factor, tile_surface
    from eemt_flow.workflow.makeflow import fast_strip_rows

    job = json.loads(Path(job_file).read_text())
    entry = next(t for t in job["tiles"] if t["name"] == tile_name)
    files, tile = entry["files"], Tile.from_dict(entry)
    p = job["parameters"]
    if files.get("halo"):  # the halo as the hull reads it: full resolution near the core, a pyramid beyond
        from eemt_flow.solar.far_field import HaloTerrain

        terrain = HaloTerrain.load(Path(files["halo"]))
        transform = window_transform(Window(tile.halo_col, tile.halo_row, tile.halo_width, tile.halo_height),
                                     Affine(*job["grid"]["transform"]))
        crs = CRS.from_wkt(job["grid"]["crs_wkt"])
    else:
        with rasterio.open(files["dem"]) as src:
            terrain = read_float32(src)  # the horizons read float32 (as r.horizon does), not a float64 copy
            transform, crs = src.transform, src.crs
    month_of_day = {d: mm for mm, month_days in job["months"].items() for d in month_days}
    days_of = {str(int(mm)): sorted(d) for mm, d in job["months"].items() if d}
    reference = SunReference.from_dict(job["fast_reference"])
    n_azimuths = round(360 / p["horizon_step_deg"])
    strip_rows = strip_rows or fast_strip_rows(tile.width, n_azimuths, p["keep_daily"],
                                               max(len(d) for d in days_of.values()))
    rows, cols = tile.core_in_halo
    core_transform = transform @ Affine.translation(cols.start, rows.start)

    def writer(path, names):
        return stack.enter_context(_StripWriter(Path(path), len(names), tile.height, tile.width, strip_rows,
                                                core_transform, crs, names))

    with contextlib.ExitStack() as stack:
        monthly = {m: writer(files["solar"][m], MONTHLY_BANDS) for m in days_of}
        daily = {m: writer(files["daily"][m], [f"{k}_day{d:03d}" for k in DAILY_KEYS for d in days])
                 for m, days in days_of.items()} if p["keep_daily"] else {}
        sky = writer(files["sky_view"], ["sky_view_factor"]) if files.get("sky_view") else None
        for top in range(0, tile.height, strip_rows):
            strip = (slice(rows.start + top, rows.start + min(top + strip_rows, tile.height)), cols)
            surface = tile_surface(terrain, transform, reference, n_azimuths=n_azimuths, max_distance_m=job["halo_m"],
                                   core=strip, horizon_method=p["horizon_method"], n_threads=job["threads_per_task"],
                                   origin=(tile.halo_row, tile.halo_col), what=files["dem"])
            if sky is not None:  # from the same horizons; written before the days' maps take the memory
                sky.write(surface_sky_view_factor(surface, reference, job["threads_per_task"])[np.newaxis], top)
            days = surface_daily_radiation(surface, crs, sorted(month_of_day), reference,
                                           step_minutes=p["step_minutes"], linke=p["linke"], albedo=p["albedo"],
                                           n_threads=job["threads_per_task"])
            for mm, month in itertools.groupby(days, key=lambda r: month_of_day[r.day]):
                m = str(int(mm))
                if p["keep_daily"]:
                    month = list(month)
                    maps = {k: np.stack([getattr(r, k) for r in month]) for k in MONTHLY_BANDS}
                    daily[m].write(np.concatenate([maps[k] for k in DAILY_KEYS]), top)
                    sums = {k: maps[k].sum(axis=0, dtype="float64") for k in MONTHLY_BANDS}  # as write_month sums
                    del maps
                else:
                    # the days' sums in order, in float64: equal to write_month's sum over the stacked days
                    sums = {k: np.zeros(surface.elevation_m.shape, dtype="float64") for k in MONTHLY_BANDS}
                    for r in month:
                        for k in MONTHLY_BANDS:
                            sums[k] += getattr(r, k)
                monthly[m].write(np.stack([sums[k].astype("float32") for k in MONTHLY_BANDS]), top)
            del surface, days
