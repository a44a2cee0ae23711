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
        for lv, (r0, r1, c0, c1) in enumerate(clipped_blocks(self.row0, self.rows, self.col0, self.cols, rows, cols,
                                                             reach_cells), start=1):
            b_r0, b_c0 = r0 - self.row0[lv], c0 - self.col0[lv]
            levels.append(np.ascontiguousarray(self.level(lv)[b_r0:b_r0 + r1 - r0, b_c0:b_c0 + c1 - c0]))
            row0.append(r0)
            col0.append(c0)
        return MaxPyramid.from_levels(levels, row0, col0)


def window_pyramid_geometry(origin: tuple[int, int], shape: tuple[int, int], n_levels: int):
    """(row0, rows, col0, cols) per level of :meth:`MaxPyramid.of` a window of ``shape`` at the DEM's
    cell ``origin``: its levels start at the top level's block that holds the window's first cell."""
    top = 2 ** (n_levels - 1)
    row0, col0 = np.zeros(n_levels, dtype=np.int64), np.zeros(n_levels, dtype=np.int64)
    rows, cols = np.zeros(n_levels, dtype=np.int64), np.zeros(n_levels, dtype=np.int64)
    pad_r, pad_c = int(origin[0]) % top, int(origin[1]) % top
    rows[0], cols[0] = shape[0] + pad_r, shape[1] + pad_c
    for lv in range(1, n_levels):
        rows[lv], cols[lv] = (rows[lv - 1] + 1) // 2, (cols[lv - 1] + 1) // 2
        row0[lv], col0[lv] = (int(origin[0]) - pad_r) >> lv, (int(origin[1]) - pad_c) >> lv
    return row0, rows, col0, cols


def clipped_blocks(row0, rows, col0, cols, box_rows: tuple[int, int], box_cols: tuple[int, int], reach_cells: int):
    """The DEM's blocks [r0, r1) x [c0, c1) of levels 1 ... n_levels - 1 that :meth:`MaxPyramid.clipped`
    keeps of a pyramid held from blocks (row0, col0) on, rows x cols of them a level."""
    n_levels = len(row0)
    out = []
    for lv in range(1, n_levels):
        r0, r1 = int(row0[lv]), int(row0[lv] + rows[lv])
        c0, c1 = int(col0[lv]), int(col0[lv] + cols[lv])
        if lv < n_levels - 1:
            reach = (reach_cells + 1) * 2 ** lv + ORIGIN_GROUP_CELLS + 1
            b_r0, b_c0 = max(r0, max(0, (box_rows[0] - reach) >> lv)), max(c0, max(0, (box_cols[0] - reach) >> lv))
            b_r1 = min(r1, ((box_rows[1] - 1 + reach) >> lv) + 1)
            b_c1 = min(c1, ((box_cols[1] - 1 + reach) >> lv) + 1)
            r0, r1, c0, c1 = b_r0, max(b_r0, b_r1), b_c0, max(b_c0, b_c1)
        out.append((r0, r1, c0, c1))
    return out


#: Rows and columns of the DEM one max-pyramid task reads [cells] (rounded up to a multiple of
#: the top level's block, so that every block of every level lies in one region): 256 MiB of float32.
PYRAMID_REGION_CELLS = 8192
PYRAMID_DIR = "pyramid"


