"""Tiled terrain as file-level stages a Makeflow rule can call, and an in-process driver.

Each per-tile stage reads only its tile's window of the source DEM (with a 1-cell ring
where outlets or Horn slopes need it), its own earlier outputs, and small edge files of
its eight neighbours; each exchange reads only the tiles' small perimeter/graph files
(never the DEM or a tile raster). Layout under ``workdir``::

    terrain/grid.json                  shape, tile size, transform, CRS             (stage 0)
    terrain/<tile>/fill_state.npz      local fill level, labels (float64, int32)    (tile state)
    terrain/<tile>/fill_graph.npz      perimeter cells, labels and spill graph      (small)
    terrain/<tile>/fill_spill.npz      spill level per label + F of the 1-cell ring (small, exchange 1)
    terrain/<tile>/flat_graph.npz      crossing cells of flats and their distances  (small)
    terrain/<tile>/flat_k.npz          flat distance of the crossing cells          (small, exchange 2)
    terrain/<tile>/filled_m.tif        filled elevation (float64 GeoTIFF)
    terrain/<tile>/filled_edge.npz     2-cell-deep strips of the filled elevation   (small)
    terrain/<tile>/flow_graph.npz      perimeter accumulation summary               (small)
    terrain/<tile>/flow_in.npz         accumulation of the ring cells draining in   (small, exchange 3)
    terrain/<tile>/{specific_catchment_area_m,wetness_index,slope_deg,aspect_grass_deg,northness}.tif
    terrain/<tile>/wetness_sum.npz     (Σλ, count)                                  (small)
    terrain/wetness_mean.npz           domain mean of λ                             (reduction)
    terrain/<tile>/alpha.tif

Rasters are float64 GeoTIFFs on the tile core's transform, NaN = nodata (float64 so the
filled elevation keeps its ULP raises bit for bit). :func:`stage_list` gives every
rule's inputs, outputs and declared memory; :func:`run_tiled_terrain` runs that list in
order in one process.

Memory: a per-tile stage peaks at :data:`STAGE_BASE_BYTES` plus at most
:data:`TILE_STAGE_BYTES_PER_CELL` bytes per cell of the tile padded by 2 cells (measured
in tests/terrain/test_terrain_tiled.py); an exchange at :data:`STAGE_BASE_BYTES` plus
:data:`EXCHANGE_BYTES_PER_PERIMETER_CELL` per perimeter cell of all tiles.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from eemt_flow.model.constants import TAN_BETA_MIN
from eemt_flow.model.water import wetness_index

# Declared peak memory of a per-tile stage [bytes per cell of the padded tile]: an upper
# bound of the measured rise of the peak RSS on a 1500 × 1500 tile (fill_local 48,
# flat_local 41, flat_finish 69, flow_local 58, flow_finish 72, alpha 25 B/cell), with
# room for flats whose crossing cells hold many pair distances.
TILE_STAGE_BYTES_PER_CELL = 120
# Fixed overhead of a stage process (Python, numpy, numba, rasterio; 233 MiB measured) [bytes].
STAGE_BASE_BYTES = 300 * 2**20
# Exchanges: per perimeter cell of all tiles [bytes]: positions, values, labels, CSR edges
# both ways, heap, and the transfer entries. Measured (peak RSS rise less the kernels'
# load, 2000² DEM in 500-cell tiles, 31,936 perimeter cells): fill ≈ 600, flats ≈ 170,
# flow ≈ 190 with 0.8 transfer entries per perimeter cell and ≈ 1,400 over a 1000² lake
# (15 entries per perimeter cell: flow spreads over the ULP-raised lake).
EXCHANGE_BYTES_PER_PERIMETER_CELL = 2000

# Declared disk of a task [bytes]: float64 rasters and tile state at their uncompressed
# size per cell of every tile raster it reads or writes, the small files per perimeter
# cell, plus a margin; the source DEM is not counted (it is read by windows).
RASTER_BYTES_PER_CELL = 8
FILL_STATE_BYTES_PER_CELL = 12  # float64 level + int32 label
SMALL_FILE_BYTES_PER_PERIMETER_CELL = 200
DISK_MARGIN_BYTES = 16 * 2**20
WETNESS_SUM_FILE_BYTES = 1024  # (Σλ, count) in a compressed .npz: 0.5 kB measured
#: Tile rasters and state files are compressed losslessly: their bytes cross the Work Queue
#: manager twice (out of one task, into the next). Deflate with GDAL's floating-point predictor
#: (TIFF predictor 3, which works on float64 too) for the rasters, zip deflate for the .npz files
#: (bit for bit the same arrays; on the 10 m test DEM in 250-cell tiles the .npz files
#: went from 0.67 to 0.15 MB and the rasters from 2.17 to 2.11 MB).
TILE_RASTER_PREDICTOR = 3

#: Members per side of an exchange group, widest first: the fill and flow exchanges contract each
#: group of up to g × g tiles (then of groups) to its edge, so a task holds at most g² members'
#: perimeters. The automatic size is the widest whose largest group task declares at most
#: EXCHANGE_TASK_MEMORY_TARGET_BYTES (fewer levels and tasks); a DEM of up to 8 × 8 tiles has
#: one group, the one exchange of all tiles.
EXCHANGE_GROUP_CHOICES = (8, 4, 2)
#: The memory a fill or flow group task may declare when the size is automatic [bytes]: 2,000 MB,
#: issue 25's bound on every task of a 4 × 10^10-cell job.
EXCHANGE_TASK_MEMORY_TARGET_BYTES = 2000 * 2**20

#: The DEM cells a per-tile terrain task works through, at least [cells]: tiles smaller than this
#: run in blocks of b x b tiles a process (:func:`terrain_block_tiles`), one tile after the other,
#: so that a process's start-up (Python, numpy, numba, rasterio: 1.04 s measured) is a small share
#: of its time (0.9 us a cell and stage measured: 14 s on these cells, so 7 %; benchmarks/scale.py
#: terrain-processes). Memory is one tile's: the tiles do not overlap in time.
TERRAIN_BLOCK_TARGET_CELLS = 16_000_000

TERRAIN_DIR = "terrain"


def _kernels():
    """The numba kernels of the stages (:mod:`eemt_flow.terrain.tiled`), imported when a stage runs:
    the planner and the reducer's tasks use this module's grid and rules, and numba's import is
    0.2 s of every such process."""
    from eemt_flow.terrain import tiled

    return tiled
MIN_TILE_SIZE_CELLS = 2  # the 2-cell ring of a tile must come from its direct neighbours


@dataclass(frozen=True)
class TerrainTile:
    """One tile of the terrain grid: core window in DEM cells and its position in the grid."""

    ti: int
    tj: int
    row: int
    col: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"r{self.ti:04d}c{self.tj:04d}"

    @property
    def window(self) -> Window:
        return Window(self.col, self.row, self.width, self.height)

    @property
    def cells(self) -> int:
        return self.height * self.width


@dataclass(frozen=True)
class TerrainGrid:
    """The tiles of a DEM of ``shape`` cut into ``tile_size_cells`` squares (smaller at the edges)."""

    shape: tuple[int, int]
    tile_size_cells: int
    tiles: list[TerrainTile] = field(repr=False)
    transform: Affine | None = None  # of the whole DEM
    crs_wkt: str | None = None
    group_tiles: int = 2  # members per side of an exchange group (terrain_grid resolves the automatic size)

    @property
    def cell_size_m(self) -> tuple[float, float]:
        """(east-west, north-south) cell size [m]."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def n_rows(self) -> int:
        return math.ceil(self.shape[0] / self.tile_size_cells)

    @property
    def n_cols(self) -> int:
        return math.ceil(self.shape[1] / self.tile_size_cells)

    def tile(self, ti: int, tj: int) -> TerrainTile | None:
        if 0 <= ti < self.n_rows and 0 <= tj < self.n_cols:
            return self.tiles[ti * self.n_cols + tj]
        return None

    def neighbours(self, t: TerrainTile) -> list[TerrainTile]:
        out = []
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                n = self.tile(t.ti + di, t.tj + dj)
                if (di or dj) and n is not None:
                    out.append(n)
        return out

    def blocks(self, block_tiles: int) -> list[tuple[TerrainTile, ...]]:
        """The tiles in blocks of up to ``block_tiles`` × ``block_tiles`` (row-major, each block's
        tiles row-major): what one per-tile task runs."""
        b = int(block_tiles)
        return [tuple(self.tiles[ti * self.n_cols + tj] for ti in range(bi, min(bi + b, self.n_rows))
                      for tj in range(bj, min(bj + b, self.n_cols)))
                for bi in range(0, self.n_rows, b) for bj in range(0, self.n_cols, b)]


