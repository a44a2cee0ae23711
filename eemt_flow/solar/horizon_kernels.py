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


@njit(cache=True)
def line_far_horizon(ks, xs, zc, queried, first, last, best, hx, hz):
    """Steepest view from every point of a line to the points ``first`` ... ``last`` steps ahead.

    ``ks`` are the points' steps along the line (strictly increasing integers >= 0; a coarse
    far field leaves gaps), ``xs`` their distances along it [m] and
    ``zc[u] = z[u] - xs[u]^2 / (2 R)``: then
    ``(z_u - z_t) / d - d / (2 R) = (zc_u - zc_t) / d + xs_t / R`` (d = xs_u - xs_t), so the
    Earth's curvature becomes a per-origin constant and the points can share one hull.
    ``best[t]`` (for ``queried`` t) receives the largest ``(zc_u - zc_t) / d`` over the points
    u with ``ks[t] + first <= ks[u] <= ks[t] + last``; the caller adds ``xs_t / R``. NaN points
    are skipped as targets.

    The upper convex hull of the terrain ahead gives each origin its steepest view
    (Dozier 2022): a point joins the hull in amortised O(1), and the tangent from an origin
    is found by an uphill walk from the previous origin's. The steps are cut into blocks of
    ``last - first + 1`` (from step 0, whatever the first point); the window of an origin spans the suffix of one block, whose hull
    is built leftwards, and the prefix of the next, built rightwards. So no point beyond the
    search distance is ever seen, and the cost per point does not depend on the search
    distance. ``hx, hz`` hold a hull (stack; x order from index 0 = rightmost in the suffix
    pass, leftmost in the prefix pass).
    """
    n = zc.size
    width = last - first + 1
    if n == 0 or width <= 0:
        return
    last_origin = n - 1
    while last_origin >= 0 and not queried[last_origin]:
        last_origin -= 1
    if last_origin < 0:
        return
    # blocks on multiples of the width (ks >= 0), so that they do not depend on the first point
    blk_first = ks[0] // width
    for blk in range(blk_first, ks[n - 1] // width + 1):
        b0 = blk * width
        b1 = b0 + width  # the block's steps are [b0, b1)
        if b0 - last > ks[last_origin]:
            break  # no origin sees this far
        u0 = _first_at_least(ks, b0, True)
        u1 = _first_at_least(ks, b1, True)
        # suffix of the block, for the origins whose window starts in it (ks[t] + first in [b0, b1)):
        # each is queried once the hull holds every point at or after its window's start
        t0 = _first_at_least(ks, b0 - first, True)
        t1 = _first_at_least(ks, b1 - first, True)
        if t1 > t0:
            h = 0
            i = 0
            tq = t1 - 1
            for u in range(u1 - 1, u0 - 1, -1):
                while tq >= t0 and ks[tq] + first > ks[u]:
                    if h > 0 and queried[tq] and zc[tq] == zc[tq]:
                        i = _tangent(hx, hz, h, i, xs[tq], zc[tq])
                        v = (hz[i] - zc[tq]) / (hx[i] - xs[tq])
                        best[tq] = v if v > best[tq] else best[tq]
                    tq -= 1
                if zc[u] == zc[u]:
                    h = _push(hx, hz, h, xs[u], zc[u], 1.0)
            while tq >= t0:
                if h > 0 and queried[tq] and zc[tq] == zc[tq]:
                    i = _tangent(hx, hz, h, i, xs[tq], zc[tq])
                    v = (hz[i] - zc[tq]) / (hx[i] - xs[tq])
                    best[tq] = v if v > best[tq] else best[tq]
                tq -= 1
        # prefix of the block, for the origins whose window began in the block before and ends
        # in this one (ks[t] + last in [b0, b1 - 1)): queried before the first point past its end
        t0 = _first_at_least(ks, b0 - last, True)
        t1 = _first_at_least(ks, b1 - 1 - last, True)
        if blk == blk_first or t1 <= t0:
            continue
        h = 0
        i = 0
        tq = t0
        for u in range(u0, u1):
            while tq < t1 and ks[tq] + last < ks[u]:
                if h > 0 and queried[tq] and zc[tq] == zc[tq]:
                    i = _tangent(hx, hz, h, i, xs[tq], zc[tq])
                    v = (hz[i] - zc[tq]) / (hx[i] - xs[tq])
                    best[tq] = v if v > best[tq] else best[tq]
                tq += 1
            if zc[u] == zc[u]:
                h = _push(hx, hz, h, xs[u], zc[u], -1.0)
        while tq < t1:
            if h > 0 and queried[tq] and zc[tq] == zc[tq]:
                i = _tangent(hx, hz, h, i, xs[tq], zc[tq])
                v = (hz[i] - zc[tq]) / (hx[i] - xs[tq])
                best[tq] = v if v > best[tq] else best[tq]
            tq += 1


@njit(parallel=True, cache=True)
def transpose(grid):
    """``grid.T`` as a new C-contiguous array, in blocks that fit the cache, in parallel."""
    rows, cols = grid.shape
    out = np.empty((cols, rows), dtype=grid.dtype)
    block = 64
    n_col_blocks = (cols + block - 1) // block
    for cb in prange(n_col_blocks):
        c0 = cb * block
        c1 = min(c0 + block, cols)
        for r0 in range(0, rows, block):
            r1 = min(r0 + block, rows)
            for c in range(c0, c1):
                for r in range(r0, r1):
                    out[c, r] = grid[r, c]
    return out


@njit(parallel=True, cache=True)
def max_pyramid(dem, n_levels, pad_rows, pad_cols):
    """Levels 1 ... n_levels - 1 of the max pyramid of ``dem``: level L holds the highest of each 2^L x 2^L block.

    The blocks start ``pad_rows`` rows and ``pad_cols`` columns before ``dem`` (so that they
    lie on the DEM's grid whatever window of it ``dem`` is; those cells count as NaN).
    Returns the levels one after the other in one array, the index of each level's first
    value and each level's number of columns (level 0 is ``dem`` itself and is not stored:
    its entries are 0). NaN cells are skipped; a block of NaN only is NaN.
    """
    rows, cols = dem.shape
    level_start = np.zeros(n_levels, dtype=np.int64)
    level_cols = np.zeros(n_levels, dtype=np.int64)
    level_rows = np.zeros(n_levels, dtype=np.int64)
    level_rows[0], level_cols[0] = rows + pad_rows, cols + pad_cols
    total = 0
    for lv in range(1, n_levels):
        level_rows[lv] = (level_rows[lv - 1] + 1) // 2
        level_cols[lv] = (level_cols[lv - 1] + 1) // 2
        level_start[lv] = total
        total += level_rows[lv] * level_cols[lv]
    pyramid = np.empty(max(total, 1), dtype=np.float32)
    for lv in range(1, n_levels):
        for r in prange(level_rows[lv]):
            for c in range(level_cols[lv]):
                z = np.float32(np.nan)
                for rr in range(2 * r, min(2 * r + 2, level_rows[lv - 1])):
                    for cc in range(2 * c, min(2 * c + 2, level_cols[lv - 1])):
                        if lv == 1:
                            if rr < pad_rows or cc < pad_cols:
                                continue
                            v = dem[rr - pad_rows, cc - pad_cols]
                        else:
                            v = pyramid[level_start[lv - 1] + rr * level_cols[lv - 1] + cc]
                        if v > z or z != z:
                            z = v
                pyramid[level_start[lv] + r * level_cols[lv] + c] = z
    return pyramid, level_start, level_cols


@njit(parallel=True, cache=True)
def hull_kernel(near, near_q0, near_p0, n_q, n_p, pyramid, level_start, level_cols, level_q0, level_p0, forward, off,
                group_cells, slope, cell_m, first, last, full_steps, inv_2r, row0, col0, q_abs0, p_abs0, out_tan):
    """Far-field horizons of one azimuth by :func:`line_far_horizon` along digital lines; max into ``out_tan``.

    The grid has ``n_q`` rows and ``n_p`` columns and is the DEM's window from row
    ``q_abs0``, column ``p_abs0`` on; ``near`` holds its cells at full resolution from row
    ``near_q0``, column ``near_p0`` on (every cell the lines read at full resolution). The
    lines step one column at a time in the ray's direction (``forward``: towards higher
    columns; directions nearer the columns than the rows come with the grid transposed) and
    ``off[group_cells + t]`` rows after t steps (``off``: ``floor(u s + 1/2)`` for
    u = the DEM's column, forward, or minus it; from t = -group_cells to
    n_p + group_cells - 1; s = ``slope`` = rows per column of the direction, |s| <= 1).
    Line L holds the cells ``(L + off(t), t)``: every cell lies on exactly one line, and
    the lines are the DEM's, whatever window of it the grid is. Distances along a line are
    those of the cell centres projected on the direction. ``out_tan`` (rows, cols of the
    window at row0, col0) holds tan of the horizon; where the line finds a steeper one it is
    replaced. NaN entries (nodata origins) stay NaN. Neighbouring lines go to the same
    thread one after the other, so they share the cache lines they read.

    Coarser far field (as HORAYZON, Steger et al. 2022, simplifies distant terrain): the
    origins of a line go in groups of ``group_cells`` of the DEM's columns (a group starts
    at a multiple of it). For the origins of a group, every cell up to ``full_steps`` steps
    past the group's last column is a point; beyond, up to twice that distance the line is
    read from ``pyramid`` level 1 (the highest of 2 x 2 cells, :func:`max_pyramid`, blocks
    on the DEM's grid, held from the DEM's block (``level_q0``, ``level_p0``) of each level
    on, in rows of ``level_cols``), up to four times from level 2 (4 x 4), and so on: one
    point per block of 2^L columns the line crosses, the highest of the 1 or 2 blocks its
    rows fall in, at the distance of the middle of its steps there, counted as far as its
    last step (so a block is seen whole or not at all). Everything a group's points are made
    of (lines, groups, blocks, levels, the step and distance origin) is fixed on the DEM's
    grid, so a cell's horizons do not depend on the window or on which of its cells are
    wanted. A block spans at most 2 / ``full_steps`` of its distance from any origin, which
    bounds the error of the tangent it gives, and the points and reads per group grow with
    the logarithm of the search distance, not with it. ``full_steps`` < 0: every cell is a
    point.
    """
    n_levels = level_start.size
    out_rows, out_cols = out_tan.shape
    g_cells = group_cells
    # the window in (row, t) coordinates
    wq0, wq1 = row0, row0 + out_rows - 1
    tw0, tw1 = (col0, col0 + out_cols - 1) if forward else (n_p - col0 - out_cols, n_p - 1 - col0)
    ofs = off[g_cells:g_cells + n_p]  # off(t) for t in the grid
    increasing = ofs[n_p - 1] >= ofs[0]
    proj = cell_m / math.sqrt(1.0 + slope * slope)
    # lines that cross the window: q = L + off(t) in [wq0, wq1] for some t in [tw0, tw1]
    l_lo = wq0 - max(ofs[tw0], ofs[tw1])
    l_hi = wq1 - min(ofs[tw0], ofs[tw1])
    n_lines = l_hi - l_lo + 1
    n_max = min(n_p, g_cells + last + 1) + 1  # most points of one group
    n_chunks = min(n_lines, 64)
    per_chunk = (n_lines + n_chunks - 1) // n_chunks
    for chunk in prange(n_chunks):
        # buffers once per chunk of lines, not per line
        ks = np.empty(n_max, dtype=np.int64)
        xs = np.empty(n_max)
        zc = np.empty(n_max)
        queried = np.empty(n_max, dtype=np.bool_)
        best = np.empty(n_max)
        hx = np.empty(n_max + 1)
        hz = np.empty(n_max + 1)
        for li in range(chunk * per_chunk, min(n_lines, (chunk + 1) * per_chunk)):
            line = l_lo + li
            # t where the line is inside the window's rows: wq0 <= line + off(t) <= wq1
            if increasing:
                t_a = _first_at_least(ofs, wq0 - line, True)
                t_b = _first_at_least(ofs, wq1 + 1 - line, True) - 1
                t_end = _first_at_least(ofs, n_q - line, True) - 1  # last t inside the grid
            else:
                t_a = _first_at_least(ofs, wq1 - line, False)
                t_b = _first_at_least(ofs, wq0 - 1 - line, False) - 1
                t_end = _first_at_least(ofs, -line - 1, False) - 1
            t_a = max(t_a, tw0)
            t_b = min(t_b, tw1)
            t_g = t_a
            while t_g <= t_b:
                # the group of origins t_g belongs to: its steps t_gs ... t_gn (the DEM's columns
                # g * group_cells ... (g + 1) * group_cells - 1, in the line's direction)
                p = t_g if forward else n_p - 1 - t_g
                g = (p + p_abs0) // g_cells
                if forward:
                    t_gs = g * g_cells - p_abs0
                else:
                    t_gs = n_p - 1 - ((g + 1) * g_cells - 1 - p_abs0)
                t_gn = t_gs + g_cells - 1
                t_g1 = min(t_b, t_gn)  # the group's last origin here
                t_stop = min(t_end, t_g1 + last)  # the last step any of them sees
                off_s = off[g_cells + t_gs]
                k_stop = t_stop - t_gs
                k_full = k_stop if full_steps < 0 else min(k_stop, g_cells - 1 + full_steps)
                n = 0
                for k in range(t_g - t_gs, k_full + 1):
                    t = t_gs + k
                    p = t if forward else n_p - 1 - t
                    # distance along the direction from the group's first step: the cell centre projected on it
                    x = (k + (off[g_cells + t] - off_s) * slope) * proj
                    ks[n] = k
                    xs[n] = x
                    zc[n] = near[line + off[g_cells + t] - near_q0, p - near_p0] - x * x * inv_2r
                    queried[n] = t <= t_g1
                    best[n] = -np.inf
                    n += 1
                level = 1
                level_until = g_cells - 1 + 2 * full_steps  # the last step read from level 1
                k = k_full + 1
                while k <= k_stop:
                    while k > level_until and level < n_levels - 1:
                        level += 1
                        level_until = g_cells - 1 + (level_until - g_cells + 1) * 2
                    t = t_gs + k
                    p = t if forward else n_p - 1 - t
                    p_abs = p + p_abs0
                    block = p_abs >> level
                    # the steps from k on in this block of the DEM's columns
                    k_block = k + ((((block + 1) << level) - 1 - p_abs) if forward else (p_abs - (block << level)))
                    k_end = min(k_block, k_stop)
                    q_a = (line + off[g_cells + t] + q_abs0) >> level
                    q_b = (line + off[g_cells + t_gs + k_end] + q_abs0) >> level
                    z = np.nan
                    for qb in range(min(q_a, q_b), max(q_a, q_b) + 1):
                        v = pyramid[level_start[level] + (qb - level_q0[level]) * level_cols[level]
                                    + block - level_p0[level]]
                        if v > z or z != z:
                            z = v
                    k_mid = (k + k_end) // 2
                    x = (k_mid + (off[g_cells + t_gs + k_mid] - off_s) * slope) * proj
                    ks[n] = k_block  # seen only by the origins that reach its last step
                    xs[n] = x
                    zc[n] = z - x * x * inv_2r
                    queried[n] = False
                    best[n] = -np.inf
                    n += 1
                    k = k_end + 1
                line_far_horizon(ks[:n], xs[:n], zc[:n], queried[:n], first, last, best[:n], hx, hz)
                for i in range(t_g1 - t_g + 1):
                    if best[i] == -np.inf:
                        continue
                    t = t_g + i
                    p = t if forward else n_p - 1 - t
                    r = line + off[g_cells + t] - row0
                    c = p - col0
                    v = best[i] + 2.0 * inv_2r * xs[i]  # + x_t / R
                    if v > out_tan[r, c]:  # False where the origin is NaN
                        out_tan[r, c] = v
                t_g = t_g1 + 1
