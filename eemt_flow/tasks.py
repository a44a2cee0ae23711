"""Task entry points: what the Makeflow rules call (``eemt-flow task …``).

Each reads only the files its rule declares and writes only the files it declares, so a
Work Queue worker with no shared file system can run it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from .dem import write_geotiff
from .solar import grass

#: Band names of a tile's monthly solar file (sums over the month's requested days).
MONTHLY_BANDS = ("glob_rad_wh_m2", "flat_glob_rad_wh_m2", "insol_time_h")
#: Daily arrays in the order the monthly bands use.
DAILY_KEYS = ("glob_rad_wh_m2", "flat_glob_rad_wh_m2", "insol_time_h")


def terrain_task(dem: Path, terrain_out: Path, horizons_out: Path, *, search_distance_m: float,
                 horizon_step_deg: float) -> None:
    grass.compute_terrain(dem, terrain_out, horizons_out, search_distance_m=search_distance_m,
                          horizon_step_deg=horizon_step_deg)


def solar_task(dem: Path, terrain: Path, horizons: Path, days: list[int], *, step_minutes: float, linke: float,
               albedo: float, horizon_step_deg: float, out: Path, daily_out: Path | None = None) -> None:
    """Daily radiation for ``days`` on one tile, summed into ``out`` (3 bands, see MONTHLY_BANDS).

    With ``daily_out`` the daily maps are kept too: bands ``{variable}_day{DDD}``, variable-major.
    """
    daily = grass.compute_days(dem, terrain, horizons, days, step_hours=step_minutes / 60.0, linke=linke,
                               albedo=albedo, horizon_step_deg=horizon_step_deg)
    with rasterio.open(dem) as src:
        transform, crs = src.transform, src.crs
    if daily_out is not None:
        stack = np.concatenate([daily[k] for k in DAILY_KEYS])
        names = [f"{k}_day{d:03d}" for k in DAILY_KEYS for d in days]
        write_geotiff(daily_out, stack, transform, crs, descriptions=names)
    sums = np.stack([daily[k].sum(axis=0, dtype="float64") for k in DAILY_KEYS])
    write_geotiff(out, sums, transform, crs, descriptions=list(MONTHLY_BANDS))
