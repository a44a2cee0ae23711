"""Daily → monthly aggregation on the DAYMET calendar (EEMT-SPEC §2).

Tmin, Tmax, vapour pressure and daylength are monthly **means**, precipitation a monthly
**sum**. Days are assigned to months from the decoded dates, never from index ranges;
every year has the 365 DAYMET days (a leap year keeps Feb 29 and drops Dec 31), and a
month with a missing day is nodata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eemt_flow.errors import UserError
from eemt_flow.model.calendar import daymet_dates, days_in_month_from_dates, month_index_from_dates

from eemt_flow.climate.monthly import MONTHS_PER_YEAR

MEAN = "mean"
SUM = "sum"
#: How each DAYMET variable is aggregated from days to a month (EEMT-SPEC §2).
DAILY_TO_MONTHLY = {"tmin": MEAN, "tmax": MEAN, "vp": MEAN, "dayl": MEAN, "prcp": SUM}


@dataclass
class MonthlyAggregate:
    """Result of :func:`daily_to_monthly`.

    Attributes
    ----------
    values : numpy.ndarray of float32, shape (12, ...)
        Monthly mean or sum, in the unit of the daily values (sum: unit × day).
    days_in_month : numpy.ndarray of int, shape (12,)
        DAYMET days of each month of the year [day]; sums to 365.
    incomplete_months : tuple of int
        Months (1..12) with a day absent from the dates; their values are NaN.
    """

    values: np.ndarray
    days_in_month: np.ndarray
    incomplete_months: tuple[int, ...]


def year_of_dates(dates, *, what: str) -> int:
    """The one calendar year a daily series belongs to.

    Parameters
    ----------
    dates : array of datetime64
        Decoded dates.
    what : str
        Variable and file, for the message.

    Returns
    -------
    int
        The year of the dates. A 366th date (Dec 31 of a leap year) is allowed; it is
        dropped later.

    Raises
    ------
    UserError
        If the dates are empty or span more than one year.
    """
    d = np.asarray(dates).astype("datetime64[D]")
    if d.size == 0:
        raise UserError(f"{what}: the time coordinate is empty")
    years = np.unique(d.astype("datetime64[Y]").astype(np.int64) + 1970)
    if years.size != 1:
        raise UserError(f"{what}: daily data spans years {years[0]}..{years[-1]}; give one file per year")
    return int(years[0])


def daily_to_monthly(daily_values, dates, how: str, *, year: int, what: str) -> MonthlyAggregate:
    """Aggregate a daily series of one DAYMET year to twelve months, per pixel.

    Parameters
    ----------
    daily_values : array, shape (days, ...)
        Daily values, NaN for nodata (a tmin/tmax/vp in its own unit, prcp in mm day⁻¹).
    dates : array of datetime64, shape (days,)
        Decoded date of each day (the ``time`` coordinate).
    how : {"mean", "sum"}
        Aggregation: :data:`MEAN` for tmin, tmax, vp, dayl; :data:`SUM` for prcp
        (see :data:`DAILY_TO_MONTHLY`).
    year : int
        The DAYMET year.
    what : str
        Variable and file, for messages.

    Returns
    -------
    MonthlyAggregate
        Monthly values (mean [unit] or sum [unit·day], e.g. mm month⁻¹), days_m and the
        months that lacked a day.

    Raises
    ------
    UserError
        If a date appears twice, or no date falls in the DAYMET calendar of ``year``.

    Notes
    -----
    Dates outside the 365 DAYMET days of ``year`` (Dec 31 of a leap year) are dropped. A
    NaN day at a pixel makes that pixel's month NaN; a date missing from the series makes
    the whole month NaN.

    References
    ----------
    EEMT-SPEC §2 (daily → monthly per pixel; DAYMET calendar; months from decoded dates).
    """
    if how not in (MEAN, SUM):
        raise ValueError(f"how must be '{MEAN}' or '{SUM}', got {how!r}")
    values = np.asarray(daily_values)
    d = np.asarray(dates).astype("datetime64[D]")
    if values.shape[0] != d.shape[0]:
        raise ValueError(f"{what}: {values.shape[0]} daily fields but {d.shape[0]} dates")
    unique, counts = np.unique(d, return_counts=True)
    if np.any(counts > 1):
        raise UserError(f"{what}: date {unique[counts > 1][0]} appears {counts[counts > 1][0]} times in the time coordinate")

    calendar = daymet_dates(year)
    keep = np.isin(d, calendar)
    if not keep.any():
        raise UserError(f"{what}: no date of the time coordinate falls in the DAYMET year {year}")
    d, values = d[keep], values[keep]
    month = month_index_from_dates(d)
    expected_days = days_in_month_from_dates(calendar)

    out = np.full((MONTHS_PER_YEAR,) + values.shape[1:], np.nan, dtype="float32")
    incomplete = []
    for m in range(1, MONTHS_PER_YEAR + 1):
        in_month = month == m
        if np.count_nonzero(in_month) != expected_days[m - 1]:
            incomplete.append(m)
            continue
        # Plain (not NaN-aware) reductions: one NaN day makes the month nodata at that pixel.
        days = values[in_month].astype("float64")
        out[m - 1] = days.sum(axis=0) if how == SUM else days.mean(axis=0)
    return MonthlyAggregate(out, expected_days, tuple(incomplete))
