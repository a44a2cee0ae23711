"""Horizon angles of a tile, computed once and reused for every sun position.

Terrain is sampled as GRASS 8.2.1 ``r.horizon`` samples it; see :func:`horizon_angles`.
"""

from __future__ import annotations

import math

import numpy as np

from eemt_flow.solar import far_field, horizon_kernels
from eemt_flow.solar.far_field import HaloTerrain
from eemt_flow.solar.threads import set_numba_threads

#: Earth radius used for the curvature drop of distant terrain [m] (r.horizon).
EARTH_RADIUS_M = 6371000.0
#: Default number of horizon azimuths: 1 degree, r.horizon ``step=1`` as in the reference.
DEFAULT_N_AZIMUTHS = 360
#: Ways to compute horizons: the cheaper of the two (default), Dozier's hull method, the
#: stencil sweep (the reference), see :func:`horizon_angles`.
HORIZON_METHODS = ("auto", "hull", "sweep")
#: Near field of the hull method [cells]: within it the rays are sampled exactly as the
#: sweep samples them; beyond it, along digital lines. 64 keeps > 99.7 % of the angles
#: within 0.5 degree of the sweep on the test DEMs (32: > 99.4 %).
NEAR_FIELD_CELLS = 64
#: Full-resolution far field of the hull method [cells]: along a line every cell up to this
#: many steps past the tile core; beyond, max-pyramid blocks of 2, 4, 8, ... cells a side
#: (one doubling per doubling of the distance), so a block spans at most 2 / 128 of its
#: distance (see :func:`eemt_flow.solar.horizon_kernels.hull_kernel`).
FAR_FIELD_CELLS = 128
#: Longest search distance [cells] for which "auto" takes the sweep: below about 600 cells
#: its vectorised loop beats the hull method on AVX2 (benchmarks/horizons.py).
SWEEP_MAX_CELLS = 600
#: Directions computed at a time when the horizons are stored as bytes.
AZIMUTH_CHUNK = 16


def resolved_method(method: str, max_distance_m: float, cell_size_m: float) -> str:
    """The method that runs: "auto" is the sweep up to ``SWEEP_MAX_CELLS`` cells of search distance, the hull beyond."""
    if method != "auto":
        return method
    return "sweep" if max_distance_m <= SWEEP_MAX_CELLS * cell_size_m else "hull"


def grid_direction(azimuth_rad, geographic_axes):
    """Unit step (rows, columns) of the grid towards a geographic azimuth.

    Parameters
    ----------
    azimuth_rad : float, geographic azimuth, counter-clockwise from east [rad]
    geographic_axes : array (2, 2), grid (x = columns, y = up the rows) components of a
        step towards geographic east ([0]) and north ([1]), see
        :func:`eemt_flow.solar.geography.cell_geography`

    Returns
    -------
    (d_row, d_col) : floats, components of a unit step [cells] (rows grow southwards);
        components below 1e-7 are set to 0 so that cardinal directions stay exact
    """
    axes = np.asarray(geographic_axes, dtype=np.float64)
    gx = math.cos(azimuth_rad) * axes[0, 0] + math.sin(azimuth_rad) * axes[1, 0]
    gy = math.cos(azimuth_rad) * axes[0, 1] + math.sin(azimuth_rad) * axes[1, 1]
    norm = math.hypot(gx, gy)
    dc, dr = gx / norm, -gy / norm  # rows grow southwards
    dc = 0.0 if abs(dc) < 1e-7 else dc
    dr = 0.0 if abs(dr) < 1e-7 else dr
    return dr, dc


def geographic_azimuth_rad(grid_azimuth_rad, geographic_axes):
    """Geographic azimuth of a grid direction: the inverse of :func:`grid_direction`.

    Parameters
    ----------
    grid_azimuth_rad : float or array, direction counter-clockwise from grid east (the
        columns' axis) [rad], e.g. a GRASS aspect from :func:`eemt_flow.terrain.slope.slope_aspect`
    geographic_axes : array (2, 2) or None, as for :func:`grid_direction`; None = grid
        north is true north

    Returns
    -------
    float or array, the same direction as a geographic azimuth counter-clockwise from east
    [rad], in (-pi, pi]
    """
    a = np.asarray(grid_azimuth_rad, dtype=np.float64)
    if geographic_axes is None:
        return np.arctan2(np.sin(a), np.cos(a))
    # grid_direction: (gx, gy) = axes.T @ (cos phi, sin phi); solve for (cos phi, sin phi)
    inverse = np.linalg.inv(np.asarray(geographic_axes, dtype=np.float64).T)
    gx, gy = np.cos(a), np.sin(a)
    return np.arctan2(inverse[1, 0] * gx + inverse[1, 1] * gy, inverse[0, 0] * gx + inverse[0, 1] * gy)


