"""Monthly climate on the DEM grid: the common output of every climate source.

Every source (station normals, user grids, DAYMET) ends in :class:`MonthlyClimate`: twelve
monthly fields on the DEM grid, with Tmin and Tmax already moved to the DEM elevation by
the lapse correction of EEMT-SPEC §3 (VZJ 2015 Eq. 6, lapse term).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eemt_flow.errors import UserError
from eemt_flow.model.calendar import SOLAR_DAYS_IN_MONTH, daymet_days_in_month
from eemt_flow.model.constants import LAPSE_RATE
from eemt_flow.model.topoclimate import lapse_corrected_temperature_c

#: Months of a year.
MONTHS_PER_YEAR = 12
#: ``year`` of a climate that is a set of long-term monthly normals rather than one year.
NORMALS = "normals"
#: Days of each month of a non-leap year, Jan..Dec [day]; the calendar of monthly normals.
NON_LEAP_DAYS_IN_MONTH = SOLAR_DAYS_IN_MONTH.copy()
#: The climate variables every source provides, with their unit (EEMT-SPEC §8).
CLIMATE_VARIABLE_UNITS = {"tmin": "°C", "tmax": "°C", "prcp": "mm", "vp": "Pa"}


@dataclass
class MonthlyClimate:
    """Twelve months of climate on the DEM grid.

    Attributes
    ----------
    tmin_c, tmax_c : numpy.ndarray of float32, shape (12, rows, cols)
        Monthly mean daily minimum and maximum air temperature, lapse-corrected to the DEM
        elevation [°C].
    prcp_mm : numpy.ndarray of float32, shape (12, rows, cols)
        Monthly precipitation sum [mm month⁻¹] (= kg m⁻² month⁻¹); not elevation-adjusted.
    vp_pa : numpy.ndarray of float32, shape (12, rows, cols)
        Monthly mean water vapour pressure [Pa]; not elevation-adjusted.
    days_in_month : numpy.ndarray of int, shape (12,)
        DAYMET days of each month [day]; sums to 365.
    year : int or str
        Calendar year, or :data:`NORMALS` for long-term normals.
    source : str
        Human-readable description of where the data came from, for output metadata.
    base_elevation_m : numpy.ndarray of float32 (rows, cols), or float, or None
        Elevation the source temperatures refer to (z_base of EEMT-SPEC §3) [m]: a field on
        the DEM grid for gridded sources, the station elevation for a station.
    lapse_tmin_c_per_km, lapse_tmax_c_per_km : tuple of 12 float
        Lapse rates applied to Tmin and Tmax, Jan..Dec [°C km⁻¹].
    incomplete_months : tuple of int
        Months (1..12) that lacked a day in the daily input and are therefore nodata.
    glob_wh_m2_day : numpy.ndarray of float32, shape (12, rows, cols), or None
        Real-sky global horizontal irradiation of the month's mean day [Wh m⁻² day⁻¹]:
        DAYMET's daily srad · dayl / 3600 averaged over the month; None for sources
        without shortwave radiation.

    Notes
    -----
    Cells are NaN where the DEM is NaN, and in :attr:`incomplete_months`.
    """

    tmin_c: np.ndarray
    tmax_c: np.ndarray
    prcp_mm: np.ndarray
    vp_pa: np.ndarray
    days_in_month: np.ndarray
    year: int | str
    source: str
    base_elevation_m: np.ndarray | float | None = None
    lapse_tmin_c_per_km: tuple[float, ...] = (LAPSE_RATE,) * MONTHS_PER_YEAR
    lapse_tmax_c_per_km: tuple[float, ...] = (LAPSE_RATE,) * MONTHS_PER_YEAR
    incomplete_months: tuple[int, ...] = ()
    glob_wh_m2_day: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the DEM grid."""
        return self.tmin_c.shape[1:]


def days_in_month_of(year: int | str) -> np.ndarray:
    """days_m of a DAYMET year, or of a non-leap year for normals.

    Parameters
    ----------
    year : int or str
        Calendar year, or :data:`NORMALS`.

    Returns
    -------
    numpy.ndarray of int, shape (12,)
        Days in each month, Jan..Dec [day]; sums to 365 (EEMT-SPEC §2).
    """
    if year == NORMALS:
        return NON_LEAP_DAYS_IN_MONTH.copy()
    return daymet_days_in_month(int(year))


