"""From monthly fields on their own grids to :class:`MonthlyClimate` on the DEM grid.

Shared by the gridded sources (user grids, DAYMET). Order of operations (EEMT-SPEC §2,
§3): aggregate daily → monthly on the source grid first (done by the caller), then
resample each variable and its base elevation bilinearly to the DEM grid, then
lapse-correct Tmin and Tmax.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from eemt_flow.dem.raster import Dem

from eemt_flow.climate.monthly import (
    MonthlyClimate,
    check_cover,
    days_in_month_of,
    lapse_correct_monthly,
    lapse_rates_tuple,
    mask_to_dem,
)
from eemt_flow.climate.resample import CLIMATE_RESAMPLING, check_grid_covers_dem, footprint_mean_elevation, warp_to_dem

log = logging.getLogger(__name__)

#: Temperature variables (lapse-corrected) and the MonthlyClimate attribute of each variable.
TEMPERATURE_VARIABLES = ("tmin", "tmax")
CLIMATE_ATTRIBUTE = {"tmin": "tmin_c", "tmax": "tmax_c", "prcp": "prcp_mm", "vp": "vp_pa"}


@dataclass
class MonthlyField:
    """Twelve monthly values of one variable on its source grid.

    Attributes
    ----------
    values : numpy.ndarray of float32, shape (12, rows, cols)
        Monthly mean (tmin [°C], tmax [°C], vp [Pa]) or sum (prcp [mm]); NaN nodata.
    transform : affine.Affine
        Source grid transform.
    crs : rasterio.crs.CRS
        Source grid CRS.
    path : pathlib.Path
        File the values came from (for messages).
    incomplete_months : tuple of int
        Months (1..12) that lacked a day and are nodata.
    """

    values: np.ndarray
    transform: object
    crs: CRS
    path: Path
    incomplete_months: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the source grid."""
        return self.values.shape[1:]


def base_elevations(fields: dict[str, MonthlyField], dem, elevation: MonthlyField | None) -> dict[str, MonthlyField]:
    """Base elevation [m] of the temperature fields, each on a grid of its own.

    ``elevation``: the climate grid's own DEM (one band), used for both temperatures; if
    None, the mean of ``dem`` (in memory, or on disk: :class:`eemt_flow.dem.raster.DemGrid`) over
    each cell of each temperature grid (:func:`footprint_mean_elevation`; tmin and tmax
    usually share a grid and then share the computation).
    """
    if elevation is not None:
        return {v: elevation for v in TEMPERATURE_VARIABLES}
    bases: dict[str, MonthlyField] = {}
    by_grid: dict[tuple, MonthlyField] = {}
    for variable in TEMPERATURE_VARIABLES:
        field = fields[variable]
        key = (field.shape, tuple(field.transform), field.crs.to_wkt())
        if key not in by_grid:
            mean = footprint_mean_elevation(dem, field.shape, field.transform, field.crs)
            by_grid[key] = MonthlyField(mean[np.newaxis], field.transform, field.crs, field.path)
        bases[variable] = by_grid[key]
    return bases


def climate_on_dem(fields: dict[str, MonthlyField], dem: Dem, *, year: int | str, source: str,
                   lapse_tmin_table, lapse_tmax_table, bases: dict[str, MonthlyField],
                   resampling: str = CLIMATE_RESAMPLING) -> MonthlyClimate:
    """Resample monthly fields to the DEM grid and lapse-correct the temperatures.

    Parameters
    ----------
    fields : dict of str to MonthlyField
        ``tmin``, ``tmax``, ``prcp``, ``vp`` on their source grids.
    dem : Dem
        Target grid and elevation z [m]: the whole DEM or any window of it (every cell gets
        the same value either way).
    year : int or str
        Calendar year or ``"normals"``.
    source : str
        Description for metadata.
    lapse_tmin_table, lapse_tmax_table : array, shape (12,)
        Monthly lapse rates [°C km⁻¹].
    bases : dict of str to MonthlyField
        Base elevation [m] of ``tmin`` and ``tmax`` on their own grids (:func:`base_elevations`),
        resampled onto the DEM like the temperatures.
    resampling : str
        ``bilinear`` (default), ``nearest`` or ``cubic`` (:data:`CLIMATE_RESAMPLING_METHODS`).

    Returns
    -------
    MonthlyClimate

    Raises
    ------
    UserError
        If a grid does not cover the DEM or is nodata over part of it.

    References
    ----------
    EEMT-SPEC §2 (aggregate on the 1 km grid first, then downscale), §3 (same resampling
    for T and z_base; z_base from the footprint mean when no 1 km DEM is given).
    """
    z = dem.elevation_m
    lapse = {"tmin": lapse_tmin_table, "tmax": lapse_tmax_table}
    out: dict[str, np.ndarray] = {}
    base_of_tmin = None
    incomplete = sorted({m for f in fields.values() for m in f.incomplete_months})
    if incomplete:
        log.warning("%s: month %s lacks a day in the daily data and is nodata", source, ", ".join(map(str, incomplete)))
    for variable, attribute in CLIMATE_ATTRIBUTE.items():
        field = fields[variable]
        what = f"{variable} ({field.path})"
        check_grid_covers_dem(dem, field.shape, field.transform, field.crs, what=what)
        on_dem = warp_to_dem(field.values, field.transform, field.crs, dem, resampling=resampling)
        check_cover(on_dem, z, what=what, allowed_nan_months=field.incomplete_months)
        if variable in TEMPERATURE_VARIABLES:
            b = bases[variable]
            base = warp_to_dem(b.values[0], b.transform, b.crs, dem, resampling=resampling)
            check_cover(base, z, what=f"base elevation of the {variable} grid ({b.path})")
            if variable == "tmin":
                base_of_tmin = base
            on_dem = lapse_correct_monthly(on_dem, z, base, lapse[variable])
        out[attribute] = mask_to_dem(on_dem, z)
    return MonthlyClimate(
        **out,
        days_in_month=days_in_month_of(year),
        year=year,
        source=source,
        base_elevation_m=mask_to_dem(base_of_tmin, z),
        lapse_tmin_c_per_km=lapse_rates_tuple(lapse_tmin_table),
        lapse_tmax_c_per_km=lapse_rates_tuple(lapse_tmax_table),
        incomplete_months=tuple(incomplete),
    )