def ray_stencil(azimuth_rad, geographic_axes, cell_size_m, max_distance_m):
    """Cells r.horizon samples along one direction, as offsets from the origin cell.

    r.horizon steps one cell length along the ray and takes the cell whose centre is
    nearest to the point (each cell once).  From an integer origin the offsets are the
    same for every cell: ``(floor(j dr + 1/2), floor(j dc + 1/2))`` for j = 1, 2, ...

    Parameters
    ----------
    azimuth_rad : float, geographic azimuth, counter-clockwise from east [rad]
    geographic_axes : array (2, 2), grid (x = columns, y = up the rows) components of a
        step towards geographic east ([0]) and north ([1]), see :func:`cell_geography`
    cell_size_m : float, cell side [m]
    max_distance_m : float, search distance [m]

    Returns
    -------
    d_row : int64 array, row offsets (positive = south)
    d_col : int64 array, column offsets (positive = east)
    distance_m : float64 array, centre-to-centre distances [m]; all but the last are
        < max_distance_m, the last is the first cell at or beyond it (r.horizon's rule)
    """
    dr, dc = grid_direction(azimuth_rad, geographic_axes)
    j = np.arange(1, int(max_distance_m / cell_size_m + 0.7072) + 3, dtype=np.float64)
    d_row = np.floor(j * dr + 0.5).astype(np.int64)
    d_col = np.floor(j * dc + 0.5).astype(np.int64)
    new = np.ones(j.size, dtype=bool)
    new[1:] = (d_row[1:] != d_row[:-1]) | (d_col[1:] != d_col[:-1])
    d_row, d_col = d_row[new], d_col[new]
    distance = cell_size_m * np.hypot(d_row, d_col)
    # as r.horizon: the ray ends with (and includes) the first cell at or beyond max_distance_m
    beyond = np.flatnonzero(distance >= max_distance_m)
    n_keep = beyond[0] + 1 if beyond.size else distance.size
    return d_row[:n_keep], d_col[:n_keep], distance[:n_keep]


