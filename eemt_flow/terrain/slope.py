"""Slope, aspect and northness (Horn 1981, as GRASS r.slope.aspect -e)."""

from __future__ import annotations

import numba
import numpy as np

from eemt_flow.terrain.grid import as_dem, cell_sizes

@numba.njit(cache=True)
def _neighbour_or_centre(dem, i, j, centre):
    nr, nc = dem.shape
    if i < 0 or j < 0 or i >= nr or j >= nc:
        return centre
    v = dem[i, j]
    if np.isnan(v):
        return centre
    return v


@numba.njit(cache=True)
def _horn_kernel(dem, ew, ns):
    nr, nc = dem.shape
    slope = np.full((nr, nc), np.nan)
    aspect = np.full((nr, nc), np.nan)
    h = ew * 8.0
    v = ns * 8.0
    rad2deg = 180.0 / np.pi
    for i in range(nr):
        for j in range(nc):
            c5 = dem[i, j]
            if np.isnan(c5):
                continue
            c1 = _neighbour_or_centre(dem, i - 1, j - 1, c5)
            c2 = _neighbour_or_centre(dem, i - 1, j, c5)
            c3 = _neighbour_or_centre(dem, i - 1, j + 1, c5)
            c4 = _neighbour_or_centre(dem, i, j - 1, c5)
            c6 = _neighbour_or_centre(dem, i, j + 1, c5)
            c7 = _neighbour_or_centre(dem, i + 1, j - 1, c5)
            c8 = _neighbour_or_centre(dem, i + 1, j, c5)
            c9 = _neighbour_or_centre(dem, i + 1, j + 1, c5)
            # dx, dy are the downhill gradient components towards east and north
            dx = ((c1 + c4 + c4 + c7) - (c3 + c6 + c6 + c9)) / h
            dy = ((c7 + c8 + c8 + c9) - (c1 + c2 + c2 + c3)) / v
            key = dx * dx + dy * dy
            slope[i, j] = np.arctan(np.sqrt(key)) * rad2deg
            if key == 0.0:
                aspect[i, j] = 0.0
            else:
                a = np.arctan2(dy, dx) * rad2deg
                if a <= 0.0:
                    a += 360.0
                aspect[i, j] = a
    return slope, aspect


def slope_aspect(dem_m, cell_size_m):
    """Horn slope and GRASS-convention aspect, as ``r.slope.aspect -e``.

    Third-order finite differences (Horn 1981) over the 3×3 window; where a neighbour is
    outside the grid or nodata it is replaced by the centre value (GRASS ``-e``, the
    same rule as ``gdaldem``), so only nodata cells are nodata in the output.

    Parameters
    ----------
    dem_m : array, shape (rows, cols)
        Elevation [m], NaN = nodata; row 0 is north.
    cell_size_m : float or (float, float)
        Cell size [m], or (east-west, north-south) sizes.

    Returns
    -------
    slope_deg : array
        Slope β [degrees], 0..90.
    aspect_grass_deg : array
        Direction the slope faces, counter-clockwise from east [degrees] in (0, 360];
        0 on flat cells (GRASS convention: 90 = north, 180 = west, 270 = south, 360 = east).

    References
    ----------
    Horn, B. K. P. (1981), Proc. IEEE 69:14–47; GRASS GIS ``r.slope.aspect`` manual;
    EEMT-SPEC §3.
    """
    ew, ns = cell_sizes(cell_size_m)
    return _horn_kernel(as_dem(dem_m), ew, ns)


def aspect_north_deg(aspect_grass_deg):
    """Convert GRASS aspect (counter-clockwise from east) to clockwise from north.

    ``aspect_N = (90 − aspect_GRASS) mod 360``

    Parameters
    ----------
    aspect_grass_deg : array
        Aspect counter-clockwise from east [degrees] (0 = flat in GRASS).

    Returns
    -------
    array
        Aspect clockwise from north [degrees] in [0, 360). Flat cells (GRASS 0) map to 90;
        use the slope to tell them apart (:func:`northness` is 0 there).

    References
    ----------
    EEMT-SPEC §5.
    """
    return np.mod(90.0 - np.asarray(aspect_grass_deg, dtype=float), 360.0)


def northness(aspect_grass_deg, slope_deg):
    """Northness of a slope.

    ``n = cos(aspect_N) · sin(β)``, +1 on a vertical north face, 0 on flat cells.

    Parameters
    ----------
    aspect_grass_deg : array
        Aspect counter-clockwise from east [degrees].
    slope_deg : array
        Slope β [degrees].

    Returns
    -------
    array
        n [-] in [−1, 1].

    References
    ----------
    VZJ 2015 Eq. 11, p. 8; EEMT-SPEC §5 (mistake §9.6: cos and sin swapped, radians fed to
    degree trigonometry).
    """
    slope = np.asarray(slope_deg, dtype=float)
    n = np.cos(np.deg2rad(aspect_north_deg(aspect_grass_deg))) * np.sin(np.deg2rad(slope))
    return np.where(slope == 0.0, 0.0, n)
