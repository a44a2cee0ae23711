"""Monthly normals at one weather station, spread over the DEM by the lapse rate.

The method of Rasmussen et al. (2015, VZJ): station Tmin and Tmax are moved to each DEM
cell's elevation with (monthly) lapse rates; precipitation and vapour pressure are taken
as uniform over the DEM.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError, shown

from eemt_flow.climate.monthly import (
    MONTHS_PER_YEAR,
    NORMALS,
    MonthlyClimate,
    days_in_month_of,
    is_finite_number,
    lapse_correct_monthly,
    lapse_rates_tuple,
    mask_to_dem,
)

#: The header of a station normals file, exactly and in this order.
STATION_COLUMNS = ("month", "tmin_c", "tmax_c", "prcp_mm", "vp_pa")


@dataclass
class StationNormals:
    """Monthly normals of one station, Jan..Dec.

    Attributes
    ----------
    tmin_c, tmax_c : numpy.ndarray, shape (12,)
        Mean daily minimum / maximum air temperature [°C].
    prcp_mm : numpy.ndarray, shape (12,)
        Monthly precipitation sum [mm month⁻¹].
    vp_pa : numpy.ndarray, shape (12,)
        Mean water vapour pressure [Pa].
    path : pathlib.Path
        The file they were read from.
    """

    tmin_c: np.ndarray
    tmax_c: np.ndarray
    prcp_mm: np.ndarray
    vp_pa: np.ndarray
    path: Path


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{path} line {line}: {column} {shown(text)} is not a number") from None
    if not np.isfinite(value):
        raise UserError(f"{path} line {line}: {column} {shown(text)} is not a finite number")
    return value


def read_station_normals(path) -> StationNormals:
    """Read and validate a station normals CSV.

    The file has the header ``month,tmin_c,tmax_c,prcp_mm,vp_pa`` and 12 rows, one per
    month 1..12 in any order.

    Parameters
    ----------
    path : path-like
        CSV file.

    Returns
    -------
    StationNormals
        Values ordered Jan..Dec.

    Raises
    ------
    UserError
        One line naming the file, and the line and column where it applies, for: a missing
        file, a wrong header (missing or unexpected columns), a wrong number of fields, a
        value that is not a number, a month outside 1..12 or given twice, missing months,
        negative precipitation, vapour pressure ≤ 0, Tmin > Tmax.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such station file; give station:FILE.csv with columns {','.join(STATION_COLUMNS)}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1) if any(f.strip() for f in row)]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save the station normals as a UTF-8 CSV with columns "
                        f"{','.join(STATION_COLUMNS)}") from None
    except csv.Error as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); give columns {','.join(STATION_COLUMNS)}") from None
    if not rows:
        raise UserError(f"{path}: the file is empty; expected the header {','.join(STATION_COLUMNS)} and 12 monthly rows")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    missing = [c for c in STATION_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path} line {header_line}: missing column {', '.join(missing)}; the header must be {','.join(STATION_COLUMNS)}")
    extra = [c for c in header if c not in STATION_COLUMNS]
    if extra:
        raise UserError(f"{path} line {header_line}: unexpected column {', '.join(extra)}; the header must be {','.join(STATION_COLUMNS)}")
    if tuple(header) != STATION_COLUMNS:
        raise UserError(f"{path} line {header_line}: columns out of order or repeated; the header must be {','.join(STATION_COLUMNS)}")

    table = np.full((MONTHS_PER_YEAR, len(STATION_COLUMNS) - 1), np.nan)
    line_of_month: dict[int, int] = {}
    for line, row in rows[1:]:
        if len(row) != len(STATION_COLUMNS):
            raise UserError(f"{path} line {line}: {len(row)} fields, expected {len(STATION_COLUMNS)} ({','.join(STATION_COLUMNS)})")
        fields = [f.strip() for f in row]
        month_value = _number(fields[0], path, line, "month")
        if month_value != int(month_value) or not 1 <= month_value <= MONTHS_PER_YEAR:
            raise UserError(f"{path} line {line}: month {shown(fields[0])} is not a month number 1..12")
        month = int(month_value)
        if month in line_of_month:
            raise UserError(f"{path} line {line}: month {month} appears twice (first on line {line_of_month[month]})")
        line_of_month[month] = line
        tmin, tmax, prcp, vp = (_number(f, path, line, c) for f, c in zip(fields[1:], STATION_COLUMNS[1:]))
        if prcp < 0:
            raise UserError(f"{path} line {line}: prcp_mm {prcp:g} is negative; precipitation must be ≥ 0 mm")
        if vp <= 0:
            raise UserError(f"{path} line {line}: vp_pa {vp:g} must be > 0 Pa")
        if tmin > tmax:
            raise UserError(f"{path} line {line}: tmin_c {tmin:g} is above tmax_c {tmax:g}")
        table[month - 1] = (tmin, tmax, prcp, vp)
    absent = [m for m in range(1, MONTHS_PER_YEAR + 1) if m not in line_of_month]
    if absent:
        raise UserError(f"{path}: month {', '.join(map(str, absent))} missing; give one row for each month 1..12")
    return StationNormals(table[:, 0], table[:, 1], table[:, 2], table[:, 3], path)


