"""The grid conventions of the terrain functions: neighbour order and cell sizes.

Every terrain function works on a 2-D numpy array of elevations in metres with NaN as
nodata, on a projected grid with true metric cell sizes (EEMT-SPEC §3; Web Mercator is
forbidden). Row 0 is the northern edge (GeoTIFF/GRASS order), columns run west → east.
"""

from __future__ import annotations

import numpy as np

# Neighbour offsets (row, col) in the order NW, N, NE, W, E, SW, S, SE.
NB_DI = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
NB_DJ = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


def cell_sizes(cell_size_m) -> tuple[float, float]:
    """(east-west, north-south) cell size in metres from a scalar or a pair."""
    if np.ndim(cell_size_m) == 0:
        ew = ns = float(cell_size_m)
    else:
        ew, ns = (float(abs(v)) for v in cell_size_m)
    if not (ew > 0.0 and ns > 0.0 and np.isfinite(ew) and np.isfinite(ns)):
        raise ValueError(f"cell size must be positive metres, got {cell_size_m!r}")
    return ew, ns


def as_dem(dem_m) -> np.ndarray:
    dem = np.asarray(dem_m, dtype=np.float64)
    if dem.ndim != 2:
        raise ValueError(f"DEM must be a 2-D array, got shape {dem.shape}")
    return np.ascontiguousarray(dem)

