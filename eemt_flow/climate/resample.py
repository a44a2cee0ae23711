"""Moving climate grids onto the DEM grid (EEMT-SPEC §3).

Climate variables and their base elevation are resampled with the **same** method
(bilinear by default) so that the lapse correction does not print the coarse cells onto
the DEM. The base elevation, when no climate-grid DEM is given, is the mean of the DEM
over each climate cell's footprint.
"""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine
from rasterio._err import CPLE_BaseError  # GDAL/PROJ errors; rasterio 1.4 does not re-export them
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioIOError
from rasterio.transform import array_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.warp import transform as transform_xy

from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError

#: Ways to resample climate variables and their base elevation onto the DEM grid, by the name
#: a job gives (``climate_resampling``); bilinear by default (EEMT-SPEC §3: temperature and
#: base elevation resampled alike, so that the lapse correction does not print the coarse cells).
CLIMATE_RESAMPLING_METHODS = {"bilinear": Resampling.bilinear, "nearest": Resampling.nearest,
                              "cubic": Resampling.cubic}
CLIMATE_RESAMPLING = "bilinear"
#: Maximum error of GDAL's approximate coordinate transformer [source pixels]; 0 = exact.
#: GDAL's default (0.125 px) is 125 m on a 1 km DAYMET grid, several 30 m DEM cells.
WARP_TOLERANCE_PX = 0.0
#: Points per edge when transforming a bounding box between CRSs.
BOUNDS_DENSIFY_POINTS = 21


def dem_bounds_in(dem: Dem, crs: CRS) -> tuple[float, float, float, float]:
    """The DEM's bounding box in another CRS.

    Parameters
    ----------
    dem : Dem
        The DEM.
    crs : rasterio.crs.CRS
        Target CRS.

    Returns
    -------
    tuple of float
        (left, bottom, right, top) in ``crs`` units, densified along the edges so that a
        curved projected edge is enclosed.
    """
    rows, cols = dem.shape
    left, bottom, right, top = array_bounds(rows, cols, dem.transform)
    return transform_bounds(dem.crs, crs, left, bottom, right, top, densify_pts=BOUNDS_DENSIFY_POINTS)


def check_grid_covers_dem(dem: Dem, shape: tuple[int, int], transform, crs: CRS, *, what: str) -> None:
    """Refuse a grid that does not cover the DEM's extent.

    Parameters
    ----------
    dem : Dem
        The DEM.
    shape : tuple of int
        (rows, cols) of the climate grid.
    transform : affine.Affine
        Climate grid transform.
    crs : rasterio.crs.CRS
        Climate grid CRS.
    what : str
        Variable and file, for the message.

    Raises
    ------
    UserError
        If part of the DEM lies outside the grid, or the DEM's extent cannot be transformed
        to the grid's CRS (an engineering CRS, for instance).
    """
    g_left, g_bottom, g_right, g_top = array_bounds(shape[0], shape[1], transform)
    try:
        d_left, d_bottom, d_right, d_top = dem_bounds_in(dem, crs)
    except (CRSError, CPLE_BaseError):
        name = crs.to_string()
        name = name if len(name) <= 60 else name[:59] + "…"
        raise UserError(f"{what}: PROJ knows no transformation from the DEM's CRS ({dem.crs.to_string()}) to the "
                        f"grid's ({name}); give a grid in a CRS with an EPSG code (gdal_edit.py -a_srs)") from None
    if d_left < g_left or d_right > g_right or d_bottom < g_bottom or d_top > g_top:
        f = ".4f" if crs.is_geographic else ".0f"  # degrees to ~10 m, metres to 1 m
        raise UserError(
            f"{what}: the grid covers x {g_left:{f}}..{g_right:{f}}, y {g_bottom:{f}}..{g_top:{f}} but the DEM spans "
            f"x {d_left:{f}}..{d_right:{f}}, y {d_bottom:{f}}..{d_top:{f}} ({crs.to_string()}); give a grid that covers "
            "the DEM"
        )


def warp_to_dem(values, transform, crs: CRS, dem: Dem, *, resampling: str = CLIMATE_RESAMPLING) -> np.ndarray:
    """Resample a grid (one or many bands) onto the DEM grid.

    Parameters
    ----------
    values : array, shape (bands, rows, cols) or (rows, cols)
        Source values, NaN for nodata (any unit; the unit is kept).
    transform : affine.Affine
        Source grid transform.
    crs : rasterio.crs.CRS
        Source CRS.
    dem : Dem
        Target grid.
    resampling : str
        A key of :data:`CLIMATE_RESAMPLING_METHODS`; bilinear by default (EEMT-SPEC §3).

    Returns
    -------
    numpy.ndarray of float32
        Values on the DEM grid, same number of bands (or 2-D for 2-D input), NaN where
        there is no source data.
    """
    src = np.asarray(values, dtype="float32")
    two_d = src.ndim == 2
    if two_d:
        src = src[np.newaxis]
    out = np.full((src.shape[0],) + dem.shape, np.nan, dtype="float32")
    reproject(
        source=src,
        destination=out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=dem.transform,
        dst_crs=dem.crs,
        dst_nodata=np.nan,
        resampling=CLIMATE_RESAMPLING_METHODS[resampling],
        tolerance=WARP_TOLERANCE_PX,
    )
    return out[0] if two_d else out


