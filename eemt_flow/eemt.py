"""EEMT as a library function for notebooks: ``eemt_flow.eemt.compute`` (xarray).

The same steps as a planned job, in memory, with the whole DEM as one tile: the whole-DEM
terrain (:func:`eemt_flow.terrain.whole_dem.compute_terrain`), the climate prepared and put on the
cells (:func:`eemt_flow.climate.load_climate`), the EEMT task's static layers
(:func:`eemt_flow.workflow.eemt_inputs.tile_static`), the fast engine's per-tile radiation
(:func:`eemt_flow.solar.fast_tile.tile_daily_radiation`) summed per month, and the EEMT
task's computation (:func:`eemt_flow.workflow.tasks.tile_eemt`). For DEMs that fit in memory;
larger ones go through ``eemt-flow run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from eemt_flow import __version__

if TYPE_CHECKING:
    import xarray

#: Annual quantities returned per model: name prefix -> long name [MJ m-2 yr-1].
ANNUAL_QUANTITIES = {"EEMT": "effective energy and mass transfer", "E_PPT": "energy of effective precipitation",
                     "E_BIO": "energy of net primary production"}


def compute(dem, climate: str, models: str | Iterable[str] = ("trad", "topo"), *, days: str | Iterable[int] = "1-365",
            years: str | Iterable[int] | None = None, station_elevation_m: float | None = None,
            lapse_tmin_c_per_km: float | list[float] = 6.49, lapse_tmax_c_per_km: float | list[float] = 6.49,
            ndvi: str | None = None, canopy_height: str | None = None, wind_speed: str | None = None,
            npp: str | None = None, radiation: str = "clear", model_parameters: dict | None = None,
            step_minutes: float = 15.0, linke: float = 3.0, albedo: float = 0.2, horizon_step_deg: float = 1.0,
            max_distance_m: float | None = None, cache_dir: str | None = None,
            n_threads: int | None = None) -> "xarray.Dataset":
    """Annual EEMT maps of a DEM small enough for memory (EEMT-SPEC §2-6).

    Parameters
    ----------
    dem : path or xarray.DataArray with a CRS, elevation [m] (as :func:`eemt_flow.solar.radiation`)
    climate : ``station:FILE.csv`` (monthly normals; give ``station_elevation_m`` [m]),
        ``grids:DIR`` or ``daymet`` (needs ``years``): the command line's ``--climate``
    models : ``trad``, ``topo`` and/or ``topo-veg`` (needs ``ndvi`` and ``canopy_height`` rasters)
    wind_speed, npp : optional rasters of wind speed at 2 m [m s-1] and annual NPP [g m-2 yr-1]
        (TOPO, TOPO-VEG), as the command line's ``--wind-speed`` and ``--npp``
    days : days of year whose radiation is computed; every month needs at least one
    other parameters : as the command line's options of the same names (units in the names)

    Returns
    -------
    xarray.Dataset
        ``EEMT_<MODEL>``, ``E_PPT_<MODEL>``, ``E_BIO_<MODEL>`` [MJ m-2 yr-1], float32, dims
        (``year``, y, x) on the DEM's coordinates and CRS (year ``normals`` for station
        normals); ``attrs`` record the climate source, parameters and eemt-flow version.
    """
    import xarray as xr

    from eemt_flow.climate import load_climate
    from eemt_flow.errors import UserError
    from eemt_flow.model.eemt import ModelParameters
    from eemt_flow.solar.api import _load, _max_distance_m, _with_crs, daily_radiation_of, monthly_sums
    from eemt_flow.terrain.whole_dem import compute_terrain
    from eemt_flow.workflow.eemt_inputs import (
        USER_RASTERS,
        check_user_raster,
        climate_stack,
        tile_static,
        user_raster_on,
    )
    from eemt_flow.workflow.spec import build_spec
    from eemt_flow.workflow.tasks import tile_eemt

    grid, coords = _load(dem)
    values = {"dem": str(dem) if not hasattr(dem, "dims") else "DataArray", "climate": climate,
              "models": models if isinstance(models, str) else list(models),
              "days": days if isinstance(days, (str, int)) else list(days),
              "years": years if years is None or isinstance(years, str) else list(years),
              "station_elevation_m": station_elevation_m, "lapse_tmin_c_per_km": lapse_tmin_c_per_km,
              "lapse_tmax_c_per_km": lapse_tmax_c_per_km, "ndvi": ndvi, "canopy_height": canopy_height,
              "wind_speed": wind_speed, "npp": npp, "radiation": radiation,
              "model_parameters": model_parameters or {}, "step_minutes": step_minutes, "linke": linke,
              "albedo": albedo, "horizon_step_deg": horizon_step_deg, "cache_dir": cache_dir}
    spec = build_spec({k: v for k, v in values.items() if v is not None})
    try:
        params = ModelParameters.from_mapping(spec.model_parameters)
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"model_parameters: {exc}") from None
    try:
        terrain = compute_terrain(grid.elevation_m, grid.cell_size_m, params.tan_beta_min)
    except ValueError as exc:
        raise UserError(f"{spec.dem}: {exc}") from None
    rasters = {}
    for band, (field, _, _, _) in USER_RASTERS.items():
        if getattr(spec, field):
            check_user_raster(getattr(spec, field), grid, band)
            rasters[band] = user_raster_on(getattr(spec, field), grid, band)
    climates = load_climate(spec.climate, grid, years=spec.years, station_elevation_m=spec.station_elevation_m,
                            lapse_tmin_c_per_km=spec.lapse_tmin_c_per_km, lapse_tmax_c_per_km=spec.lapse_tmax_c_per_km,
                            cache_dir=spec.cache_dir, resampling=spec.climate_resampling, radiation=True)
    distance_m = _max_distance_m(grid, max_distance_m)
    solar = monthly_sums(daily_radiation_of(grid, spec, distance_m, n_threads))
    n_requested = {m: sum(1 for d in spec.days if _month(d) == m) for m in range(1, 13)}
    # the layers pass through float32 as the workflow's files do
    everything = (slice(0, grid.shape[0]), slice(0, grid.shape[1]))
    static = tile_static(grid.elevation_m, grid.transform, grid.crs, everything,
                         np.asarray(terrain.alpha, dtype="float32"), rasters)
    solar64 = {m: a.astype("float64") for m, a in solar.items()}
    per_year = []
    for c in climates:
        names, stack = tile_eemt(static, climate_stack(c), solar64, n_requested, c.days_in_month, spec.model_names,
                                 params, radiation=spec.radiation)
        per_year.append(dict(zip(names, stack)))
    data_vars = {}
    for model in spec.model_names:
        for quantity, long_name in ANNUAL_QUANTITIES.items():
            name = f"{quantity}_{model}"
            data_vars[name] = (("year", "y", "x"), np.stack([bands[name] for bands in per_year]),
                               {"units": "MJ m-2 yr-1", "long_name": f"{long_name}, EEMT-{model.replace('_', '-')}"})
    ds = xr.Dataset(data_vars, coords={"year": [str(c.year) for c in climates], **coords})
    ds.attrs.update({
        "title": "effective energy and mass transfer (EEMT)",
        "source": f"eemt-flow {__version__}: fast solar engine, {spec.climate}",
        "climate": "; ".join(c.source for c in climates),
        "models": ",".join(spec.models), "step_minutes": spec.step_minutes, "linke": spec.linke,
        "albedo": spec.albedo, "horizon_step_deg": spec.horizon_step_deg, "max_distance_m": distance_m,
        "references": "Rasmussen et al. (2005, 2011, 2015); EEMT-SPEC sections 2-6",
    })
    return _with_crs(ds, grid)


def _month(doy: int) -> int:
    from eemt_flow.model.calendar import month_of_doy

    return int(month_of_doy(doy))