def terrain_block_tiles(tile_size_cells: int) -> int:
    """Tiles per side of a per-tile terrain task's block: as many as make TERRAIN_BLOCK_TARGET_CELLS
    (8 for tiles of 500 cells, 2 for 2,000, 1 for 4,000 or more)."""
    return max(1, math.isqrt(TERRAIN_BLOCK_TARGET_CELLS // (int(tile_size_cells) ** 2)))


def block_span(tiles) -> tuple[int, int, int, int]:
    """(first row, last row + 1, first column, last column + 1) of a block's tiles in the grid."""
    return (min(t.ti for t in tiles), max(t.ti for t in tiles) + 1, min(t.tj for t in tiles),
            max(t.tj for t in tiles) + 1)


def terrain_grid(shape, tile_size_cells: int, transform: Affine | None = None, crs_wkt: str | None = None,
                 group_tiles: int | None = None) -> TerrainGrid:
    """Cut a DEM of ``shape`` (rows, cols) into tiles of ``tile_size_cells`` (≥ 2), exchanged in
    groups of ``group_tiles`` × ``group_tiles`` members (≥ 2; None: :func:`automatic_group_tiles`)."""
    size = int(tile_size_cells)
    if size < MIN_TILE_SIZE_CELLS:
        raise ValueError(f"tile size must be at least {MIN_TILE_SIZE_CELLS} cells, got {tile_size_cells}")
    group = int(group_tiles) if group_tiles else automatic_group_tiles(shape, size)
    if group < 2:
        raise ValueError(f"an exchange group must be at least 2 members wide, got {group_tiles}")
    rows, cols = int(shape[0]), int(shape[1])
    tiles = []
    for ti, r in enumerate(range(0, rows, size)):
        for tj, c in enumerate(range(0, cols, size)):
            tiles.append(TerrainTile(ti, tj, r, c, min(size, rows - r), min(size, cols - c)))
    return TerrainGrid((rows, cols), size, tiles, transform, crs_wkt, group)


@dataclass(frozen=True)
class ExchangeGroup:
    """A block of up to ``group_tiles`` × ``group_tiles`` tiles (level 1) or groups of the level below.

    The fill and flow exchanges contract a group's graph to its edge
    (:func:`tiled.contract_fill`, :func:`tiled.contract_flow`) level by level up to one top
    group, solve there, and hand the answers back down, so no task holds more than one
    group's members' perimeters.
    """

    level: int
    gi: int
    gj: int
    row: int
    col: int
    height: int
    width: int
    members: tuple = field(repr=False)

    @property
    def name(self) -> str:
        return f"L{self.level}_r{self.gi:04d}c{self.gj:04d}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.row, self.col, self.height, self.width

    def edge_cells(self, dem_shape) -> int:
        """Cells on the sides that face other groups (:func:`tiled.group_edge`): what its graphs keep."""
        nr, nc = dem_shape
        sides = (self.width * ((self.row > 0) + (self.row + self.height < nr))
                 + self.height * ((self.col > 0) + (self.col + self.width < nc)))
        return int(sides)

    def member_perimeter_cells(self, dem_shape) -> int:
        """The perimeter cells its members' graphs hold: a tile's whole perimeter, a group's edge."""
        return sum(m.edge_cells(dem_shape) if isinstance(m, ExchangeGroup) else 2 * (m.height + m.width)
                   for m in self.members)


def group_task_memory_bytes(group: ExchangeGroup, dem_shape) -> int:
    """Declared memory of a fill or flow task of ``group`` (up, top or down) [bytes]."""
    return STAGE_BASE_BYTES + EXCHANGE_BYTES_PER_PERIMETER_CELL * group.member_perimeter_cells(dem_shape)


def automatic_group_tiles(shape, tile_size_cells: int) -> int:
    """The widest of :data:`EXCHANGE_GROUP_CHOICES` whose group tasks all declare at most
    :data:`EXCHANGE_TASK_MEMORY_TARGET_BYTES` (the narrowest when none does)."""
    for g in EXCHANGE_GROUP_CHOICES:
        grid = terrain_grid(shape, tile_size_cells, group_tiles=g)
        if all(group_task_memory_bytes(grp, grid.shape) <= EXCHANGE_TASK_MEMORY_TARGET_BYTES
               for level in exchange_levels(grid) for grp in level):
            return g
    return EXCHANGE_GROUP_CHOICES[-1]


def exchange_levels(grid: TerrainGrid) -> list[list[ExchangeGroup]]:
    """The exchange groups, level 1 (groups of tiles) first; the last level is one group (the top)."""
    g = grid.group_tiles
    units = [[grid.tile(i, j) for j in range(grid.n_cols)] for i in range(grid.n_rows)]
    levels: list[list[ExchangeGroup]] = []
    while True:
        level = len(levels) + 1
        nr, nc = math.ceil(len(units) / g), math.ceil(len(units[0]) / g)
        groups = []
        for gi in range(nr):
            row = []
            for gj in range(nc):
                members = tuple(u for block in units[gi * g:(gi + 1) * g] for u in block[gj * g:(gj + 1) * g])
                r0, c0 = members[0].row, members[0].col
                r1 = max(m.row + m.height for m in members)
                c1 = max(m.col + m.width for m in members)
                row.append(ExchangeGroup(level, gi, gj, r0, c0, r1 - r0, c1 - c0, members))
            groups.append(row)
        levels.append([grp for row in groups for grp in row])
        if nr == 1 and nc == 1:
            return levels
        units = groups


GRID_FILE = "grid.json"
EXCHANGE_DIR = "exchange"


def _read_grid(workdir) -> TerrainGrid:
    spec = json.loads((Path(workdir) / TERRAIN_DIR / GRID_FILE).read_text())
    return terrain_grid(spec["shape"], spec["tile_size_cells"], Affine(*spec["transform"]), spec["crs_wkt"],
                        spec.get("group_tiles"))


def _group(grid: TerrainGrid, level: int, gi: int, gj: int) -> ExchangeGroup:
    return next(g for g in exchange_levels(grid)[level - 1] if (g.gi, g.gj) == (gi, gj))


def _member_dir(member) -> str:
    """A tile's or an exchange group's directory, relative to the work directory."""
    if isinstance(member, ExchangeGroup):
        return f"{TERRAIN_DIR}/{EXCHANGE_DIR}/{member.name}"
    return f"{TERRAIN_DIR}/{member.name}"


def _tile_dir(workdir, t: TerrainTile) -> Path:
    return Path(workdir) / TERRAIN_DIR / t.name


# ---------------------------------------------------------------------------
# I/O helpers
# ---------------------------------------------------------------------------
def read_dem_window(src, row: int, col: int, height: int, width: int) -> np.ndarray:
    """Elevations [m] of a window that may reach beyond the DEM (NaN there and on nodata).

    Values go through float32 as in :func:`eemt_flow.dem.raster.read_dem`, so the tiles see the
    same numbers as a whole-DEM read.
    """
    out = np.full((height, width), np.nan)
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, src.height), min(col + width, src.width)
    if r1 > r0 and c1 > c0:
        band = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True).astype("float64")
        part = band.filled(np.nan).astype("float32").astype("float64")
        part[~np.isfinite(part)] = np.nan
        out[r0 - row:r1 - row, c0 - col:c1 - col] = part
    return out


