"""Depression filling: the exact Priority-Flood level, then flats raised by whole ULPs.

Priority-Flood after Barnes, Lehman & Mulla (2014); the flats are drained towards lower
terrain by whole float64 ULPs (Garbrecht & Martz 1997), so the result is unique and the
tiled stages (:mod:`eemt_flow.terrain.tiled`) reproduce it bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from eemt_flow.terrain.flats import _draining, _flat_distance_bfs
from eemt_flow.terrain.grid import NB_DI, NB_DJ, as_dem
from eemt_flow.terrain.heap import heap_pop, heap_push

# A flat may be drained by a raise of at most this many ULPs (k-fold nextafter): the
# distance of 2**29 float64 ULPs is one float32 ULP, so a DEM read as float32 can never
# have a drop smaller than the raise (see :func:`fill_depressions`).
FLAT_DISTANCE_MAX_CELLS = 2**29

_SIGN_BIT = np.int64(-(2**63))
_MAGNITUDE_BITS = np.int64(2**63 - 1)


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
                if np.isnan(dem_pad[i + 1 + NB_DI[k], j + 1 + NB_DJ[k]]):
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
    heap_keys = np.empty(n)
    heap_seqs = np.empty(n, dtype=np.int64)
    heap_cells = np.empty(n, dtype=np.int64)
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
            heap_size = heap_push(heap_keys, heap_seqs, heap_cells, heap_size, z[c], counter, c)
            counter += 1
    while heap_size > 0 or pit_head < pit_tail:
        if pit_head < pit_tail:
            c = pit[pit_head]
            pit_head += 1
        else:
            _, c, heap_size = heap_pop(heap_keys, heap_seqs, heap_cells, heap_size)
        ci = c // nc
        cj = c - ci * nc
        for k in range(8):
            ni = ci + NB_DI[k]
            nj = cj + NB_DJ[k]
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
                heap_size = heap_push(heap_keys, heap_seqs, heap_cells, heap_size, z[nb], counter, nb)
                counter += 1
    return z.reshape((nr, nc)), label.reshape((nr, nc))


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
                g = z_pad[i + 1 + NB_DI[k], j + 1 + NB_DJ[k]]
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
    dem = as_dem(dem_m)
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
