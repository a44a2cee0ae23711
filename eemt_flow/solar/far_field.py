"""A tile's halo as the hull method reads it: full resolution near the core, a max pyramid beyond.

The hull method (:func:`eemt_flow.solar.horizon.horizon_angles`) takes the cells of a line
in groups of ``ORIGIN_GROUP_CELLS`` columns (or rows) fixed on the DEM's own grid, not on
the tile. For the cells of one group it reads every cell of the line up to
``far_field_cells`` past the group's last cell; beyond, it reads level L of the max pyramid
(the highest cell of each 2^L x 2^L block, blocks fixed on the DEM's grid too) up to
``far_field_cells`` x 2^L cells past it. So the terrain a cell sees at a distance depends on
the cell's place in the DEM and on the DEM, never on where its tile ends: a tiled run gives
the horizons of an untiled one.

A tile therefore needs its terrain at full resolution only in a ring of about
``ORIGIN_GROUP_CELLS + far_field_cells`` around the core, and of each pyramid level only the
blocks within that level's reach: a few megabytes whatever the halo, where the whole halo
window of a 500 x 500 core with a 3.7 km halo at 1 m is 7,852^2 cells (246 MB of float32).
:class:`HaloTerrain` holds that reduced form; the cut task writes it and the solar-fast task
reads it, and the horizons computed from it equal, bit for bit, those computed from the
whole window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eemt_flow.solar import horizon_kernels

#: Cells of a line that share one far field [cells]: the groups start at multiples of this
#: many columns (rows, for directions nearer the rows) of the DEM, wherever a tile starts.
#: A cell sees every cell of its line up to between far_field_cells and this many more
#: past itself; larger groups cost fewer hull passes per line and more points per pass.
ORIGIN_GROUP_CELLS = 256


def pyramid_levels(max_distance_cells: float, far_field_cells: int) -> int:
    """Levels (counting level 0, the grid itself) the hull reads for a search distance [cells].

    Level L serves the distances far_field_cells x 2^(L-1) ... far_field_cells x 2^L past
    a group's last cell; one level more than the search distance needs, so the top level is
    never used beyond its reach.
    """
    return 2 + max(0, math.ceil(math.log2(max(1.0, max_distance_cells / far_field_cells))))


def near_margin_cells(far_field_cells: int, near_field_cells: int) -> int:
    """Cells kept at full resolution around the core: the hull's near field and its far field's
    full reach past the last group that holds a core cell, and a cell more than either reads."""
    return max(ORIGIN_GROUP_CELLS + far_field_cells, near_field_cells) + 2


@dataclass(frozen=True)
class MaxPyramid:
    """Levels 1 ... n_levels - 1 of the max pyramid of a grid, each whole or clipped to a box of blocks.

    Blocks are fixed on the DEM's grid: block (b, c) of level L covers the DEM's rows
    b 2^L ... (b + 1) 2^L - 1 and columns c 2^L ... (c + 1) 2^L - 1, whichever part of the
    DEM the grid is (a tile's window: the blocks at its edges hold only the window's cells).
    ``values`` holds the levels one after the other (float32, C order); level L starts at
    ``start[L]``, holds ``rows[L]`` x ``cols[L]`` blocks, the first of which is block
    (``row0[L]``, ``col0[L]``) of the DEM. Entry 0 of each array stands for the grid itself
    and is not used.
    """

    values: np.ndarray
    start: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    row0: np.ndarray
    col0: np.ndarray

    @property
    def n_levels(self) -> int:
        return int(self.start.size)

    @classmethod
    def of(cls, grid: np.ndarray, n_levels: int, origin: tuple[int, int] = (0, 0)) -> "MaxPyramid":
        """The pyramid of ``grid``, whose cell (0, 0) is the DEM's cell ``origin`` (row, col)."""
        top = 2 ** (n_levels - 1)
        pad_r, pad_c = int(origin[0]) % top, int(origin[1]) % top  # cells of the first blocks before the grid
        values, start, cols = horizon_kernels.max_pyramid(grid, n_levels, pad_r, pad_c)
        rows = np.zeros(n_levels, dtype=np.int64)
        rows[0] = grid.shape[0] + pad_r
        row0, col0 = np.zeros(n_levels, dtype=np.int64), np.zeros(n_levels, dtype=np.int64)
        for lv in range(1, n_levels):
            rows[lv] = (rows[lv - 1] + 1) // 2
            row0[lv], col0[lv] = (int(origin[0]) - pad_r) >> lv, (int(origin[1]) - pad_c) >> lv
        return cls(values, start, rows, cols, row0, col0)

    @classmethod
    def from_levels(cls, levels: list[np.ndarray], row0, col0) -> "MaxPyramid":
        """From the arrays of levels 1, 2, ... and their first blocks' rows and columns (level 0: 0)."""
        n_levels = len(levels) + 1
        start, rows, cols = (np.zeros(n_levels, dtype=np.int64) for _ in range(3))
        total = 0
        for lv, level in enumerate(levels, start=1):
            start[lv], (rows[lv], cols[lv]) = total, level.shape
            total += level.size
        values = np.concatenate([np.ravel(level) for level in levels] or [np.zeros(1)]).astype(np.float32)
        return cls(values, start, rows, cols, np.asarray(row0, dtype=np.int64), np.asarray(col0, dtype=np.int64))

    def level(self, lv: int) -> np.ndarray:
        """Level ``lv`` (>= 1) as it is held: (rows[lv], cols[lv]) blocks from (row0[lv], col0[lv])."""
        begin = self.start[lv]
        return self.values[begin:begin + self.rows[lv] * self.cols[lv]].reshape(self.rows[lv], self.cols[lv])

    def transposed(self) -> "MaxPyramid":
        """The pyramid of the transposed grid (a 2 x 2 maximum does not care about the order)."""
        levels = [np.ascontiguousarray(self.level(lv).T) for lv in range(1, self.n_levels)]
        return MaxPyramid.from_levels(levels, self.col0, self.row0)

    def clipped(self, rows: tuple[int, int], cols: tuple[int, int], reach_cells: int) -> "MaxPyramid":
        """Each level but the top holds only its blocks with cells within ``reach_cells`` x 2^L
        (and a group of origins) of the box.

        ``rows``, ``cols``: [start, stop) of the box in cells of the DEM; the top level is kept
        whole (the hull reads it for whatever lies beyond the others' reach).
        """
        levels, row0, col0 = [], [0], [0]
        for lv in range(1, self.n_levels):
            level = self.level(lv)
            if lv < self.n_levels - 1:
                reach = (reach_cells + 1) * 2 ** lv + ORIGIN_GROUP_CELLS + 1
                b_r0 = max(0, (rows[0] - reach) >> lv) - self.row0[lv]
                b_c0 = max(0, (cols[0] - reach) >> lv) - self.col0[lv]
                b_r1 = ((rows[1] - 1 + reach) >> lv) + 1 - self.row0[lv]
                b_c1 = ((cols[1] - 1 + reach) >> lv) + 1 - self.col0[lv]
                b_r0, b_c0 = max(b_r0, 0), max(b_c0, 0)
                level = level[b_r0:max(b_r0, b_r1), b_c0:max(b_c0, b_c1)]
            else:
                b_r0 = b_c0 = 0
            levels.append(np.ascontiguousarray(level))
            row0.append(self.row0[lv] + b_r0)
            col0.append(self.col0[lv] + b_c0)
        return MaxPyramid.from_levels(levels, row0, col0)


