"""A job's results as one STAC Item (results/stac/item.json), with the projection and raster extensions.

Pure: ``stac_item(job, summary, results, stats)`` reads the result maps' headers (their statistics come
from the reducer's partial sums) and returns a
``pystac.Item``; the reducer writes it. Asset hrefs are relative to results/stac/ (``../solar/...``).

Datetimes: an EEMT job models calendar years (job["eemt"]["years"]): the item spans 1 January 00:00 UTC
of the first year to 31 December 23:59:59 UTC of the last. A solar-only job models days of year with no
calendar year: they are placed in the non-leap reference year SOLAR_REFERENCE_YEAR, from the first
modelled day 00:00 UTC to the last modelled day 23:59:59 UTC, and ``eemt:days_of_year`` lists the days. An EEMT job on climate normals
(years ["normals"]) spans the whole reference year.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pyproj import Transformer
from rasterio.crs import CRS

#: Non-leap year in which a solar-only job's days of year are placed (convention, see docs/outputs).
SOLAR_REFERENCE_YEAR = 2001
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: A map of the VRT form (eemt_flow.workflow.vrt): GDAL's XML over block COGs.
VRT_MEDIA_TYPE = "application/xml"
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_SCHEMA = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
#: Points per grid edge when the grid's outline is transformed to WGS84 (edges curve in lon/lat).
EDGE_POINTS = 21


def _bbox_lonlat(grid: dict) -> list[float]:
    a, b, c, d, e, f = grid["transform"][:6]
    w, h = grid["width"], grid["height"]
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    cols = np.concatenate([t * w, np.full_like(t, w), t[::-1] * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), t[::-1] * h])
    x, y = a * cols + b * rows + c, d * cols + e * rows + f
    lon, lat = Transformer.from_crs(CRS.from_wkt(grid["crs_wkt"]).to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
    return [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]


def _date_range(job: dict) -> tuple[_dt.datetime, _dt.datetime]:
    utc = _dt.timezone.utc
    years = [int(y) for y in (job.get("eemt") or {}).get("years") or [] if str(y).isdigit()]
    if years:
        return _dt.datetime(min(years), 1, 1, tzinfo=utc), _dt.datetime(max(years), 12, 31, 23, 59, 59, tzinfo=utc)
    jan1 = _dt.datetime(SOLAR_REFERENCE_YEAR, 1, 1, tzinfo=utc)
    if job.get("eemt"):   # climate normals: a climatological year, no calendar year
        return jan1, _dt.datetime(SOLAR_REFERENCE_YEAR, 12, 31, 23, 59, 59, tzinfo=utc)
    days = sorted(int(d) for ds in job["months"].values() for d in ds)
    jan1 = _dt.datetime(SOLAR_REFERENCE_YEAR, 1, 1, tzinfo=utc)
    return (jan1 + _dt.timedelta(days=days[0] - 1),
            jan1 + _dt.timedelta(days=days[-1] - 1, hours=23, minutes=59, seconds=59))


def _band_info(path: Path, units: str | None, stats: list[dict]) -> tuple[dict, list[dict]]:
    """The projection of a map (from its header) and its bands, with ``stats``: the partial sums
    of each band's statistics (:class:`eemt_flow.workflow.reduce.Stats`), so no map is read."""
    from eemt_flow.workflow.reduce import Stats

    with rasterio.open(path) as src:
        proj = {"proj:code": f"EPSG:{src.crs.to_epsg()}" if src.crs.to_epsg() else None,
                "proj:shape": [src.height, src.width], "proj:transform": list(src.transform)[:6],
                "proj:bbox": list(src.bounds)}
        if proj["proj:code"] is None:
            del proj["proj:code"]
            proj["proj:wkt2"] = src.crs.to_wkt()
        bands = []
        for i in range(1, src.count + 1):
            merged = Stats.from_sums(stats[i - 1]).as_dict()
            band_stats = {"valid_percent": 100.0 * merged["valid_cells"] / (src.height * src.width)}
            if merged["valid_cells"]:
                band_stats.update(minimum=merged["min"], maximum=merged["max"], mean=merged["mean"],
                                  stddev=merged["std"])
            band = {"nodata": "nan", "data_type": src.dtypes[i - 1], "statistics": band_stats}
            if units or src.units[i - 1]:
                band["unit"] = units or src.units[i - 1]
            bands.append(band)
    return proj, bands