def _write_tile_raster(path: Path, array: np.ndarray, grid: TerrainGrid, t: TerrainTile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=t.width, height=t.height, count=1, dtype="float64", crs=grid.crs_wkt,
                   transform=window_transform(t.window, grid.transform), nodata=float("nan"), compress="deflate",
                   predictor=TILE_RASTER_PREDICTOR)
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.asarray(array, dtype=np.float64)[np.newaxis])
    tmp.replace(path)


def _read_tile_raster(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1).astype(np.float64)


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _load(path: Path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _global(t: TerrainTile, flat_index: np.ndarray, depth: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Global (row, col) of flat indices into the tile core (depth 0) or its padded array."""
    w = t.width + 2 * depth
    idx = np.asarray(flat_index, dtype=np.int64)
    return t.row - depth + idx // w, t.col - depth + idx % w


def _ring_positions(t: TerrainTile, depth: int) -> tuple[np.ndarray, np.ndarray]:
    pr, pc = np.nonzero(_kernels().ring_mask(t.height, t.width, depth))
    return t.row - depth + pr, t.col - depth + pc


def _place(pad: np.ndarray, pad_row: int, pad_col: int, block: np.ndarray, row: int, col: int) -> None:
    """Copy the overlap of ``block`` (global origin row, col) into ``pad`` (global origin pad_row, pad_col)."""
    r0, c0 = max(pad_row, row), max(pad_col, col)
    r1 = min(pad_row + pad.shape[0], row + block.shape[0])
    c1 = min(pad_col + pad.shape[1], col + block.shape[1])
    if r1 > r0 and c1 > c0:
        pad[r0 - pad_row:r1 - pad_row, c0 - pad_col:c1 - pad_col] = block[r0 - row:r1 - row, c0 - col:c1 - col]


EDGE_DEPTH_CELLS = 2


def _filled_with_ring(workdir, grid: TerrainGrid, t: TerrainTile) -> np.ndarray:
    """The tile's filled elevation with a 2-cell ring from the neighbours' edge strips."""
    d = EDGE_DEPTH_CELLS
    pad = np.full((t.height + 2 * d, t.width + 2 * d), np.nan)
    for n in grid.neighbours(t):
        strips = _load(_tile_dir(workdir, n) / "filled_edge.npz")
        _place(pad, t.row - d, t.col - d, strips["top"], n.row, n.col)
        _place(pad, t.row - d, t.col - d, strips["bottom"], n.row + n.height - strips["bottom"].shape[0], n.col)
        _place(pad, t.row - d, t.col - d, strips["left"], n.row, n.col)
        _place(pad, t.row - d, t.col - d, strips["right"], n.row, n.col + n.width - strips["right"].shape[1])
    pad[d:d + t.height, d:d + t.width] = _read_tile_raster(_tile_dir(workdir, t) / "filled_m.tif")
    return pad


# ---------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------
def stage_grid(dem_path, tile_size_cells: int, workdir, group_tiles: int | None = None) -> None:
    """Stage 0: the tile grid (shape, tile size, transform, CRS, exchange group size) from the DEM
    header; writes terrain/grid.json.

    The planner may write the same file itself; every later stage reads the grid from it.
    """
    with rasterio.open(dem_path) as src:
        write_grid(workdir, (src.height, src.width), tile_size_cells, src.transform,
                   src.crs.to_wkt() if src.crs else None, group_tiles)


def write_grid(workdir, shape, tile_size_cells: int, transform: Affine, crs_wkt: str | None,
               group_tiles: int | None = None) -> None:
    """Write terrain/grid.json (what stage 0 writes; the planner writes it for a job's grid)."""
    grid = terrain_grid(shape, tile_size_cells, transform, crs_wkt, group_tiles)
    path = Path(workdir) / TERRAIN_DIR / GRID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(shape=list(grid.shape), tile_size_cells=grid.tile_size_cells,
                                    transform=list(grid.transform)[:6], crs_wkt=grid.crs_wkt,
                                    group_tiles=grid.group_tiles)))


def _dem_pad(dem_path, grid: TerrainGrid, t: TerrainTile) -> np.ndarray:
    """The tile's elevations with a 1-cell ring, NaN beyond the DEM and on nodata.

    ``dem_path``: the whole DEM, or any GeoTIFF of a window of it on the same grid (a tile's
    cut with its halo of at least one cell: the ring is in it or beyond the DEM); None for
    a tile with no valid cell (not cut): all NaN.
    """
    if dem_path is None:
        return np.full((t.height + 2, t.width + 2), np.nan)
    with rasterio.open(dem_path) as src:
        row_off = round((src.transform.f - grid.transform.f) / grid.transform.e)
        col_off = round((src.transform.c - grid.transform.c) / grid.transform.a)
        return read_dem_window(src, t.row - 1 - row_off, t.col - 1 - col_off, t.height + 2, t.width + 2)


def stage_fill_local(dem_path, ti: int, tj: int, workdir) -> None:
    """Tile stage 1: local Priority-Flood with labels; writes fill_state.npz and fill_graph.npz."""
    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    res = _kernels().fill_local(_dem_pad(dem_path, grid, t))
    out = _tile_dir(workdir, t)
    _save_npz(out / "fill_state.npz", level=res["level"], label=res["label"])
    rows, cols = _global(t, res["perim_index"])
    _save_npz(out / "fill_graph.npz", perim_row=rows, perim_col=cols, perim_dem=res["perim_dem"],
              perim_label=res["perim_label"], edge_a=res["edge_a"], edge_b=res["edge_b"],
              edge_level=res["edge_level"], n_labels=np.int64(res["n_labels"]))


def _load_fill_graph(workdir, member) -> dict:
    g = _load(Path(workdir) / _member_dir(member) / "fill_graph.npz")
    g["n_labels"] = int(g["n_labels"])
    return g


def _write_fill_spills(workdir, members, parts, solved) -> None:
    """Each member's spill levels; a tile's also its perimeter's final level, which its neighbours'
    flat stages read as their 1-cell ring."""
    for m, g, s in zip(members, parts, solved):
        out = Path(workdir) / _member_dir(m) / "fill_spill.npz"
        if isinstance(m, ExchangeGroup):
            _save_npz(out, spill=s["spill"])
        else:
            _save_npz(out, spill=s["spill"], perim_row=g["perim_row"], perim_col=g["perim_col"],
                      perim_level=s["perim_level"])


def stage_fill_up(level: int, gi: int, gj: int, workdir) -> None:
    """Exchange 1, upwards: a group's members' fill graphs contracted to its edge; writes the group's fill_graph.npz."""
    grid = _read_grid(workdir)
    group = _group(grid, level, gi, gj)
    parts = [_load_fill_graph(workdir, m) for m in group.members]
    _save_npz(Path(workdir) / _member_dir(group) / "fill_graph.npz", **_kernels().contract_fill(parts, grid.shape, group.box))


def stage_fill_exchange(workdir) -> None:
    """Exchange 1, the top group: spill levels of all its members' labels; writes their fill_spill.npz."""
    grid = _read_grid(workdir)
    top = exchange_levels(grid)[-1][0]
    parts = [_load_fill_graph(workdir, m) for m in top.members]
    _write_fill_spills(workdir, top.members, parts, _kernels().solve_fill(parts, grid.shape))


def stage_fill_down(level: int, gi: int, gj: int, workdir) -> None:
    """Exchange 1, downwards: a group's members' spill levels from the group's own (its edge's,
    solved above); writes the members' fill_spill.npz."""
    grid = _read_grid(workdir)
    group = _group(grid, level, gi, gj)
    parts = [_load_fill_graph(workdir, m) for m in group.members]
    own = _load(Path(workdir) / _member_dir(group) / "fill_graph.npz")
    spill = _load(Path(workdir) / _member_dir(group) / "fill_spill.npz")["spill"]
    known = (own["terminal_part"], own["terminal_label"], spill[_kernels().FIRST_PERIMETER_LABEL:])
    _write_fill_spills(workdir, group.members, parts, _kernels().solve_fill(parts, grid.shape, known))


def _final_level(workdir, grid: TerrainGrid, t: TerrainTile):
    """The tile's final fill level F and F of its 1-cell ring (its neighbours' perimeters)."""
    state = _load(_tile_dir(workdir, t) / "fill_state.npz")
    spill = _load(_tile_dir(workdir, t) / "fill_spill.npz")
    rows, cols, level = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]
    for n in grid.neighbours(t):
        ns = _load(_tile_dir(workdir, n) / "fill_spill.npz")
        rows.append(ns["perim_row"])
        cols.append(ns["perim_col"])
        level.append(ns["perim_level"])
    rr, rc = _ring_positions(t, 1)
    ring = _kernels().lookup_cells(np.concatenate(rows), np.concatenate(cols), np.concatenate(level), rr, rc, grid.shape)
    return _kernels().fill_finish(state["level"], state["label"], spill["spill"]), ring


