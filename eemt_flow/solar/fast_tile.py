"""The fast engine on one tile: slope and aspect, horizons once, then daily radiation.

One function for every caller: the Makeflow task (``eemt-flow task solar-fast``, a tile
with its halo) and the Python API (:func:`eemt_flow.solar.radiation`, a whole DEM in
memory, one tile whose core is everything). The orchestration lives here, the loops in
:mod:`.fast` and :mod:`.horizon`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from rasterio import Affine

from eemt_flow.dem import geography
from eemt_flow.solar import fast, horizon, sky_view
from eemt_flow.solar.far_field import HaloTerrain


@dataclass(frozen=True)
class SunReference:
    """Sun and horizon reference geometry of a whole DEM, shared by all its tiles.

    The latitude range over which the sun geometry is linearised and r.horizon's
    geographic directions are taken for the whole DEM, not per tile, so tiles do not see
    the sun or their horizons from slightly different directions.

    Attributes
    ----------
    lat_deg : (mean, lowest, highest) latitude of the valid cells [degrees north]
    geographic_axes : array (2, 2), grid components of unit steps towards geographic east
        and north at the DEM's centre (:func:`~eemt_flow.solar.geography.cell_geography`)
    """

    lat_deg: tuple[float, float, float]
    geographic_axes: np.ndarray

    @classmethod
    def of_dem(cls, elevation_m: np.ndarray, transform: Affine, crs) -> "SunReference":
        lat, axes = geography.cell_geography(crs, transform, elevation_m.shape)
        valid = lat[np.isfinite(elevation_m)]
        return cls((float(valid.mean()), float(valid.min()), float(valid.max())), np.asarray(axes))

    def to_dict(self) -> dict:
        return {"lat_deg": list(self.lat_deg), "geographic_axes": np.asarray(self.geographic_axes).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "SunReference":
        return cls(tuple(d["lat_deg"]), np.asarray(d["geographic_axes"]))


def square_cell_m(transform: Affine, what: str) -> float:
    """The side of the grid's square cells [m]; ValueError for rectangular cells."""
    cell_x, cell_y = abs(transform.a), abs(transform.e)
    if abs(cell_x - cell_y) > 1e-6 * cell_x:
        raise ValueError(f"{what}: the fast engine needs square cells ({cell_x} x {cell_y} m); use --engine grass")
    return cell_x


def tile_horizons(elevation_m: np.ndarray | HaloTerrain, transform: Affine, reference: SunReference, *,
                  n_azimuths: int, max_distance_m: float, core: tuple[slice, slice] | None = None,
                  method: str = "auto", resolution_rad: float | None = None, n_threads: int | None = None,
                  origin: tuple[int, int] = (0, 0), what: str = "DEM") -> np.ndarray:
    """Horizon angles of the core cells (default: all), rays searching the whole array.

    ``elevation_m``: the tile's window, or its halo as the hull reads it
    (:class:`~eemt_flow.solar.far_field.HaloTerrain`, ``core`` then in cells of its whole
    window). float32 [rad], or with ``resolution_rad`` bytes as r.sun stores them (1 byte per
    cell and direction); ``method`` as :func:`~eemt_flow.solar.horizon.horizon_angles`;
    ``origin``: the DEM's cell (row, col) that is the window's cell (0, 0), so that the horizons
    are the DEM's whatever the tiling.
    """
    shape = elevation_m.shape
    rows, cols = core or (slice(0, shape[0]), slice(0, shape[1]))
    window = (rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start)
    return horizon.horizon_angles(elevation_m, square_cell_m(transform, what), n_azimuths, max_distance_m,
                                  geographic_axes=reference.geographic_axes, n_threads=n_threads, window=window,
                                  method=method, resolution_rad=resolution_rad, origin=origin)


