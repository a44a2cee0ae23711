"""Reading and validating the DEM; reprojection to a metric CRS when asked."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, calculate_default_transform
from rasterio.windows import Window

from eemt_flow.errors import UserError

#: Largest DEM accepted by default [cells]; raise it with --max-cells.
DEFAULT_MAX_CELLS = 100_000_000

#: Projections whose distances are not true metres on the ground (EEMT-SPEC §3: Web Mercator
#: is forbidden), by PROJ's name of the method: the normal Mercator, whose scale grows as
#: 1 / cos(latitude) (1.24 at 36 degrees), whatever its EPSG code (3857 Web Mercator, 3395
#: World Mercator, a custom +proj=merc). Transverse and oblique Mercator (UTM, tmerc, omerc)
#: keep the scale within a few parts in 10,000 near their central line and are accepted.
FORBIDDEN_PROJECTIONS = {"merc": "the Mercator projection distorts distances and slopes (its scale grows with latitude)"}


@dataclass
class Dem:
    """A DEM in memory: float32 elevations [m] with NaN for nodata, and its grid."""

    elevation_m: np.ndarray
    transform: rasterio.Affine
    crs: CRS

    @property
    def shape(self) -> tuple[int, int]:
        return self.elevation_m.shape

    @property
    def cell_size_m(self) -> tuple[float, float]:
        """(east-west, north-south) cell size [m]."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def relief_m(self) -> float:
        return float(np.nanmax(self.elevation_m) - np.nanmin(self.elevation_m))


def _check_crs(crs: CRS | None, path: Path, reproject_to: str | None) -> None:
    if crs is None:
        raise UserError(
            f"{path}: the DEM has no coordinate reference system; assign one "
            "(e.g. gdal_edit.py -a_srs EPSG:32613 FILE) and try again"
        )
    if crs.is_geographic and reproject_to is None:
        raise UserError(
            f"{path}: the DEM is in a geographic (lat/long) CRS ({crs.to_string()}); "
            "give --reproject EPSG:XXXX with a projected metric CRS such as the local UTM zone"
        )


def _check_metric(crs: CRS, what: str) -> None:
    method = crs.to_dict().get("proj")
    if method in FORBIDDEN_PROJECTIONS:
        epsg = crs.to_epsg()
        name = "Web Mercator (EPSG:3857)" if epsg == 3857 else f"EPSG:{epsg}" if epsg else crs.to_string()
        raise UserError(f"{what}: {name} is not accepted ({FORBIDDEN_PROJECTIONS[method]}); "
                        "use a UTM or equal-area CRS")
    if crs.is_geographic:
        raise UserError(f"{what}: {crs.to_string()} is geographic; a projected metric CRS is needed (e.g. UTM)")
    units = (crs.linear_units or "").lower()
    if units not in ("metre", "meter", "m", "metres", "meters"):
        raise UserError(f"{what}: the CRS units are '{crs.linear_units}', not metres; give --reproject EPSG:XXXX with a metric CRS")


def has_full_window(valid: np.ndarray) -> bool:
    """Whether some cell has all 8 neighbours valid, i.e. a 3 x 3 block of valid cells exists.

    Slope and aspect (Horn's 3 x 3 stencil, as r.slope.aspect) exist only at such cells.
    """
    if valid.shape[0] < 3 or valid.shape[1] < 3:
        return False
    rows = valid[:-2] & valid[1:-1] & valid[2:]
    return bool((rows[:, :-2] & rows[:, 1:-1] & rows[:, 2:]).any())


def _check_slope_exists(elevation: np.ndarray, path: Path) -> None:
    if not has_full_window(np.isfinite(elevation)):
        n_valid = int(np.isfinite(elevation).sum())
        raise UserError(
            f"{path}: no 3x3 block of valid cells ({elevation.shape[1]}x{elevation.shape[0]} grid, {n_valid} valid), "
            "so no slope exists; give a DEM with at least 3x3 valid cells"
        )