def stage_flat_local(ti: int, tj: int, workdir) -> None:
    """Tile stage 2: drains and crossing flats; writes flat_graph.npz."""
    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    level, ring = _final_level(workdir, grid, t)
    res = _kernels().flat_local(level, ring)
    rows, cols = _global(t, res["cross_index"])
    _save_npz(_tile_dir(workdir, t) / "flat_graph.npz", cross_index=res["cross_index"], cross_row=rows,
              cross_col=cols, cross_level=res["cross_level"], cross_drain_distance=res["cross_drain_distance"],
              pair_a=res["pair_a"], pair_b=res["pair_b"], pair_distance=res["pair_distance"],
              open_flat=np.bool_(res["open_flat"]))


def stage_flat_exchange(workdir) -> None:
    """Exchange 2: flat distances of the crossing cells; writes every tile's flat_k.npz."""
    grid = _read_grid(workdir)
    graphs = [_load(_tile_dir(workdir, t) / "flat_graph.npz") for t in grid.tiles]
    for t, k in zip(grid.tiles, _kernels().solve_flats(graphs, grid.shape)):
        _save_npz(_tile_dir(workdir, t) / "flat_k.npz", cross_k=k)


def stage_flat_finish(ti: int, tj: int, workdir) -> None:
    """Tile stage 3: the filled elevation; writes filled_m.tif and filled_edge.npz."""
    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    out = _tile_dir(workdir, t)
    level, ring = _final_level(workdir, grid, t)
    cross = _load(out / "flat_graph.npz")["cross_index"]
    z = _kernels().flat_finish(level, ring, cross, _load(out / "flat_k.npz")["cross_k"])
    d = EDGE_DEPTH_CELLS
    _save_npz(out / "filled_edge.npz", top=z[:d], bottom=z[-d:], left=z[:, :d], right=z[:, -d:])
    _write_tile_raster(out / "filled_m.tif", z, grid, t)


