"""Task entry points: what the Makeflow rules call (``eemt-flow task …``).

Each reads only the files its rule declares and writes only the files it declares, so a
Work Queue worker with no shared file system can run it.
"""

from __future__ import annotations

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


def cut_dem_task(job_file: Path, tile_name: str) -> None:
    """Cut one tile's halo window from the job's DEM into the tile's own GeoTIFF.

    Runs on the manager, where the DEM is (a LOCAL rule), so that a worker needs nothing
    but the tile. The DEM must be the file the job was planned from (same size and time).
    """
    import json

    from eemt_flow.dem.raster import DemGrid, dem_fingerprint
    from eemt_flow.errors import UserError

    job = json.loads(Path(job_file).read_text())
    entry = next(t for t in job["tiles"] if t["name"] == tile_name)
    grid = DemGrid.from_dict(job["dem"])
    try:
        fingerprint = dem_fingerprint(grid.path)
    except OSError:
        raise UserError(f"{grid.path}: the DEM this job was planned from is gone; restore it or plan a new job") from None
    if fingerprint != job["dem"]["fingerprint"]:
        raise UserError(f"{grid.path} changed after the job was planned; restore it or plan a new job in a new --workdir")
    tile = Tile.from_dict(entry)
    block = grid.read(tile.halo_window)
    files = entry["files"]
    if files.get("halo"):
        # the halo as the hull reads it (full resolution near the core, a max pyramid beyond);
        # dem.tif then holds the core and one ring (slope at the core's edge)
        from eemt_flow.solar.far_field import HaloTerrain

        reduced = job["reduced_halo"]
        HaloTerrain.of_window(block, tile.core_in_halo, max_distance_cells=job["halo_m"] / abs(grid.transform.a),
                              far_field_cells=reduced["far_field_cells"],
                              near_field_cells=reduced["near_field_cells"],
                              origin=(tile.halo_row, tile.halo_col)).save(Path(files["halo"]))
    staged = Window(*files["dem_window"])
    in_block = Window(staged.col_off - tile.halo_col, staged.row_off - tile.halo_row, staged.width, staged.height)
    write_geotiff(Path(files["dem"]), block[in_block.toslices()], window_transform(staged, grid.transform), grid.crs)
    rasters = (job.get("eemt") or {}).get("rasters") or {}
    if rasters:
        from eemt_flow.dem.raster import Dem
        from eemt_flow.workflow.eemt_inputs import user_raster_on

        core = Dem(block[tile.core_in_halo], window_transform(tile.core_window, grid.transform), grid.crs)
        write_geotiff(Path(entry["files"]["rasters"]), np.stack([user_raster_on(Path(p), core, b) for b, p in rasters.items()]),
                      core.transform, core.crs, descriptions=list(rasters))


def terrain_stage_task(job_file: Path, stage: str, tile_row: int | None, tile_col: int | None,
                       group: tuple[int, int, int] | None = None) -> None:
    """One stage of the tiled terrain (:mod:`eemt_flow.terrain.stages`) for one terrain tile, one
    exchange group (level, row, column), or one exchange. The stages that read the DEM read the
    job tile's cut (its halo holds the ring they need); a terrain tile with no job tile (no
    valid cell) reads no DEM."""
    import json

    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.terrain.stages import STAGE_FUNCTIONS

    job = json.loads(Path(job_file).read_text())
    fn = STAGE_FUNCTIONS[stage]
    if group is not None:
        fn(*group, ".")
        return
    if tile_row is None:
        fn(".")
        return
    args: list = [tile_row, tile_col, "."]
    if stage in ("fill_local", "flow_finish"):
        from eemt_flow.workflow.layout import terrain_tile_cuts

        args.insert(0, terrain_tile_cuts(job).get((tile_row, tile_col)))
    if stage == "flow_finish":
        args.append(ModelParameters.from_mapping(job["eemt"]["model_parameters"]).tan_beta_min)
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
    write_geotiff(out, np.stack([sums[k] for k in MONTHLY_BANDS]), transform, crs, descriptions=list(MONTHLY_BANDS))