def footprint_mean_elevation(dem: Dem, shape: tuple[int, int], transform, crs: CRS) -> np.ndarray:
    """Mean DEM elevation over the footprint of each climate grid cell.

    Parameters
    ----------
    dem : Dem or eemt_flow.dem.raster.DemGrid
        The DEM (elevation [m]), in memory or on disk (read in chunks).
    shape : tuple of int
        (rows, cols) of the climate grid.
    transform : affine.Affine
        Climate grid transform.
    crs : rasterio.crs.CRS
        Climate grid CRS.

    Returns
    -------
    numpy.ndarray of float32, shape ``shape``
        z_base of each climate cell [m]: the area-weighted mean of the valid DEM cells
        inside its footprint (GDAL ``average`` resampling; a cell the DEM covers in part
        takes the mean of that part). Cells the DEM does not reach take the value of
        the covered cells next to them (:func:`fill_from_neighbours`), so that bilinear
        resampling is defined up to the DEM's edge and behaves there like clamping.

    References
    ----------
    EEMT-SPEC §3 (z_base = mean of the input DEM over each DAYMET cell footprint when no
    DAYMET 1 km DEM is supplied).
    """
    # GDAL computes a destination cell only if its centre falls inside the source extent:
    # pad the DEM with nodata by more than one climate cell so that partly covered
    # climate cells at the DEM's edge get the mean of their covered part.
    centre_x, centre_y = dem.transform @ (dem.shape[1] / 2, dem.shape[0] / 2)
    cx, cy = transform_xy(dem.crs, crs, [centre_x], [centre_y])
    col, row = ~transform @ (cx[0], cy[0])
    cell_left, cell_top = transform @ (np.floor(col), np.floor(row))
    cell_right, cell_bottom = transform @ (np.floor(col) + 1, np.floor(row) + 1)
    l, b, r, t = transform_bounds(crs, dem.crs, min(cell_left, cell_right), min(cell_bottom, cell_top),
                                  max(cell_left, cell_right), max(cell_bottom, cell_top), densify_pts=BOUNDS_DENSIFY_POINTS)
    pad = int(np.ceil(max((r - l) / dem.cell_size_m[0], (t - b) / dem.cell_size_m[1]))) + 1
    out = np.full(shape, np.nan, dtype="float32")
    warp = dict(src_crs=dem.crs, src_nodata=np.nan, dst_transform=transform, dst_crs=crs, dst_nodata=np.nan,
                resampling=Resampling.average, tolerance=WARP_TOLERANCE_PX)
    padded_transform = dem.transform @ Affine.translation(-pad, -pad)
    if isinstance(dem, Dem):
        padded = np.pad(dem.elevation_m.astype("float32"), pad, constant_values=np.nan)
        reproject(source=padded, destination=out, src_transform=padded_transform, **warp)
    else:
        # a DEM on disk (eemt_flow.dem.raster.DemGrid): GDAL warps it in chunks from a padded view of
        # the file (nearest on the same grid: a copy), never the whole DEM in memory
        rows, cols = dem.shape
        with dem.open() as ds, WarpedVRT(ds, crs=dem.crs, transform=padded_transform, width=cols + 2 * pad,
                                         height=rows + 2 * pad, resampling=Resampling.nearest, nodata=np.nan,
                                         dtype="float32") as padded:
            reproject(source=rasterio.band(padded, 1), destination=out, src_transform=padded_transform, **warp)
    return fill_from_neighbours(out)


def fill_from_neighbours(values: np.ndarray) -> np.ndarray:
    """Fill NaN cells outward from the valid ones, ring by ring.

    Each pass gives every NaN cell that has valid edge neighbours (up, down, left, right)
    their mean; passes repeat until no NaN is left. A cell next to one valid cell takes
    its value, so a field is extended by repeating its edge.

    Parameters
    ----------
    values : array, shape (rows, cols)
        Field with NaN gaps (any unit).

    Returns
    -------
    numpy.ndarray of float32
        The field without NaN (unchanged if it is all NaN).
    """
    out = np.array(values, dtype="float64")
    while True:
        missing = ~np.isfinite(out)
        if not missing.any() or missing.all():
            return out.astype("float32")
        padded = np.pad(out, 1, constant_values=np.nan)
        neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        count = np.isfinite(neighbours).sum(axis=0)
        total = np.nansum(neighbours, axis=0)
        fill = missing & (count > 0)
        out[fill] = total[fill] / count[fill]


def read_geotiff_grid(path, *, what: str) -> tuple[np.ndarray, object, CRS]:
    """Read every band of a georeferenced raster as float32 with NaN nodata.

    Parameters
    ----------
    path : path-like
        Raster file (GeoTIFF or anything GDAL reads).
    what : str
        Name of the variable, for messages.

    Returns
    -------
    values : numpy.ndarray of float32, shape (bands, rows, cols)
        Values in the file's unit, NaN for nodata.
    transform : affine.Affine
    crs : rasterio.crs.CRS

    Raises
    ------
    UserError
        If the file is unreadable, has no CRS or a rotated grid.
    """
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise UserError(f"{path}: {what} has no coordinate reference system; assign one (gdal_edit.py -a_srs)")
            if src.transform.b != 0 or src.transform.d != 0:
                raise UserError(f"{path}: {what} is on a rotated grid; warp it to a north-up grid first (gdalwarp)")
            values = src.read(masked=True).astype("float32").filled(np.nan)
            return values, src.transform, src.crs
    except RasterioIOError:
        raise UserError(f"{path}: {what} is not a raster GDAL can read") from None