def stage_flow_local(ti: int, tj: int, workdir) -> None:
    """Tile stage 4: D-infinity perimeter summary; writes flow_graph.npz."""
    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    z_pad = _filled_with_ring(workdir, grid, t)
    from eemt_flow.terrain.fill import check_drains

    check_drains(None, z_pad[1:-1, 1:-1])
    res = _kernels().flow_local(z_pad, grid.cell_size_m)
    prow, pcol = _global(t, res["perim_index"])
    srow, scol = _global(t, res["source_pad_index"], EDGE_DEPTH_CELLS)
    _save_npz(_tile_dir(workdir, t) / "flow_graph.npz", perim_row=prow, perim_col=pcol, perim_z=res["perim_z"],
              perim_acc0=res["perim_acc0"], source_row=srow, source_col=scol, m_perim=res["m_perim"],
              m_source=res["m_source"], m_value=res["m_value"])


def _write_flow_in(workdir, members, accs) -> None:
    for m, acc in zip(members, accs):
        _save_npz(Path(workdir) / _member_dir(m) / "flow_in.npz", source_acc=acc)


def stage_flow_up(level: int, gi: int, gj: int, workdir) -> None:
    """Exchange 3, upwards: a group's members' flow graphs contracted to its edge; writes the group's flow_graph.npz."""
    grid = _read_grid(workdir)
    group = _group(grid, level, gi, gj)
    parts = [_load(Path(workdir) / _member_dir(m) / "flow_graph.npz") for m in group.members]
    _save_npz(Path(workdir) / _member_dir(group) / "flow_graph.npz", **_kernels().contract_flow(parts, grid.shape, group.box))