def horizon_angles(dem_m, cell_size_m, n_azimuths=DEFAULT_N_AZIMUTHS, max_distance_m=2000.0,
                   geographic_axes=None, n_threads=None, window=None, method="auto", resolution_rad=None,
                   near_field_cells=NEAR_FIELD_CELLS, far_field_cells=FAR_FIELD_CELLS, origin=(0, 0)):
    """Horizon elevation angles of every cell (or of a window) for ``n_azimuths`` equally spaced directions.

    Direction ``k`` has geographic azimuth ``k * 360 / n_azimuths`` degrees
    counter-clockwise from east (k = 0 east, n/4 north, n/2 west, 3n/4 south): the
    convention and order of ``r.horizon``'s ``hor_000 ... hor_359`` maps, so that
    r.sun's linear interpolation between neighbouring directions applies unchanged.

    Terrain is sampled as GRASS 8.2.1 r.horizon samples it (measured to agree to
    float32 precision on the Jemez DEM away from the west and south edges): along the
    ray, every ``cell_size_m``, the cell whose centre is nearest, with its exact
    centre-to-centre distance ``d``; the angle is
    ``atan(max((z - z0) / d - d / (2 R)))`` with the Earth-curvature drop, over the
    cells inside the grid up to and including the first with ``d >= max_distance_m``
    (r.horizon's stopping rule), clamped at 0 (r.sun mishandles
    the negative angles r.horizon 8.2 writes).  The grid direction of a geographic
    azimuth comes from ``geographic_axes`` (meridian convergence and r.horizon's
    ellipsoid factor), one value for the tile.  NaN cells on a ray are skipped and the
    ray goes on (a nodata hole never ends a shadow); a NaN cell itself gets NaN.

    Differences from r.horizon, by design: the ray ends at the grid edge (r.horizon's
    C truncation also samples the first column/row when the ray is up to 1.5 cells
    past the west or south edge), and the direction is the tile's, not each cell's.

    Two methods. ``"sweep"`` follows every ray to the search distance: the reference,
    exactly as above, whose cost grows with the distance. ``"hull"`` samples the first
    ``near_field_cells`` cells of each ray the same way and everything beyond along
    digital lines, where the upper convex hull of the terrain ahead gives each cell its
    horizon at a cost per cell that does not grow with the distance, the halo ahead being
    read once per direction (Dozier 2022; see
    :func:`eemt_flow.solar.horizon_kernels.line_far_horizon`). On the test DEMs it is
    within 0.5 degree of the sweep for > 99.7 % of cell-azimuths. ``"auto"`` (default)
    takes the sweep up to ``SWEEP_MAX_CELLS`` cells of search distance, where its
    vectorised loop is cheaper, and the hull beyond (``docs/performance.md``).

    Parameters
    ----------
    dem_m : array (rows, cols), elevation [m], row 0 = north, NaN = nodata; or, for the
        hull method, a tile's halo in the reduced form the hull reads
        (:class:`~eemt_flow.solar.far_field.HaloTerrain`: full resolution around the window,
        a max pyramid beyond), which gives the same angles as the whole array
    cell_size_m : float, side of the square cells [m]
    n_azimuths : int, number of directions (360 = r.horizon ``step=1``)
    max_distance_m : float, search distance [m] (the tile halo)
    geographic_axes : array (2, 2) or None, grid components of unit steps towards
        geographic east and north (:func:`cell_geography`); None = grid north is true north
    n_threads : int or None, numba threads (None = all numba may use)
    window : (row, col, height, width) or None, the cells whose horizons are wanted, in
        cells of ``dem_m`` (a tile's core inside its halo); rays still sample all of
        ``dem_m``. None = every cell.
    method : "auto", "hull" or "sweep", see above
    near_field_cells : int, the hull method's near field [cells] (the sweep up to there)
    far_field_cells : int or None, the hull method takes every cell of a line up to this
        many steps past the cell's group of ``far_field.ORIGIN_GROUP_CELLS`` columns (rows),
        and coarser terrain beyond (max-pyramid blocks whose side doubles with each doubling
        of the distance); None = every cell
    origin : (row, col), the DEM's cell that is ``dem_m``'s cell (0, 0) (a tile's window in
        the DEM; ignored for a reduced halo, which knows its own). The hull's lines, groups
        and blocks are fixed on the DEM's grid, so a cell gets the same horizons from any
        window of the DEM that holds its search distance.
    resolution_rad : float or None, store the angles as bytes of this resolution, as
        r.sun keeps them (:data:`eemt_flow.solar.fast.R_SUN_HORIZON_RESOLUTION_RAD`):
        ``round(angle / resolution_rad)`` clipped to [0, 255], NaN -> 0. The directions
        are then computed ``AZIMUTH_CHUNK`` at a time, so the peak memory is one byte
        per cell and direction plus a float32 chunk. None = float32 angles.

    Returns
    -------
    array (n_azimuths, height, width) of the window (rows, cols without one): float32
    horizon elevation angle [rad], >= 0, NaN where ``dem_m`` is NaN; or, with
    ``resolution_rad``, uint8 angles in units of ``resolution_rad``

    References
    ----------
    GRASS 8.2 r.horizon manual; Dozier, J., Frew, J. (1990). Rapid calculation of
    terrain parameters for radiation modeling from digital elevation data. IEEE TGRS
    28, 963-969 (horizons computed once, reused for every sun position). Dozier, J.
    (2022). Revisiting topographic horizons in the era of big data and parallel
    computing. IEEE GRSL 19, 8024605 (the convex-hull method).

    References
    ----------
    """
    reduced = dem_m if isinstance(dem_m, HaloTerrain) else None
    dem = reduced.near if reduced else np.ascontiguousarray(dem_m, dtype=np.float32)  # r.horizon reads FCELL too
    if dem.ndim != 2:
        raise ValueError("dem_m must be 2-D")
    shape = reduced.shape if reduced else dem.shape
    n_az = int(n_azimuths)
    if not cell_size_m > 0 or not max_distance_m > 0 or n_az < 4:
        raise ValueError("cell_size_m and max_distance_m must be > 0 and n_azimuths >= 4")
    axes = np.eye(2) if geographic_axes is None else np.asarray(geographic_axes, dtype=np.float64)
    if axes.shape != (2, 2):
        raise ValueError("geographic_axes must be a 2 x 2 array")
    row0, col0, height, width_w = (0, 0) + shape if window is None else (int(v) for v in window)
    if not (0 <= row0 and 0 <= col0 and height > 0 and width_w > 0 and row0 + height <= shape[0]
            and col0 + width_w <= shape[1]):
        raise ValueError(f"window {window} is not inside the {shape[0]} x {shape[1]} grid")
    if method not in HORIZON_METHODS:
        raise ValueError(f"method must be one of {', '.join(HORIZON_METHODS)}, got {method!r}")
    set_numba_threads(n_threads)
    cell = float(cell_size_m)
    max_d = float(max_distance_m)
    method = resolved_method(method, max_d, cell)
    # the sweep follows the rays to the search distance, the hull method only its near field
    if int(near_field_cells) < 1:
        raise ValueError("near_field_cells must be >= 1")
    near_m = max_d if method == "sweep" else min(max_d, int(near_field_cells) * cell)
    if far_field_cells is not None and int(far_field_cells) < 1:
        raise ValueError("far_field_cells must be >= 1 or None")
    if reduced is None:
        full_steps = -1 if far_field_cells is None or near_m >= max_d else int(far_field_cells)
        n_levels = 1 if full_steps < 0 else far_field.pyramid_levels(max_d / cell, full_steps)
        origin = (int(origin[0]), int(origin[1]))
        reduced = HaloTerrain(dem, 0, 0, shape, far_field.MaxPyramid.of(dem, n_levels, origin), full_steps, origin)
    elif method != "hull" or reduced.far_field_cells != far_field_cells:
        raise ValueError(f"the reduced halo is for the hull method with far_field_cells={reduced.far_field_cells}, "
                         f"not method={method!r}, far_field_cells={far_field_cells}")
    elif not reduced.covers(row0, col0, height, width_w,
                            far_field.near_margin_cells(reduced.far_field_cells, int(near_field_cells)) - 1):
        raise ValueError("the reduced halo's full-resolution part does not reach far enough around the window")
    # the hull reads directions nearer the rows from the transposed grid: transposed once
    transposed = None
    if near_m < max_d:
        transposed = HaloTerrain(horizon_kernels.transpose(reduced.near), reduced.near_col0, reduced.near_row0,
                                 shape[::-1], reduced.pyramid.transposed(), reduced.far_field_cells,
                                 reduced.origin[::-1])
    grids = (reduced, transposed)
    if resolution_rad is None:
        out = np.empty((n_az, height, width_w), dtype=np.float32)
        _horizons_tan(grids, axes, cell, near_m, max_d, row0, col0, n_az, 0, out)
        horizon_kernels.atan_inplace(out)
        return out
    out = np.empty((n_az, height, width_w), dtype=np.uint8)
    chunk = np.empty((min(AZIMUTH_CHUNK, n_az), height, width_w), dtype=np.float32)
    for k0 in range(0, n_az, AZIMUTH_CHUNK):
        k1 = min(k0 + AZIMUTH_CHUNK, n_az)
        part = chunk[:k1 - k0]
        _horizons_tan(grids, axes, cell, near_m, max_d, row0, col0, n_az, k0, part)
        horizon_kernels.atan_inplace(part)
        horizon_kernels.quantize(part, float(resolution_rad), out[k0:k1])
    return out


