"""numba loops of the horizon computations; :mod:`eemt_flow.solar.horizon` decides what runs where."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def sweep_kernel(dem, row0, col0, offsets_row, offsets_col, inv_distance, curvature_tan, n_offsets, out):
    """tan of the horizon, max over the stencil of (z - z0) / d - d / (2 R), clamped at 0.

    Rays start from the cells of the window at (row0, col0) of ``out``'s shape and sample all of ``dem``.
    """
    n_az, out_rows, out_cols = out.shape
    rows, cols = dem.shape
    for idx in prange(n_az * out_rows):
        k = idx // out_rows
        i = idx - k * out_rows
        r0 = row0 + i
        best = np.zeros(out_cols, dtype=np.float32)
        z0 = dem[r0, col0:col0 + out_cols]
        for j in range(n_offsets[k]):
            rr = r0 + offsets_row[k, j]
            if rr < 0 or rr >= rows:
                continue
            dcol = offsets_col[k, j]
            # window columns whose sample col0 + c + dcol lies inside the grid
            c_lo = max(0, -dcol - col0)
            c_hi = min(out_cols, cols - dcol - col0)
            inv_d = inv_distance[k, j]
            curv = curvature_tan[k, j]
            if c_hi <= c_lo:
                continue
            # slices indexed from 0 and a select, not a branch, so that the loop vectorises
            zs = dem[rr, col0 + dcol + c_lo:col0 + dcol + c_hi]
            z0s = z0[c_lo:c_hi]
            bs = best[c_lo:c_hi]
            for q in range(c_hi - c_lo):
                t = (zs[q] - z0s[q]) * inv_d - curv
                b = bs[q]
                bs[q] = t if t > b else b  # False for NaN: a NaN cell never ends or casts shadow
        for c in range(out_cols):
            if z0[c] == z0[c]:
                out[k, i, c] = math.atan(best[c])
            else:
                out[k, i, c] = np.nan