@dataclass(frozen=True)
class HaloTerrain:
    """A tile's halo window as the hull method reads it.

    Attributes
    ----------
    near : float32 array, the window's cells at full resolution around the core [m], NaN nodata
    near_row0, near_col0 : the offset of ``near`` in the window [cells]
    shape : (rows, cols) of the whole window
    pyramid : :class:`MaxPyramid` of the whole window (levels clipped to their reach)
    far_field_cells : the hull's full-resolution reach past a group of origins [cells] the pyramid is for
    origin : the DEM's cell (row, col) that is the window's cell (0, 0)
    """

    near: np.ndarray
    near_row0: int
    near_col0: int
    shape: tuple[int, int]
    pyramid: MaxPyramid
    far_field_cells: int
    origin: tuple[int, int] = (0, 0)

    @classmethod
    def of_window(cls, dem_m: np.ndarray, core: tuple[slice, slice], *, max_distance_cells: float,
                  far_field_cells: int, near_field_cells: int, origin: tuple[int, int] = (0, 0)) -> "HaloTerrain":
        """The reduced form of a whole halo window, for the horizons of its ``core`` (row, col
        slices); ``origin``: the DEM's cell (row, col) that is the window's cell (0, 0)."""
        dem = np.ascontiguousarray(dem_m, dtype=np.float32)
        origin = (int(origin[0]), int(origin[1]))
        pyramid = MaxPyramid.of(dem, pyramid_levels(max_distance_cells, far_field_cells), origin)
        rows, cols = core
        margin = near_margin_cells(far_field_cells, near_field_cells)
        r0, c0 = max(rows.start - margin, 0), max(cols.start - margin, 0)
        near = np.ascontiguousarray(dem[r0:rows.stop + margin, c0:cols.stop + margin])
        box_rows = (rows.start + origin[0], rows.stop + origin[0])
        box_cols = (cols.start + origin[1], cols.stop + origin[1])
        return cls(near, r0, c0, dem.shape, pyramid.clipped(box_rows, box_cols, far_field_cells), far_field_cells,
                   origin)

    def covers(self, row0: int, col0: int, height: int, width: int, margin: int) -> bool:
        """Whether ``near`` holds every cell of the window within ``margin`` cells of the box."""
        return (self.near_row0 <= max(row0 - margin, 0) and self.near_col0 <= max(col0 - margin, 0)
                and self.near_row0 + self.near.shape[0] >= min(row0 + height + margin, self.shape[0])
                and self.near_col0 + self.near.shape[1] >= min(col0 + width + margin, self.shape[1]))

    def save(self, path: Path) -> None:
        """Write to an ``.npz`` file (written under a temporary name, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        p = self.pyramid
        np.savez(tmp, near=self.near, near_origin=np.array([self.near_row0, self.near_col0]),
                 shape=np.array(self.shape), far_field_cells=np.array(self.far_field_cells),
                 origin=np.array(self.origin),
                 values=p.values, start=p.start, rows=p.rows, cols=p.cols, row0=p.row0, col0=p.col0)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "HaloTerrain":
        with np.load(Path(path)) as f:
            pyramid = MaxPyramid(f["values"], f["start"], f["rows"], f["cols"], f["row0"], f["col0"])
            return cls(np.ascontiguousarray(f["near"]), int(f["near_origin"][0]), int(f["near_origin"][1]),
                       tuple(int(v) for v in f["shape"]), pyramid, int(f["far_field_cells"]),
                       tuple(int(v) for v in f["origin"]))