def _horizons_tan(grids, axes, cell_m, near_m, max_distance_m, row0, col0, n_azimuths, k0, out_tan):
    """tan of the horizons of directions k0, k0 + 1, ... (as many as ``out_tan`` holds) of ``n_azimuths``.

    ``grids``: the terrain (:class:`~eemt_flow.solar.far_field.HaloTerrain`) and, for the
    hull's directions nearer the rows, the same transposed (None for the sweep alone).
    """
    terrain, transposed = grids
    azimuths_rad = 2.0 * math.pi * (k0 + np.arange(out_tan.shape[0])) / n_azimuths
    _sweep(terrain.near, axes, cell_m, near_m, azimuths_rad, row0 - terrain.near_row0, col0 - terrain.near_col0,
           out_tan)
    if near_m < max_distance_m:
        for k, azimuth in enumerate(azimuths_rad):
            d_row, d_col = grid_direction(azimuth, axes)
            if abs(d_col) >= abs(d_row):
                _hull_far_field(terrain, d_col, d_row, cell_m, near_m, max_distance_m, row0, col0, out_tan[k])
            else:  # lines along the rows: the same kernel on the transposed grid, reading it contiguously
                _hull_far_field(transposed, d_row, d_col, cell_m, near_m, max_distance_m, col0, row0, out_tan[k].T)


