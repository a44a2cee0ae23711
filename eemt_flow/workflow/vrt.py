"""The VRT form of the results: each map a GDAL VRT over block COGs, with overviews from a
reduction tree of tasks.

Above :data:`COG_MAX_CELLS` (``--results auto``) no task writes a whole map. The grid is cut
into blocks of ``block_cells`` x ``block_cells`` cells. Level 0 holds the maps at full
resolution, one COG per block, written by a task that reads only the tiles whose cores meet its
block. Level L (L >= 1) holds the maps at 2^L cells a pixel, in blocks of the same size in
pixels; each of its blocks is the nodata-aware 2 x 2 mean of (up to) four blocks of level L - 1,
written by one task that reads only those. The tree ends at the first level with one block: its
task writes the map's VRTs (``MAP.vrt`` over level 0, with ``<Overview>`` elements naming
``MAP/L1.vrt`` ... ``MAP/LT.vrt``), so a reader (QGIS, rasterio, rioxarray) opens the map at any
zoom and reads only the blocks of the level it needs. The statistics travel up the same tree as
partial sums (:class:`eemt_flow.workflow.reduce.Stats`).

Every block COG carries its own internal overviews (the COG driver's), so the levels in between
are served too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from rasterio import Affine
from rasterio.windows import Window

#: ``--results auto``: single COGs up to this many cells of the DEM grid (10^8: a float32 map of
#: 381 MiB, whose group task declares at most a few GB of disk), the VRT form above.
COG_MAX_CELLS = 100_000_000
#: ``--results vrt``: the edge of a block [cells] (a multiple of the tile size near this, by
#: default): a float32 band of 8192^2 cells is 256 MiB, so a block task's memory and disk stay
#: within its group's bands of one block whatever the DEM's size (at 4 x 10^10 cells in tiles of
#: 2,000: blocks of 8,000, 625 a map, 28 x 864 reducer tasks; blocks of 4,000 made 94,192).
DEFAULT_BLOCK_CELLS = 8192


def resolved_form(form: str, cells: int) -> str:
    """``cog`` or ``vrt`` for ``--results form`` (``auto``: by the grid's ``cells``)."""
    if form == "auto":
        return "cog" if cells <= COG_MAX_CELLS else "vrt"
    return form


def default_block_cells(tile_size_cells: int) -> int:
    """The block edge for tiles of ``tile_size_cells``: the multiple of it nearest
    :data:`DEFAULT_BLOCK_CELLS` (at least one tile), so that a tile is read by one block task;
    even, so that a block halves exactly into the level above."""
    n = max(1, round(DEFAULT_BLOCK_CELLS / tile_size_cells)) * tile_size_cells
    return n + n % 2


@dataclass(frozen=True)
class Pyramid:
    """The levels of the VRT form of a ``height`` x ``width`` grid in blocks of ``block_cells``."""

    height: int
    width: int
    block_cells: int

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(height, width) in pixels of each level, to the first with a single block."""
        out = [(self.height, self.width)]
        while max(out[-1]) > self.block_cells:
            h, w = out[-1]
            out.append(((h + 1) // 2, (w + 1) // 2))
        return out

    @property
    def top(self) -> int:
        return len(self.shapes) - 1

    def blocks(self, level: int) -> list[tuple[int, int]]:
        h, w = self.shapes[level]
        s = self.block_cells
        return [(r, c) for r in range(math.ceil(h / s)) for c in range(math.ceil(w / s))]

    def window(self, level: int, r: int, c: int) -> Window:
        """The block's window in the pixels of its level."""
        h, w = self.shapes[level]
        s = self.block_cells
        return Window(c * s, r * s, min(s, w - c * s), min(s, h - r * s))

    def children(self, level: int, r: int, c: int) -> list[tuple[int, int]]:
        """The blocks of level - 1 that block (r, c) of ``level`` averages."""
        below = set(self.blocks(level - 1))
        return [(2 * r + a, 2 * c + b) for a in (0, 1) for b in (0, 1) if (2 * r + a, 2 * c + b) in below]


def block_name(level: int, r: int, c: int) -> str:
    return f"L{level}_r{r:03d}_c{c:03d}"


def vrt_path(map_path: str) -> str:
    """The VRT of a map named by its single-COG path (``results/eemt/EEMT_TOPO_2020.tif``)."""
    return map_path.removesuffix(".tif") + ".vrt"


def block_path(map_path: str, level: int, r: int, c: int) -> str:
    """A block COG of a map: ``MAP/L0_r000_c000.tif`` beside ``MAP.vrt``."""
    return f"{map_path.removesuffix('.tif')}/{block_name(level, r, c)}.tif"


def level_vrt_path(map_path: str, level: int) -> str:
    return f"{map_path.removesuffix('.tif')}/L{level}.vrt"


def windows_meet(a: Window, b: Window) -> bool:
    return (a.col_off < b.col_off + b.width and b.col_off < a.col_off + a.width
            and a.row_off < b.row_off + b.height and b.row_off < a.row_off + a.height)


def blocks_met(window: Window, block_cells: int) -> list[tuple[int, int]]:
    """(row, column) of every level-0 block that ``window`` (cells, not empty) meets."""
    rows = range(window.row_off // block_cells, (window.row_off + window.height - 1) // block_cells + 1)
    cols = range(window.col_off // block_cells, (window.col_off + window.width - 1) // block_cells + 1)
    return [(r, c) for r in rows for c in cols]


def halve(a: np.ndarray) -> np.ndarray:
    """The nodata-aware 2 x 2 mean of the (rows, cols) array ``a`` (NaN = nodata), padded with
    NaN to even sides: a pixel is the mean of its valid cells, NaN where it has none."""
    h, w = a.shape
    padded = np.full((h + h % 2, w + w % 2), np.nan, dtype="float32")
    padded[:h, :w] = a
    quads = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
    valid = np.isfinite(quads)
    n = valid.sum(axis=(1, 3))
    total = np.where(valid, quads, 0).astype("float64").sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan).astype("float32")


def level_transform(transform: Affine, level: int) -> Affine:
    """The transform of a level's pixels (2^level cells each, same origin)."""
    return transform @ Affine.scale(2 ** level)


def vrt_xml(width: int, height: int, transform: Affine, crs_wkt: str, bands: list[str | None],
            sources: list[tuple[str, Window]], overviews: list[str] = (), block: int = 512) -> str:
    """A VRT of float32 ``bands`` (their descriptions) mosaicking ``sources`` (file relative to
    the VRT, its window in the VRT's pixels; each source's bands in order), NaN nodata, with
    ``overviews`` (files relative to the VRT, coarsest last)."""
    gt = ", ".join(repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e))
    out = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
           f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(crs_wkt)}</SRS>',
           f"  <GeoTransform>{gt}</GeoTransform>"]
    for i, description in enumerate(bands, start=1):
        out.append(f'  <VRTRasterBand dataType="Float32" band="{i}" blockXSize="{block}" blockYSize="{block}">')
        if description:
            out.append(f"    <Description>{escape(description)}</Description>")
        out.append("    <NoDataValue>nan</NoDataValue>")
        for name, w in sources:
            out += ["    <SimpleSource>",
                    f'      <SourceFilename relativeToVRT="1">{escape(name)}</SourceFilename>',
                    f"      <SourceBand>{i}</SourceBand>",
                    f'      <SourceProperties RasterXSize="{w.width}" RasterYSize="{w.height}" DataType="Float32" '
                    f'BlockXSize="{block}" BlockYSize="{block}"/>',
                    f'      <SrcRect xOff="0" yOff="0" xSize="{w.width}" ySize="{w.height}"/>',
                    f'      <DstRect xOff="{w.col_off}" yOff="{w.row_off}" xSize="{w.width}" ySize="{w.height}"/>',
                    "    </SimpleSource>"]
        for name in overviews:
            out += ["    <Overview>", f'      <SourceFilename relativeToVRT="1">{escape(name)}</SourceFilename>',
                    f"      <SourceBand>{i}</SourceBand>", "    </Overview>"]
        out.append("  </VRTRasterBand>")
    out.append("</VRTDataset>")
    return "\n".join(out) + "\n"


def write_vrts(workdir: Path, map_path: str, pyramid: Pyramid, transform: Affine, crs_wkt: str,
               bands: list[str | None]) -> list[str]:
    """Write ``MAP.vrt`` and ``MAP/L1.vrt`` ... ``MAP/LT.vrt`` of a map whose block COGs the
    tree wrote; return their workdir-relative paths."""
    written = []
    stem = Path(map_path.removesuffix(".tif")).name
    for level in range(pyramid.top + 1):
        h, w = pyramid.shapes[level]
        if level == 0:
            path, prefix = vrt_path(map_path), f"{stem}/"
            overviews = [f"{stem}/L{k}.vrt" for k in range(1, pyramid.top + 1)]
        else:
            path, prefix, overviews = level_vrt_path(map_path, level), "", []
        sources = [(prefix + Path(block_path(map_path, level, r, c)).name, pyramid.window(level, r, c))
                   for r, c in pyramid.blocks(level)]
        text = vrt_xml(w, h, level_transform(transform, level), crs_wkt, bands, sources, overviews)
        target = workdir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_text(text)
        tmp.replace(target)
        written.append(path)
    return written