def lapse_rate_table(value: float | Sequence[float], name: str) -> np.ndarray:
    """A lapse rate as a 12-month table.

    Parameters
    ----------
    value : float or sequence of 12 float
        One lapse rate for every month, or one per month Jan..Dec [°C km⁻¹].
    name : str
        Name of the setting, for the error message.

    Returns
    -------
    numpy.ndarray of float64, shape (12,)
        Lapse rate of each month [°C km⁻¹].

    Raises
    ------
    UserError
        If the value is neither one number nor twelve, or is not finite.

    References
    ----------
    VZJ 2015 p. 6 (separate monthly station lapse rates for Tmin and Tmax); EEMT-SPEC §3, §10.8.
    """
    try:
        table = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name}: '{value}' is not a number; give one lapse rate in °C/km or 12 monthly values") from None
    if table.ndim == 0:
        table = np.full(MONTHS_PER_YEAR, float(table))
    if table.shape != (MONTHS_PER_YEAR,):
        raise UserError(f"{name}: got {table.size} values; give one lapse rate in °C/km or 12 monthly values (Jan..Dec)")
    if not np.all(np.isfinite(table)):
        raise UserError(f"{name}: lapse rates must be finite numbers in °C/km, got {list(table)}")
    return table


def lapse_correct_monthly(t_monthly_c, elevation_m, base_elevation_m, lapse_table_c_per_km) -> np.ndarray:
    """Move twelve monthly temperature fields to the DEM elevation.

    ``T_loc,m = T_m − Γ_m · (z − z_base)/1000`` for each month m.

    Parameters
    ----------
    t_monthly_c : array, shape (12, rows, cols) or (12,)
        Source temperature on the DEM grid (or one value per month for a station) [°C].
    elevation_m : array, shape (rows, cols)
        DEM elevation z [m].
    base_elevation_m : array (rows, cols) or float
        Elevation z_base of the source temperatures [m].
    lapse_table_c_per_km : array, shape (12,)
        Lapse rate Γ_m of each month [°C km⁻¹].

    Returns
    -------
    numpy.ndarray of float32, shape (12, rows, cols)
        T_loc [°C].

    References
    ----------
    VZJ 2015 Eq. 6, p. 6 (lapse term); EEMT-SPEC §3.
    """
    t = np.asarray(t_monthly_c, dtype=float)
    if t.ndim == 1:
        t = t[:, np.newaxis, np.newaxis]
    gamma = np.asarray(lapse_table_c_per_km, dtype=float)[:, np.newaxis, np.newaxis]
    z = np.asarray(elevation_m, dtype=float)[np.newaxis]
    z_base = np.asarray(base_elevation_m, dtype=float)
    if z_base.ndim == 2:
        z_base = z_base[np.newaxis]
    return lapse_corrected_temperature_c(t, z, z_base, gamma).astype("float32")


def check_cover(values_on_dem, dem_elevation_m, *, what: str, allowed_nan_months=()) -> None:
    """Refuse a climate field that is nodata where the DEM has elevation.

    Parameters
    ----------
    values_on_dem : array, shape (12, rows, cols) or (rows, cols)
        A field resampled to the DEM grid.
    dem_elevation_m : array, shape (rows, cols)
        DEM elevation [m], NaN for nodata.
    what : str
        Variable and file, for the message.
    allowed_nan_months : iterable of int
        Months (1..12) allowed to be nodata (incomplete daily input).

    Raises
    ------
    UserError
        If any valid DEM cell has no value in a month that should have one.
    """
    values = np.asarray(values_on_dem)
    if values.ndim == 2:
        values = values[np.newaxis]
    valid_dem = np.isfinite(dem_elevation_m)
    for index, band in enumerate(values):
        month = index + 1
        if month in allowed_nan_months:
            continue
        missing = int(np.count_nonzero(valid_dem & ~np.isfinite(band)))
        if missing:
            when = f" in month {month}" if values.shape[0] == MONTHS_PER_YEAR else ""
            raise UserError(f"{what}: nodata over {missing} DEM cells{when}; give data that covers the whole DEM")


def mask_to_dem(values, dem_elevation_m) -> np.ndarray:
    """Set cells outside the DEM to NaN.

    Parameters
    ----------
    values : array, shape (..., rows, cols)
        A field on the DEM grid.
    dem_elevation_m : array, shape (rows, cols)
        DEM elevation [m], NaN for nodata.

    Returns
    -------
    numpy.ndarray of float32
        ``values`` with NaN wherever the DEM is NaN.
    """
    out = np.array(values, dtype="float32")
    out[..., ~np.isfinite(dem_elevation_m)] = np.nan
    return out


def lapse_rates_tuple(table) -> tuple[float, ...]:
    """A lapse-rate table as a tuple of plain floats, for metadata [°C km⁻¹]."""
    return tuple(float(v) for v in table)


def is_finite_number(value) -> bool:
    """True for a real, finite number (used for elevations given by the user)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
