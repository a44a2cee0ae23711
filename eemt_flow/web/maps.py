"""Maps API (issue 26, CONTRACT.md section 2): a job's maps index, Web Mercator PNG tiles
(rio-tiler) and the values of every map at one point.

The index is computed here, in the web layer, from the job's result list (the reducer is not
changed) and cached as JSON in the job's directory (MAPS_INDEX_FILE), so it is computed once.
"""

from __future__ import annotations

import calendar
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from fastapi import APIRouter, HTTPException, Path as PathParam, Query
from fastapi.responses import Response
from pyproj import Transformer
from rasterio.windows import Window

from eemt_flow.web.context import Job, JobId, Services, ServicesDep
from eemt_flow.web.models import ERRORS
from eemt_flow.web.store import JobRecord
from eemt_flow.workflow.reduce import QUICKLOOK_MAX_PIXELS, UNITS

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["maps"])
#: The cached maps index, in the job's directory (not under results/: it is no result).
MAPS_INDEX_FILE = "maps_index.json"
#: Percentiles of each map's statistics [%] (p2..p98 is the tiles' and the legend's range).
PERCENTILES = (2, 10, 50, 90, 98)
#: Colour stops of a legend, low -> high.
LEGEND_STOPS = 9
#: Highest zoom a tile may be asked for (Web Mercator).
MAX_ZOOM = 30
EEMT_ANNUAL_UNITS = "MJ m-2 yr-1"
EEMT_MONTHLY_UNITS = "MJ m-2 month-1"
#: Units of the terrain results (eemt_flow.workflow.layout TERRAIN_RESULTS and the sky view factor).
TERRAIN_UNITS = {"wetness_index": "1", "alpha": "1", "northness": "1", "specific_catchment_area_m": "m",
                 "sky_view_factor": "1"}
#: Real-sky radiation: the mean day of each month, averaged over the years (reduce.py).
REAL_SKY_UNITS = "Wh m-2 day-1"
QA_UNITS = "months"
TITLES = {"glob_rad": "Global radiation (topographic)", "flat_glob_rad": "Global radiation (flat)",
          "insol_time": "Insolation time", "glob_rad_real": "Global radiation (real sky)",
          "EEMT": "EEMT", "E_PPT": "E_PPT", "E_BIO": "E_BIO", "QA": "QA flags",
          "wetness_index": "Wetness index", "alpha": "Alpha", "northness": "Northness",
          "specific_catchment_area_m": "Specific catchment area", "sky_view_factor": "Sky view factor"}
SOLAR = "glob_rad|flat_glob_rad|insol_time"
PATTERNS = [
    (re.compile(rf"solar/monthly/(?P<variable>{SOLAR})_(?P<month>\d\d)\.tif"), "solar", "monthly"),
    (re.compile(r"solar/monthly/(?P<variable>glob_rad_real)_(?P<month>\d\d)\.tif"), "solar", "monthly"),
    (re.compile(rf"solar/daily/(?P<variable>{SOLAR})_day(?P<day>\d{{3}})\.tif"), "solar", "daily"),
    (re.compile(r"terrain/(?P<variable>[^/]+)\.tif"), "terrain", "static"),
    (re.compile(r"eemt/(?P<variable>EEMT)_(?P<model>.+)_mean\.tif"), "eemt", "mean"),
    (re.compile(r"eemt/(?P<variable>EEMT|E_PPT|E_BIO|QA)_(?P<model>.+)_(?P<year>\d{4}|normals)\.tif"), "eemt", "annual"),
    (re.compile(r"eemt/monthly/(?P<variable>E_PPT|E_BIO)_(?P<model>.+)_(?P<year>\d{4}|normals)_(?P<month>\d\d)\.tif"),
     "eemt", "monthly"),
]


def describe(path: str) -> dict:
    """Title, variable, kind, period, month/day/year/model and units of a result raster's path."""
    for pattern, kind, period in PATTERNS:
        m = pattern.fullmatch(path)
        if m is None:
            continue
        g = m.groupdict()
        var = g["variable"]
        entry = {"path": path, "variable": var, "kind": kind, "period": period}
        parts = [TITLES.get(var, var)]
        if g.get("model"):
            entry["model"] = g["model"]
            parts[0] += f"-{g['model'].upper().replace('_', '-')}"
        if g.get("year"):
            entry["year"] = int(g["year"]) if g["year"].isdigit() else g["year"]
            parts.append(str(g["year"]).replace("normals", "station normals"))
        if g.get("month"):
            entry["month"] = int(g["month"])
            parts.append(calendar.month_name[int(g["month"])])
        if g.get("day"):
            entry["day"] = int(g["day"])
            parts.append(f"day {int(g['day'])}")
        if period == "mean":
            parts.append("mean of the years")
        entry["title"] = ", ".join(parts)
        entry["units"] = units_of(var, kind, period)
        return entry
    stem = Path(path).stem
    return {"path": path, "variable": stem, "kind": path.split("/", 1)[0], "period": "static", "title": stem,
            "units": ""}


