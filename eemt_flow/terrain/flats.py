"""Flats of equal fill level: the cells that drain them and the distance to those cells.

The distance k, in 8-connected steps within a flat, is how many float64 ULPs
:func:`eemt_flow.terrain.fill.fill_depressions` raises a cell (Garbrecht & Martz 1997).
"""

from __future__ import annotations

import numba
import numpy as np

from eemt_flow.terrain.grid import NB_DI, NB_DJ

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
                g = level_pad[i + 1 + NB_DI[k], j + 1 + NB_DJ[k]]
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
            ni = ci + NB_DI[k]
            nj = cj + NB_DJ[k]
            if ni < 0 or nj < 0 or ni >= nr or nj >= nc:
                continue
            nb = ni * nc + nj
            if dist[nb] >= 0 or flat_level[nb] != flat_level[c]:
                continue
            dist[nb] = dist[c] + 1
            queue[tail] = nb
            tail += 1
    return dist.reshape((nr, nc))
