"""Solar radiation and horizons as library functions for notebooks (xarray + rioxarray).

``eemt_flow.solar.radiation`` and ``eemt_flow.solar.horizons`` take a DEM as a path or as
an ``xarray.DataArray`` with a CRS (rioxarray) and return xarray objects on the DEM's
coordinates. They run the fast engine's per-tile function
(:func:`eemt_flow.solar.fast_tile.tile_daily_radiation`) on the whole DEM as one tile:
the code the workflow's ``solar-fast`` tasks run, not a second implementation. A DEM must
fit in memory; larger ones go through ``eemt-flow run``, which tiles them.

xarray is imported when these functions are called, so the command line and the tasks
do not pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from eemt_flow import __version__
from eemt_flow.dem.raster import DEFAULT_MAX_CELLS, Dem, dem_from_array, read_dem
from eemt_flow.solar.clearsky import DEFAULT_ALBEDO, DEFAULT_LINKE
from eemt_flow.solar.parameters import DEFAULT_HORIZON_STEP_DEG, DEFAULT_STEP_MINUTES, SolarParameters, auto_halo_m

if TYPE_CHECKING:
    import xarray

#: Variables of :func:`radiation`: name -> (DailySolarRadiation attribute, units, long name).
RADIATION_VARIABLES = {
    "glob_rad": ("glob_rad_wh_m2", "Wh m-2", "topographic global irradiation (beam + diffuse + reflected, shadowed)"),
    "flat_glob_rad": ("flat_glob_rad_wh_m2", "Wh m-2", "global irradiation of a horizontal unshadowed surface"),
    "insol_time": ("insol_time_h", "h", "time with direct beam on the surface"),
}


def _load(dem) -> tuple[Dem, dict]:
    """The DEM and the x/y coordinates its results carry."""
    if isinstance(dem, (str, Path)):
        grid = read_dem(Path(dem), max_cells=DEFAULT_MAX_CELLS)
        rows, cols = grid.shape
        t = grid.transform
        coords = {"y": t.f + (np.arange(rows) + 0.5) * t.e, "x": t.c + (np.arange(cols) + 0.5) * t.a}
        return grid, coords
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    array = dem.squeeze(drop=True) if dem.ndim == 3 else dem
    if array.ndim != 2:
        raise ValueError(f"the DEM must be a 2-D DataArray (y, x), got dimensions {dem.dims}")
    y_dim, x_dim = array.rio.y_dim, array.rio.x_dim
    values = np.asarray(array.transpose(y_dim, x_dim).values, dtype="float64")
    nodata = array.rio.nodata
    if nodata is not None and not np.isnan(nodata):
        values = np.where(values == nodata, np.nan, values)
    grid = dem_from_array(values, array.rio.transform(), array.rio.crs, what=f"DataArray {array.name or 'dem'}")
    return grid, {"y": array[y_dim].values, "x": array[x_dim].values}


def _max_distance_m(grid: Dem, max_distance_m: float | None) -> float:
    if max_distance_m is None:
        return auto_halo_m(grid.relief_m, grid.cell_size_m)
    if not (max_distance_m > 0 and math.isfinite(max_distance_m)):
        raise ValueError(f"max_distance_m must be positive metres, got {max_distance_m}")
    return float(max_distance_m)


def _with_crs(obj, grid: Dem):
    import rioxarray  # noqa: F401

    return obj.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.transform)


def daily_radiation_of(grid: Dem, spec, max_distance_m: float, n_threads: int | None) -> list:
    """The fast engine's per-tile function on the whole DEM as one tile (spec: days and r.sun parameters)."""
    from eemt_flow.solar.fast_tile import SunReference, tile_daily_radiation

    reference = SunReference.of_dem(grid.elevation_m, grid.transform, grid.crs)
    daily, _ = tile_daily_radiation(grid.elevation_m.astype("float64"), grid.transform, grid.crs, spec.days, reference,
                                    step_minutes=spec.step_minutes, linke=spec.linke, albedo=spec.albedo,
                                    n_azimuths=round(360 / spec.horizon_step_deg), max_distance_m=max_distance_m,
                                    horizon_method=spec.horizon_method, n_threads=n_threads)
    return list(daily)


def monthly_sums(daily: list) -> dict[int, np.ndarray]:
    """month -> float32 array (6, rows, cols) of glob_rad, flat_glob_rad, insol_time and the clear-sky
    components summed over the month's days: the bands of the workflow's monthly files (MONTHLY_BANDS;
    summed in float64, stored as float32)."""
    from eemt_flow.model.calendar import month_of_doy
    from eemt_flow.solar.bands import MONTHLY_BANDS

    out = {}
    for month in sorted({int(month_of_doy(r.day)) for r in daily}):
        days = [r for r in daily if int(month_of_doy(r.day)) == month]
        out[month] = np.stack([np.stack([getattr(r, k) for r in days]).sum(axis=0, dtype="float64")
                               for k in MONTHLY_BANDS]).astype("float32")
    return out


