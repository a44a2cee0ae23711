"""D-infinity flow directions and specific catchment area (Tarboton 1997)."""

from __future__ import annotations

import numba
import numpy as np

from eemt_flow.terrain.grid import as_dem, cell_sizes

# D-infinity facets (Tarboton 1997, Table 1), row index increasing southward. Facet k has
# a cardinal neighbour e1 and a diagonal neighbour e2; the flow angle counter-clockwise
# from east is AC[k]·π/2 + AF[k]·r, r ∈ [0, atan(d2/d1)] measured from e1.
_E1_DI = np.array([0, -1, -1, 0, 0, 1, 1, 0], dtype=np.int64)
_E1_DJ = np.array([1, 0, 0, -1, -1, 0, 0, 1], dtype=np.int64)
_E2_DI = np.array([-1, -1, -1, -1, 1, 1, 1, 1], dtype=np.int64)
_E2_DJ = np.array([1, 1, -1, -1, -1, -1, 1, 1], dtype=np.int64)
_AC = np.array([0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0])
_AF = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])


@numba.njit(cache=True)
def _dinf_kernel(z, ew, ns):
    nr, nc = z.shape
    facet = np.full((nr, nc), -1, dtype=np.int8)
    r_in_facet = np.zeros((nr, nc))
    for i in range(nr):
        for j in range(nc):
            e0 = z[i, j]
            if np.isnan(e0):
                continue
            best_s = 0.0
            for k in range(8):
                if _E1_DJ[k] != 0:
                    d1 = ew
                    d2 = ns
                else:
                    d1 = ns
                    d2 = ew
                diag = np.sqrt(d1 * d1 + d2 * d2)
                r_max = np.arctan2(d2, d1)
                i1 = i + _E1_DI[k]
                j1 = j + _E1_DJ[k]
                i2 = i + _E2_DI[k]
                j2 = j + _E2_DJ[k]
                ok1 = 0 <= i1 < nr and 0 <= j1 < nc and not np.isnan(z[i1, j1])
                ok2 = 0 <= i2 < nr and 0 <= j2 < nc and not np.isnan(z[i2, j2])
                if ok1 and ok2:
                    e1 = z[i1, j1]
                    e2 = z[i2, j2]
                    s1 = (e0 - e1) / d1
                    s2 = (e1 - e2) / d2
                    r = np.arctan2(s2, s1)
                    if r < 0.0:
                        r = 0.0
                        s = s1
                    elif r > r_max:
                        r = r_max
                        s = (e0 - e2) / diag
                    else:
                        s = np.sqrt(s1 * s1 + s2 * s2)
                elif ok1:
                    r = 0.0
                    s = (e0 - z[i1, j1]) / d1
                elif ok2:
                    r = r_max
                    s = (e0 - z[i2, j2]) / diag
                else:
                    continue
                if s > best_s:
                    best_s = s
                    facet[i, j] = k
                    r_in_facet[i, j] = r
    return facet, r_in_facet


@numba.njit(cache=True)
def _dinf_accumulate(z, facet, r_in_facet, order, ew, ns):
    nr, nc = z.shape
    acc = np.zeros((nr, nc))
    for idx in range(order.size):
        c = order[idx]
        i = c // nc
        j = c - i * nc
        acc[i, j] += 1.0
        k = facet[i, j]
        if k < 0:
            continue
        if _E1_DJ[k] != 0:
            r_max = np.arctan2(ns, ew)
        else:
            r_max = np.arctan2(ew, ns)
        p2 = r_in_facet[i, j] / r_max
        p1 = 1.0 - p2
        if p1 > 0.0:
            acc[i + _E1_DI[k], j + _E1_DJ[k]] += p1 * acc[i, j]
        if p2 > 0.0:
            acc[i + _E2_DI[k], j + _E2_DJ[k]] += p2 * acc[i, j]
    for i in range(nr):
        for j in range(nc):
            if np.isnan(z[i, j]):
                acc[i, j] = np.nan
    return acc


def dinf_flow_directions(dem_filled_m, cell_size_m):
    """D-infinity flow direction of every cell.

    The steepest downslope direction among the eight triangular facets formed by the
    centre, one cardinal and one diagonal neighbour (Tarboton 1997, Eqs. 1–3, Table 1).
    Facets whose neighbours are off the grid or nodata are reduced to their valid edge.

    Parameters
    ----------
    dem_filled_m : array, shape (rows, cols)
        Sink-filled elevation [m] (:func:`fill_depressions`), NaN = nodata.
    cell_size_m : float or (float, float)
        Cell size [m], or (east-west, north-south).

    Returns
    -------
    array
        Flow angle counter-clockwise from east [rad] in [0, 2π); −1 where no neighbour is
        lower (an outlet), NaN on nodata.

    References
    ----------
    Tarboton, D. G. (1997), A new method for the determination of flow directions and
    upslope areas in grid digital elevation models, Water Resour. Res. 33:309–319.
    """
    ew, ns = cell_sizes(cell_size_m)
    z = as_dem(dem_filled_m)
    facet, r = _dinf_kernel(z, ew, ns)
    valid = facet >= 0
    k = np.where(valid, facet, 0)
    angle = np.mod(_AC[k] * np.pi / 2.0 + _AF[k] * r, 2.0 * np.pi)
    angle = np.where(valid, angle, -1.0)
    return np.where(np.isnan(z), np.nan, angle)


def dinf_specific_catchment_area(dem_filled_m, cell_size_m):
    """D-infinity specific catchment area.

    Each cell passes its own area plus everything it receives to the one or two cells of
    its steepest facet, split in proportion to the angle within the facet (Tarboton
    1997, p. 311); cells are processed from high to low filled elevation, so receivers
    (always strictly lower on a DEM from :func:`fill_depressions`) are complete when reached. The
    specific catchment area is the upslope area including the cell itself divided by the
    contour width, taken as the cell size (``sqrt(ew·ns)`` for rectangular cells):
    ``a = N_upslope · ew · ns / w``.

    Parameters
    ----------
    dem_filled_m : array, shape (rows, cols)
        Sink-filled elevation [m] (:func:`fill_depressions`), NaN = nodata.
    cell_size_m : float or (float, float)
        Cell size [m], or (east-west, north-south).

    Returns
    -------
    array
        Specific catchment area a [m] (m² per m of contour); ≥ one cell size; NaN on nodata.

    References
    ----------
    Tarboton (1997), Water Resour. Res. 33:309–319; EEMT-SPEC §5.
    """
    ew, ns = cell_sizes(cell_size_m)
    z = as_dem(dem_filled_m)
    facet, r = _dinf_kernel(z, ew, ns)
    flat_z = z.ravel()
    valid = np.flatnonzero(~np.isnan(flat_z))
    order = valid[np.argsort(-flat_z[valid], kind="stable")]
    cells = _dinf_accumulate(z, facet, r, order.astype(np.int64), ew, ns)
    contour_width = np.sqrt(ew * ns)
    return cells * (ew * ns) / contour_width
