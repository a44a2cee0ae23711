"""The reducer: crop halos, mosaic tiles onto the DEM grid, write COGs, summary.json and a PNG.

It holds one tile at a time, never a DEM-sized array: each map is written tile by tile into
a tiled GeoTIFF, then copied into a Cloud Optimized GeoTIFF (GDAL streams the copy and its
overviews), and its statistics are accumulated as it is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from .dem import read_float32
from .plan import SOLAR_VARIABLES
from .tiles import Tile, crop_core

#: Units of each solar variable, per month (monthly maps) and per day (daily maps).
UNITS = {
    "glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "flat_glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "insol_time": ("h month-1", "h day-1"),
}
#: Longest side of a quick-look PNG [pixels]; larger maps are read decimated (from the COG's overviews).
QUICKLOOK_MAX_PIXELS = 1000


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(masked=True).astype("float32").filled(np.nan)


class Stats:
    """Running statistics of the valid cells of a map: count, min, max, mean, std (float64 sums)."""

    def __init__(self):
        self.n, self.lo, self.hi, self.total, self.total_sq = 0, math.inf, -math.inf, 0.0, 0.0

    def add(self, a: np.ndarray) -> None:
        v = a[np.isfinite(a)].astype("float64")
        if v.size:
            self.n += v.size
            self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
            self.total += float(v.sum())
            self.total_sq += float(np.dot(v, v))

    def as_dict(self) -> dict:
        if self.n == 0:
            return {"valid_cells": 0}
        mean = self.total / self.n
        return {"valid_cells": self.n, "min": self.lo, "max": self.hi, "mean": mean,
                "std": math.sqrt(max(self.total_sq / self.n - mean * mean, 0.0))}


class MapWriter:
    """Maps of the DEM grid written a window at a time, finished as COGs (see the module docstring)."""

    def __init__(self, grid: dict, stack: ExitStack):
        self.transform, self.crs = Affine(*grid["transform"]), CRS.from_wkt(grid["crs_wkt"])
        self.height, self.width = grid["height"], grid["width"]
        self.stack = stack
        self.open: dict[Path, tuple] = {}

    def add(self, path: Path, window: Window, bands: np.ndarray, descriptions: list[str] | None = None) -> None:
        """Write ``bands`` (n, rows, cols) or (rows, cols) at ``window`` of the map ``path``."""
        bands = bands if bands.ndim == 3 else bands[np.newaxis]
        if path not in self.open:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".mosaic.tif")
            dst = self.stack.enter_context(rasterio.open(
                part, "w", driver="GTiff", width=self.width, height=self.height, count=bands.shape[0],
                dtype="float32", crs=self.crs, transform=self.transform, nodata=float("nan"), tiled=True,
                blockxsize=256, blockysize=256, compress="deflate", predictor=3, BIGTIFF="IF_SAFER"))
            if descriptions:
                for i, text in enumerate(descriptions, start=1):
                    dst.set_band_description(i, text)
            self.open[path] = (dst, part, [Stats() for _ in range(bands.shape[0])])
        dst, _, stats = self.open[path]
        dst.write(bands.astype("float32", copy=False), window=window)
        for s, band in zip(stats, bands):
            s.add(band)

    def finish(self) -> dict[Path, list[dict]]:
        """Close every map, copy each into its COG; the statistics of each band."""
        out = {}
        for path, (dst, part, stats) in self.open.items():
            dst.close()
            rasterio.shutil.copy(part, path, driver="COG", compress="deflate", BIGTIFF="IF_SAFER")
            part.unlink()
            out[path] = [s.as_dict() for s in stats]
        self.open.clear()
        return out


def tile_nodata(workdir: Path, entry: dict) -> np.ndarray:
    """Where the tile's core is nodata in the DEM it was computed from (its core window only is read)."""
    tile = Tile.from_dict(entry)
    staged = entry["files"].get("dem_window")
    rows, cols = tile.core_in(Window(*staged)) if staged else tile.core_in_halo
    with rasterio.open(workdir / entry["files"]["dem"]) as src:
        return ~np.isfinite(read_float32(src, Window(cols.start, rows.start, tile.width, tile.height)))