def radiation(dem, days: str | int | Iterable[int] = "1-365", step_minutes: float = DEFAULT_STEP_MINUTES,
              linke: float = DEFAULT_LINKE, albedo: float = DEFAULT_ALBEDO, *,
              horizon_step_deg: float = DEFAULT_HORIZON_STEP_DEG, max_distance_m: float | None = None,
              horizon_method: str = "auto", per: str = "day", n_threads: int | None = None) -> "xarray.Dataset":
    """Clear-sky daily solar radiation with terrain shadows (r.sun's model, the fast engine).

    Parameters
    ----------
    dem : path or xarray.DataArray, elevation [m] on a projected metric grid with square
        cells; a DataArray needs its CRS (``rio.write_crs``); nodata = NaN or ``rio.nodata``
    days : days of year, ``"1-365"``, ``172``, ``"1,91,172"`` or a list of ints [1-365]
    step_minutes : integration step [minutes], at most 60
    linke : Linke turbidity [-], (0, 8]
    albedo : ground albedo [-], [0, 1]
    horizon_step_deg : horizon azimuth step [degrees], dividing 360
    max_distance_m : horizon search distance [m]; None = the workflow's automatic halo
        (relief / tan 5°, capped at 10 km)
    horizon_method : "auto", "hull" or "sweep", as ``--horizon-method``
        (:func:`eemt_flow.solar.horizon.horizon_angles`)
    per : ``"day"`` (one map per requested day) or ``"month"`` (sums over the requested
        days of each month, as the workflow's ``results/solar/monthly`` maps)
    n_threads : numba threads (None = all numba may use)

    Returns
    -------
    xarray.Dataset
        ``glob_rad`` and ``flat_glob_rad`` [Wh m-2 per day, or summed over the month's
        requested days], ``insol_time`` [h], float32, dims (``day`` or ``month``, y, x) on
        the DEM's coordinates and CRS; NaN where the DEM has no data. ``attrs`` record the
        parameters and the eemt-flow version.
    """
    import xarray as xr

    if per not in ("day", "month"):
        raise ValueError(f"per must be 'day' or 'month', got {per!r}")
    # the job specification's checks (eemt_flow.solar.parameters), so the API accepts what
    # the command line accepts
    spec = SolarParameters(days=days if isinstance(days, (str, int)) else list(days),
                           step_minutes=step_minutes, linke=linke, albedo=albedo,
                           horizon_step_deg=horizon_step_deg, horizon_method=horizon_method)
    grid, coords = _load(dem)
    distance_m = _max_distance_m(grid, max_distance_m)
    daily = daily_radiation_of(grid, spec, distance_m, n_threads)
    stacks = {name: np.stack([getattr(r, attr) for r in daily]) for name, (attr, _u, _l) in RADIATION_VARIABLES.items()}
    if per == "day":
        index = ("day", np.array([r.day for r in daily]))
    else:
        sums = monthly_sums(daily)
        months = np.array(sorted(sums))
        stacks = {name: np.stack([sums[m][i] for m in months]) for i, name in enumerate(RADIATION_VARIABLES)}
        index = ("month", months)
    period = "day-1" if per == "day" else "month-1 (sum of the requested days)"
    data_vars = {}
    for name, (_attr, units, long_name) in RADIATION_VARIABLES.items():
        data_vars[name] = ((index[0], "y", "x"), stacks[name],
                           {"units": units if units == "h" else f"{units} {period}", "long_name": long_name})
    ds = xr.Dataset(data_vars, coords={index[0]: index[1], **coords})
    ds[index[0]].attrs["long_name"] = "day of year" if per == "day" else "calendar month (non-leap solar year)"
    ds.attrs.update({
        "title": "clear-sky solar radiation with terrain shadows",
        "source": f"eemt-flow {__version__} fast engine (r.sun daily model, GRASS 8.2.1; horizons once per DEM)",
        "days": spec.days if len(spec.days) < 20 else f"{spec.days[0]}..{spec.days[-1]} ({len(spec.days)} days)",
        "step_minutes": spec.step_minutes, "linke": spec.linke, "albedo": spec.albedo,
        "horizon_step_deg": spec.horizon_step_deg, "horizon_method": spec.horizon_method,
        "max_distance_m": distance_m,
        "references": "Suri & Hofierka (2004), Transactions in GIS 8(2); GRASS r.sun, r.horizon",
    })
    ds.attrs["days"] = str(ds.attrs["days"])
    return _with_crs(ds, grid)


