"""numba loops of the horizon computations; :mod:`eemt_flow.solar.horizon` decides what runs where."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def sweep_kernel(dem, row0, col0, offsets_row, offsets_col, inv_distance, curvature_tan, n_offsets, out_tan):
    """tan of the horizon, max over the stencil of (z - z0) / d - d / (2 R), clamped at 0.

    Rays start from the cells of the window at (row0, col0) of ``out_tan``'s shape and sample all of
    ``dem``; NaN cells get NaN.
    """
    n_az, out_rows, out_cols = out_tan.shape
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
            out_tan[k, i, c] = best[c] if z0[c] == z0[c] else np.nan


@njit(parallel=True, cache=True)
def atan_inplace(values):
    """values <- atan(values), element by element (NaN stays NaN), in float64 arithmetic."""
    flat = values.reshape(-1)
    for i in prange(flat.size):
        flat[i] = math.atan(flat[i])


@njit(parallel=True, cache=True)
def quantize(horizons, resolution, out):
    """r.sun's byte storage of horizon angles: round(angle / resolution) clipped to [0, 255], NaN -> 0."""
    n_az, rows, cols = horizons.shape
    for idx in prange(n_az * rows):
        k = idx // rows
        r = idx - k * rows
        for c in range(cols):
            v = horizons[k, r, c]
            q = math.floor(v / resolution + 0.5) if v == v else 0.0
            out[k, r, c] = np.uint8(min(max(q, 0.0), 255.0))


# --- Dozier's upper convex hull along lines of constant direction ----------------------------

@njit(cache=True, inline="always")
def _push(hx, hz, h, x, z, side):
    """Put (x, z) on the hull stack ``hx, hz`` of size h, left (side 1) or right (side -1) of all its points.

    The top is dropped while it does not lie strictly above the chord from the new point to
    the point under it (the cross product of the two, seen from the new point, has the sign
    of ``side``); each point is dropped at most once, so a line costs O(n). Returns the new size.
    """
    while h >= 2:
        bx, bz = hx[h - 1] - x, hz[h - 1] - z
        cx, cz = hx[h - 2] - x, hz[h - 2] - z
        if side * (bz * cx - cz * bx) > 0.0:
            break
        h -= 1
    hx[h] = x
    hz[h] = z
    return h + 1


@njit(cache=True, inline="always")
def _tangent(hx, hz, h, i, xq, zq):
    """Index of the hull vertex with the steepest view from (xq, zq), left of every vertex.

    The hull is a stack in x order (either way round). Seen from the query point the
    vertices rise to the tangent and fall beyond it, so from any start ``i`` -- the previous
    origin's tangent, a step or two away as a rule -- an uphill walk ends on it.
    """
    i = min(i, h - 1)
    while i > 0 and (hz[i - 1] - zq) * (hx[i] - xq) > (hz[i] - zq) * (hx[i - 1] - xq):
        i -= 1
    while i < h - 1 and (hz[i + 1] - zq) * (hx[i] - xq) > (hz[i] - zq) * (hx[i + 1] - xq):
        i += 1
    return i


@njit(cache=True)
def line_far_horizon(xs, zc, queried, first, last, best, hx, hz):
    """Steepest view from every point of a line to the points ``first`` ... ``last`` steps ahead.

    ``xs`` are distances along the line [m] and ``zc[u] = z[u] - xs[u]^2 / (2 R)``: then
    ``(z_u - z_t) / d - d / (2 R) = (zc_u - zc_t) / d + xs_t / R`` (d = xs_u - xs_t), so the
    Earth's curvature becomes a per-origin constant and the points can share one hull.
    ``best[t]`` (for ``queried`` t) receives the largest ``(zc_u - zc_t) / d`` over the window;
    the caller adds ``xs_t / R``. NaN points are skipped as targets.

    The upper convex hull of the terrain ahead gives each origin its steepest view
    (Dozier 2022): a point joins the hull in amortised O(1), and the tangent from an origin
    is found by an uphill walk from the previous origin's. The window of origin t,
    ``[t + first, t + last]``, spans at most two blocks of ``last - first + 1`` points: the
    suffix of one, whose hull is built leftwards, and the prefix of the next, built
    rightwards. So no point beyond the search distance is ever seen, and the cost per point
    does not depend on the search distance. ``hx, hz`` hold a hull (stack; x order from
    index 0 = rightmost in the suffix pass, leftmost in the prefix pass).
    """
    n = zc.size
    width = last - first + 1
    if n <= first or width <= 0:
        return
    n_blocks = (n + width - 1) // width
    last_origin = n - 1
    while last_origin >= 0 and not queried[last_origin]:
        last_origin -= 1
    for blk in range(n_blocks):
        start = blk * width
        stop = min(start + width, n)
        if start - last > last_origin:
            break  # no origin sees this far
        # suffix of this block, for origins t with t + first in it; stack index 0 = rightmost
        h = 0
        i = 0
        suffix_stop = stop if start - first <= last_origin else start  # no origin starts its window here
        for u in range(suffix_stop - 1, start - 1, -1):
            if zc[u] == zc[u]:
                h = _push(hx, hz, h, xs[u], zc[u], 1.0)
            t = u - first
            if t >= 0 and h > 0 and queried[t] and zc[t] == zc[t]:
                i = _tangent(hx, hz, h, i, xs[t], zc[t])
                v = (hz[i] - zc[t]) / (hx[i] - xs[t])
                best[t] = v if v > best[t] else best[t]
        # prefix of this block, for origins whose window began in the block before; index 0 = leftmost
        if blk == 0:
            continue
        h = 0
        i = 0
        for u in range(start, start + width):
            if u < n and zc[u] == zc[u]:
                h = _push(hx, hz, h, xs[u], zc[u], -1.0)
            t = u - last
            if t >= 0 and t + first < start and h > 0 and queried[t] and zc[t] == zc[t]:
                i = _tangent(hx, hz, h, i, xs[t], zc[t])
                v = (hz[i] - zc[t]) / (hx[i] - xs[t])
                best[t] = v if v > best[t] else best[t]


