"""Calendars and astronomical daylength.

Two calendars meet in EEMT (EEMT-SPEC §2):

* the **solar calendar**: r.sun runs once for DOY 1–365 of a non-leap year, and the
  months are the inclusive, gap-free DOY ranges of :data:`SOLAR_MONTH_FIRST_DOY` /
  :data:`SOLAR_MONTH_LAST_DOY` (May = 121–151);
* the **DAYMET calendar**: every year has 365 days; in leap years Feb 29 is kept and
  Dec 31 dropped. Days are assigned to months from decoded dates, never from fixed
  index ranges (:func:`days_in_month_from_dates`).

Daylength for Hamon PET is astronomical (FAO-56 Eqs. 24, 25, 34).
"""

from __future__ import annotations

import numpy as np

from eemt_flow.model.constants import DAYS_PER_YEAR, DECLINATION_AMPLITUDE_RAD, DECLINATION_PHASE_RAD

#: First day of year of each solar month, Jan..Dec (non-leap year; EEMT-SPEC §2).
SOLAR_MONTH_FIRST_DOY = np.array([1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
#: Last day of year (inclusive) of each solar month, Jan..Dec (EEMT-SPEC §2; May ends on 151).
SOLAR_MONTH_LAST_DOY = np.array([31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365])
#: Number of days of each solar month [day]; sums to 365.
SOLAR_DAYS_IN_MONTH = SOLAR_MONTH_LAST_DOY - SOLAR_MONTH_FIRST_DOY + 1


def _check_month(month: int) -> int:
    month = int(month)
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    return month


def month_of_doy(doy):
    """Solar month of a day of year in the non-leap solar calendar.

    Parameters
    ----------
    doy : int or array of int
        Day of year, 1..365 [day].

    Returns
    -------
    int or array of int
        Month 1..12.

    Raises
    ------
    ValueError
        If any DOY lies outside 1..365.

    References
    ----------
    EEMT-SPEC §2 (solar day-of-year ranges; day 151 belongs to May).
    """
    doy_arr = np.asarray(doy)
    if np.any((doy_arr < 1) | (doy_arr > DAYS_PER_YEAR)):
        raise ValueError(f"day of year must be in 1..{DAYS_PER_YEAR}")
    month = np.searchsorted(SOLAR_MONTH_LAST_DOY, doy_arr, side="left") + 1
    return int(month) if np.ndim(month) == 0 else month


def solar_month_doys(month: int) -> np.ndarray:
    """Days of year of one solar month (inclusive range of EEMT-SPEC §2).

    Parameters
    ----------
    month : int
        Month 1..12.

    Returns
    -------
    numpy.ndarray of int
        The DOYs of that month, e.g. ``121..151`` for May.
    """
    m = _check_month(month) - 1
    return np.arange(SOLAR_MONTH_FIRST_DOY[m], SOLAR_MONTH_LAST_DOY[m] + 1)


def solar_days_in_month(month: int) -> int:
    """Number of days of a solar month (non-leap calendar) [day]."""
    return int(SOLAR_DAYS_IN_MONTH[_check_month(month) - 1])


def daymet_dates(year: int) -> np.ndarray:
    """The 365 dates of a DAYMET year.

    Parameters
    ----------
    year : int
        Calendar year.

    Returns
    -------
    numpy.ndarray of datetime64[D]
        365 dates: Jan 1 .. Dec 31 in common years; in leap years Feb 29 is kept and
        Dec 31 dropped.

    References
    ----------
    EEMT-SPEC §2 and §8 (DAYMET calendar); Thornton et al., Daymet V4 user guide.
    """
    start = np.datetime64(f"{int(year):04d}-01-01", "D")
    return start + np.arange(DAYS_PER_YEAR)


def month_index_from_dates(dates) -> np.ndarray:
    """Month 1..12 of each decoded date (for daily → monthly aggregation).

    Parameters
    ----------
    dates : array of datetime64
        Decoded dates (e.g. the DAYMET ``time`` coordinate).

    Returns
    -------
    numpy.ndarray of int
        Month of each date, 1..12.

    References
    ----------
    EEMT-SPEC §2 ("assign days to months from the decoded time coordinate").
    """
    d = np.asarray(dates).astype("datetime64[D]")
    return d.astype("datetime64[M]").astype(np.int64) % 12 + 1


def days_in_month_from_dates(dates) -> np.ndarray:
    """Count the days of each month in a decoded time coordinate.

    Parameters
    ----------
    dates : array of datetime64
        Decoded dates of the daily series of one year.

    Returns
    -------
    numpy.ndarray of int, shape (12,)
        days_m for Jan..Dec [day].

    References
    ----------
    EEMT-SPEC §2.
    """
    return np.bincount(month_index_from_dates(dates), minlength=13)[1:]


def daymet_days_in_month(year: int) -> np.ndarray:
    """days_m of a DAYMET year (365-day calendar, leap years drop Dec 31).

    Parameters
    ----------
    year : int
        Calendar year.

    Returns
    -------
    numpy.ndarray of int, shape (12,)
        Days in each month, Jan..Dec [day]; always sums to 365. In a leap year
        February has 29 days and December 30.

    References
    ----------
    EEMT-SPEC §2, §8.
    """
    return days_in_month_from_dates(daymet_dates(year))


def solar_declination_rad(doy):
    """Solar declination.

    ``δ = 0.409 · sin(2π·J/365 − 1.39)``

    Parameters
    ----------
    doy : int or array
        Day of year J, 1..365 [day].

    Returns
    -------
    array
        Declination δ [rad].

    References
    ----------
    FAO-56 Eq. 24, p. 46.
    """
    j = np.asarray(doy, dtype=float)
    return DECLINATION_AMPLITUDE_RAD * np.sin(2.0 * np.pi * j / DAYS_PER_YEAR - DECLINATION_PHASE_RAD)


def sunset_hour_angle_rad(latitude_deg, declination_rad):
    """Sunset hour angle, clamped for polar day and polar night.

    ``ω_s = arccos(clamp(−tan φ · tan δ, −1, 1))``

    Parameters
    ----------
    latitude_deg : array
        Latitude φ [degrees north].
    declination_rad : array
        Solar declination δ [rad].

    Returns
    -------
    array
        ω_s in [0, π] [rad]; 0 in polar night, π in polar day.

    References
    ----------
    FAO-56 Eq. 25, p. 46 (clamp added so that polar latitudes are defined).
    """
    phi = np.deg2rad(np.asarray(latitude_deg, dtype=float))
    x = -np.tan(phi) * np.tan(np.asarray(declination_rad, dtype=float))
    return np.arccos(np.clip(x, -1.0, 1.0))


def daylength_h(latitude_deg, doy):
    """Astronomical daylength.

    ``D = 24·ω_s/π``

    Parameters
    ----------
    latitude_deg : array
        Latitude [degrees north].
    doy : int or array
        Day of year, 1..365 [day]; broadcasts against ``latitude_deg``.

    Returns
    -------
    array
        Daylength D [h].

    References
    ----------
    FAO-56 Eqs. 24, 25, 34, pp. 46–48; EEMT-SPEC §3 (Hamon uses astronomical D, never
    r.sun ``insol_time``).
    """
    return 24.0 / np.pi * sunset_hour_angle_rad(latitude_deg, solar_declination_rad(doy))


def monthly_mean_daylength_h(latitude_deg, month: int):
    """Mean astronomical daylength over the days of a solar month.

    Parameters
    ----------
    latitude_deg : array
        Latitude [degrees north], any shape.
    month : int
        Month 1..12 (days of EEMT-SPEC §2's solar calendar).

    Returns
    -------
    array
        Mean daylength D̄_m [h], same shape as ``latitude_deg``.

    References
    ----------
    FAO-56 Eqs. 24, 25, 34; EEMT-SPEC §3 ("averaged per month").
    """
    lat = np.asarray(latitude_deg, dtype=float)
    doys = solar_month_doys(month)
    total = np.zeros_like(lat)
    for doy in doys:
        total = total + daylength_h(lat, doy)
    return total / doys.size