def _read_stack(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(masked=True).astype("float64").filled(np.nan)


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


def eemt_task(job_file: Path, tile_name: str, year: str) -> None:
    """EEMT of one tile and one climate year, for every selected model (EEMT-SPEC §4-6).

    Puts the tile's static layers (its DEM window, α from the terrain stage, its cut of the
    user rasters) and the year's prepared climate on the tile's core, takes the 12 monthly
    solar sums; writes annual EEMT, E_PPT, E_BIO, the monthly E_PPT and E_BIO [MJ m⁻²] and
    the QA counts.
    """
    import json

    from eemt_flow.climate.prepared import load_prepared
    from eemt_flow.dem.raster import Dem
    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.workflow.eemt_inputs import climate_stack, tile_static

    job = json.loads(Path(job_file).read_text())
    meta = job["eemt"]
    entry = next(t for t in job["tiles"] if t["name"] == tile_name)
    files = entry["files"]
    tile = Tile.from_dict(entry)
    days_in_month = next(c["days_in_month"] for c in meta["climate"] if c["year"] == year)
    # the core and one ring of the halo (Horn's slope at the core's edge), not the whole halo window
    rows, cols = tile.core_in(Window(*files["dem_window"]))
    with rasterio.open(files["dem"]) as src:
        r0, c0 = max(rows.start - 1, 0), max(cols.start - 1, 0)
        ring = Window(c0, r0, min(cols.stop + 1, src.width) - c0, min(rows.stop + 1, src.height) - r0)
        elevation = read_float32(src, ring)
        transform, crs = src.window_transform(ring), src.crs
    in_ring = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
    with rasterio.open(files["alpha"]) as src:
        alpha = read_float32(src)
    rasters = dict(zip(meta["rasters"], _read_stack(files["rasters"]))) if meta.get("rasters") else {}
    static = tile_static(elevation, transform, crs, in_ring, alpha, rasters)
    core_transform = window_transform(tile.core_window, Affine(*job["grid"]["transform"]))
    core = Dem(elevation[in_ring], core_transform, crs)
    climate = climate_stack(load_prepared(Path(meta["climate_files"][year])).on_dem(core))
    solar = {month: crop_core(tile, _read_stack(files["solar"][str(month)])) for month in range(1, 13)}
    n_requested = {month: len(job["months"][f"{month:02d}"]) for month in range(1, 13)}
    names, stack = tile_eemt(static, climate, solar, n_requested, days_in_month, meta["models"],
                             ModelParameters.from_mapping(meta["model_parameters"]),
                             radiation=meta.get("radiation", "clear"), real_sky=meta.get("real_sky", False))
    write_geotiff(files["eemt"][year], stack, core_transform, crs, descriptions=names)


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


def solar_fast_task(job_file: Path, tile_name: str) -> None:
    """The fast engine on one tile: horizons once, then every requested day, summed per month.

    Everything comes from job.json: the days, r.sun's parameters, the halo (horizon search
    distance) and the sun reference geometry of the whole DEM, so every tile of a job sees
    the sun from the same positions and a tiled run equals an untiled one. Horizons and
    radiation are computed for the tile's core only; the halo is there for the horizon
    rays and the slope at the core's edge. Writes the core's monthly files (bands as
    MONTHLY_BANDS), with keep_daily its daily files, and the core's sky view factor from
    the same horizons (where the job names a ``sky_view`` file).
    """
    import json

    from eemt_flow.solar.fast_tile import SunReference, surface_daily_radiation, surface_sky_view_factor, tile_surface

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
    reference = SunReference.from_dict(job["fast_reference"])
    surface = tile_surface(terrain, transform, reference, n_azimuths=round(360 / p["horizon_step_deg"]),
                           max_distance_m=job["halo_m"], core=tile.core_in_halo, horizon_method=p["horizon_method"],
                           n_threads=job["threads_per_task"], origin=(tile.halo_row, tile.halo_col),
                           what=files["dem"])
    core_transform = surface.core_transform
    if files.get("sky_view"):  # from the same horizons; written before the days' maps take the memory
        svf = surface_sky_view_factor(surface, reference, job["threads_per_task"])
        write_geotiff(Path(files["sky_view"]), svf, core_transform, crs, descriptions=["sky_view_factor"])
        del svf
    days = surface_daily_radiation(surface, crs, sorted(month_of_day), reference, step_minutes=p["step_minutes"],
                                   linke=p["linke"], albedo=p["albedo"], n_threads=job["threads_per_task"])
    for mm, month in itertools.groupby(days, key=lambda r: month_of_day[r.day]):
        m = str(int(mm))
        if p["keep_daily"]:
            month = list(month)
            write_month({k: np.stack([getattr(r, k) for r in month]) for k in MONTHLY_BANDS}, [r.day for r in month],
                        core_transform, crs, out=files["solar"][m], daily_out=files["daily"][m])
            continue
        # the days' sums in order, in float64: equal to write_month's sum over the stacked days, without the stack
        sums = {k: np.zeros((tile.height, tile.width), dtype="float64") for k in MONTHLY_BANDS}
        for r in month:
            for k in MONTHLY_BANDS:
                sums[k] += getattr(r, k)
        write_month_sums(sums, core_transform, crs, out=files["solar"][m])