def read_float32(dataset, window: Window | None = None) -> np.ndarray:
    """Band 1 of an open raster as float32 [m] (of ``window``; default all), NaN for nodata.

    Read straight into float32 and masked in place, so that a tile's halo window costs 4 bytes
    a cell (plus 2 bytes a cell for the mask, briefly), not the 8 + 8 + 1 of a masked float64 copy.
    """
    out = dataset.read(1, window=window, out_dtype="float32")
    out[dataset.read_masks(1, window=window) == 0] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


@dataclass(frozen=True)
class DemGrid:
    """A DEM on disk, read one window at a time: the job's grid and where its cells come from.

    ``warped``: the source is reprojected onto this grid as it is read (bilinear, through a
    GDAL warped VRT, which warps whole blocks of its own, so a window reads the same values as
    the whole grid would).
    """

    path: Path
    transform: rasterio.Affine
    crs: CRS
    height: int
    width: int
    warped: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def cells(self) -> int:
        return self.height * self.width

    @property
    def cell_size_m(self) -> tuple[float, float]:
        """(east-west, north-south) cell size [m]."""
        return abs(self.transform.a), abs(self.transform.e)

    @contextmanager
    def open(self):
        """The dataset to read windows from (the source, or its warped view)."""
        with rasterio.open(self.path) as src:
            if not self.warped:
                yield src
                return
            with WarpedVRT(src, crs=self.crs, transform=self.transform, width=self.width, height=self.height,
                           resampling=Resampling.bilinear, nodata=np.nan, dtype="float32") as vrt:
                yield vrt

    def read(self, window: Window | None = None, *, dataset=None) -> np.ndarray:
        """float32 elevations [m] of ``window`` (default: all), NaN for nodata."""
        if dataset is None:
            with self.open() as ds:
                return self.read(window, dataset=ds)
        return read_float32(dataset, window)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "transform": list(self.transform)[:6], "crs_wkt": self.crs.to_wkt(),
                "height": self.height, "width": self.width, "warped": self.warped}

    @classmethod
    def from_dict(cls, d: dict) -> "DemGrid":
        return cls(Path(d["path"]), rasterio.Affine(*d["transform"]), CRS.from_wkt(d["crs_wkt"]), d["height"],
                   d["width"], d["warped"])


