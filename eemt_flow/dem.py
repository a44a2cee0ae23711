"""Reading and validating the DEM; reprojection to a metric CRS when asked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, calculate_default_transform, reproject

from .errors import UserError

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


def read_dem(path: Path, *, reproject_to: str | None = None, max_cells: int) -> Dem:
    """Read and validate a DEM; reproject it to ``reproject_to`` (``EPSG:XXXX``) if given.

    Raises :class:`UserError` with one line for every user mistake: a missing file, a file
    that is not a raster, no CRS, a geographic CRS without ``reproject_to``, a non-metric or
    Web Mercator CRS, no 3 x 3 block of valid cells, more than ``max_cells`` cells.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; give --dem with the path of a GeoTIFF DEM")
    if path.is_dir():
        raise UserError(f"{path} is a directory; give --dem with the path of a GeoTIFF DEM")
    try:
        with rasterio.open(path) as src:
            crs = src.crs
            _check_crs(crs, path, reproject_to)
            if src.width * src.height > max_cells:
                raise UserError(
                    f"{path}: {src.width}x{src.height} = {src.width * src.height:,} cells exceeds the limit of "
                    f"{max_cells:,}; raise --max-cells or crop the DEM"
                )
            band = src.read(1, masked=True).astype("float64")
            transform = src.transform
    except RasterioIOError:
        raise UserError(f"{path}: not a raster GDAL can read; give a GeoTIFF DEM") from None
    if transform.b != 0 or transform.d != 0:
        raise UserError(f"{path}: the DEM grid is rotated; warp it to a north-up grid first (gdalwarp)")

    elevation = band.filled(np.nan).astype("float32")
    elevation[~np.isfinite(elevation)] = np.nan
    if not np.isfinite(elevation).any():
        raise UserError(f"{path}: every cell is nodata; the DEM holds no elevation to work on")

    dem = Dem(elevation, transform, crs)
    if reproject_to is not None:
        dem = reproject_dem(dem, CRS.from_string(reproject_to), max_cells=max_cells, what=str(path))
    _check_metric(dem.crs, str(path))
    _check_slope_exists(dem.elevation_m, path)
    return dem


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


def reproject_dem(dem: Dem, dst_crs: CRS, *, max_cells: int, what: str) -> Dem:
    """Warp a DEM to ``dst_crs`` with bilinear resampling, keeping nodata as NaN.

    The target cell size is GDAL's default (about the source resolution in metres).
    """
    _check_metric(dst_crs, f"--reproject {dst_crs.to_string()}")
    rows, cols = dem.shape
    left, top = dem.transform * (0, 0)
    right, bottom = dem.transform * (cols, rows)
    dst_transform, width, height = calculate_default_transform(
        dem.crs, dst_crs, cols, rows, left=left, bottom=bottom, right=right, top=top
    )
    # Square cells: the mean of GDAL's x and y suggestion.
    res = math.sqrt(abs(dst_transform.a * dst_transform.e))
    dst_transform, width, height = calculate_default_transform(
        dem.crs, dst_crs, cols, rows, left=left, bottom=bottom, right=right, top=top, resolution=res
    )
    if width * height > max_cells:
        raise UserError(f"{what}: reprojected DEM has {width * height:,} cells, over the limit of {max_cells:,}; raise --max-cells")
    out = np.full((height, width), np.nan, dtype="float32")
    reproject(
        source=dem.elevation_m,
        destination=out,
        src_transform=dem.transform,
        src_crs=dem.crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    if not np.isfinite(out).any():
        raise UserError(f"{what}: nothing is left after reprojection to {dst_crs.to_string()}; check the EPSG code")
    return Dem(out, dst_transform, dst_crs)


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
