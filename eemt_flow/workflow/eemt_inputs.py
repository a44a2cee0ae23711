"""What an EEMT task puts together for its tile, besides the solar sums: the static layers and the climate.

Each layer is computed for the tile's core from the tile's own files — its DEM window (with
the halo: slope and northness need a neighbour), its cut of the user rasters, α from the
terrain stage and the prepared climate of the year (:mod:`eemt_flow.climate.prepared`) —
and every cell gets the value the whole DEM would give it. The notebook function
:func:`eemt_flow.eemt.compute` calls the same functions on the whole DEM as one tile.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import from_bounds

from eemt_flow.climate.resample import check_grid_covers_dem, dem_bounds_in, warp_to_dem
from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError
from eemt_flow.model.constants import NPP_RASTER_RANGE_G_M2_YR, PARAMETER_RANGES

#: Bands of a tile's EEMT static layers (float32 on disk and in memory).
STATIC_BANDS = ("elevation_m", "alpha", "northness", "latitude_deg", "ndvi", "canopy_height_m", "wind_speed_m_s",
                "npp_g_m2_yr")
#: The climate variables, 12 months each, in the order the EEMT computation takes them;
#: glob_wh_m2_day is DAYMET's real global horizontal irradiation of the month's mean day
#: [Wh m-2 day-1], all NaN for the other sources.
CLIMATE_VARIABLES = ("tmin_c", "tmax_c", "prcp_mm", "vp_pa", "glob_wh_m2_day")
#: Optional user rasters: static band -> (job spec field, description, lowest, highest value).
USER_RASTERS = {
    "ndvi": ("ndvi", "NDVI", -1.0, 1.0),
    "canopy_height_m": ("canopy_height", "canopy height", 0.0, None),
    "wind_speed_m_s": ("wind_speed", "wind speed (m/s)", *PARAMETER_RANGES["wind_speed_m_s"]),
    "npp_g_m2_yr": ("npp", "NPP (g m-2 yr-1)", *NPP_RASTER_RANGE_G_M2_YR),
}
#: Source cells read around a window of a user raster, so that bilinear resampling sees
#: every neighbour it needs (2 x 2) wherever the window falls.
RASTER_MARGIN_CELLS = 2


def check_user_raster(path: Path, dem, band: str) -> None:
    """Refuse a user raster that cannot be read, misses part of the DEM's extent, holds no
    values or values outside its range; reads it in blocks (``dem``: a Dem or a DemGrid)."""
    _, what, low, high = USER_RASTERS[band]
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise UserError(f"{path}: {what} has no coordinate reference system; assign one (gdal_edit.py -a_srs)")
            check_grid_covers_dem(dem, src.shape, src.transform, src.crs, what=f"{what} ({path})")
            lo, hi = math.inf, -math.inf
            for _, window in src.block_windows(1):
                values = src.read(1, window=window, masked=True).astype("float64").filled(np.nan)
                finite = values[np.isfinite(values)]
                if finite.size:
                    lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    except rasterio.errors.RasterioIOError:
        raise UserError(f"{path}: {what} is not a raster GDAL can read") from None
    if lo > hi:
        raise UserError(f"{path}: {what} holds no values (every cell is nodata); give a raster with values over the DEM")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise UserError(f"{path}: {what} values span {lo:g} to {hi:g}, outside "
                        f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]")


def user_raster_on(path: Path, dem: Dem, band: str) -> np.ndarray:
    """A user raster resampled bilinearly onto ``dem``'s cells (the whole DEM or a tile), float32.

    Reads only the raster's window around ``dem`` (RASTER_MARGIN_CELLS more on each side), so
    each cell gets the value a resampling of the whole raster would give it.
    """
    what = USER_RASTERS[band][1]
    with rasterio.open(path) as src:
        left, bottom, right, top = dem_bounds_in(dem, src.crs)
        win = from_bounds(left, bottom, right, top, src.transform)
        m = RASTER_MARGIN_CELLS
        row0, col0 = max(0, math.floor(win.row_off) - m), max(0, math.floor(win.col_off) - m)
        row1 = min(src.height, math.ceil(win.row_off + win.height) + m)
        col1 = min(src.width, math.ceil(win.col_off + win.width) + m)
        window = rasterio.windows.Window(col0, row0, max(0, col1 - col0), max(0, row1 - row0))
        values = src.read(1, window=window, masked=True).astype("float32").filled(np.nan)
        transform = src.window_transform(window)
        crs = src.crs
    on_dem = warp_to_dem(values, transform, crs, dem)
    if np.isnan(on_dem[np.isfinite(dem.elevation_m)]).any():
        raise UserError(f"{path}: the {what} raster does not cover the whole DEM")
    return on_dem


def tile_static(elevation_m: np.ndarray, transform, crs, core: tuple[slice, slice], alpha: np.ndarray,
                rasters: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The STATIC_BANDS of a tile's core, float64 of float32 values.

    Parameters
    ----------
    elevation_m : the tile's DEM window with its halo [m], NaN nodata
    transform, crs : the window's grid
    core : (rows, cols) slices of the core in the window
    alpha : MCWI α of the core [-] (terrain stage)
    rasters : user rasters on the core (keys of USER_RASTERS); absent ones are NaN
    """
    from eemt_flow.dem.geography import cell_latitudes_deg
    from eemt_flow.terrain.slope import northness, slope_aspect

    elevation = np.asarray(elevation_m, dtype="float32")
    slope_deg, aspect_deg = slope_aspect(elevation, (abs(transform.a), abs(transform.e)))
    z = elevation[core]
    rows, cols = core
    core_transform = transform @ rasterio.Affine.translation(cols.start or 0, rows.start or 0)
    latitude = cell_latitudes_deg(crs, core_transform, z.shape)
    latitude[~np.isfinite(z)] = np.nan
    nan = np.full(z.shape, np.nan)
    layers = {"elevation_m": z, "alpha": alpha, "northness": northness(aspect_deg, slope_deg)[core],
              "latitude_deg": latitude, **{b: rasters.get(b, nan) for b in USER_RASTERS}}
    return {k: np.asarray(layers[k], dtype="float32").astype("float64") for k in STATIC_BANDS}


def climate_stack(climate) -> np.ndarray:
    """A MonthlyClimate as the (5, 12, rows, cols) float64 array of float32 values the EEMT task
    takes (CLIMATE_VARIABLES; an absent optional one is all NaN)."""
    def variable(name):
        value = getattr(climate, name)
        return np.full((12, *climate.shape), np.nan, dtype="float32") if value is None else value

    return np.stack([np.asarray(variable(v), dtype="float32") for v in CLIMATE_VARIABLES]).astype("float64")