@njit(cache=True)
def _first_at_least(off, value, increasing):
    """First index t of a monotone int array with off[t] >= value (increasing) or <= value (decreasing)."""
    lo, hi = 0, off.size
    while lo < hi:
        mid = (lo + hi) // 2
        ok = off[mid] >= value if increasing else off[mid] <= value
        if ok:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(parallel=True, cache=True)
def hull_kernel(dem, forward, off, slope, cell_m, first, last, inv_2r, row0, col0, out_tan):
    """Far-field horizons of one azimuth by :func:`line_far_horizon` along digital lines; max into ``out_tan``.

    The lines step one column at a time in the ray's direction (``forward``: towards higher
    columns; directions nearer the columns than the rows come with ``dem`` transposed) and
    ``off[t]`` rows after t steps (``floor(t s + 1/2)``, s = ``slope`` = rows per column of
    the direction, |s| <= 1). Line L holds the cells ``(L + off[t], t)``: for each t the
    map L -> L + off[t] is one-to-one, so every cell lies on exactly one line. Distances
    along a line are those of the cell centres projected on the direction. ``out_tan``
    (rows, cols of the window at row0, col0) holds tan of the horizon; where the line finds a
    steeper one it is replaced. NaN entries (nodata origins) stay NaN. Neighbouring lines go
    to the same thread one after the other, so they share the cache lines they read.
    """
    n_q, n_p = dem.shape
    out_rows, out_cols = out_tan.shape
    # the window in (row, t) coordinates
    wq0, wq1 = row0, row0 + out_rows - 1
    tw0, tw1 = (col0, col0 + out_cols - 1) if forward else (n_p - col0 - out_cols, n_p - 1 - col0)
    increasing = off[n_p - 1] >= off[0]
    proj = cell_m / math.sqrt(1.0 + slope * slope)
    # lines that cross the window: q = L + off[t] in [wq0, wq1] for some t in [tw0, tw1]
    l_lo = wq0 - max(off[tw0], off[tw1])
    l_hi = wq1 - min(off[tw0], off[tw1])
    n_lines = l_hi - l_lo + 1
    n_max = min(n_p, tw1 - tw0 + 1 + last)  # longest stretch of a line that is needed
    n_chunks = min(n_lines, 64)
    per_chunk = (n_lines + n_chunks - 1) // n_chunks
    for chunk in prange(n_chunks):
        # buffers once per chunk of lines, not per line
        xs = np.empty(n_max)
        zc = np.empty(n_max)
        queried = np.empty(n_max, dtype=np.bool_)
        best = np.empty(n_max)
        hx = np.empty(n_max + 1)
        hz = np.empty(n_max + 1)
        for li in range(chunk * per_chunk, min(n_lines, (chunk + 1) * per_chunk)):
            line = l_lo + li
            # t where the line is inside the window's rows: wq0 <= line + off[t] <= wq1
            if increasing:
                t_a = _first_at_least(off, wq0 - line, True)
                t_b = _first_at_least(off, wq1 + 1 - line, True) - 1
                t_end = _first_at_least(off, n_q - line, True) - 1  # last t inside the grid
            else:
                t_a = _first_at_least(off, wq1 - line, False)
                t_b = _first_at_least(off, wq0 - 1 - line, False) - 1
                t_end = _first_at_least(off, -line - 1, False) - 1
            t_a = max(t_a, tw0)
            t_b = min(t_b, tw1)
            if t_b < t_a:
                continue
            n = min(t_end, t_b + last) - t_a + 1
            for i in range(n):
                t = t_a + i
                p = t if forward else n_p - 1 - t
                # distance along the direction: the cell centre projected on it
                x = (i + (off[t] - off[t_a]) * slope) * proj
                xs[i] = x
                zc[i] = dem[line + off[t], p] - x * x * inv_2r
                queried[i] = t <= t_b
                best[i] = -np.inf
            line_far_horizon(xs[:n], zc[:n], queried[:n], first, last, best[:n], hx, hz)
            for i in range(t_b - t_a + 1):
                if best[i] == -np.inf:
                    continue
                t = t_a + i
                p = t if forward else n_p - 1 - t
                r = line + off[t] - row0
                c = p - col0
                v = best[i] + 2.0 * inv_2r * xs[i]  # + x_t / R
                if v > out_tan[r, c]:  # False where the origin is NaN
                    out_tan[r, c] = v