def core_slope_aspect(terrain: np.ndarray | HaloTerrain, core: tuple[slice, slice],
                      cell_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elevation [m], Horn slope [degrees] and GRASS aspect [degrees counter-clockwise from grid
    east] of the core cells, as r.slope.aspect gives them on the whole DEM.

    Slope at the core's edge needs one ring of the halo's cells (Horn's 3 x 3), no more; a
    reduced halo (:class:`~eemt_flow.solar.far_field.HaloTerrain`) has them in its near part.
    """
    from eemt_flow.terrain.slope import slope_aspect

    if isinstance(terrain, HaloTerrain):
        elevation_m, r_off, c_off = terrain.near, terrain.near_row0, terrain.near_col0
    else:
        elevation_m, r_off, c_off = terrain, 0, 0
    rows, cols = slice(core[0].start - r_off, core[0].stop - r_off), slice(core[1].start - c_off, core[1].stop - c_off)
    r0, c0 = max(rows.start - 1, 0), max(cols.start - 1, 0)
    ring = (slice(r0, min(rows.stop + 1, elevation_m.shape[0])), slice(c0, min(cols.stop + 1, elevation_m.shape[1])))
    slope_ring, aspect_ring = slope_aspect(elevation_m[ring], (cell_m, cell_m))
    in_ring = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
    return elevation_m[rows, cols], slope_ring[in_ring], aspect_ring[in_ring]


@dataclass(frozen=True)
class TileSurface:
    """A tile core's terrain as the fast engine uses it, computed once per tile.

    Attributes
    ----------
    elevation_m : array (rows, cols), the core's elevation [m], NaN = nodata
    slope_deg, aspect_grass_deg : arrays (rows, cols), Horn slope [degrees] and GRASS aspect
        [degrees counter-clockwise from grid east] (:func:`core_slope_aspect`)
    horizons : uint8 array (n_azimuths, rows, cols), horizon angles in units of
        :data:`eemt_flow.solar.fast.R_SUN_HORIZON_RESOLUTION_RAD`, as r.sun stores them
        (:func:`tile_horizons`), direction k at k * 360 / n geographic degrees counter-clockwise from east
    core_transform : affine.Affine, the core's geotransform
    """

    elevation_m: np.ndarray
    slope_deg: np.ndarray
    aspect_grass_deg: np.ndarray
    horizons: np.ndarray
    core_transform: Affine


def tile_surface(terrain: np.ndarray | HaloTerrain, transform: Affine, reference: SunReference, *,
                 n_azimuths: int, max_distance_m: float, core: tuple[slice, slice] | None = None,
                 horizon_method: str = "auto", n_threads: int | None = None, origin: tuple[int, int] = (0, 0),
                 what: str = "DEM") -> TileSurface:
    """Slope, aspect and horizons of a tile's core (arguments as :func:`tile_daily_radiation`)."""
    cell_m = square_cell_m(transform, what)
    core = core or (slice(0, terrain.shape[0]), slice(0, terrain.shape[1]))
    core_transform = transform @ Affine.translation(core[1].start, core[0].start)
    elevation, slope_deg, aspect_deg = core_slope_aspect(terrain, core, cell_m)
    # bytes as r.sun stores them: 1 byte per cell and direction (the task's memory declaration)
    horizons = tile_horizons(terrain, transform, reference, n_azimuths=n_azimuths, max_distance_m=max_distance_m,
                             core=core, method=horizon_method, resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD,
                             n_threads=n_threads, origin=origin, what=what)
    return TileSurface(elevation, slope_deg, aspect_deg, horizons, core_transform)


def surface_sky_view_factor(surface: TileSurface, reference: SunReference, n_threads: int | None = None) -> np.ndarray:
    """Sky view factor [-] of a tile's core (:func:`eemt_flow.solar.sky_view.sky_view_factor`).

    The horizons' azimuths are geographic, Horn's aspect a grid direction: the aspect is
    turned into the horizons' frame first (:func:`~eemt_flow.solar.horizon.geographic_azimuth_rad`,
    the whole DEM's axes). float32 in [0, 1], NaN where the DEM is (byte horizons carry no
    NaN: the slope marks nodata cells).
    """
    aspect_rad = horizon.geographic_azimuth_rad(np.deg2rad(surface.aspect_grass_deg), reference.geographic_axes)
    svf = sky_view.sky_view_factor(surface.horizons, np.deg2rad(surface.slope_deg), aspect_rad,
                                   horizon_resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD, n_threads=n_threads)
    return svf.astype(np.float32)


def surface_daily_radiation(surface: TileSurface, crs, days: list[int], reference: SunReference, *,
                            step_minutes: float, linke: float, albedo: float,
                            n_threads: int | None = None) -> Iterator[fast.DailySolarRadiation]:
    """Daily clear-sky radiation of a tile's core from its surface (see :func:`tile_daily_radiation`)."""
    lat_deg, _core_axes = geography.cell_geography(crs, surface.core_transform, surface.elevation_m.shape)
    # one call for all the days, so the set-up (byte horizons, static terms) is done once
    return fast.daily_radiation(surface.elevation_m, surface.slope_deg, surface.aspect_grass_deg, lat_deg,
                                surface.horizons, sorted(days), step_minutes=step_minutes, linke=linke, albedo=albedo,
                                n_threads=n_threads, reference_lat_deg=reference.lat_deg)


def tile_sky_view_factor(terrain: np.ndarray | HaloTerrain, transform: Affine, reference: SunReference, *,
                         n_azimuths: int, max_distance_m: float, core: tuple[slice, slice] | None = None,
                         horizon_method: str = "auto", n_threads: int | None = None,
                         origin: tuple[int, int] = (0, 0), what: str = "DEM") -> np.ndarray:
    """Sky view factor of a tile's core cells, from the horizons the solar tasks compute.

    Arguments as :func:`tile_daily_radiation`; see :func:`surface_sky_view_factor`.

    Returns
    -------
    float32 array (core rows, core cols), sky view factor [-] in [0, 1], NaN where the DEM is
    """
    surface = tile_surface(terrain, transform, reference, n_azimuths=n_azimuths, max_distance_m=max_distance_m,
                           core=core, horizon_method=horizon_method, n_threads=n_threads, origin=origin,
                           what=what)
    return surface_sky_view_factor(surface, reference, n_threads)


def tile_daily_radiation(terrain: np.ndarray | HaloTerrain, transform: Affine, crs, days: list[int],
                         reference: SunReference, *, step_minutes: float, linke: float, albedo: float,
                         n_azimuths: int, max_distance_m: float, core: tuple[slice, slice] | None = None,
                         horizon_method: str = "auto", n_threads: int | None = None, origin: tuple[int, int] = (0, 0),
                         what: str = "DEM") -> tuple[Iterator[fast.DailySolarRadiation], Affine]:
    """Daily clear-sky radiation of a tile's core: r.sun's model with horizon shadows.

    Parameters
    ----------
    terrain : array (rows, cols), the tile with its halo [m], NaN = nodata; or the halo as the hull
        reads it (:class:`~eemt_flow.solar.far_field.HaloTerrain`: full resolution near the core,
        a max pyramid beyond)
    transform : affine.Affine, the geotransform of the tile's whole window (square cells, metres)
    crs : the tile's CRS (projected, metres)
    days : days of year [1-366]
    reference : the whole DEM's :class:`SunReference`
    step_minutes, linke, albedo : r.sun's step [minutes], Linke turbidity [-], albedo [-]
    n_azimuths : horizon directions (360 / horizon step [degrees])
    max_distance_m : horizon search distance [m] (the halo)
    core : (rows, cols) slices of the core in cells of the whole window; None = all of it
    horizon_method : "auto", "hull" or "sweep" (:func:`~eemt_flow.solar.horizon.horizon_angles`)
    n_threads : numba threads (None = all numba may use)
    origin : the DEM's cell (row, col) that is the window's cell (0, 0), so that the horizons
        are the DEM's whatever the tiling (:func:`~eemt_flow.solar.horizon.horizon_angles`)

    Returns
    -------
    (days, core_transform): an iterator of :class:`~eemt_flow.solar.fast.DailySolarRadiation`
    on the core, in day order, and the core's geotransform
    """
    surface = tile_surface(terrain, transform, reference, n_azimuths=n_azimuths, max_distance_m=max_distance_m,
                           core=core, horizon_method=horizon_method, n_threads=n_threads, origin=origin,
                           what=what)
    return (surface_daily_radiation(surface, crs, days, reference, step_minutes=step_minutes, linke=linke,
                                    albedo=albedo, n_threads=n_threads), surface.core_transform)