def tile_core(workdir: Path, entry: dict, file_key: str, key, nodata: np.ndarray) -> np.ndarray:
    """The core of the tile's ``file_key`` file (month or year ``key``), NaN where the DEM is nodata."""
    tile = Tile.from_dict(entry)
    data = crop_core(tile, _read(workdir / entry["files"][file_key][str(key)]))  # JSON keys are strings
    data[:, nodata] = np.nan
    return data


def reduce_job(workdir: Path) -> dict:
    """Write ``results/`` of the job planned in ``workdir``; return the summary."""
    workdir = Path(workdir)
    job = json.loads((workdir / "job.json").read_text())
    grid = job["grid"]
    results = workdir / "results"
    keep_daily = job["parameters"]["keep_daily"]
    total_path = results / ".total_glob_rad.tif"

    month_stats = {mm: {"days": days, "n_days": len(days)} for mm, days in job["months"].items()}
    with ExitStack() as stack:
        maps = MapWriter(grid, stack)
        for entry in job["tiles"]:
            tile = Tile.from_dict(entry)
            nodata = tile_nodata(workdir, entry)
            total = np.zeros(nodata.shape, dtype="float64")
            for mm, days in job["months"].items():
                month = tile_core(workdir, entry, "solar", int(mm), nodata)
                for var, band in zip(SOLAR_VARIABLES, month):
                    maps.add(results / "solar" / "monthly" / f"{var}_{mm}.tif", tile.core_window, band)
                total += month[0]
                if keep_daily:
                    daily = tile_core(workdir, entry, "daily", int(mm), nodata)
                    for i, var in enumerate(SOLAR_VARIABLES):
                        for j, day in enumerate(days):
                            maps.add(results / "solar" / "daily" / f"{var}_day{day:03d}.tif", tile.core_window,
                                     daily[i * len(days) + j])
            total[nodata] = np.nan
            maps.add(total_path, tile.core_window, total.astype("float32"))
        written = maps.finish()
    for mm in job["months"]:
        for var in SOLAR_VARIABLES:
            month_stats[mm][var] = written[results / "solar" / "monthly" / f"{var}_{mm}.tif"][0]
    total_stats = written[total_path][0]

    eemt_stats = reduce_eemt(job, workdir) if job.get("eemt") else None

    summary = {
        "eemt_flow_summary": 1,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": job["parameters"],
        "step_hours": job["parameters"]["step_minutes"] / 60.0,
        "halo_m": job["halo_m"],
        "halo_source": job["halo_source"],
        "tiles": len(job["tiles"]),
        "grid": {k: grid[k] for k in ("width", "height", "transform", "cell_size_m")},
        "crs": CRS.from_wkt(grid["crs_wkt"]).to_string(),
        "units": {var: UNITS[var][0] for var in SOLAR_VARIABLES},
        "shadows": "r.horizon maps (negative angles clamped at 0), search distance = halo; not r.sun's internal search",
        "months": month_stats,
        "total_glob_rad_wh_m2": total_stats,
        "eemt": dict(job["eemt"], units="MJ m-2 yr-1 (annual), MJ m-2 month-1 (monthly)", statistics=eemt_stats,
                     **terrain_figures(workdir))
        if eemt_stats is not None else None,
        "software": job["software"],
    }
    (results / "summary.json").write_text(json.dumps(summary, indent=2))
    quicklook_png(total_path, results / "glob_rad_quicklook.png",
                  title=f"Global radiation, sum of {sum(len(d) for d in job['months'].values())} day(s)",
                  label="kWh m⁻²", scale=1e-3)
    total_path.unlink()
    return summary


def terrain_figures(workdir: Path) -> dict:
    """The tiled terrain's whole-DEM figures (the domain mean of the wetness index)."""
    from .terrain_stages import TERRAIN_DIR

    with np.load(workdir / TERRAIN_DIR / "wetness_mean.npz") as f:
        return {"mean_wetness_index": float(f["mean"])}