def _sweep(dem, axes, cell_m, max_distance_m, azimuths_rad, row0, col0, out_tan):
    """tan of the horizons towards ``azimuths_rad`` by the stencil sweep (every sample of every ray), clamped at 0."""
    n_az = out_tan.shape[0]
    stencils = [ray_stencil(azimuth, axes, cell_m, max_distance_m) for azimuth in azimuths_rad]
    width = max(1, max(st[0].size for st in stencils))
    offsets_row = np.zeros((n_az, width), dtype=np.int64)
    offsets_col = np.zeros((n_az, width), dtype=np.int64)
    inv_distance = np.zeros((n_az, width), dtype=np.float32)
    curvature_tan = np.zeros((n_az, width), dtype=np.float32)
    n_offsets = np.zeros(n_az, dtype=np.int64)
    for k, (d_row, d_col, dist) in enumerate(stencils):
        n = d_row.size
        n_offsets[k] = n
        offsets_row[k, :n] = d_row
        offsets_col[k, :n] = d_col
        inv_distance[k, :n] = 1.0 / dist
        curvature_tan[k, :n] = dist / (2.0 * EARTH_RADIUS_M)
    horizon_kernels.sweep_kernel(dem, row0, col0, offsets_row, offsets_col, inv_distance, curvature_tan,
                                 n_offsets, out_tan)


def _hull_far_field(terrain, d_col, d_row, cell_m, near_m, max_distance_m, row0, col0, out_tan):
    """Raise tan of one azimuth's horizons (``out_tan``, the window's) to what lies beyond ``near_m``.

    Dozier's method: the grid is cut into digital lines along the direction (one column per
    step, ``|d_row| <= |d_col|``), and along each line the upper convex hull of the terrain
    ahead gives every cell its steepest view; beyond ``terrain.far_field_cells`` past a
    cell's group the lines read its max pyramid. Lines, groups and blocks are the DEM's
    (``terrain.origin``), whatever window of it ``terrain`` is.
    """
    slope = d_row / abs(d_col)  # rows per column step, |slope| <= 1
    step_m = cell_m * math.hypot(1.0, slope)
    first = max(1, int(near_m / step_m))
    last = int(math.ceil(max_distance_m / step_m))  # the first step at or beyond the search distance
    n_q, n_p = terrain.shape
    q_abs0, p_abs0 = terrain.origin
    group = far_field.ORIGIN_GROUP_CELLS
    # rows after t steps, as the DEM's line through the DEM's column u (forward: u = p_abs0 + t;
    # backward the steps run from the last column, u = -(p_abs0 + n_p - 1 - t)), for
    # t = -group ... n_p + group - 1 (a group's first step may lie before the grid)
    t = np.arange(-group, n_p + group, dtype=np.int64)
    u = (p_abs0 + t) if d_col > 0 else (t - (p_abs0 + n_p - 1))
    off = np.floor(u * slope + 0.5).astype(np.int64)
    p = terrain.pyramid
    horizon_kernels.hull_kernel(terrain.near, terrain.near_row0, terrain.near_col0, n_q, n_p, p.values, p.start, p.cols,
                                p.row0, p.col0, d_col > 0, off, group, slope, cell_m, first, last,
                                terrain.far_field_cells, 1.0 / (2.0 * EARTH_RADIUS_M), row0, col0, int(q_abs0),
                                int(p_abs0), out_tan)
