"""Tile windows with halos, staging tile GeoTIFFs, and cropping halos back."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from rasterio.windows import Window



@dataclass(frozen=True)
class Tile:
    """One tile: its core (what it contributes to the mosaic) inside its halo window.

    All offsets are in cells of the whole DEM; ``core_in_halo`` locates the core inside
    the staged (halo) raster.
    """

    name: str
    row: int  # core window in the DEM
    col: int
    height: int
    width: int
    halo_row: int  # halo window in the DEM
    halo_col: int
    halo_height: int
    halo_width: int

    @property
    def core_window(self) -> Window:
        return Window(self.col, self.row, self.width, self.height)

    @property
    def halo_window(self) -> Window:
        return Window(self.halo_col, self.halo_row, self.halo_width, self.halo_height)

    @property
    def core_in_halo(self) -> tuple[slice, slice]:
        return self.core_in(self.halo_window)

    def core_in(self, window: Window) -> tuple[slice, slice]:
        """(rows, cols) slices of the core inside a window of the DEM that holds it."""
        r0, c0 = self.row - int(window.row_off), self.col - int(window.col_off)
        return slice(r0, r0 + self.height), slice(c0, c0 + self.width)

    def near_window(self, margin_cells: int) -> Window:
        """The core and ``margin_cells`` around it, within the halo window."""
        r0, c0 = max(self.row - margin_cells, self.halo_row), max(self.col - margin_cells, self.halo_col)
        r1 = min(self.row + self.height + margin_cells, self.halo_row + self.halo_height)
        c1 = min(self.col + self.width + margin_cells, self.halo_col + self.halo_width)
        return Window(c0, r0, c1 - c0, r1 - r0)

    @property
    def halo_cells(self) -> int:
        return self.halo_height * self.halo_width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict) -> "Tile":
        """The tile of a job.json entry (extra keys, such as its files, are ignored)."""
        return cls(**{k: entry[k] for k in cls.__dataclass_fields__})


def halo_cells(halo_m: float, cell_size_m: float) -> int:
    """Cells needed to hold ``halo_m`` metres, at least 1 (slope and aspect need a neighbour)."""
    return max(1, math.ceil(halo_m / cell_size_m - 1e-9))


def make_tiles(shape: tuple[int, int], cell_size_m: tuple[float, float], tile_size_cells: int, halo_m: float,
               tile_valid: np.ndarray | None = None) -> list[Tile]:
    """Cut a grid of ``shape`` into square cores of ``tile_size_cells`` with halos of ``halo_m`` metres.

    ``tile_valid[i, j]`` says whether the core in tile row i, column j holds a valid cell
    (:class:`~eemt_flow.dem.scan.DemScan`); tiles without one are dropped: they contribute
    only nodata. Without ``tile_valid`` every tile is kept.
    """
    rows, cols = shape
    cx, cy = cell_size_m
    hx, hy = halo_cells(halo_m, cx), halo_cells(halo_m, cy)
    tiles = []
    for r in range(0, rows, tile_size_cells):
        for c in range(0, cols, tile_size_cells):
            if tile_valid is not None and not tile_valid[r // tile_size_cells, c // tile_size_cells]:
                continue
            h, w = min(tile_size_cells, rows - r), min(tile_size_cells, cols - c)
            hr, hc = max(0, r - hy), max(0, c - hx)
            he, we = min(rows, r + h + hy), min(cols, c + w + hx)
            tiles.append(Tile(f"t{len(tiles):04d}", r, c, h, w, hr, hc, he - hr, we - hc))
    return tiles


def crop_core(tile: Tile, halo_array: np.ndarray) -> np.ndarray:
    """The core of a tile's array (2-D or bands-first 3-D) of its halo window; an array
    of the core only (what the fast engine writes) is returned as it is."""
    if halo_array.shape[-2:] == (tile.height, tile.width):
        return halo_array
    rs, cs = tile.core_in_halo
    return halo_array[..., rs, cs]
