"""The reducer: crop halos, mosaic tiles onto the DEM grid, write COGs, summary.json and a PNG.

It holds one tile at a time, never a DEM-sized array. The maps are written in groups (a
month's solar maps, a year's annual EEMT maps, a month's EEMT maps, ...), each finished
before the next is opened, so the temporary disk is bounded by a group: each map is written
tile by tile into an uncompressed tiled GeoTIFF, then copied into a Cloud Optimized GeoTIFF
(GDAL streams the copy and its overviews and compresses with several threads), and its
statistics are accumulated as it is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from eemt_flow.dem.raster import read_float32
from eemt_flow.dem.tiles import Tile, crop_core
from eemt_flow.workflow.layout import SKY_VIEW_RESULT, SOLAR_VARIABLES
from eemt_flow.workflow.stac import write_item

#: Units of each solar variable, per month (monthly maps) and per day (daily maps).
UNITS = {
    "glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "flat_glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "insol_time": ("h month-1", "h day-1"),
}
#: Longest side of a quick-look PNG [pixels]; larger maps are read decimated (from the COG's overviews).
QUICKLOOK_MAX_PIXELS = 1000
#: Compression of the result COGs: deflate with the floating-point predictor (about 30 % smaller
#: than without it, at the same speed; measured on a 1,500 x 1,500 EEMT-TOPO job, docs/performance.md).
COG_OPTIONS = {"compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER"}


def _read(path: Path, indexes: list[int] | None = None) -> np.ndarray:
    """Bands (1-based ``indexes``; default all) of a raster as float32, NaN where nodata."""
    with rasterio.open(path) as src:
        return src.read(indexes, masked=True).astype("float32").filled(np.nan)


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
    """A group of maps of the DEM grid written a window at a time, finished as COGs (see the
    module docstring); ``threads`` compress each COG."""

    def __init__(self, grid: dict, stack: ExitStack, threads: int = 1):
        self.transform, self.crs = Affine(*grid["transform"]), CRS.from_wkt(grid["crs_wkt"])
        self.height, self.width = grid["height"], grid["width"]
        self.stack, self.threads = stack, max(1, int(threads))
        self.open: dict[Path, tuple] = {}

    def add(self, path: Path, window: Window, bands: np.ndarray, descriptions: list[str] | None = None) -> None:
        """Write ``bands`` (n, rows, cols) or (rows, cols) at ``window`` of the map ``path``."""
        bands = bands if bands.ndim == 3 else bands[np.newaxis]
        if path not in self.open:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".mosaic.tif")
            # uncompressed: compressing it too would cost as much again as the COG (measured)
            dst = self.stack.enter_context(rasterio.open(
                part, "w", driver="GTiff", width=self.width, height=self.height, count=bands.shape[0],
                dtype="float32", crs=self.crs, transform=self.transform, nodata=float("nan"), tiled=True,
                blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER"))
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
            rasterio.shutil.copy(part, path, driver="COG", num_threads=self.threads, **COG_OPTIONS)
            part.unlink()
            out[path] = [s.as_dict() for s in stats]
        self.open.clear()
        return out


def reduce_threads() -> int:
    """Threads that compress the COGs: the cores this process may use, at most 8 (the reducer
    runs on the manager, after every other task of the job)."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def write_group(grid: dict, threads: int, write) -> dict[Path, list[dict]]:
    """Run ``write(maps)`` on a fresh :class:`MapWriter` and finish its maps: one group."""
    with ExitStack() as stack:
        maps = MapWriter(grid, stack, threads)
        write(maps)
        return maps.finish()


def tile_nodata(workdir: Path, entry: dict) -> np.ndarray:
    """Where the tile's core is nodata in the DEM it was computed from (its core window only is read)."""
    tile = Tile.from_dict(entry)
    staged = entry["files"].get("dem_window")
    rows, cols = tile.core_in(Window(*staged)) if staged else tile.core_in_halo
    with rasterio.open(workdir / entry["files"]["dem"]) as src:
        return ~np.isfinite(read_float32(src, Window(cols.start, rows.start, tile.width, tile.height)))


class NodataMasks:
    """Each tile's nodata mask (None where it has none), read from its DEM core at most once per
    group. A tile found to have no nodata is remembered by its name and not read again, so the
    many groups of a job read the DEM of its edge tiles only (profiled at 10^8 cells: reading
    every tile's mask took 16 s of a 74 s month group, cold from disk, and a job has 27 groups).
    It holds names, not cells: memory grows with the number of tiles."""

    def __init__(self, workdir: Path):
        self.workdir, self.clean = workdir, set()

    def __call__(self, entry: dict) -> np.ndarray | None:
        if entry["name"] in self.clean:
            return None
        mask = tile_nodata(self.workdir, entry)
        if not mask.any():
            self.clean.add(entry["name"])
            return None
        return mask