def stage_flow_exchange(workdir) -> None:
    """Exchange 3, the top group: accumulation of its members' perimeter cells; writes their flow_in.npz."""
    grid = _read_grid(workdir)
    top = exchange_levels(grid)[-1][0]
    parts = [_load(Path(workdir) / _member_dir(m) / "flow_graph.npz") for m in top.members]
    _write_flow_in(workdir, top.members, _kernels().solve_flow(parts, grid.shape))


def stage_flow_down(level: int, gi: int, gj: int, workdir) -> None:
    """Exchange 3, downwards: the members' sources' accumulation from the group's outside sources'
    (solved above); writes the members' flow_in.npz."""
    grid = _read_grid(workdir)
    group = _group(grid, level, gi, gj)
    parts = [_load(Path(workdir) / _member_dir(m) / "flow_graph.npz") for m in group.members]
    own = _load(Path(workdir) / _member_dir(group) / "flow_graph.npz")
    acc = _load(Path(workdir) / _member_dir(group) / "flow_in.npz")["source_acc"]
    _write_flow_in(workdir, group.members, _kernels().solve_flow(parts, grid.shape, (own["source_row"], own["source_col"], acc)))


def stage_flow_finish(dem_path, ti: int, tj: int, workdir, tan_beta_min: float = TAN_BETA_MIN) -> None:
    """Tile stage 5: a, λ, slope, aspect, northness; writes their GeoTIFFs and wetness_sum.npz."""
    from eemt_flow.terrain.slope import northness, slope_aspect

    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    out = _tile_dir(workdir, t)
    cell = grid.cell_size_m
    sca = _kernels().flow_finish(_filled_with_ring(workdir, grid, t), cell, _load(out / "flow_in.npz")["source_acc"])
    dem_pad = _dem_pad(dem_path, grid, t)
    slope_pad, aspect_pad = slope_aspect(dem_pad, cell)
    del dem_pad
    slope, aspect = slope_pad[1:-1, 1:-1], aspect_pad[1:-1, 1:-1]
    lam = wetness_index(sca, np.deg2rad(slope), tan_beta_min)
    valid = ~np.isnan(lam)
    _save_npz(out / "wetness_sum.npz", total=np.float64(lam[valid].sum()), count=np.int64(valid.sum()))
    for name, arr in (("specific_catchment_area_m", sca), ("wetness_index", lam), ("slope_deg", slope),
                      ("aspect_grass_deg", aspect), ("northness", northness(aspect, slope))):
        _write_tile_raster(out / f"{name}.tif", arr, grid, t)


def stage_wetness_mean(workdir) -> None:
    """Reduction: the domain mean of λ from the tiles' (Σλ, count); writes terrain/wetness_mean.npz."""
    grid = _read_grid(workdir)
    sums = [_load(_tile_dir(workdir, t) / "wetness_sum.npz") for t in grid.tiles]
    count = int(sum(int(s["count"]) for s in sums))
    if count == 0:
        raise ValueError("tiled terrain: the DEM has no valid cell; cannot compute the mean wetness index")
    mean = math.fsum(float(s["total"]) for s in sums) / count
    if not mean > 0.0:
        raise ValueError(f"tiled terrain: the domain mean of the wetness index is {mean:.4g} ≤ 0; α is undefined")
    _save_npz(Path(workdir) / TERRAIN_DIR / "wetness_mean.npz", mean=np.float64(mean), count=np.int64(count))


def stage_alpha(ti: int, tj: int, workdir) -> None:
    """Tile stage 6: α = max(λ / mean λ, 0); writes alpha.tif."""
    grid = _read_grid(workdir)
    t = grid.tile(ti, tj)
    out = _tile_dir(workdir, t)
    lam = _read_tile_raster(out / "wetness_index.tif")
    mean = float(_load(Path(workdir) / TERRAIN_DIR / "wetness_mean.npz")["mean"])
    _write_tile_raster(out / "alpha.tif", np.where(np.isnan(lam), np.nan, np.maximum(lam / mean, 0.0)), grid, t)


# ---------------------------------------------------------------------------
# The stage list and the driver
# ---------------------------------------------------------------------------
TILE_OUTPUT_RASTERS = ("filled_m", "specific_catchment_area_m", "wetness_index", "alpha", "slope_deg",
                       "aspect_grass_deg", "northness")