def units_of(var: str, kind: str, period: str) -> str:
    if var in UNITS:
        return UNITS[var][0 if period == "monthly" else 1]
    if var == "glob_rad_real":
        return REAL_SKY_UNITS
    if var == "QA":
        return QA_UNITS
    if kind == "eemt":
        return EEMT_MONTHLY_UNITS if period == "monthly" else EEMT_ANNUAL_UNITS
    return TERRAIN_UNITS.get(var, "")


def decimated_band1(src) -> np.ndarray:
    """Band 1 read decimated to at most QUICKLOOK_MAX_PIXELS a side (from the COG's overviews), float32, NaN = nodata."""
    factor = max(1.0, max(src.height, src.width) / QUICKLOOK_MAX_PIXELS)
    shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
    return src.read(1, out_shape=shape, masked=True).astype("float32").filled(np.nan)


def statistics(a: np.ndarray) -> dict:
    """valid_cells, min, max, mean, std (population) and np.percentile (linear) of the finite cells, float64."""
    v = a[np.isfinite(a)].astype("float64")
    if v.size == 0:
        return {"valid_cells": 0, **{k: None for k in ("min", "max", "mean", "std", *(f"p{p}" for p in PERCENTILES))}}
    pct = np.percentile(v, PERCENTILES)
    return {"valid_cells": int(v.size), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "std": float(v.std()), **{f"p{p}": float(q) for p, q in zip(PERCENTILES, pct)}}


def colormap_of(entry: dict) -> str:
    if entry["variable"] == "sky_view_factor":
        return "gray"
    return {"solar": "inferno", "eemt": "viridis"}.get(entry["kind"], "blues")


def value_range(stats: dict) -> tuple[float, float]:
    """p2..p98, widened to a unit range where it is empty (a constant map) or unknown."""
    lo, hi = stats.get("p2"), stats.get("p98")
    if lo is None or hi is None:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def legend(entry: dict) -> dict:
    from rio_tiler.colormap import cmap

    name = colormap_of(entry)
    table = cmap.get(name)
    colors = ["#{:02x}{:02x}{:02x}".format(*table[round(i * 255 / (LEGEND_STOPS - 1))][:3]) for i in range(LEGEND_STOPS)]
    return {"colormap": name, "vmin": entry["statistics"]["p2"], "vmax": entry["statistics"]["p98"],
            "units": entry["units"], "colors": colors}


def build_index(job_id: str, files: list[tuple[str, Path]]) -> dict:
    """The maps index of a job's result rasters ``files`` ((name under results/, path))."""
    from rio_tiler.io import Reader
    from rio_tiler.constants import WGS84_CRS

    maps = []
    for name, path in files:
        entry = describe(name)
        with rasterio.open(path) as src:
            entry["bands"] = src.count
            entry["statistics"] = statistics(decimated_band1(src))
        entry["tiles_url"] = f"/api/jobs/{job_id}/tiles/{{z}}/{{x}}/{{y}}.png?map={name}"
        entry["legend"] = legend(entry)
        maps.append(entry)
    with Reader(str(files[0][1])) as src:
        bounds = [float(b) for b in src.get_geographic_bounds(WGS84_CRS)]
        minzoom, maxzoom = int(src.minzoom), int(src.maxzoom)
    return {"bounds_lonlat": bounds, "minzoom": minzoom, "maxzoom": maxzoom, "maps": maps}


