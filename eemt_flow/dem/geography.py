"""Geography of a projected tile: cell latitudes and the grid directions of geographic azimuths."""

from __future__ import annotations

import math

import numpy as np
from rasterio.crs import CRS

#: Latitude/longitude displacement r.horizon projects to find a grid direction [rad].
R_HORIZON_DISPLACEMENT_RAD = 1e-4


def cell_geography(crs, transform, shape):
    """Latitude and local geographic axes of every cell centre of a projected raster.

    Parameters
    ----------
    crs : rasterio CRS or anything ``rasterio.warp.transform`` accepts, projected, metres
    transform : affine.Affine, the raster's geotransform (north-up, no rotation)
    shape : tuple (rows, cols)

    Returns
    -------
    lat_deg : float64 array (rows, cols), latitude (WGS84) [degrees north]
    geographic_axes : float64 array (2, 2), at the tile centre: ``[0]`` the grid
        components (x = towards higher columns, y = towards lower rows) of a step
        towards geographic east, ``[1]`` of a step towards geographic north, scaled
        so that the east step has length 1; pass it to :func:`horizon_angles`

    Notes
    -----
    r.horizon and r.sun work with geographic azimuths.  GRASS 8.2 r.horizon turns
    azimuth alpha into a grid direction per cell by displacing the cell's latitude by
    1e-4 sin(alpha) rad and its longitude by 1e-4 cos(alpha) / cos(lat) rad (a sphere's
    formula) and projecting the displaced point.  The axes returned here are those two
    projected displacements at the tile centre (alpha = 0 and 90 degrees), so :func:`horizon_angles`
    reproduces r.horizon's directions: the meridian convergence (about -0.95 degree
    on the Jemez test DEM, UTM 13N at 106.6 W) and the ellipsoid's ratio of meridian
    to prime-vertical radius (0.9956 at 36 N, up to 0.13 degree at diagonal azimuths).
    """
    return cell_latitudes_deg(crs, transform, shape), geographic_axes(crs, transform, shape)


#: Cell centres projected at once by :func:`cell_latitudes_deg` (bounds its memory).
LATITUDE_CHUNK_CELLS = 1 << 20


def cell_latitudes_deg(crs, transform, shape) -> np.ndarray:
    """Latitude (WGS84) of every cell centre of a projected raster [degrees north], (rows, cols).

    Datum shifts to WGS84 move latitudes by < 1e-4 degree. Rows are projected in chunks of
    about LATITUDE_CHUNK_CELLS cells, so the memory is the output's and little more.
    """
    from pyproj import Transformer

    to_geographic = Transformer.from_crs(CRS.from_user_input(crs).to_wkt(), "EPSG:4326", always_xy=True)
    rows, cols = shape
    out = np.empty(shape)
    step = max(1, LATITUDE_CHUNK_CELLS // max(cols, 1))
    col_c = np.arange(cols) + 0.5
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        col_grid, row_grid = np.meshgrid(col_c, np.arange(r0, r1) + 0.5)
        x, y = transform @ (col_grid.ravel(), row_grid.ravel())
        out[r0:r1] = to_geographic.transform(x, y)[1].reshape(r1 - r0, cols)
    return out


def geographic_axes(crs, transform, shape) -> np.ndarray:
    """The grid's geographic axes at its centre (see :func:`cell_geography`), (2, 2)."""
    from rasterio.warp import transform as warp_transform

    geog = "EPSG:4326"
    rows, cols = shape
    # r.horizon's direction construction, at the tile centre
    xc, yc = transform @ (cols / 2.0, rows / 2.0)
    (lon0,), (lat0,) = warp_transform(crs, geog, [xc], [yc])
    delta = R_HORIZON_DISPLACEMENT_RAD
    (xe,), (ye,) = warp_transform(geog, crs, [lon0 + math.degrees(delta / math.cos(math.radians(lat0)))], [lat0])
    (xn,), (yn,) = warp_transform(geog, crs, [lon0], [lat0 + math.degrees(delta)])
    axes = np.empty((2, 2))
    for i, (px, py) in enumerate(((xe, ye), (xn, yn))):
        col_p, row_p = ~transform @ (px, py)
        axes[i, 0] = col_p - cols / 2.0  # grid x grows with columns
        axes[i, 1] = rows / 2.0 - row_p  # grid y grows towards lower rows
    # one common scale keeps the ratio of the two steps (the ellipsoid's M/N)
    axes /= math.hypot(axes[0, 0], axes[0, 1])
    return axes
