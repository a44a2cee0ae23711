"""A climate year before it meets the DEM: small, saved once by the planner, put on each tile by its task.

Every source is read, checked and aggregated to months on its own grid once, for the whole
DEM (:func:`eemt_flow.climate.source.prepare_climate`): station normals are 12 rows; gridded
sources (DAYMET, your own grids) are 12 monthly fields on their coarse grid, with the base
elevation of the temperatures on that same grid (the climate grid's DEM, or the mean of the
DEM over each climate cell, which needs the whole DEM and so is computed here). What is
left per DEM cell — resampling onto the cells and the lapse correction — is done by
:meth:`on_dem` for any window of the DEM, and gives each cell the same value whether the
window is the whole DEM or one tile (the warps use GDAL's exact transformer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from eemt_flow.dem.raster import Dem

from eemt_flow.climate.assemble import MonthlyField, climate_on_dem
from eemt_flow.climate.monthly import NORMALS, MonthlyClimate, check_cover, days_in_month_of, mask_to_dem
from eemt_flow.climate.resample import CLIMATE_RESAMPLING, warp_to_dem
from eemt_flow.climate.station import StationNormals, station_climate, station_source


@dataclass
class GridClimate:
    """One year of a gridded source, on its own grids.

    Attributes
    ----------
    year : int or str
        Calendar year or :data:`~eemt_flow.climate.monthly.NORMALS`.
    source : str
        Description for metadata.
    fields : dict of str to MonthlyField
        ``tmin``, ``tmax``, ``prcp``, ``vp`` on their grids.
    bases : dict of str to MonthlyField
        Base elevation [m] of ``tmin`` and ``tmax`` (one band each) on a grid of its own.
    lapse_tmin_table, lapse_tmax_table : array (12,)
        Monthly lapse rates [°C km⁻¹].
    resampling : str
        How the fields reach the DEM (``bilinear``, ``nearest``, ``cubic``).
    global_radiation : MonthlyField or None
        Real global horizontal irradiation of each month's mean day [Wh m⁻² day⁻¹] (DAYMET's
        srad x dayl), for real-sky radiation; None for sources without it.
    """

    year: int | str
    source: str
    fields: dict[str, MonthlyField]
    bases: dict[str, MonthlyField]
    lapse_tmin_table: np.ndarray
    lapse_tmax_table: np.ndarray
    resampling: str = CLIMATE_RESAMPLING
    global_radiation: MonthlyField | None = None

    @property
    def days_in_month(self) -> np.ndarray:
        return days_in_month_of(self.year)

    def on_dem(self, dem: Dem) -> MonthlyClimate:
        """The monthly climate on ``dem``'s cells (the whole DEM or any window of it)."""
        climate = climate_on_dem(self.fields, dem, year=self.year, source=self.source,
                                 lapse_tmin_table=self.lapse_tmin_table, lapse_tmax_table=self.lapse_tmax_table,
                                 bases=self.bases, resampling=self.resampling)
        g = self.global_radiation
        if g is not None:
            on_dem = warp_to_dem(g.values, g.transform, g.crs, dem, resampling=self.resampling)
            check_cover(on_dem, dem.elevation_m, what=f"DAYMET srad x dayl ({g.path})",
                        allowed_nan_months=g.incomplete_months)
            climate.glob_wh_m2_day = mask_to_dem(on_dem, dem.elevation_m).astype("float32")
        return climate


@dataclass
class StationClimate:
    """Monthly normals of one station and its elevation, with the lapse rates."""

    normals: StationNormals
    station_elevation_m: float
    lapse_tmin_table: np.ndarray
    lapse_tmax_table: np.ndarray
    year: str = NORMALS

    @property
    def source(self) -> str:
        return station_source(self.normals, self.station_elevation_m)

    @property
    def days_in_month(self) -> np.ndarray:
        return days_in_month_of(self.year)

    def on_dem(self, dem: Dem) -> MonthlyClimate:
        """The monthly climate on ``dem``'s cells (the whole DEM or any window of it)."""
        return station_climate(self.normals, dem, station_elevation_m=self.station_elevation_m,
                               lapse_tmin_table=self.lapse_tmin_table, lapse_tmax_table=self.lapse_tmax_table)


PreparedClimate = GridClimate | StationClimate


def _field_arrays(prefix: str, field: MonthlyField, arrays: dict) -> dict:
    arrays[prefix] = field.values
    return {"transform": list(field.transform)[:6], "crs_wkt": field.crs.to_wkt(), "path": str(field.path),
            "incomplete_months": list(field.incomplete_months)}


def _field_of(prefix: str, meta: dict, arrays) -> MonthlyField:
    return MonthlyField(np.asarray(arrays[prefix]), Affine(*meta["transform"]), CRS.from_wkt(meta["crs_wkt"]),
                        Path(meta["path"]), tuple(meta["incomplete_months"]))


def save_prepared(climate: PreparedClimate, path: Path) -> None:
    """Write a prepared climate year to ``path`` (.npz: the arrays, and a JSON header)."""
    arrays: dict[str, np.ndarray] = {"lapse_tmin": climate.lapse_tmin_table, "lapse_tmax": climate.lapse_tmax_table}
    if isinstance(climate, StationClimate):
        n = climate.normals
        arrays["normals"] = np.stack([n.tmin_c, n.tmax_c, n.prcp_mm, n.vp_pa])
        header = {"kind": "station", "path": str(n.path), "station_elevation_m": climate.station_elevation_m}
    else:
        header = {"kind": "grids", "year": climate.year, "source": climate.source, "resampling": climate.resampling,
                  "fields": {v: _field_arrays(f"field_{v}", f, arrays) for v, f in climate.fields.items()},
                  "bases": {v: _field_arrays(f"base_{v}", f, arrays) for v, f in climate.bases.items()},
                  "global_radiation": (_field_arrays("global_radiation", climate.global_radiation, arrays)
                                       if climate.global_radiation is not None else None)}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_prepared(path: Path) -> PreparedClimate:
    """Read what :func:`save_prepared` wrote."""
    with np.load(path) as arrays:
        header = json.loads(arrays["header"].tobytes().decode())
        lapse = (arrays["lapse_tmin"], arrays["lapse_tmax"])
        if header["kind"] == "station":
            tmin, tmax, prcp, vp = arrays["normals"]
            return StationClimate(StationNormals(tmin, tmax, prcp, vp, Path(header["path"])),
                                  header["station_elevation_m"], *lapse)
        fields = {v: _field_of(f"field_{v}", m, arrays) for v, m in header["fields"].items()}
        bases = {v: _field_of(f"base_{v}", m, arrays) for v, m in header["bases"].items()}
        g = header["global_radiation"]
        return GridClimate(header["year"], header["source"], fields, bases, *lapse, resampling=header["resampling"],
                           global_radiation=_field_of("global_radiation", g, arrays) if g else None)
