"""User climate grids in a directory: GeoTIFF or NetCDF, monthly or daily, any CRS.

Layout of ``grids:DIR``::

    DIR/tmin.tif  tmax.tif  prcp.tif  vp.tif     12 bands (months) or 365 bands (DAYMET days)
    DIR/tmin.nc   tmax.nc   prcp.nc   vp.nc      (time, y, x) with a CF time coordinate, monthly or daily
    DIR/elevation.tif                            elevation of the climate grid [m] (optional)

Units: tmin/tmax °C, prcp mm (monthly sum, or mm day⁻¹ for daily data), vp Pa. Daily data
are aggregated on their own grid (:mod:`eemt_flow.climate.aggregate`), then every variable
and the base elevation are resampled bilinearly to the DEM grid and the temperatures
lapse-corrected (EEMT-SPEC §2, §3). Without ``elevation.tif`` the base elevation is the
mean of the DEM over each climate cell's footprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError
from eemt_flow.model.calendar import daymet_dates, month_index_from_dates
from eemt_flow.model.constants import DAYS_PER_YEAR

from eemt_flow.climate.aggregate import DAILY_TO_MONTHLY, daily_to_monthly, year_of_dates
from eemt_flow.climate.assemble import MonthlyField, base_elevations
from eemt_flow.climate.monthly import CLIMATE_VARIABLE_UNITS, MONTHS_PER_YEAR, NORMALS, MonthlyClimate
from eemt_flow.climate.netcdf import read_netcdf_variable
from eemt_flow.climate.prepared import GridClimate
from eemt_flow.climate.resample import CLIMATE_RESAMPLING, check_grid_covers_dem, read_geotiff_grid

#: Variables a grids directory must hold.
GRID_VARIABLES = tuple(CLIMATE_VARIABLE_UNITS)
#: File name of the climate grid's own elevation [m].
GRID_ELEVATION_FILE = "elevation.tif"
GEOTIFF_SUFFIXES = (".tif", ".tiff")
NETCDF_SUFFIX = ".nc"
#: Fewest time steps read as a daily series (a year less its longest month); fewer is an error.
MIN_DAILY_STEPS = DAYS_PER_YEAR - 31


def find_variable_file(directory: Path, variable: str) -> Path:
    """The one file of a variable in a grids directory.

    Parameters
    ----------
    directory : pathlib.Path
        The grids directory.
    variable : str
        ``tmin``, ``tmax``, ``prcp`` or ``vp``.

    Returns
    -------
    pathlib.Path
        ``VAR.tif``, ``VAR.tiff`` or ``VAR.nc``.

    Raises
    ------
    UserError
        If there is none, or more than one.
    """
    found = [directory / f"{variable}{s}" for s in (*GEOTIFF_SUFFIXES, NETCDF_SUFFIX) if (directory / f"{variable}{s}").is_file()]
    if not found:
        raise UserError(f"grids:{directory}: variable {variable} is missing; give {variable}.tif or {variable}.nc "
                        f"({CLIMATE_VARIABLE_UNITS[variable]})")
    if len(found) > 1:
        raise UserError(f"grids:{directory}: variable {variable} is given twice ({', '.join(p.name for p in found)}); keep one")
    return found[0]


def _monthly_from_netcdf(path: Path, variable: str, year: int | None) -> tuple[MonthlyField, int | None]:
    grid = read_netcdf_variable(path, variable)
    what = f"{variable} ({path})"
    months = month_index_from_dates(grid.dates)
    if grid.values.shape[0] == MONTHS_PER_YEAR and np.unique(months).size == MONTHS_PER_YEAR:
        order = np.argsort(months)
        return MonthlyField(grid.values[order], grid.transform, grid.crs, path), None
    if grid.values.shape[0] < MIN_DAILY_STEPS:
        raise UserError(f"{what}: {grid.values.shape[0]} time steps; give 12 monthly steps (one per month) or the "
                        f"{DAYS_PER_YEAR} daily steps of one year")
    file_year = year_of_dates(grid.dates, what=what)
    if year is not None and file_year != year:
        raise UserError(f"{what}: daily data of {file_year} but year {year} was asked for")
    agg = daily_to_monthly(grid.values, grid.dates, DAILY_TO_MONTHLY[variable], year=file_year, what=what)
    return MonthlyField(agg.values, grid.transform, grid.crs, path, agg.incomplete_months), file_year


def _monthly_from_geotiff(path: Path, variable: str, year: int | None) -> tuple[MonthlyField, int | None]:
    values, transform, crs = read_geotiff_grid(path, what=variable)
    what = f"{variable} ({path})"
    bands = values.shape[0]
    if bands == MONTHS_PER_YEAR:
        return MonthlyField(values, transform, crs, path), None
    if bands == DAYS_PER_YEAR:
        if year is None:
            raise UserError(f"{what}: {DAYS_PER_YEAR} daily bands need the year they belong to (leap years drop Dec 31); give the year")
        agg = daily_to_monthly(values, daymet_dates(year), DAILY_TO_MONTHLY[variable], year=year, what=what)
        return MonthlyField(agg.values, transform, crs, path, agg.incomplete_months), year
    raise UserError(f"{what}: {bands} bands; give {MONTHS_PER_YEAR} bands (months Jan..Dec) or "
                    f"{DAYS_PER_YEAR} bands (the days of a DAYMET year)")


def read_grid_variable(path: Path, variable: str, *, year: int | None) -> tuple[MonthlyField, int | None]:
    """Read one variable of a grids directory as twelve monthly fields on its own grid.

    Parameters
    ----------
    path : pathlib.Path
        ``VAR.tif`` (12 or 365 bands) or ``VAR.nc`` (12 monthly or daily time steps).
    variable : str
        ``tmin``, ``tmax``, ``prcp`` or ``vp``.
    year : int or None
        Year asked for; needed for 365-band GeoTIFFs.

    Returns
    -------
    field : MonthlyField
        Monthly means (tmin, tmax [°C], vp [Pa]) or sums (prcp [mm]).
    data_year : int or None
        The year of daily data; None for monthly data.
    """
    if path.suffix == NETCDF_SUFFIX:
        return _monthly_from_netcdf(path, variable, year)
    return _monthly_from_geotiff(path, variable, year)


def load_grids(directory, dem: Dem, *, year: int | None, lapse_tmin_table, lapse_tmax_table,
               resampling: str = CLIMATE_RESAMPLING) -> MonthlyClimate:
    """Load a grids directory onto the DEM grid (:func:`prepare_grids`, then onto ``dem``'s cells)."""
    return prepare_grids(directory, dem, year=year, lapse_tmin_table=lapse_tmin_table,
                         lapse_tmax_table=lapse_tmax_table, resampling=resampling).on_dem(dem)


def prepare_grids(directory, dem, *, year: int | None, lapse_tmin_table, lapse_tmax_table,
                  resampling: str = CLIMATE_RESAMPLING) -> GridClimate:
    """Read and check a grids directory on its own grids, for the whole DEM.

    Parameters
    ----------
    directory : path-like
        The grids directory (layout in the module docstring).
    dem : Dem or eemt_flow.dem.raster.DemGrid
        The whole DEM (in memory or on disk): the extent to cover, and the elevations of the
        footprint-mean base elevation.
    year : int or None
        Year the data belong to. Monthly data without a year are normals; daily data carry
        their own year (NetCDF) or need one (365-band GeoTIFF).
    lapse_tmin_table, lapse_tmax_table : array, shape (12,)
        Monthly lapse rates [°C km⁻¹].
    resampling : str
        ``bilinear`` (default), ``nearest`` or ``cubic``.

    Returns
    -------
    GridClimate

    Raises
    ------
    UserError
        Missing variable, wrong band or time-step count, a grid not covering the DEM
        (naming the variable and file), daily files of different years.
    """
    directory = Path(directory)
    fields: dict[str, MonthlyField] = {}
    data_years: dict[str, int] = {}
    for variable in GRID_VARIABLES:
        field, data_year = read_grid_variable(find_variable_file(directory, variable), variable, year=year)
        check_grid_covers_dem(dem, field.shape, field.transform, field.crs, what=f"{variable} ({field.path})")
        fields[variable] = field
        if data_year is not None:
            data_years[variable] = data_year
    if len(set(data_years.values())) > 1:
        raise UserError(f"grids:{directory}: daily files of different years "
                        f"({', '.join(f'{v} {y}' for v, y in data_years.items())}); give one year")
    resolved_year = year if year is not None else next(iter(data_years.values()), NORMALS)

    elevation = None
    elevation_path = directory / GRID_ELEVATION_FILE
    if elevation_path.is_file():
        values, transform, crs = read_geotiff_grid(elevation_path, what="elevation")
        check_grid_covers_dem(dem, values.shape[1:], transform, crs, what=f"elevation ({elevation_path})")
        elevation = MonthlyField(values[:1], transform, crs, elevation_path)
    base_text = f"base elevation {elevation_path}" if elevation is not None else "base elevation = DEM mean over each grid cell"
    source = f"grids {directory} ({', '.join(fields[v].path.name for v in GRID_VARIABLES)}; {base_text}; {resampling})"
    return GridClimate(resolved_year, source, fields, base_elevations(fields, dem, elevation),
                       lapse_tmin_table, lapse_tmax_table, resampling)