@dataclass(frozen=True)
class StageRule:
    """One task: a stage function applied to a block of tiles, one after the other (or to an
    exchange group, or to all tiles, for an exchange)."""

    stage: str
    tiles: tuple  # of TerrainTile: a per-tile stage's block; () for the grid and the exchanges
    inputs: tuple[str, ...]  # paths relative to workdir; "DEM" is the source DEM
    outputs: tuple[str, ...]
    memory_bytes: int
    tile_size_cells: int
    disk_bytes: int = 0
    group: ExchangeGroup | None = None  # an exchange group's task (fill_up, fill_down)
    group_tiles: int | None = None  # the grid stage writes it into grid.json

    @property
    def reads_dem(self) -> bool:
        return "DEM" in self.inputs

    def call(self, dem_path, workdir, tan_beta_min=TAN_BETA_MIN) -> None:
        """Run this rule in-process (what its Makeflow command runs)."""
        fn = STAGE_FUNCTIONS[self.stage]
        for tile in self.tiles or (None,):
            args = [dem_path] if self.reads_dem else []
            if self.stage == "grid":
                args.append(self.tile_size_cells)
            if tile is not None:
                args += [tile.ti, tile.tj]
            if self.group is not None:
                args += [self.group.level, self.group.gi, self.group.gj]
            args.append(workdir)
            if self.stage == "grid":
                args.append(self.group_tiles)
            if self.stage == "flow_finish":
                args.append(tan_beta_min)
            fn(*args)


STAGE_FUNCTIONS = {
    "grid": stage_grid,
    "fill_local": stage_fill_local,
    "fill_up": stage_fill_up,
    "fill_exchange": stage_fill_exchange,
    "fill_down": stage_fill_down,
    "flat_local": stage_flat_local,
    "flat_exchange": stage_flat_exchange,
    "flat_finish": stage_flat_finish,
    "flow_local": stage_flow_local,
    "flow_up": stage_flow_up,
    "flow_exchange": stage_flow_exchange,
    "flow_down": stage_flow_down,
    "flow_finish": stage_flow_finish,
    "wetness_mean": stage_wetness_mean,
    "alpha": stage_alpha,
}


def _tile_stage_memory(t: TerrainTile) -> int:
    return STAGE_BASE_BYTES + TILE_STAGE_BYTES_PER_CELL * (t.height + 4) * (t.width + 4)