def station_source(normals: StationNormals, station_elevation_m: float) -> str:
    """Description of a station climate, for metadata."""
    return f"station normals {normals.path} at {float(station_elevation_m):g} m (Rasmussen et al. 2015 lapse method)"


def station_climate(normals: StationNormals, dem: Dem, *, station_elevation_m: float,
                    lapse_tmin_table, lapse_tmax_table) -> MonthlyClimate:
    """Spread station normals over the DEM grid.

    ``T_x,loc = T_x,station − Γ_x,m · (z − z_station)/1000`` per DEM cell (x = min, max);
    precipitation and vapour pressure are uniform.

    Parameters
    ----------
    normals : StationNormals
        The station's monthly normals.
    dem : Dem
        Target grid, elevation z [m].
    station_elevation_m : float
        Station elevation z_station [m].
    lapse_tmin_table, lapse_tmax_table : array, shape (12,)
        Monthly lapse rates Γ for Tmin and Tmax [°C km⁻¹].

    Returns
    -------
    MonthlyClimate
        ``year`` = :data:`~eemt_flow.climate.monthly.NORMALS`; days of a non-leap year.

    References
    ----------
    Rasmussen, C., Pelletier, J. D., Troch, P. A., Swetnam, T. L., Chorover, J. (2015),
    Vadose Zone J., doi:10.2136/vzj2014.07.0102, Eq. 6 and p. 6 (monthly station lapse
    rates for Tmin and Tmax); EEMT-SPEC §3.
    """
    if not is_finite_number(station_elevation_m):
        raise UserError(f"{normals.path}: station elevation '{station_elevation_m}' is not a number in metres")
    z = dem.elevation_m
    uniform = np.ones((MONTHS_PER_YEAR,) + dem.shape, dtype="float32")
    return MonthlyClimate(
        tmin_c=mask_to_dem(lapse_correct_monthly(normals.tmin_c, z, float(station_elevation_m), lapse_tmin_table), z),
        tmax_c=mask_to_dem(lapse_correct_monthly(normals.tmax_c, z, float(station_elevation_m), lapse_tmax_table), z),
        prcp_mm=mask_to_dem(uniform * normals.prcp_mm[:, np.newaxis, np.newaxis], z),
        vp_pa=mask_to_dem(uniform * normals.vp_pa[:, np.newaxis, np.newaxis], z),
        days_in_month=days_in_month_of(NORMALS),
        year=NORMALS,
        source=station_source(normals, station_elevation_m),
        base_elevation_m=float(station_elevation_m),
        lapse_tmin_c_per_km=lapse_rates_tuple(lapse_tmin_table),
        lapse_tmax_c_per_km=lapse_rates_tuple(lapse_tmax_table),
    )
