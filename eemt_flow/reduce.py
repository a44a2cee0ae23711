"""The reducer: crop halos, mosaic tiles onto the DEM grid, write COGs, summary.json and a PNG."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio import Affine
from rasterio.crs import CRS

from .dem import write_geotiff
from .plan import SOLAR_VARIABLES
from .tasks import MONTHLY_BANDS
from .tiles import Tile, crop_core

#: Units of each solar variable, per month (monthly maps) and per day (daily maps).
UNITS = {
    "glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "flat_glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "insol_time": ("h month-1", "h day-1"),
}


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(masked=True).astype("float32").filled(np.nan)


def _stats(a: np.ndarray) -> dict:
    v = a[np.isfinite(a)]
    if v.size == 0:
        return {"valid_cells": 0}
    return {"valid_cells": int(v.size), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "std": float(v.std())}


def mosaic(job: dict, workdir: Path, file_key: str, key: str, n_bands: int) -> np.ndarray:
    """Place the core of every tile's ``file_key`` file (month or year ``key``) into a DEM-sized stack.

    Files of the halo window are cropped to the core; files of the core only are placed as they are
    (:func:`crop_core`).
    """
    grid = job["grid"]
    out = np.full((n_bands, grid["height"], grid["width"]), np.nan, dtype="float32")
    for entry in job["tiles"]:
        tile = Tile.from_dict(entry)
        data = _read(workdir / entry["files"][file_key][str(key)])  # JSON keys are strings
        out[:, tile.row : tile.row + tile.height, tile.col : tile.col + tile.width] = crop_core(tile, data)
    return out


def reduce_job(workdir: Path) -> dict:
    """Write ``results/`` of the job planned in ``workdir``; return the summary."""
    workdir = Path(workdir)
    job = json.loads((workdir / "job.json").read_text())
    grid = job["grid"]
    transform = Affine(*grid["transform"])
    crs = CRS.from_wkt(grid["crs_wkt"])
    with rasterio.open(workdir / job["dem_input"]) as src:
        dem_nodata = ~np.isfinite(src.read(1).astype("float32"))
    results = workdir / "results"
    keep_daily = job["parameters"]["keep_daily"]

    month_stats = {}
    total_glob = np.zeros((grid["height"], grid["width"]), dtype="float64")
    for mm, days in job["months"].items():
        month = int(mm)
        stack = mosaic(job, workdir, "solar", month, len(MONTHLY_BANDS))
        stack[:, dem_nodata] = np.nan
        month_stats[mm] = {"days": days, "n_days": len(days)}
        for var, band in zip(SOLAR_VARIABLES, stack):
            write_geotiff(results / "solar" / "monthly" / f"{var}_{mm}.tif", band, transform, crs, cog=True)
            month_stats[mm][var] = _stats(band)
        total_glob += stack[0]
        if keep_daily:
            daily = mosaic(job, workdir, "daily", month, 3 * len(days))
            daily[:, dem_nodata] = np.nan
            for i, var in enumerate(SOLAR_VARIABLES):
                for j, day in enumerate(days):
                    write_geotiff(results / "solar" / "daily" / f"{var}_day{day:03d}.tif", daily[i * len(days) + j],
                                  transform, crs, cog=True)
    total_glob[dem_nodata] = np.nan

    eemt_stats = reduce_eemt(job, workdir, transform, crs, dem_nodata) if job.get("eemt") else None

    summary = {
        "eemt_flow_summary": 1,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": job["parameters"],
        "step_hours": job["parameters"]["step_minutes"] / 60.0,
        "halo_m": job["halo_m"],
        "halo_source": job["halo_source"],
        "tiles": len(job["tiles"]),
        "grid": {k: grid[k] for k in ("width", "height", "transform", "cell_size_m")},
        "crs": crs.to_string(),
        "units": {var: UNITS[var][0] for var in SOLAR_VARIABLES},
        "shadows": "r.horizon maps (negative angles clamped at 0), search distance = halo; not r.sun's internal search",
        "months": month_stats,
        "total_glob_rad_wh_m2": _stats(total_glob),
        "eemt": dict(job["eemt"], units="MJ m-2 yr-1 (annual), MJ m-2 month-1 (monthly)", statistics=eemt_stats)
        if eemt_stats is not None else None,
        "software": job["software"],
    }
    (results / "summary.json").write_text(json.dumps(summary, indent=2))
    quicklook_png(total_glob / 1000.0, results / "glob_rad_quicklook.png",
                  title=f"Global radiation, sum of {sum(len(d) for d in job['months'].values())} day(s)",
                  label="kWh m⁻²")
    return summary


def reduce_eemt(job: dict, workdir: Path, transform, crs, dem_nodata: np.ndarray) -> dict:
    """Mosaic the EEMT tiles: annual and monthly maps per model and year, means, terrain, PNGs."""
    from .plan import TERRAIN_RESULTS, WHOLE_TERRAIN
    from .tasks import QA_LAYERS, REAL_SKY_BANDS, eemt_bands

    results = workdir / "results"
    for name, band in zip(TERRAIN_RESULTS, _read(workdir / WHOLE_TERRAIN)):
        write_geotiff(results / "terrain" / f"{name}.tif", band, transform, crs, cog=True)
    meta = job["eemt"]
    models, years = meta["models"], meta["years"]
    per_model = len(eemt_bands(models[0]))
    n_real = len(REAL_SKY_BANDS) if meta.get("real_sky") else 0
    real_sum = None
    stats: dict = {}
    for year in years:
        stack = mosaic(job, workdir, "eemt", year, per_model * len(models) + n_real)
        stack[:, dem_nodata] = np.nan
        if n_real:
            real = stack[per_model * len(models):].astype("float64")
            real_sum = real if real_sum is None else real_sum + real
        for k, model in enumerate(models):
            block = dict(zip(eemt_bands(model), stack[k * per_model : (k + 1) * per_model]))
            for q in ("EEMT", "E_PPT", "E_BIO"):
                write_geotiff(results / "eemt" / f"{q}_{model}_{year}.tif", block[f"{q}_{model}"], transform, crs,
                              cog=True)
                stats.setdefault(model, {}).setdefault(year, {})[q] = _stats(block[f"{q}_{model}"])
            for q in ("E_PPT", "E_BIO"):
                for m in range(1, 13):
                    write_geotiff(results / "eemt" / "monthly" / f"{q}_{model}_{year}_{m:02d}.tif",
                                  block[f"{q}_{model}_m{m:02d}"], transform, crs, cog=True)
            write_geotiff(results / "eemt" / f"QA_{model}_{year}.tif",
                          np.stack([block[f"{name}_{model}"] for name in QA_LAYERS]), transform, crs, cog=True,
                          descriptions=[f"{name}: {text}" for name, text in QA_LAYERS.items()])
            quicklook_png(block[f"EEMT_{model}"], results / "eemt" / f"EEMT_{model}_{year}.png",
                          title=f"EEMT-{model.replace('_', '-')} {year}", label="EEMT [MJ m⁻² yr⁻¹]")
    if n_real:  # the mean day of each month, averaged over the years [Wh m-2 day-1]
        for m, band in enumerate(real_sum / len(years), start=1):
            write_geotiff(results / "solar" / "monthly" / f"glob_rad_real_{m:02d}.tif", band.astype("float32"),
                          transform, crs, cog=True)
            stats.setdefault("glob_rad_real_wh_m2_day", {})[f"{m:02d}"] = _stats(band)
    if len(years) > 1:
        for model in models:
            maps = [_read(results / "eemt" / f"EEMT_{model}_{y}.tif")[0] for y in years]
            mean = np.mean(maps, axis=0)
            write_geotiff(results / "eemt" / f"EEMT_{model}_mean.tif", mean, transform, crs, cog=True)
            stats[model]["mean"] = {"EEMT": _stats(mean)}
    return stats


def quicklook_png(array: np.ndarray, path: Path, *, title: str, label: str) -> None:
    """A PNG map with a colour bar and units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    img = ax.imshow(np.ma.masked_invalid(array), cmap="inferno")
    ax.set_title(title)
    ax.set_axis_off()
    fig.colorbar(img, ax=ax, label=label, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