def stage_list(dem_shape, tile_size_cells: int, group_tiles: int | None = None,
               block_tiles: int | None = None) -> list[StageRule]:
    """Every terrain task in a valid execution order, with its files and declared memory.

    A per-tile stage runs a block of ``block_tiles`` × ``block_tiles`` tiles a task (None:
    :func:`terrain_block_tiles`), one tile after the other: it reads and writes its tiles' files
    and declares one tile's memory and its tiles' disk.

    Order: grid → fill_local (each tile) → fill_up (each exchange group below the top,
    level by level upwards) → fill_exchange (the top group) → fill_down (each group, level
    by level downwards) → flat_local (each; reads its 8 neighbours' fill_spill.npz) →
    flat_exchange → flat_finish (each) → flow_local (each; reads its 8 neighbours'
    filled_edge.npz) → flow_up, flow_exchange, flow_down (as the fill's) → flow_finish
    (each; the same edge files) →
    wetness_mean → alpha (each). Inputs are paths relative to the work directory; "DEM"
    stands for the source DEM, read by windows (grid reads only its header). A rule's
    command is its stage function with the arguments :meth:`StageRule.call` passes.

    The fill and flow exchanges' group tasks declare memory from the perimeter cells their
    members' graphs hold, the flat exchange from the total perimeter of all tiles
    (:data:`EXCHANGE_BYTES_PER_PERIMETER_CELL`); it covers up to about 20 flow transfer
    entries per perimeter cell (measured: 0.8 on relief, 15 across a 1000² flat lake).
    """
    grid = terrain_grid(dem_shape, tile_size_cells, group_tiles=group_tiles)
    levels = exchange_levels(grid)
    size = grid.tile_size_cells
    d = lambda t: f"{TERRAIN_DIR}/{t.name}"  # noqa: E731
    grid_file = f"{TERRAIN_DIR}/{GRID_FILE}"
    perimeter = sum(2 * (t.height + t.width) for t in grid.tiles)
    ex_mem = STAGE_BASE_BYTES + EXCHANGE_BYTES_PER_PERIMETER_CELL * perimeter
    all_of = lambda name: tuple(f"{d(t)}/{name}" for t in grid.tiles)  # noqa: E731
    grid_json_bytes = 2**16  # shape, tile size, transform and the CRS as WKT
    blocks = grid.blocks(block_tiles or terrain_block_tiles(size))
    rules: list[StageRule] = [StageRule("grid", (), ("DEM",), (grid_file,), STAGE_BASE_BYTES, size,
                                        DISK_MARGIN_BYTES + grid_json_bytes, group_tiles=grid.group_tiles)]

    def disk(files, cells, perimeter_cells):
        tifs = sum(f.endswith(".tif") for f in files)
        states = sum(f.endswith("fill_state.npz") for f in files)
        small = len(files) - tifs - states
        return (DISK_MARGIN_BYTES + (RASTER_BYTES_PER_CELL * tifs + FILL_STATE_BYTES_PER_CELL * states) * cells
                + SMALL_FILE_BYTES_PER_PERIMETER_CELL * perimeter_cells * max(small, 1))

    def per_tile(stage, inputs, outputs):
        for block in blocks:
            tile_inputs = [inputs(t) for t in block]
            ins = tuple(dict.fromkeys([grid_file, *(i for files in tile_inputs for i in files)]))  # each file once
            outs = tuple(f"{d(t)}/{o}" for t in block for o in outputs)
            # one tile in memory at a time; on disk every tile's files (as each alone would, less the margins)
            tiles_disk = sum(disk((grid_file, *files, *(f"{d(t)}/{o}" for o in outputs)), t.cells,
                                  2 * (t.height + t.width + 4)) - DISK_MARGIN_BYTES
                             for t, files in zip(block, tile_inputs))
            rules.append(StageRule(stage, block, ins, outs, max(_tile_stage_memory(t) for t in block), size,
                                   DISK_MARGIN_BYTES + tiles_disk))

    def exchange(stage, inputs, outputs, memory=ex_mem):
        ins, outs = (grid_file, *inputs), tuple(outputs)
        rules.append(StageRule(stage, (), ins, outs, memory, size, disk(("x", "y"), 0, perimeter)))

    def group_task(stage, group, inputs, outputs, sized_by):
        """A fill or flow task of ``group`` (None: the top), sized by the group whose members it holds."""
        ins, outs = (grid_file, *inputs), tuple(outputs)
        rules.append(StageRule(stage, (), ins, outs, group_task_memory_bytes(sized_by, grid.shape), size,
                               disk(("x", "y"), 0, sized_by.member_perimeter_cells(grid.shape)), group=group))

    def members_of(group, name):
        return [f"{_member_dir(m)}/{name}" for m in group.members]

    def grouped_exchange(kind, graph, solved):
        """Up the group levels (contract), the top group (solve), down again (expand)."""
        for level in levels[:-1]:
            for g in level:
                group_task(f"{kind}_up", g, members_of(g, graph), [f"{_member_dir(g)}/{graph}"], g)
        top = levels[-1][0]
        group_task(f"{kind}_exchange", None, members_of(top, graph), members_of(top, solved), top)
        for level in reversed(levels[:-1]):
            for g in level:
                own_files = [f"{_member_dir(g)}/{graph}", f"{_member_dir(g)}/{solved}"]
                group_task(f"{kind}_down", g, members_of(g, graph) + own_files, members_of(g, solved), g)

    def own(t, *names):
        return [f"{d(t)}/{n}" for n in names]

    def neighbour_edges(t):
        return [f"{d(n)}/filled_edge.npz" for n in grid.neighbours(t)]

    def neighbour_spills(t):
        return [f"{d(n)}/fill_spill.npz" for n in grid.neighbours(t)]

    per_tile("fill_local", lambda t: ["DEM"], ["fill_state.npz", "fill_graph.npz"])
    grouped_exchange("fill", "fill_graph.npz", "fill_spill.npz")
    per_tile("flat_local", lambda t: own(t, "fill_state.npz", "fill_spill.npz") + neighbour_spills(t),
             ["flat_graph.npz"])
    exchange("flat_exchange", all_of("flat_graph.npz"), all_of("flat_k.npz"))
    per_tile("flat_finish", lambda t: own(t, "fill_state.npz", "fill_spill.npz", "flat_graph.npz", "flat_k.npz")
             + neighbour_spills(t), ["filled_m.tif", "filled_edge.npz"])
    per_tile("flow_local", lambda t: own(t, "filled_m.tif") + neighbour_edges(t), ["flow_graph.npz"])
    grouped_exchange("flow", "flow_graph.npz", "flow_in.npz")
    per_tile("flow_finish", lambda t: ["DEM"] + own(t, "filled_m.tif", "flow_in.npz") + neighbour_edges(t),
             ["specific_catchment_area_m.tif", "wetness_index.tif", "slope_deg.tif", "aspect_grass_deg.tif",
              "northness.tif", "wetness_sum.npz"])
    rules.append(StageRule("wetness_mean", (), (grid_file, *all_of("wetness_sum.npz")),
                           (f"{TERRAIN_DIR}/wetness_mean.npz",), STAGE_BASE_BYTES, size,
                           DISK_MARGIN_BYTES + WETNESS_SUM_FILE_BYTES * (len(grid.tiles) + 1)))
    per_tile("alpha", lambda t: own(t, "wetness_index.tif") + [f"{TERRAIN_DIR}/wetness_mean.npz"], ["alpha.tif"])
    return rules


def run_tiled_terrain(dem_path, tile_size_cells: int, workdir, tan_beta_min: float = TAN_BETA_MIN,
                      group_tiles: int | None = None, block_tiles: int | None = None) -> TerrainGrid:
    """Run every terrain stage of ``dem_path`` in Makeflow order in this process.

    Parameters
    ----------
    dem_path : path
        Source DEM (GeoTIFF) on a projected metric grid.
    tile_size_cells : int
        Tile edge [cells], ≥ 2.
    workdir : path
        Where ``terrain/<tile>/…`` is written.
    tan_beta_min : float
        Flat-cell guard of tan β in the wetness index [-].
    group_tiles : int, optional
        Members per side of an exchange group (default :func:`automatic_group_tiles`).
    block_tiles : int, optional
        Tiles per side of a per-tile stage's block (default :func:`terrain_block_tiles`).

    Returns
    -------
    TerrainGrid
        The tiles; each tile's outputs are ``workdir/terrain/<tile>/<layer>.tif`` for the
        layers in :data:`TILE_OUTPUT_RASTERS`.
    """
    with rasterio.open(dem_path) as src:
        shape = (src.height, src.width)
    for rule in stage_list(shape, tile_size_cells, group_tiles, block_tiles):
        rule.call(dem_path, workdir, tan_beta_min)
    return _read_grid(workdir)


def read_mosaic(workdir, grid: TerrainGrid, layer: str) -> np.ndarray:
    """The whole-DEM array of one tiled layer (holds the whole DEM: for tests and small DEMs)."""
    out = np.full(grid.shape, np.nan)
    for t in grid.tiles:
        out[t.row:t.row + t.height, t.col:t.col + t.width] = _read_tile_raster(_tile_dir(workdir, t) / f"{layer}.tif")
    return out