def tile_core(workdir: Path, entry: dict, file_key: str, key, nodata: np.ndarray | None,
              indexes: list[int] | None = None) -> np.ndarray:
    """The core of bands ``indexes`` (1-based; default all) of the tile's ``file_key`` file
    (month or year ``key``), NaN where the DEM is nodata (``nodata``; None: nowhere)."""
    tile = Tile.from_dict(entry)
    data = crop_core(tile, _read(workdir / entry["files"][file_key][str(key)], indexes))  # JSON keys are strings
    if nodata is not None:
        data[:, nodata] = np.nan
    return data


def tiles_with_nodata(job: dict, masks: NodataMasks):
    """(entry, core window, nodata mask or None) of each tile, one at a time."""
    for entry in job["tiles"]:
        yield entry, Tile.from_dict(entry).core_window, masks(entry)


class RunningSum:
    """A float64 map of the DEM grid that windows are added into, on disk (an uncompressed tiled
    GeoTIFF, 8 bytes a cell): the months' global radiation summed as the month groups are
    written, instead of reading every tile's months again (3.6 min at 10^8 cells, measured)."""

    def __init__(self, grid: dict, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.dst = rasterio.open(path, "w+", driver="GTiff", width=grid["width"], height=grid["height"], count=1,
                                 dtype="float64", crs=CRS.from_wkt(grid["crs_wkt"]), transform=Affine(*grid["transform"]),
                                 tiled=True, blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")

    def add(self, window: Window, values: np.ndarray) -> None:
        # a block never written reads as 0.0 (the file has no nodata value): the sum starts from zeros
        self.dst.write(self.dst.read(1, window=window) + values, 1, window=window)

    def read(self, window: Window) -> np.ndarray:
        return self.dst.read(1, window=window)

    def close(self) -> None:
        self.dst.close()
        self.path.unlink()


def reduce_job(workdir: Path) -> dict:
    """Write ``results/`` of the job planned in ``workdir``; return the summary."""
    workdir = Path(workdir)
    job = json.loads((workdir / "job.json").read_text())
    grid, threads = job["grid"], reduce_threads()
    results = workdir / "results"
    keep_daily = job["parameters"]["keep_daily"]
    total_path = results / ".total_glob_rad.tif"
    solar_indexes = list(range(1, len(SOLAR_VARIABLES) + 1))

    month_stats = {mm: {"days": days, "n_days": len(days)} for mm, days in job["months"].items()}
    masks = NodataMasks(workdir)
    running = RunningSum(grid, results / ".total_glob_rad.f64.tif")
    for mm, days in job["months"].items():
        def write_month(maps: MapWriter, mm=mm, days=days) -> None:
            for entry, window, nodata in tiles_with_nodata(job, masks):
                month = tile_core(workdir, entry, "solar", int(mm), nodata, solar_indexes)
                running.add(window, month[0])
                for var, band in zip(SOLAR_VARIABLES, month):
                    maps.add(results / "solar" / "monthly" / f"{var}_{mm}.tif", window, band)
                if keep_daily:
                    daily = tile_core(workdir, entry, "daily", int(mm), nodata)
                    for i, var in enumerate(SOLAR_VARIABLES):
                        for j, day in enumerate(days):
                            maps.add(results / "solar" / "daily" / f"{var}_day{day:03d}.tif", window,
                                     daily[i * len(days) + j])

        written = write_group(grid, threads, write_month)
        for var in SOLAR_VARIABLES:
            month_stats[mm][var] = written[results / "solar" / "monthly" / f"{var}_{mm}.tif"][0]

    def write_total(maps: MapWriter) -> None:  # the sum of the months' global radiation, for the quick look
        for entry in job["tiles"]:
            window = Tile.from_dict(entry).core_window
            maps.add(total_path, window, running.read(window).astype("float32"))

    total_stats = write_group(grid, threads, write_total)[total_path][0]
    running.close()

    sky_view_stats = reduce_sky_view(job, workdir, masks, threads)
    eemt_stats = reduce_eemt(job, workdir, masks) if job.get("eemt") else None

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
        "sky_view_factor": dict(sky_view_stats, units="1", source="Dozier & Frew (1990) Eq. 7b from the horizons "
                                "of the solar tasks (fast) or r.horizon (grass)") if sky_view_stats is not None else None,
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
    write_item(job, summary, results)
    return summary


def reduce_sky_view(job: dict, workdir: Path, masks: NodataMasks, threads: int) -> dict | None:
    """Mosaic the tiles' sky view factor (the fast engine's) into results/terrain/; its statistics,
    or None where the job has none."""
    if not any(entry["files"].get("sky_view") for entry in job["tiles"]):
        return None
    path = workdir / SKY_VIEW_RESULT

    def write_sky_view(maps: MapWriter) -> None:
        for entry, window, nodata in tiles_with_nodata(job, masks):
            svf = crop_core(Tile.from_dict(entry), _read(workdir / entry["files"]["sky_view"]))
            if nodata is not None:
                svf[:, nodata] = np.nan
            maps.add(path, window, svf, ["sky_view_factor"])

    return write_group(job["grid"], threads, write_sky_view)[path][0]


def terrain_figures(workdir: Path) -> dict:
    """The tiled terrain's whole-DEM figures (the domain mean of the wetness index)."""
    from eemt_flow.terrain.stages import TERRAIN_DIR

    with np.load(workdir / TERRAIN_DIR / "wetness_mean.npz") as f:
        return {"mean_wetness_index": float(f["mean"])}


def reduce_eemt(job: dict, workdir: Path, masks: NodataMasks) -> dict:
    """Mosaic the EEMT tiles: annual and monthly maps per model and year, means, terrain, PNGs."""
    from eemt_flow.terrain.stages import TERRAIN_DIR, terrain_grid
    from eemt_flow.workflow.layout import TERRAIN_RESULTS
    from eemt_flow.workflow.tasks import QA_LAYERS, REAL_SKY_BANDS, eemt_bands

    results = workdir / "results"
    grid, threads = job["grid"], reduce_threads()
    meta = job["eemt"]
    models, years = meta["models"], meta["years"]
    per_model = len(eemt_bands(models[0]))
    real_sky = bool(meta.get("real_sky"))
    qa_names = [f"{name}: {text}" for name, text in QA_LAYERS.items()]

    def band(model: str, name: str) -> int:
        """The 1-based band of ``model``'s band ``name`` (:func:`eemt_bands`) in a tile's EEMT file."""
        return models.index(model) * per_model + eemt_bands(model).index(name) + 1

    def write_terrain(maps: MapWriter) -> None:
        for t in terrain_grid((grid["height"], grid["width"]), job["parameters"]["tile_size_cells"]).tiles:
            for name in TERRAIN_RESULTS:
                maps.add(results / "terrain" / f"{name}.tif", t.window,
                         _read(workdir / TERRAIN_DIR / t.name / f"{name}.tif")[0])

    write_group(grid, threads, write_terrain)
    stats: dict = {}
    for year in years:
        def write_annual(maps: MapWriter, year=year) -> None:
            names = [(model, q) for model in models for q in ("EEMT", "E_PPT", "E_BIO", *QA_LAYERS)]
            for entry, window, nodata in tiles_with_nodata(job, masks):
                data = dict(zip(names, tile_core(workdir, entry, "eemt", year, nodata,
                                                 [band(model, f"{q}_{model}") for model, q in names])))
                for model in models:
                    for q in ("EEMT", "E_PPT", "E_BIO"):
                        maps.add(results / "eemt" / f"{q}_{model}_{year}.tif", window, data[model, q])
                    maps.add(results / "eemt" / f"QA_{model}_{year}.tif", window,
                             np.stack([data[model, name] for name in QA_LAYERS]), descriptions=qa_names)

        written = write_group(grid, threads, write_annual)
        for model in models:
            for q in ("EEMT", "E_PPT", "E_BIO"):
                stats.setdefault(model, {}).setdefault(year, {})[q] = \
                    written[results / "eemt" / f"{q}_{model}_{year}.tif"][0]
        for m in range(1, 13):
            def write_monthly(maps: MapWriter, year=year, m=m) -> None:
                names = [(model, q) for model in models for q in ("E_PPT", "E_BIO")]
                for entry, window, nodata in tiles_with_nodata(job, masks):
                    data = tile_core(workdir, entry, "eemt", year, nodata,
                                     [band(model, f"{q}_{model}_m{m:02d}") for model, q in names])
                    for (model, q), values in zip(names, data):
                        maps.add(results / "eemt" / "monthly" / f"{q}_{model}_{year}_{m:02d}.tif", window, values)

            write_group(grid, threads, write_monthly)
    if len(years) > 1:
        def write_mean(maps: MapWriter) -> None:
            for entry, window, nodata in tiles_with_nodata(job, masks):
                for model in models:
                    annual = [tile_core(workdir, entry, "eemt", year, nodata, [band(model, f"EEMT_{model}")])[0]
                              for year in years]
                    maps.add(results / "eemt" / f"EEMT_{model}_mean.tif", window, np.mean(annual, axis=0))

        written = write_group(grid, threads, write_mean)
        for model in models:
            stats[model]["mean"] = {"EEMT": written[results / "eemt" / f"EEMT_{model}_mean.tif"][0]}
    if real_sky:
        # real-sky radiation: the mean day of each month, averaged over the years [Wh m-2 day-1]
        real_stats = {}
        for m in range(1, 13):
            path = results / "solar" / "monthly" / f"glob_rad_real_{m:02d}.tif"

            def write_real(maps: MapWriter, m=m, path=path) -> None:
                index = per_model * len(models) + REAL_SKY_BANDS.index(f"glob_rad_real_m{m:02d}") + 1
                for entry, window, nodata in tiles_with_nodata(job, masks):
                    real = [tile_core(workdir, entry, "eemt", year, nodata, [index])[0].astype("float64")
                            for year in years]
                    maps.add(path, window, np.mean(real, axis=0).astype("float32"))

            real_stats[f"{m:02d}"] = write_group(grid, threads, write_real)[path][0]
        stats["glob_rad_real_wh_m2_day"] = real_stats
    for model in models:
        for year in years:
            quicklook_png(results / "eemt" / f"EEMT_{model}_{year}.tif", results / "eemt" / f"EEMT_{model}_{year}.png",
                          title=f"EEMT-{model.replace('_', '-')} {year}", label="EEMT [MJ m⁻² yr⁻¹]")
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
