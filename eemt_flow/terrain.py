"""Whole-DEM terrain: slope, aspect, northness, sink filling, D-infinity catchment area, MCWI.

Everything here works on a 2-D numpy array of elevations in metres with NaN as nodata, on
a projected grid with true metric cell sizes (EEMT-SPEC §3; Web Mercator is forbidden).
Row 0 is the northern edge (GeoTIFF/GRASS order), columns run west → east.

Catchment area, the wetness index and its domain mean are global quantities: call
:func:`compute_terrain` on the **whole** DEM once and cut tiles from its outputs
(EEMT-SPEC §5, §7), or compute the same result tile by tile with
:mod:`eemt_flow.terrain_stages` (held to these functions by tests/test_terrain_tiled.py).

The loops are numba kernels compiled with ``cache=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from eemt_flow.model.constants import TAN_BETA_MIN
from eemt_flow.model.water import mcwi_alpha, wetness_index

# Neighbour offsets (row, col) in the order NW, N, NE, W, E, SW, S, SE.
_NB_DI = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_NB_DJ = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)

# D-infinity facets (Tarboton 1997, Table 1), row index increasing southward. Facet k has
# a cardinal neighbour e1 and a diagonal neighbour e2; the flow angle counter-clockwise
# from east is AC[k]·π/2 + AF[k]·r, r ∈ [0, atan(d2/d1)] measured from e1.
_E1_DI = np.array([0, -1, -1, 0, 0, 1, 1, 0], dtype=np.int64)
_E1_DJ = np.array([1, 0, 0, -1, -1, 0, 0, 1], dtype=np.int64)
_E2_DI = np.array([-1, -1, -1, -1, 1, 1, 1, 1], dtype=np.int64)
_E2_DJ = np.array([1, 1, -1, -1, -1, -1, 1, 1], dtype=np.int64)
_AC = np.array([0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0])
_AF = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])


def _cell_sizes(cell_size_m) -> tuple[float, float]:
    """(east-west, north-south) cell size in metres from a scalar or a pair."""
    if np.ndim(cell_size_m) == 0:
        ew = ns = float(cell_size_m)
    else:
        ew, ns = (float(abs(v)) for v in cell_size_m)
    if not (ew > 0.0 and ns > 0.0 and np.isfinite(ew) and np.isfinite(ns)):
        raise ValueError(f"cell size must be positive metres, got {cell_size_m!r}")
    return ew, ns


def _as_dem(dem_m) -> np.ndarray:
    dem = np.asarray(dem_m, dtype=np.float64)
    if dem.ndim != 2:
        raise ValueError(f"DEM must be a 2-D array, got shape {dem.shape}")
    return np.ascontiguousarray(dem)


# ---------------------------------------------------------------------------
# Slope and aspect (Horn 1981, as GRASS r.slope.aspect -e)
# ---------------------------------------------------------------------------
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
    ew, ns = _cell_sizes(cell_size_m)
    return _horn_kernel(_as_dem(dem_m), ew, ns)


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


# ---------------------------------------------------------------------------
# Sink filling: exact Priority-Flood level (Barnes, Lehman & Mulla 2014), then flats
# drained towards lower terrain by whole ULPs (Garbrecht & Martz 1997)
# ---------------------------------------------------------------------------
# A flat may be drained by a raise of at most this many ULPs (k-fold nextafter): the
# distance of 2**29 float64 ULPs is one float32 ULP, so a DEM read as float32 can never
# have a drop smaller than the raise (see :func:`fill_depressions`).
FLAT_DISTANCE_MAX_CELLS = 2**29

_SIGN_BIT = np.int64(-(2**63))
_MAGNITUDE_BITS = np.int64(2**63 - 1)


@numba.njit(cache=True)
def _heap_less(keys, seqs, a, b):
    return keys[a] < keys[b] or (keys[a] == keys[b] and seqs[a] < seqs[b])


@numba.njit(cache=True)
def _heap_push(heap, size, keys, seqs, cell):
    pos = size
    heap[pos] = cell
    while pos > 0:
        parent = (pos - 1) // 2
        if _heap_less(keys, seqs, heap[pos], heap[parent]):
            heap[pos], heap[parent] = heap[parent], heap[pos]
            pos = parent
        else:
            break
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap, size, keys, seqs):
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _heap_less(keys, seqs, heap[right], heap[left]):
            child = right
        if _heap_less(keys, seqs, heap[child], heap[pos]):
            heap[pos], heap[child] = heap[child], heap[pos]
            pos = child
        else:
            break
    return top, size


@numba.njit(cache=True)
def _outlets(dem_pad):
    """Valid cells of the core of a NaN-padded array with a nodata (or off-grid) neighbour."""
    nr = dem_pad.shape[0] - 2
    nc = dem_pad.shape[1] - 2
    out = np.zeros((nr, nc), dtype=np.bool_)
    for i in range(nr):
        for j in range(nc):
            if np.isnan(dem_pad[i + 1, j + 1]):
                continue
            for k in range(8):
                if np.isnan(dem_pad[i + 1 + _NB_DI[k], j + 1 + _NB_DJ[k]]):
                    out[i, j] = True
                    break
    return out


@numba.njit(cache=True)
def _flood_levels(dem, seed_label):
    """Priority-Flood fill level from the seed cells, and the seed label that reached each cell.

    ``seed_label > 0`` marks the seeds (drained at their own elevation); every other valid
    cell gets the lowest level at which water can leave it towards a seed, the minimax
    elevation over 8-connected paths (Barnes et al. 2014, Algorithm 2, with the pit
    queue), and the label of the seed whose flood reached it first.
    """
    nr, nc = dem.shape
    n = nr * nc
    z = dem.ravel().copy()
    label = seed_label.ravel().copy()
    closed = np.zeros(n, dtype=np.bool_)
    seqs = np.zeros(n, dtype=np.int64)
    heap = np.empty(n, dtype=np.int64)
    pit = np.empty(n, dtype=np.int64)
    heap_size = 0
    pit_head = 0
    pit_tail = 0
    counter = 0
    for c in range(n):
        if np.isnan(z[c]):
            closed[c] = True
            label[c] = 0
        elif label[c] > 0:
            closed[c] = True
            seqs[c] = counter
            counter += 1
            heap_size = _heap_push(heap, heap_size, z, seqs, c)
    while heap_size > 0 or pit_head < pit_tail:
        if pit_head < pit_tail:
            c = pit[pit_head]
            pit_head += 1
        else:
            c, heap_size = _heap_pop(heap, heap_size, z, seqs)
        ci = c // nc
        cj = c - ci * nc
        for k in range(8):
            ni = ci + _NB_DI[k]
            nj = cj + _NB_DJ[k]
            if ni < 0 or nj < 0 or ni >= nr or nj >= nc:
                continue
            nb = ni * nc + nj
            if closed[nb]:
                continue
            closed[nb] = True
            label[nb] = label[c]
            if z[nb] <= z[c]:
                z[nb] = z[c]
                pit[pit_tail] = nb
                pit_tail += 1
            else:
                seqs[nb] = counter
                counter += 1
                heap_size = _heap_push(heap, heap_size, z, seqs, nb)
    return z.reshape((nr, nc)), label.reshape((nr, nc))


@numba.njit(cache=True)
def _draining(level_pad):
    """Cells of the core of a NaN-padded fill level that are outlets or have a lower neighbour."""
    nr = level_pad.shape[0] - 2
    nc = level_pad.shape[1] - 2
    out = np.zeros((nr, nc), dtype=np.bool_)
    for i in range(nr):
        for j in range(nc):
            f = level_pad[i + 1, j + 1]
            if np.isnan(f):
                continue
            for k in range(8):
                g = level_pad[i + 1 + _NB_DI[k], j + 1 + _NB_DJ[k]]
                if np.isnan(g) or g < f:
                    out[i, j] = True
                    break
    return out


@numba.njit(cache=True)
def _flat_distance_bfs(level, draining):
    """8-connected path distance within each flat of equal level to its nearest draining cell."""
    nr, nc = level.shape
    n = nr * nc
    dist = np.full(n, -1, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    flat_level = level.ravel()
    flat_drain = draining.ravel()
    for c in range(n):
        if flat_drain[c]:
            dist[c] = 0
            queue[tail] = c
            tail += 1
    while head < tail:
        c = queue[head]
        head += 1
        ci = c // nc
        cj = c - ci * nc
        for k in range(8):
            ni = ci + _NB_DI[k]
            nj = cj + _NB_DJ[k]
            if ni < 0 or nj < 0 or ni >= nr or nj >= nc:
                continue
            nb = ni * nc + nj
            if dist[nb] >= 0 or flat_level[nb] != flat_level[c]:
                continue
            dist[nb] = dist[c] + 1
            queue[tail] = nb
            tail += 1
    return dist.reshape((nr, nc))


@numba.njit(cache=True)
def _count_undrained(z_pad):
    """Valid core cells of a NaN-padded surface with no nodata neighbour and no strictly lower one."""
    nr = z_pad.shape[0] - 2
    nc = z_pad.shape[1] - 2
    count = 0
    for i in range(nr):
        for j in range(nc):
            e = z_pad[i + 1, j + 1]
            if np.isnan(e):
                continue
            ok = False
            for k in range(8):
                g = z_pad[i + 1 + _NB_DI[k], j + 1 + _NB_DJ[k]]
                if np.isnan(g) or g < e:
                    ok = True
                    break
            if not ok:
                count += 1
    return count


def raise_by_ulps(level_m, ulps):
    """``level`` raised by ``ulps`` float64 steps towards +inf (``ulps``-fold ``nextafter``).

    Works on the ordered integer image of the IEEE-754 bits, so it costs O(1) per cell
    whatever the count; cells with ``ulps == 0`` (and NaN) are returned unchanged.

    Parameters
    ----------
    level_m : array of float64
        Elevation [m].
    ulps : array of int
        Number of steps, ≥ 0.

    Returns
    -------
    array of float64
    """
    level = np.ascontiguousarray(level_m, dtype=np.float64)
    steps = np.asarray(ulps, dtype=np.int64)
    bits = level.view(np.int64)
    ordered = np.where(bits < 0, -(bits & _MAGNITUDE_BITS), bits) + steps
    raised = np.where(ordered < 0, (-ordered) | _SIGN_BIT, ordered).view(np.float64)
    return np.where(steps == 0, level, raised)


def fill_levels_and_flat_distance(dem_m):
    """Exact Priority-Flood fill level F and the flat distance k of every cell (whole DEM).

    Returns ``(F, k)``: F as in :func:`fill_depressions`; k ≥ 0 (int64), 0 on nodata.
    """
    dem = _as_dem(dem_m)
    outlet = _outlets(np.pad(dem, 1, constant_values=np.nan))
    level, _ = _flood_levels(dem, outlet.astype(np.int32))
    level_pad = np.pad(level, 1, constant_values=np.nan)
    k = _flat_distance_bfs(level, _draining(level_pad))
    return level, np.maximum(k, 0)


def fill_depressions(dem_m):
    """Fill every depression so that each cell drains to the DEM edge or to nodata.

    Two steps, each with a unique result (so the tiled computation can reproduce it bit
    for bit):

    1. F, the exact Priority-Flood fill level: the lowest elevation at which water can
       leave the cell along an 8-connected path to an outlet (a cell on the grid edge or
       next to nodata), i.e. the minimax of the elevations along such paths (Barnes et al.
       2014, Algorithm 2). Cells outside depressions keep their elevation.
    2. Flats of equal F are drained towards lower terrain (Garbrecht & Martz 1997): a
       cell is raised by k float64 ULPs (k-fold ``nextafter``), k being the 8-connected
       path distance, within the flat, to the nearest cell that is an outlet or has a
       strictly lower neighbour.

    Every valid cell then has a strictly lower neighbour or is an outlet: inside a flat
    the neighbour one step closer is one ULP lower, and a cell at k = 0 sits above a
    neighbour whose F is lower by at least one float32 ULP when the DEM holds float32
    values (GeoTIFF DEMs are read as float32), which is 2**29 float64 ULPs, more than
    any raise. Where a float64 DEM has smaller drops than the raise, ValueError says so.

    Parameters
    ----------
    dem_m : array, shape (rows, cols)
        Elevation [m], NaN = nodata.

    Returns
    -------
    array
        Filled elevation [m] (float64), NaN where the input is NaN.

    Raises
    ------
    ValueError
        If some cell would be left without a strictly lower neighbour (float64 input with
        drops of fewer ULPs than the flat raise).

    References
    ----------
    Barnes, R., Lehman, C. and Mulla, D. (2014), Priority-Flood: An optimal
    depression-filling and watershed-labeling algorithm for digital elevation models,
    Computers & Geosciences 62:117–127, Algorithm 2.
    Garbrecht, J. and Martz, L. W. (1997), The assignment of drainage direction over flat
    surfaces in raster digital elevation models, J. Hydrol. 193:204–213 (gradient
    towards lower terrain).
    Barnes, R. (2016), Parallel priority-flood depression filling for trillion cell
    digital elevation models on desktops or clusters, Computers & Geosciences 96:56–68
    (why the result must not depend on the queue order to be tileable).
    """
    level, k = fill_levels_and_flat_distance(dem_m)
    z = raise_by_ulps(level, k)
    check_drains(z)
    return z


def check_drains(z_filled_m, z_pad=None):
    """Raise ValueError unless every valid cell is an outlet or has a strictly lower neighbour.

    ``z_pad`` (the surface padded with its neighbours, NaN beyond the DEM) may be given
    instead of padding ``z_filled_m`` with NaN.
    """
    if z_pad is None:
        z_pad = np.pad(np.asarray(z_filled_m, dtype=np.float64), 1, constant_values=np.nan)
    bad = _count_undrained(np.ascontiguousarray(z_pad))
    if bad:
        raise ValueError(
            f"fill_depressions: {bad} cells have no lower neighbour after the flat raise; the DEM has "
            "drops of only a few float64 ULPs; round it to float32 first"
        )


# ---------------------------------------------------------------------------
# D-infinity flow directions and specific catchment area (Tarboton 1997)
# ---------------------------------------------------------------------------
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
    ew, ns = _cell_sizes(cell_size_m)
    z = _as_dem(dem_filled_m)
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
    ew, ns = _cell_sizes(cell_size_m)
    z = _as_dem(dem_filled_m)
    facet, r = _dinf_kernel(z, ew, ns)
    flat_z = z.ravel()
    valid = np.flatnonzero(~np.isnan(flat_z))
    order = valid[np.argsort(-flat_z[valid], kind="stable")]
    cells = _dinf_accumulate(z, facet, r, order.astype(np.int64), ew, ns)
    contour_width = np.sqrt(ew * ns)
    return cells * (ew * ns) / contour_width


# ---------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Terrain:
    """Terrain layers of a whole DEM (NaN = nodata in every float layer).

    Attributes
    ----------
    slope_deg : array
        Horn slope β [degrees].
    aspect_grass_deg : array
        Aspect counter-clockwise from east, 0 = flat [degrees] (input to r.sun).
    aspect_north_deg : array
        Aspect clockwise from north [degrees].
    northness : array
        cos(aspect_N)·sin β [-].
    filled_dem_m : array
        Filled elevation [m] (:func:`fill_depressions`).
    specific_catchment_area_m : array
        D-infinity specific catchment area a [m].
    wetness_index : array
        λ = ln(a / max(tan β, TAN_BETA_MIN)) [-].
    alpha : array
        MCWI factor α = max(λ / mean(λ), 0) [-].
    mean_wetness_index : float
        Domain mean of λ over all valid cells [-].
    """

    slope_deg: np.ndarray
    aspect_grass_deg: np.ndarray
    aspect_north_deg: np.ndarray
    northness: np.ndarray
    filled_dem_m: np.ndarray
    specific_catchment_area_m: np.ndarray
    wetness_index: np.ndarray
    alpha: np.ndarray
    mean_wetness_index: float


def compute_terrain(dem_m, cell_size_m, tan_beta_min=TAN_BETA_MIN) -> Terrain:
    """All terrain layers of a whole DEM: slope, aspect, northness, a, λ and α.

    The slope β of the wetness index is the Horn slope of the unfilled DEM (the same β as
    in northness and r.sun); flow routing uses the filled DEM.

    Parameters
    ----------
    dem_m : array, shape (rows, cols)
        The **whole** DEM [m], NaN = nodata, on a projected metric grid.
    cell_size_m : float or (float, float)
        Cell size [m], or (east-west, north-south).
    tan_beta_min : float
        Flat-cell guard of tan β in the wetness index [-].

    Returns
    -------
    Terrain

    Raises
    ------
    ValueError
        If the DEM has no valid cell or the domain mean of λ is ≤ 0.

    References
    ----------
    Horn (1981); Barnes et al. (2014); Tarboton (1997); Beven & Kirkby (1979);
    VZJ 2015 Eqs. 9–11, p. 8; EEMT-SPEC §3, §5.
    """
    dem = _as_dem(dem_m)
    if not np.isfinite(dem).any():
        raise ValueError("compute_terrain: the DEM has no valid (finite) cell")
    if np.isinf(dem).any():
        raise ValueError("compute_terrain: the DEM contains ±inf; mark nodata with NaN")
    slope_deg, aspect_grass = slope_aspect(dem, cell_size_m)
    filled = fill_depressions(dem)
    sca = dinf_specific_catchment_area(filled, cell_size_m)
    lam = wetness_index(sca, np.deg2rad(slope_deg), tan_beta_min)
    alpha = mcwi_alpha(lam)
    return Terrain(
        slope_deg=slope_deg,
        aspect_grass_deg=aspect_grass,
        aspect_north_deg=aspect_north_deg(aspect_grass),
        northness=northness(aspect_grass, slope_deg),
        filled_dem_m=filled,
        specific_catchment_area_m=sca,
        wetness_index=lam,
        alpha=alpha,
        mean_wetness_index=float(np.nanmean(lam)),
    )
