"""Reading gridded NetCDF climate (DAYMET subsets, user grids) through GDAL's netCDF driver.

The rasterio wheel's GDAL includes the netCDF driver, so no other NetCDF library is used.
The grid transform is built here from the 1-D ``x``/``y`` coordinate variables after
converting their ``units`` (DAYMET NCSS subsets carry km, DAYMET tiles m; EEMT-SPEC §8),
and dates are decoded from the ``time`` variable's CF ``units``/``calendar``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from eemt_flow.errors import UserError
from eemt_flow.model.constants import SECONDS_PER_DAY, SECONDS_PER_HOUR

#: Metres per unit of a projected coordinate, by CF ``units`` spelling.
METRES_PER_COORDINATE_UNIT = {
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
    "km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0, "kilometres": 1000.0,
}
#: CF ``units`` of geographic coordinates (a lon/lat grid in degrees).
DEGREE_UNITS = {"degrees_east", "degree_east", "degrees_e", "degreese", "degrees_north", "degree_north",
                "degrees_n", "degreesn", "degrees", "degree"}
#: Names tried, in order, for the horizontal coordinate variables (x, y).
COORDINATE_NAMES = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"))
#: CF calendars whose dates are ordinary (proleptic) Gregorian dates.
GREGORIAN_CALENDARS = {"standard", "gregorian", "proleptic_gregorian", ""}
#: Days per unit of a CF time ``units`` string.
DAYS_PER_TIME_UNIT = {
    "day": 1.0, "days": 1.0, "d": 1.0,
    "hour": SECONDS_PER_HOUR / SECONDS_PER_DAY, "hours": SECONDS_PER_HOUR / SECONDS_PER_DAY, "h": SECONDS_PER_HOUR / SECONDS_PER_DAY,
    "minute": 60.0 / SECONDS_PER_DAY, "minutes": 60.0 / SECONDS_PER_DAY,
    "second": 1.0 / SECONDS_PER_DAY, "seconds": 1.0 / SECONDS_PER_DAY, "s": 1.0 / SECONDS_PER_DAY,
}
#: Relative tolerance on the regularity of coordinate spacing [-].
SPACING_TOLERANCE = 1e-3
_TIME_UNITS = re.compile(r"^\s*(\w+)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?")


@dataclass
class NetcdfGrid:
    """One gridded variable of a NetCDF file.

    Attributes
    ----------
    values : numpy.ndarray of float32, shape (time, rows, cols)
        Values north-up, NaN for nodata, in ``units``.
    dates : numpy.ndarray of datetime64[D], shape (time,)
        Decoded date of each time step.
    transform : affine.Affine
        Grid transform in metres (or degrees for a lon/lat grid).
    crs : rasterio.crs.CRS
        Grid CRS.
    units : str
        The variable's ``units`` attribute ('' if none).
    """

    values: np.ndarray
    dates: np.ndarray
    transform: Affine
    crs: CRS
    units: str


def decode_cf_time(values, units: str, calendar: str | None, *, what: str) -> np.ndarray:
    """Decode CF time values to dates.

    Parameters
    ----------
    values : array of float
        Time values (e.g. DAYMET's ``days since 1950-01-01 00:00:00``, at noon: 25202.5).
    units : str
        CF units, ``"<days|hours|minutes|seconds> since YYYY-MM-DD[ hh:mm:ss]"``.
    calendar : str or None
        CF calendar; standard, gregorian or proleptic_gregorian.
    what : str
        Variable and file, for messages.

    Returns
    -------
    numpy.ndarray of datetime64[D]
        The date of each time value (time of day discarded).

    Raises
    ------
    UserError
        For units or calendars that cannot be decoded.
    """
    cal = (calendar or "").strip().lower()
    if cal not in GREGORIAN_CALENDARS:
        raise UserError(f"{what}: time calendar '{calendar}' is not supported; use standard, gregorian or proleptic_gregorian")
    match = _TIME_UNITS.match(units or "")
    if not match or match.group(1).lower() not in DAYS_PER_TIME_UNIT:
        raise UserError(f"{what}: time units '{units}' are not of the form '<days|hours|seconds> since YYYY-MM-DD'")
    unit, year, month, day, hour, minute, second = match.groups()
    origin = np.datetime64(f"{int(year):04d}-{int(month):02d}-{int(day):02d}", "s")
    origin += np.timedelta64(int(hour or 0) * int(SECONDS_PER_HOUR) + int(minute or 0) * 60 + int(float(second or 0)), "s")
    seconds = np.floor(np.asarray(values, dtype=float) * DAYS_PER_TIME_UNIT[unit.lower()] * SECONDS_PER_DAY + 0.5)
    return (origin + seconds.astype(np.int64).astype("timedelta64[s]")).astype("datetime64[D]")


def _open_variable(path: Path, name: str):
    return rasterio.open(f'NETCDF:"{path}":{name}')


def _read_1d(path: Path, name: str) -> tuple[np.ndarray, dict] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with _open_variable(path, name) as src:
                return src.read(1).astype("float64").ravel(), src.tags(1)
    except RasterioIOError:
        return None


def _axis(coords: np.ndarray, what: str, axis: str) -> tuple[float, float]:
    """First coordinate and (signed) spacing of a regular axis."""
    if coords.size < 2:
        raise UserError(f"{what}: the {axis} coordinate has {coords.size} value; a grid needs at least 2 cells per axis")
    steps = np.diff(coords)
    step = float(np.mean(steps))
    if step == 0 or np.max(np.abs(steps - step)) > SPACING_TOLERANCE * abs(step):
        raise UserError(f"{what}: the {axis} coordinate is not regularly spaced")
    return float(coords[0]), step


def read_netcdf_variable(path, variable: str, *, default_crs: CRS | None = None) -> NetcdfGrid:
    """Read one (time, y, x) variable of a NetCDF file with its grid and dates.

    Parameters
    ----------
    path : path-like
        NetCDF file (classic or NetCDF-4).
    variable : str
        Variable name, e.g. ``"tmin"``.
    default_crs : rasterio.crs.CRS, optional
        CRS to use when the file has no CF grid mapping GDAL recognises.

    Returns
    -------
    NetcdfGrid
        Values north-up with NaN for fill values, dates, transform and CRS.

    Raises
    ------
    UserError
        If the file or variable cannot be read, coordinates are missing, irregular or in
        unknown units, or there is no usable time coordinate.

    Notes
    -----
    The coordinate ``units`` attribute is read and km are converted to m **before** the
    transform is built (EEMT-SPEC §8); GDAL's own geotransform is not used for this.
    """
    path = Path(path)
    what = f"{path} variable '{variable}'"
    try:
        # File order of rows; the flip for a south-up y axis is done below, from y itself.
        with rasterio.Env(GDAL_NETCDF_BOTTOMUP="NO"), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with _open_variable(path, variable) as src:
                values = src.read().astype("float64")
                tags = src.tags()
                band_tags = src.tags(1)
                nodata = [src.nodata] + [band_tags.get(k) for k in ("_FillValue", "missing_value")]
                scale, offset = src.scales[0], src.offsets[0]
                crs = src.crs
                is_3d = "NETCDF_DIM_EXTRA" in tags
    except RasterioIOError:
        if not path.exists():
            raise UserError(f"{path}: no such file") from None
        raise UserError(f"{path}: no variable '{variable}' that GDAL's netCDF driver can read (is it a NetCDF file?)") from None

    for fill in nodata:
        if fill not in (None, ""):
            values[values == float(fill)] = np.nan
    values = values * scale + offset

    with rasterio.Env(GDAL_NETCDF_BOTTOMUP="NO"):
        coords = None
        for x_name, y_name in COORDINATE_NAMES:
            x_read, y_read = _read_1d(path, x_name), _read_1d(path, y_name)
            if x_read is not None and y_read is not None:
                coords = (x_name, x_read, y_name, y_read)
                break
        time_read = _read_1d(path, "time")
    if coords is None:
        raise UserError(f"{what}: no 1-D x/y (or lon/lat) coordinate variables; cannot place the grid")
    x_name, (x, x_tags), y_name, (y, y_tags) = coords
    if x.size != values.shape[2] or y.size != values.shape[1]:
        raise UserError(f"{what}: coordinates {x_name}({x.size}), {y_name}({y.size}) do not match the grid {values.shape[2]}x{values.shape[1]}")

    units_x = x_tags.get("units", "").strip().lower()
    units_y = y_tags.get("units", "").strip().lower()
    if units_x in DEGREE_UNITS and units_y in DEGREE_UNITS:
        factor = 1.0
        crs = crs if crs is not None else CRS.from_epsg(4326)
    elif units_x in METRES_PER_COORDINATE_UNIT and units_y in METRES_PER_COORDINATE_UNIT:
        if METRES_PER_COORDINATE_UNIT[units_x] != METRES_PER_COORDINATE_UNIT[units_y]:
            raise UserError(f"{what}: x is in '{units_x}' but y in '{units_y}'")
        factor = METRES_PER_COORDINATE_UNIT[units_x]
    else:
        raise UserError(f"{what}: coordinate units '{units_x}'/'{units_y}' are not m, km or degrees; set the units attribute")
    crs = crs if crs is not None else default_crs
    if crs is None:
        raise UserError(f"{what}: no grid mapping (CRS) GDAL recognises; add a CF grid_mapping variable")

    x0, dx = _axis(x * factor, what, x_name)
    y0, dy = _axis(y * factor, what, y_name)
    if dx < 0:
        values, x0, dx = values[:, :, ::-1], x0 + dx * (x.size - 1), -dx
    if dy > 0:
        values, y0, dy = values[:, ::-1, :], y0 + dy * (y.size - 1), -dy
    transform = Affine(dx, 0.0, x0 - dx / 2, 0.0, dy, y0 - dy / 2)

    if not is_3d or time_read is None:
        raise UserError(f"{what}: no 'time' coordinate; give the variable with dimensions (time, y, x)")
    time_values, time_tags = time_read
    if time_values.size != values.shape[0]:
        raise UserError(f"{what}: {values.shape[0]} time steps but the time coordinate has {time_values.size} values")
    dates = decode_cf_time(time_values, time_tags.get("units", ""), time_tags.get("calendar"), what=f"{path} variable 'time'")
    return NetcdfGrid(values.astype("float32"), dates, transform, crs, tags.get(f"{variable}#units", ""))