def job_index(rec: JobRecord, svc: Services) -> dict:
    """The job's maps index, from its cache file or computed (and cached); 404 without result rasters."""
    files = [(name, svc.result_path(rec, name)) for name in rec.results if name.endswith(".tif")]
    files = [(name, path) for name, path in files if path is not None]
    if not files:
        raise HTTPException(404 if rec.purged_at is None else 410, f"job {rec.id} has no result maps"
                            + (" (its files were removed by the retention policy)" if rec.purged_at else ""))
    cache = svc.data.workdir_of(rec.id) / MAPS_INDEX_FILE
    if cache.is_file():
        return json.loads(cache.read_text())
    index = build_index(rec.id, files)
    fd, tmp = tempfile.mkstemp(prefix=".maps_index-", suffix=".json", dir=cache.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(index, fh)
    os.replace(tmp, cache)
    return index


@router.get("/maps", responses=ERRORS, summary="The job's maps: statistics, legends and tile URLs")
def maps(job_id: JobId, rec: Job, svc: ServicesDep) -> dict:
    return job_index(rec, svc)


PNG = {200: {"content": {"image/png": {}}, "description": "256 x 256 RGBA PNG"},
       204: {"description": "the tile lies outside the DEM"}}


@router.get("/tiles/{z}/{x}/{y}.png", responses={**ERRORS, **PNG}, response_class=Response,
            summary="A Web Mercator tile of one single-band map (map = path under results/)")
def tile(job_id: JobId, rec: Job, svc: ServicesDep, z: int = PathParam(ge=0, le=MAX_ZOOM),
         x: int = PathParam(ge=0, le=2 ** MAX_ZOOM - 1), y: int = PathParam(ge=0, le=2 ** MAX_ZOOM - 1),
         map: str = Query(description="a single-band map of the job's index (its path under results/)")):
    if x >= 2 ** z or y >= 2 ** z:
        raise HTTPException(422, f"tile {z}/{x}/{y}: x and y must be below 2^z = {2 ** z}")
    index = job_index(rec, svc)
    entry = next((e for e in index["maps"] if e["path"] == map and e["bands"] == 1), None)
    if entry is None:
        raise HTTPException(404, f"job {job_id} has no single-band map '{map}'; see /api/jobs/{job_id}/maps")
    return _tile_response(svc.result_path(rec, map), entry, z, x, y)


def _tile_response(path: Path, entry: dict, z: int, x: int, y: int) -> Response:
    png = render_tile(path, entry, z, x, y)
    return Response(status_code=204) if png is None else Response(png, media_type="image/png")


def render_tile(path: Path, entry: dict, z: int, x: int, y: int) -> bytes | None:
    """The PNG of tile z/x/y of ``path``, rescaled p2..p98 and colour-mapped; None outside the raster."""
    from rio_tiler.colormap import cmap
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    with Reader(str(path)) as src:
        try:
            img = src.tile(x, y, z, indexes=1)
        except TileOutsideBounds:
            return None
    img.rescale(in_range=(value_range(entry["statistics"]),))
    return img.render(img_format="PNG", colormap=cmap.get(colormap_of(entry)))


@router.get("/point", responses=ERRORS, summary="Every non-daily single-band map's value at a point (EPSG:4326)")
def point(job_id: JobId, rec: Job, svc: ServicesDep, lon: float = Query(ge=-180, le=180),
          lat: float = Query(ge=-90, le=90)) -> dict:
    index = job_index(rec, svc)
    entries = [e for e in index["maps"] if e["bands"] == 1 and e["period"] != "daily"]
    if not entries:
        raise HTTPException(404, f"job {job_id} has no single-band maps")
    return point_values(rec, svc, entries, lon, lat)


def point_values(rec: JobRecord, svc: Services, entries: list[dict], lon: float, lat: float) -> dict:
    first = svc.result_path(rec, entries[0]["path"])
    with rasterio.open(first) as src:
        x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise HTTPException(422, f"lon={lon}, lat={lat} has no place in the DEM's CRS; give a point on the DEM")
        col_f, row_f = ~src.transform @ (x, y)
        row, col = math.floor(row_f), math.floor(col_f)
        if not (0 <= row < src.height and 0 <= col < src.width):
            raise HTTPException(422, f"lon={lon}, lat={lat} lies outside the DEM; see bounds_lonlat of /maps")
    values = []
    for e in entries:
        with rasterio.open(svc.result_path(rec, e["path"])) as src:
            v = src.read(1, window=Window(col, row, 1, 1), masked=True).astype("float64").filled(np.nan)[0, 0]
        values.append({"path": e["path"], "title": e["title"], "units": e["units"],
                       "value": float(v) if math.isfinite(v) else None})
    return {"lon": lon, "lat": lat, "row": row, "col": col, "values": values}