def open_dem(path: Path, *, reproject_to: str | None = None, max_cells: int) -> DemGrid:
    """Check a DEM's file and grid, reading no cells; reproject its grid to ``reproject_to`` if given.

    Raises :class:`UserError` with one line for every mistake that the grid alone shows: a
    missing file, a file that is not a raster, no CRS, a geographic CRS without
    ``reproject_to``, a rotated grid, a non-metric or Mercator CRS, more than ``max_cells``
    cells. The cells themselves are checked by :func:`read_dem` or by the planner's scan.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; give --dem with the path of a GeoTIFF DEM")
    if path.is_dir():
        raise UserError(f"{path} is a directory; give --dem with the path of a GeoTIFF DEM")
    try:
        with rasterio.open(path) as src:
            crs, transform, width, height = src.crs, src.transform, src.width, src.height
            n_bands = src.count
    except RasterioIOError:
        raise UserError(f"{path}: not a raster GDAL can read; give a GeoTIFF DEM") from None
    if n_bands < 1:
        raise UserError(f"{path}: the raster has no band; give a GeoTIFF DEM")
    _check_crs(crs, path, reproject_to)
    if width * height > max_cells:
        raise UserError(
            f"{path}: {width}x{height} = {width * height:,} cells exceeds the limit of "
            f"{max_cells:,}; raise --max-cells or crop the DEM"
        )
    if transform.b != 0 or transform.d != 0:
        raise UserError(f"{path}: the DEM grid is rotated; warp it to a north-up grid first (gdalwarp)")
    grid = DemGrid(path.resolve(), transform, crs, height, width)
    if reproject_to is not None:
        grid = reprojected_grid(grid, CRS.from_string(reproject_to), max_cells=max_cells, what=str(path))
    _check_metric(grid.crs, str(path))
    return grid


def reprojected_grid(grid: DemGrid, dst_crs: CRS, *, max_cells: int, what: str) -> DemGrid:
    """The grid of ``grid`` reprojected to ``dst_crs``: GDAL's default extent, square cells.

    The cell size is the geometric mean of GDAL's suggested x and y sizes (about the source
    resolution in metres).
    """
    _check_metric(dst_crs, f"--reproject {dst_crs.to_string()}")
    left, top = grid.transform * (0, 0)
    right, bottom = grid.transform * (grid.width, grid.height)
    dst_transform, width, height = calculate_default_transform(
        grid.crs, dst_crs, grid.width, grid.height, left=left, bottom=bottom, right=right, top=top)
    res = math.sqrt(abs(dst_transform.a * dst_transform.e))
    dst_transform, width, height = calculate_default_transform(
        grid.crs, dst_crs, grid.width, grid.height, left=left, bottom=bottom, right=right, top=top, resolution=res)
    if width * height > max_cells:
        raise UserError(f"{what}: reprojected DEM has {width * height:,} cells, over the limit of {max_cells:,}; raise --max-cells")
    return DemGrid(grid.path, dst_transform, dst_crs, height, width, warped=True)


def dem_fingerprint(path: Path) -> dict:
    """Size and modification time of a DEM file: a job's tiles are cut from the file it planned."""
    st = Path(path).stat()
    return {"size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_dem(path: Path, *, reproject_to: str | None = None, max_cells: int) -> Dem:
    """Read and validate a whole DEM into memory; reproject it to ``reproject_to`` (``EPSG:XXXX``) if given.

    The checks of :func:`open_dem`, and of the cells: not every cell nodata, some 3 x 3
    block of valid cells. For DEMs that fit in memory (uploads, notebooks); jobs read
    windows through :class:`DemGrid`.
    """
    grid = open_dem(path, reproject_to=reproject_to, max_cells=max_cells)
    try:
        elevation = grid.read()
    except RasterioIOError as exc:
        raise UserError(f"{path}: the DEM cannot be read ({exc}); give a GeoTIFF DEM") from None
    if not np.isfinite(elevation).any():
        if grid.warped:
            raise UserError(f"{path}: nothing is left after reprojection to {grid.crs.to_string()}; check the EPSG code")
        raise UserError(f"{path}: every cell is nodata; the DEM holds no elevation to work on")
    _check_slope_exists(elevation, path)
    return Dem(elevation, grid.transform, grid.crs)


def dem_from_array(elevation_m: np.ndarray, transform, crs: CRS | None, *, what: str) -> Dem:
    """A DEM held in memory (a notebook's array), checked as :func:`read_dem` checks a file."""
    _check_crs(crs, what, None)
    if transform.b != 0 or transform.d != 0:
        raise UserError(f"{what}: the DEM grid is rotated; warp it to a north-up grid first")
    elevation = np.array(elevation_m, dtype="float32")
    elevation[~np.isfinite(elevation)] = np.nan
    if not np.isfinite(elevation).any():
        raise UserError(f"{what}: every cell is nodata; the DEM holds no elevation to work on")
    dem = Dem(elevation, transform, CRS.from_user_input(crs))
    _check_metric(dem.crs, what)
    _check_slope_exists(dem.elevation_m, what)
    return dem


def write_geotiff(path: Path, array: np.ndarray, transform, crs, *, descriptions: list[str] | None = None,
                  cog: bool = False) -> None:
    """Write a float32 raster (2-D or bands-first 3-D) with NaN nodata, deflate-compressed.

    ``cog=True`` writes a Cloud Optimized GeoTIFF (GDAL's COG driver).
    """
    arr = array if array.ndim == 3 else array[np.newaxis]
    arr = arr.astype("float32", copy=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="COG" if cog else "GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=float("nan"),
        compress="deflate",
    )
    if not cog:
        profile.update(tiled=arr.shape[1] >= 256 and arr.shape[2] >= 256, predictor=3, BIGTIFF="IF_SAFER")
        if arr.shape[0] > 1:
            profile["interleave"] = "band"
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr)
        if descriptions:
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
    tmp.replace(path)