def horizons(dem, n_azimuths: int = 360, max_distance_m: float | None = None, *, method: str = "auto",
             n_threads: int | None = None) -> "xarray.DataArray":
    """Horizon elevation angles of every cell, for ``n_azimuths`` equally spaced directions.

    Parameters
    ----------
    dem : path or xarray.DataArray, as for :func:`radiation`
    n_azimuths : number of directions; azimuth k is ``k * 360 / n_azimuths`` degrees
        counter-clockwise from east (r.horizon's ``hor_000 ...`` order: 0 east, 90 north)
    max_distance_m : search distance [m]; None = the workflow's automatic halo
    method : "auto", "hull" or "sweep" (:func:`eemt_flow.solar.horizon.horizon_angles`)

    Returns
    -------
    xarray.DataArray
        ``horizon_angle`` [rad], float32, >= 0, dims (``azimuth``, y, x) on the DEM's
        coordinates and CRS, NaN where the DEM has no data.
    """
    import xarray as xr

    from eemt_flow.solar.fast_tile import SunReference, tile_horizons

    if int(n_azimuths) != n_azimuths or not 1 <= n_azimuths <= 3600:
        raise ValueError(f"n_azimuths must be a whole number from 1 to 3600, got {n_azimuths}")
    grid, coords = _load(dem)
    distance_m = _max_distance_m(grid, max_distance_m)
    reference = SunReference.of_dem(grid.elevation_m, grid.transform, grid.crs)
    angles = tile_horizons(grid.elevation_m.astype("float64"), grid.transform, reference, n_azimuths=int(n_azimuths),
                           max_distance_m=distance_m, method=method, n_threads=n_threads)
    azimuth = np.arange(int(n_azimuths)) * 360.0 / int(n_azimuths)
    out = xr.DataArray(angles, dims=("azimuth", "y", "x"), coords={"azimuth": azimuth, **coords},
                       name="horizon_angle",
                       attrs={"units": "rad", "long_name": "horizon elevation angle",
                              "max_distance_m": distance_m, "method": method,
                              "source": f"eemt-flow {__version__} (r.horizon's sampling, GRASS 8.2.1)"})
    out["azimuth"].attrs.update({"units": "degree", "long_name": "azimuth counter-clockwise from east"})
    return _with_crs(out, grid)


def sky_view_factor(dem, n_azimuths: int = 360, max_distance_m: float | None = None, *, method: str = "auto",
                    n_threads: int | None = None) -> "xarray.DataArray":
    """Sky view factor of every cell (Dozier & Frew 1990), from its horizons, slope and aspect.

    The fraction of the isotropic diffuse sky irradiance a cell receives compared with open
    flat ground (:func:`eemt_flow.solar.sky_view.sky_view_factor`): 1 on open flat ground,
    (1 + cos S) / 2 on an open plane of slope S. The horizons are the fast engine's
    (:func:`horizons`, stored as r.sun stores them, 1/150 rad), slope and aspect Horn's.

    Parameters
    ----------
    dem : path or xarray.DataArray, as for :func:`radiation`
    n_azimuths : number of horizon directions over which the view factor is integrated
        (360 = 1 degree, the workflow's default horizon step)
    max_distance_m : horizon search distance [m]; None = the workflow's automatic halo
    method : "auto", "hull" or "sweep" (:func:`eemt_flow.solar.horizon.horizon_angles`)
    n_threads : numba threads (None = all numba may use)

    Returns
    -------
    xarray.DataArray
        ``sky_view_factor`` [-], float32 in [0, 1], dims (y, x) on the DEM's coordinates and
        CRS, NaN where the DEM has no data.
    """
    import xarray as xr

    from eemt_flow.solar.fast_tile import SunReference, tile_sky_view_factor

    if int(n_azimuths) != n_azimuths or not 4 <= n_azimuths <= 3600:
        raise ValueError(f"n_azimuths must be a whole number from 4 to 3600, got {n_azimuths}")
    grid, coords = _load(dem)
    distance_m = _max_distance_m(grid, max_distance_m)
    reference = SunReference.of_dem(grid.elevation_m, grid.transform, grid.crs)
    svf = tile_sky_view_factor(grid.elevation_m.astype("float64"), grid.transform, reference,
                               n_azimuths=int(n_azimuths), max_distance_m=distance_m, horizon_method=method,
                               n_threads=n_threads)
    out = xr.DataArray(svf, dims=("y", "x"), coords=coords, name="sky_view_factor",
                       attrs={"units": "1", "long_name": "sky view factor",
                              "n_azimuths": int(n_azimuths), "max_distance_m": distance_m, "method": method,
                              "source": f"eemt-flow {__version__} (horizons with r.horizon's sampling, "
                                        "GRASS 8.2.1; Horn slope and aspect)",
                              "references": "Dozier & Frew (1990), IEEE TGRS 28(5):963-969, Eq. 7b"})
    return _with_crs(out, grid)