@dataclass(frozen=True)
class PyramidRegions:
    """The DEM's max pyramid, built once for the job by one task a square region of the DEM.

    Region (i, j) holds the DEM's rows i S ... (i + 1) S - 1 and columns j S ... (j + 1) S - 1
    (S = ``region_cells``, a multiple of the top level's block side) and its file holds its
    levels 1 ... n_levels - 1 one after the other (float32, C order, as :meth:`MaxPyramid.of`
    lays them out). A block of a level lies in one region, so a region's levels are the DEM's:
    a cut reads the blocks its tile needs from the regions its halo window meets, not the
    whole window, and builds the same pyramid once per job instead of once per tile.
    """

    shape: tuple[int, int]
    n_levels: int
    region_cells: int

    @classmethod
    def for_dem(cls, shape, max_distance_cells: float, far_field_cells: int,
                region_cells: int = PYRAMID_REGION_CELLS) -> "PyramidRegions":
        n_levels = pyramid_levels(max_distance_cells, far_field_cells)
        top = 2 ** (n_levels - 1)
        return cls((int(shape[0]), int(shape[1])), n_levels, -(-int(region_cells) // top) * top)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "n_levels": self.n_levels, "region_cells": self.region_cells}

    @classmethod
    def from_dict(cls, d: dict) -> "PyramidRegions":
        return cls(tuple(int(v) for v in d["shape"]), int(d["n_levels"]), int(d["region_cells"]))

    @property
    def grid(self) -> tuple[int, int]:
        s = self.region_cells
        return -(-self.shape[0] // s), -(-self.shape[1] // s)

    def regions(self) -> list[tuple[int, int]]:
        n_i, n_j = self.grid
        return [(i, j) for i in range(n_i) for j in range(n_j)]

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) of region (i, j) in the DEM."""
        s = self.region_cells
        return i * s, j * s, min(s, self.shape[0] - i * s), min(s, self.shape[1] - j * s)

    @staticmethod
    def file(i: int, j: int) -> str:
        return f"{PYRAMID_DIR}/region_{i}_{j}.npy"

    def met(self, row0: int, col0: int, height: int, width: int) -> list[tuple[int, int]]:
        """The regions that hold a cell of the box, or of a top-level block that meets it."""
        top, s = 2 ** (self.n_levels - 1), self.region_cells
        r0, c0 = row0 // top * top, col0 // top * top
        r1, c1 = min(row0 + height, self.shape[0]), min(col0 + width, self.shape[1])
        return [(i, j) for i in range(r0 // s, (r1 - 1) // s + 1) for j in range(c0 // s, (c1 - 1) // s + 1)]

    def level_shape(self, i: int, j: int, lv: int) -> tuple[int, int]:
        _, _, h, w = self.window(i, j)
        return -(-h // 2 ** lv), -(-w // 2 ** lv)

    def level_start(self, i: int, j: int, lv: int) -> int:
        return sum(a * b for a, b in (self.level_shape(i, j, k) for k in range(1, lv)))

    def build(self, region_m: np.ndarray, i: int, j: int, path: Path) -> None:
        """Write region (i, j)'s levels from its cells [m] (NaN nodata), under a temporary name."""
        r0, c0, h, w = self.window(i, j)
        if region_m.shape != (h, w):
            raise ValueError(f"region ({i}, {j}) is {h} x {w} cells, not {region_m.shape}")
        pyramid = MaxPyramid.of(np.ascontiguousarray(region_m, dtype=np.float32), self.n_levels, (r0, c0))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npy")
        np.save(tmp, pyramid.values[:self.level_start(i, j, self.n_levels)])
        tmp.replace(path)

    def read_blocks(self, directory: Path, lv: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The DEM's blocks [r0, r1) x [c0, c1) of level ``lv`` (float32), from the regions' files
        in ``directory`` (the work directory, memory-mapped: only the blocks' rows are read)."""
        out = np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32)
        if r1 <= r0 or c1 <= c0:
            return out
        sb = self.region_cells >> lv  # a region's side in blocks of this level
        for i in range(r0 // sb, (r1 - 1) // sb + 1):
            for j in range(c0 // sb, (c1 - 1) // sb + 1):
                values = np.load(Path(directory) / self.file(i, j), mmap_mode="r")
                n_r, n_c = self.level_shape(i, j, lv)
                start = self.level_start(i, j, lv)
                level = values[start:start + n_r * n_c].reshape(n_r, n_c)
                a0, a1 = max(r0, i * sb), min(r1, i * sb + n_r)
                b0, b1 = max(c0, j * sb), min(c1, j * sb + n_c)
                if a1 > a0 and b1 > b0:
                    out[a0 - r0:a1 - r0, b0 - c0:b1 - c0] = level[a0 - i * sb:a1 - i * sb, b0 - j * sb:b1 - j * sb]
                del values
        return out


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

    @classmethod
    def of_regions(cls, near_m: np.ndarray, near_origin: tuple[int, int], regions: PyramidRegions, directory: Path,
                   window: tuple[int, int, int, int], core: tuple[slice, slice], *, far_field_cells: int,
                   near_field_cells: int) -> "HaloTerrain":
        """The reduced form of a halo window (row0, col0, height, width in the DEM) whose pyramid
        levels are read from the DEM's (:class:`PyramidRegions`) instead of built from the whole
        window: ``near_m`` holds the DEM's cells from ``near_origin`` (row, col) on, at least the
        core (row, col slices in the window) and :func:`near_margin_cells` around it within the
        window. Its blocks at the window's edge hold the DEM's cells beyond the window too, as the
        untiled DEM's do."""
        row0, col0, height, width = (int(v) for v in window)
        rows, cols = core
        margin = near_margin_cells(far_field_cells, near_field_cells)
        r0, c0 = max(rows.start - margin, 0), max(cols.start - margin, 0)
        r1, c1 = min(rows.stop + margin, height), min(cols.stop + margin, width)
        a0, b0 = row0 + r0 - int(near_origin[0]), col0 + c0 - int(near_origin[1])
        if a0 < 0 or b0 < 0 or a0 + r1 - r0 > near_m.shape[0] or b0 + c1 - c0 > near_m.shape[1]:
            raise ValueError("of_regions: near_m does not hold the core and its margin")
        near = np.ascontiguousarray(near_m[a0:a0 + r1 - r0, b0:b0 + c1 - c0], dtype=np.float32)
        geometry = window_pyramid_geometry((row0, col0), (height, width), regions.n_levels)
        box_rows, box_cols = (rows.start + row0, rows.stop + row0), (cols.start + col0, cols.stop + col0)
        levels, lrow0, lcol0 = [], [0], [0]
        for lv, (b_r0, b_r1, b_c0, b_c1) in enumerate(clipped_blocks(*geometry, box_rows, box_cols, far_field_cells),
                                                      start=1):
            levels.append(regions.read_blocks(directory, lv, b_r0, b_r1, b_c0, b_c1))
            lrow0.append(b_r0)
            lcol0.append(b_c0)
        return cls(near, r0, c0, (height, width), MaxPyramid.from_levels(levels, lrow0, lcol0), far_field_cells,
                   (row0, col0))

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
