"""One streaming pass over a DEM: what the planner needs to know of its cells.

The planner never holds the whole DEM: it reads it in blocks of whole tiles (at most
:data:`SCAN_BLOCK_CELLS` cells at a time) and keeps only running figures — the lowest and
highest elevation (the relief sets the automatic halo), whether any 3 x 3 block of valid
cells exists (slope needs one), which tile cores hold a valid cell, and the latitude range
of the valid cells (the fast engine's sun reference). Its memory grows with the number of
tiles, not the number of cells.

DEMs above :data:`SCAN_EXACT_MAX_CELLS` cells (a state-wide VRT) are scanned from a
decimated read instead (GDAL uses the overviews when the files have them): the relief is
then a lower bound and every tile is kept, and ``job.json`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio import Affine
from rasterio.windows import Window

from eemt_flow.dem.geography import cell_latitudes_deg, geographic_axes
from eemt_flow.dem.raster import DemGrid, has_full_window
from eemt_flow.errors import UserError

#: Largest block read at once by the scan [cells] (4 MiB of float32).
SCAN_BLOCK_CELLS = 1_000_000
#: Largest DEM scanned cell by cell [cells]; above it the scan reads a decimated DEM.
SCAN_EXACT_MAX_CELLS = 2_000_000_000
#: Cells of the decimated read of a DEM above SCAN_EXACT_MAX_CELLS.
SCAN_DECIMATED_CELLS = 4_000_000


@dataclass
class DemScan:
    """What one pass over a DEM found.

    Attributes
    ----------
    min_m, max_m : lowest and highest valid elevation [m]
    valid_cells : number of valid cells (of the decimated read when not ``exact``)
    has_3x3 : whether some cell has all 8 neighbours valid
    tile_valid : bool array (tile rows, tile columns): whether each tile core holds a valid cell
    lat_deg : (mean, lowest, highest) latitude of the valid cells [degrees north]
    geographic_axes : (2, 2) grid components of geographic east and north at the DEM's centre
    exact : False when read decimated (relief a lower bound, every tile kept)
    """

    min_m: float
    max_m: float
    valid_cells: int
    has_3x3: bool
    tile_valid: np.ndarray
    lat_deg: tuple[float, float, float]
    geographic_axes: np.ndarray
    exact: bool

    @property
    def relief_m(self) -> float:
        return self.max_m - self.min_m

    @property
    def source(self) -> str:
        return "every cell" if self.exact else f"a decimated read of about {SCAN_DECIMATED_CELLS:,} cells"


def scan_dem(grid: DemGrid, tile_size_cells: int) -> DemScan:
    """Scan ``grid`` block by block (see the module's docstring); one-line errors for a DEM
    with no valid cell or no 3 x 3 block of valid cells."""
    if grid.cells > SCAN_EXACT_MAX_CELLS:
        scan = _scan_decimated(grid, tile_size_cells)
    else:
        scan = _scan_exact(grid, tile_size_cells)
    if scan.valid_cells == 0:
        if grid.warped:
            raise UserError(f"{grid.path}: nothing is left after reprojection to {grid.crs.to_string()}; check the EPSG code")
        raise UserError(f"{grid.path}: every cell is nodata; the DEM holds no elevation to work on")
    if not scan.has_3x3:
        raise UserError(
            f"{grid.path}: no 3x3 block of valid cells ({grid.width}x{grid.height} grid, {scan.valid_cells} valid), "
            "so no slope exists; give a DEM with at least 3x3 valid cells"
        )
    return scan


def _blocks(grid: DemGrid, tile_size_cells: int):
    """Windows of whole tiles covering the grid, each at most about SCAN_BLOCK_CELLS cells."""
    tiles_per_block = max(1, SCAN_BLOCK_CELLS // (tile_size_cells * tile_size_cells))
    cols_of_tiles = max(1, min(math.ceil(grid.width / tile_size_cells), tiles_per_block))
    rows_of_tiles = max(1, tiles_per_block // cols_of_tiles)
    block_h, block_w = rows_of_tiles * tile_size_cells, cols_of_tiles * tile_size_cells
    for r in range(0, grid.height, block_h):
        for c in range(0, grid.width, block_w):
            yield Window(c, r, min(block_w, grid.width - c), min(block_h, grid.height - r))


def _scan_exact(grid: DemGrid, tile_size_cells: int) -> DemScan:
    n_tr, n_tc = math.ceil(grid.height / tile_size_cells), math.ceil(grid.width / tile_size_cells)
    tile_valid = np.zeros((n_tr, n_tc), dtype=bool)
    lo, hi, n_valid, has_3x3 = math.inf, -math.inf, 0, False
    lat_sum, lat_lo, lat_hi = 0.0, math.inf, -math.inf
    with grid.open() as ds:
        for win in _blocks(grid, tile_size_cells):
            # one cell more on each side, so that a 3 x 3 block across blocks is seen
            r0, c0 = max(0, win.row_off - 1), max(0, win.col_off - 1)
            r1 = min(grid.height, win.row_off + win.height + 1)
            c1 = min(grid.width, win.col_off + win.width + 1)
            bordered = grid.read(Window(c0, r0, c1 - c0, r1 - r0), dataset=ds)
            has_3x3 = has_3x3 or has_full_window(np.isfinite(bordered))
            block = bordered[win.row_off - r0: win.row_off - r0 + win.height,
                             win.col_off - c0: win.col_off - c0 + win.width]
            valid = np.isfinite(block)
            if not valid.any():
                continue
            values = block[valid]
            lo, hi, n_valid = min(lo, float(values.min())), max(hi, float(values.max())), n_valid + values.size
            for i in range(0, win.height, tile_size_cells):
                for j in range(0, win.width, tile_size_cells):
                    if valid[i: i + tile_size_cells, j: j + tile_size_cells].any():
                        tile_valid[(win.row_off + i) // tile_size_cells, (win.col_off + j) // tile_size_cells] = True
            lat = cell_latitudes_deg(grid.crs, ds.window_transform(win), block.shape)[valid]
            lat_sum += float(lat.sum(dtype="float64"))
            lat_lo, lat_hi = min(lat_lo, float(lat.min())), max(lat_hi, float(lat.max()))
    lat_mean = lat_sum / n_valid if n_valid else math.nan
    return DemScan(lo, hi, n_valid, has_3x3, tile_valid, (lat_mean, lat_lo, lat_hi),
                   geographic_axes(grid.crs, grid.transform, grid.shape), exact=True)


def _scan_decimated(grid: DemGrid, tile_size_cells: int) -> DemScan:
    factor = math.sqrt(grid.cells / SCAN_DECIMATED_CELLS)
    out_h, out_w = max(3, round(grid.height / factor)), max(3, round(grid.width / factor))
    with grid.open() as ds:
        small = ds.read(1, out_shape=(out_h, out_w), masked=True).astype("float32").filled(np.nan)
    small[~np.isfinite(small)] = np.nan
    valid = np.isfinite(small)
    n_tr, n_tc = math.ceil(grid.height / tile_size_cells), math.ceil(grid.width / tile_size_cells)
    small_transform = grid.transform @ Affine.scale(grid.width / out_w, grid.height / out_h)
    lat = cell_latitudes_deg(grid.crs, small_transform, small.shape)[valid] if valid.any() else np.array([np.nan])
    return DemScan(float(np.nanmin(small)) if valid.any() else math.nan,
                   float(np.nanmax(small)) if valid.any() else math.nan,
                   int(valid.sum()), has_full_window(valid),
                   np.ones((n_tr, n_tc), dtype=bool),  # a decimated read may miss small valid areas: keep every tile
                   (float(lat.mean()), float(lat.min()), float(lat.max())),
                   geographic_axes(grid.crs, grid.transform, grid.shape), exact=False)