def _maps(job: dict, summary: dict) -> list[dict]:
    """Every map of the job's results (its planned list: the COGs, or the VRTs of the VRT form)."""
    units = summary.get("units", {})
    out = []
    for rel in sorted(f.removeprefix("results/") for f in job["results"] if f.endswith((".tif", ".vrt"))):
        stem = Path(rel).stem
        var = stem.rsplit("_", 1)[0] if stem.rsplit("_", 1)[-1].isdigit() else stem
        out.append({"path": rel, "title": rel, "units": units.get(var) if rel.startswith("solar/monthly/") else None})
    return out


def stac_item(job: dict, summary: dict, results: Path, stats: dict[str, list[dict]]) -> pystac.Item:
    """The STAC Item describing the results under ``results`` of ``job`` (hrefs relative to
    results/stac/); ``stats``: the partial sums of each map's bands, by the map's single-COG path
    (``results/solar/monthly/glob_rad_06.tif``)."""
    results = Path(results)
    grid = job["grid"]
    bbox = _bbox_lonlat(grid)
    west, south, east, north = bbox
    geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                     [west, south]]]}
    start, end = _date_range(job)
    props = {"start_datetime": start.isoformat(), "end_datetime": end.isoformat(),
             "eemt:parameters": job["parameters"], "eemt:software": job["software"]}
    if not any(str(y).isdigit() for y in (job.get("eemt") or {}).get("years") or []):
        props["eemt:days_of_year"] = sorted(int(d) for ds in job["months"].values() for d in ds)
        props["eemt:reference_year"] = SOLAR_REFERENCE_YEAR
    item = pystac.Item(id=str(job.get("job_id") or job.get("id") or results.parent.name), geometry=geometry,
                       bbox=bbox, datetime=None, properties=props,
                       stac_extensions=[PROJECTION_SCHEMA, RASTER_SCHEMA])
    for entry in _maps(job, summary):
        logical = "results/" + entry["path"].removesuffix(".vrt").removesuffix(".tif") + ".tif"
        proj, bands = _band_info(results / entry["path"], entry.get("units"), stats[logical])
        media = VRT_MEDIA_TYPE if entry["path"].endswith(".vrt") else COG_MEDIA_TYPE
        item.add_asset(entry["path"], pystac.Asset(href=f"../{entry['path']}", media_type=media,
                                                   title=entry.get("title") or entry["path"], roles=["data"],
                                                   extra_fields={**proj, "raster:bands": bands}))
    if (results / "summary.json").exists():
        item.add_asset("summary", pystac.Asset(href="../summary.json", media_type=pystac.MediaType.JSON,
                                               title="Job summary", roles=["metadata"]))
    for png in sorted(results.rglob("*.png")):
        rel = png.relative_to(results).as_posix()
        item.add_asset(rel, pystac.Asset(href=f"../{rel}", media_type=pystac.MediaType.PNG,
                                         title=f"Quick look: {png.stem.replace('_', ' ')}",
                                         roles=["overview", "thumbnail"]))
    return item


def write_item(job: dict, summary: dict, results: Path, stats: dict[str, list[dict]]) -> Path:
    """Write results/stac/item.json (``stats``: :func:`stac_item`); return its path."""
    path = Path(results) / "stac" / "item.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    item = stac_item(job, summary, results, stats)
    item.set_self_href(None)
    path.write_text(json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False), indent=2))
    return path