def reduce_eemt(job: dict, workdir: Path) -> dict:
    """Mosaic the EEMT tiles: annual and monthly maps per model and year, means, terrain, PNGs."""
    from .plan import TERRAIN_RESULTS
    from .tasks import QA_LAYERS, REAL_SKY_BANDS, eemt_bands
    from .terrain_stages import TERRAIN_DIR, terrain_grid

    results = workdir / "results"
    meta = job["eemt"]
    models, years = meta["models"], meta["years"]
    per_model = len(eemt_bands(models[0]))
    n_real = len(REAL_SKY_BANDS) if meta.get("real_sky") else 0
    stats: dict = {}
    qa_names = [f"{name}: {text}" for name, text in QA_LAYERS.items()]
    with ExitStack() as stack:
        maps = MapWriter(job["grid"], stack)
        grid = job["grid"]
        for t in terrain_grid((grid["height"], grid["width"]), job["parameters"]["tile_size_cells"]).tiles:
            for name in TERRAIN_RESULTS:
                maps.add(results / "terrain" / f"{name}.tif", t.window, _read(workdir / TERRAIN_DIR / t.name / f"{name}.tif")[0])
        for entry in job["tiles"]:
            window = Tile.from_dict(entry).core_window
            nodata = tile_nodata(workdir, entry)
            annual = {model: [] for model in models}
            real = []
            for year in years:
                data = tile_core(workdir, entry, "eemt", year, nodata)
                if n_real:
                    real.append(data[per_model * len(models):].astype("float64"))
                for k, model in enumerate(models):
                    block = dict(zip(eemt_bands(model), data[k * per_model: (k + 1) * per_model]))
                    annual[model].append(block[f"EEMT_{model}"])
                    for q in ("EEMT", "E_PPT", "E_BIO"):
                        maps.add(results / "eemt" / f"{q}_{model}_{year}.tif", window, block[f"{q}_{model}"])
                    for q in ("E_PPT", "E_BIO"):
                        for m in range(1, 13):
                            maps.add(results / "eemt" / "monthly" / f"{q}_{model}_{year}_{m:02d}.tif", window,
                                     block[f"{q}_{model}_m{m:02d}"])
                    maps.add(results / "eemt" / f"QA_{model}_{year}.tif", window,
                             np.stack([block[f"{name}_{model}"] for name in QA_LAYERS]), descriptions=qa_names)
            if len(years) > 1:
                for model in models:
                    maps.add(results / "eemt" / f"EEMT_{model}_mean.tif", window, np.mean(annual[model], axis=0))
            # real-sky radiation: the mean day of each month, averaged over the years [Wh m-2 day-1]
            for m, band in enumerate(np.mean(real, axis=0) if real else [], start=1):
                maps.add(results / "solar" / "monthly" / f"glob_rad_real_{m:02d}.tif", window, band.astype("float32"))
        written = maps.finish()
    for model in models:
        for year in years:
            for q in ("EEMT", "E_PPT", "E_BIO"):
                stats.setdefault(model, {}).setdefault(year, {})[q] = written[results / "eemt" / f"{q}_{model}_{year}.tif"][0]
            quicklook_png(results / "eemt" / f"EEMT_{model}_{year}.tif", results / "eemt" / f"EEMT_{model}_{year}.png",
                          title=f"EEMT-{model.replace('_', '-')} {year}", label="EEMT [MJ m⁻² yr⁻¹]")
        if len(years) > 1:
            stats[model]["mean"] = {"EEMT": written[results / "eemt" / f"EEMT_{model}_mean.tif"][0]}
    if n_real:
        stats["glob_rad_real_wh_m2_day"] = {
            f"{m:02d}": written[results / "solar" / "monthly" / f"glob_rad_real_{m:02d}.tif"][0] for m in range(1, 13)}
    return stats


def quicklook_png(raster: Path, path: Path, *, title: str, label: str, scale: float = 1.0) -> None:
    """A PNG map of a raster's first band (read decimated when large) with a colour bar and units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with rasterio.open(raster) as src:
        factor = max(1.0, max(src.height, src.width) / QUICKLOOK_MAX_PIXELS)
        shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
        array = src.read(1, out_shape=shape, masked=True).astype("float32").filled(np.nan) * scale
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    img = ax.imshow(np.ma.masked_invalid(array), cmap="inferno")
    ax.set_title(title)
    ax.set_axis_off()
    fig.colorbar(img, ax=ax, label=label, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
