"""The built-in example DEM: deterministic synthetic steep terrain in a real UTM CRS.

Two Gaussian peaks, an east-west ridge system and a north-facing escarpment give sunny
and shaded slopes of every aspect; a corner of nodata exercises the masks. It lies in
UTM zone 13N (EPSG:32613) at about 35.9°N, 106.5°W, inside DAYMET coverage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin

from eemt_flow.dem.raster import write_geotiff

EXAMPLE_EPSG = 32613
#: Upper-left corner of the example grid [m, UTM 13N].
EXAMPLE_ORIGIN_M = (363_000.0, 3_975_000.0)


def example_elevation_m(size_cells: int, cell_size_m: float) -> np.ndarray:
    """Elevation [m] of the synthetic terrain on a ``size_cells`` square grid (NaN = nodata)."""
    extent = size_cells * cell_size_m
    y, x = np.mgrid[0:size_cells, 0:size_cells].astype("float64")
    x = (x + 0.5) / size_cells  # 0..1 east
    y = (y + 0.5) / size_cells  # 0..1 south
    z = 2200.0
    z = z + 0.12 * extent * np.exp(-((x - 0.35) ** 2 + (y - 0.4) ** 2) / 0.02)
    z = z + 0.08 * extent * np.exp(-((x - 0.75) ** 2 + (y - 0.7) ** 2) / 0.01)
    z = z + 0.04 * extent * np.sin(2 * np.pi * 3 * y) * (0.5 + x)
    z = z + 0.06 * extent * np.clip((0.25 - y) / 0.1, 0, 1)  # escarpment rising to the north edge
    z = z.astype("float32")
    z[(x + (1 - y)) < 0.18] = np.nan  # nodata in the south-west corner
    return z


def write_example_dem(path: Path, *, size_cells: int = 120, cell_size_m: float = 30.0) -> None:
    z = example_elevation_m(size_cells, cell_size_m)
    transform = from_origin(EXAMPLE_ORIGIN_M[0], EXAMPLE_ORIGIN_M[1], cell_size_m, cell_size_m)
    write_geotiff(Path(path), z, transform, CRS.from_epsg(EXAMPLE_EPSG))
