"""Solar benchmark: cost per day of the eemt-flow GRASS engine against plain r.sun, in one run.

Measures on the same DEM, days and time step:

* ``r.sun internal``: one plain whole-DEM r.sun call per day with r.sun's own shadow search
  (what scripts in the field run today);
* ``grass engine``: eemt-flow's terrain task (r.slope.aspect + r.horizon, once) and solar
  task (r.sun with the horizon maps, topographic and flat runs) on the whole DEM as one tile;
* ``fast engine``: eemt-flow's own kernel, horizons once (numba) and every day (topographic
  and flat runs in one pass), with all the threads numba has;

and prints seconds per day and their ratios, plus how far the internal shadow search lies
from the horizon-map result (mean and 99th percentile of per-pixel relative difference).

    .venv/bin/python benchmarks/solar.py --dem ../shared/data/mcn_10m.tif --days 172,355 --step-minutes 3
    .venv/bin/python benchmarks/solar.py --synthetic-cells 1000 --days 172 --step-minutes 3 --skip-grass-engine --fast-year
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eemt_flow.dem import geography  # noqa: E402
from eemt_flow.dem.example import write_example_dem  # noqa: E402
from eemt_flow.dem.raster import read_dem, write_geotiff  # noqa: E402
from eemt_flow.solar import fast, horizon
from eemt_flow.solar.parameters import parse_days  # noqa: E402
from eemt_flow.terrain.slope import slope_aspect  # noqa: E402
from eemt_flow.workflow.tasks import solar_task, terrain_task  # noqa: E402


def fast_engine(dem, days, step_minutes, halo_m, horizon_step_deg, threads, year=False):
    """(horizon seconds, seconds per day, daily glob_rad maps, seconds for days 1-365 or nan) of the
    fast engine on the whole DEM; ``year`` also times a whole year in one call, as a tile task runs it."""
    elevation = dem.elevation_m.astype("float64")
    lat, axes = geography.cell_geography(dem.crs, dem.transform, dem.shape)
    slope, aspect = slope_aspect(elevation, dem.cell_size_m)
    # compile once on a corner so that the timings exclude numba's JIT (cache=True keeps it)
    corner = (slice(0, 16), slice(0, 16))
    hz = horizon.horizon_angles(elevation[corner], dem.cell_size_m[0], 8, 50.0, n_threads=threads)
    list(fast.daily_radiation(elevation[corner], slope[corner], aspect[corner], lat[corner], hz, [1], n_threads=threads))
    t0 = time.perf_counter()
    horizons = horizon.horizon_angles(elevation, dem.cell_size_m[0], round(360 / horizon_step_deg), halo_m,
                                   geographic_axes=axes, n_threads=threads)
    horizon_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    maps = {r.day: r.glob_rad_wh_m2.astype("float64")
            for r in fast.daily_radiation(elevation, slope, aspect, lat, horizons, days, step_minutes=step_minutes,
                                          linke=3.0, albedo=0.2, n_threads=threads)}
    day_s = (time.perf_counter() - t0) / len(days)
    year_s = float("nan")
    if year:
        t0 = time.perf_counter()
        for _ in fast.daily_radiation(elevation, slope, aspect, lat, horizons, range(1, 366),
                                      step_minutes=step_minutes, linke=3.0, albedo=0.2, n_threads=threads):
            pass
        year_s = time.perf_counter() - t0
    return horizon_s, day_s, maps, year_s


def compare(other: dict, ref: dict) -> dict:
    """Mean and 99th percentile of the per-pixel relative difference [%] per day."""
    out = {}
    for d in ref:
        ok = np.isfinite(ref[d]) & np.isfinite(other[d]) & (ref[d] > 0)
        rel = np.abs(other[d][ok] - ref[d][ok]) / ref[d][ok]
        out[d] = {"mean_pct": 100 * float(rel.mean()), "p99_pct": 100 * float(np.percentile(rel, 99))}
    return out


def plain_rsun(dem_tif: Path, days: list[int], step_hours: float, work: Path) -> tuple[float, dict[int, np.ndarray]]:
    """Whole-DEM r.sun per day with its internal shadow search; returns (seconds per day, maps)."""
    lines = ["set -e", f"r.in.gdal -o --quiet input={dem_tif} output=dem", "g.region raster=dem",
             "r.slope.aspect -e --quiet elevation=dem slope=slope aspect=aspect"]
    timed = []
    for d in days:
        timed.append(f"r.sun --quiet elevation=dem slope=slope aspect=aspect day={d} step={step_hours:.10g} "
                     f"linke_value=3 albedo_value=0.2 nprocs=1 glob_rad=g{d}")
    export = [f"r.out.gdal --quiet -f input=g{d} output={work}/internal_{d}.tif type=Float32" for d in days]
    script = "\n".join(lines + ["start=$(date +%s.%N)"] + timed + ["end=$(date +%s.%N)",
                                                                  "echo \"ELAPSED $start $end\""] + export)
    (work / "plain.sh").write_text(script + "\n")
    env = dict(os.environ, TMPDIR=str(work))
    out = subprocess.run(["grass", "--tmp-location", str(dem_tif), "--exec", "bash", str(work / "plain.sh")],
                         capture_output=True, text=True, env=env, check=True).stdout
    start, end = [float(x) for x in out.split("ELAPSED")[1].split()[:2]]
    maps = {}
    for d in days:
        with rasterio.open(work / f"internal_{d}.tif") as src:
            maps[d] = src.read(1, masked=True).astype("float64").filled(np.nan)
    return (end - start) / len(days), maps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dem", type=Path)
    src.add_argument("--synthetic-cells", type=int,
                     help="use the built-in example terrain at this many cells per side (10 m cells)")
    ap.add_argument("--skip-grass-engine", action="store_true",
                    help="time only plain r.sun and the fast engine (r.horizon at 1° on 1000 x 1000 takes ~10 min)")
    ap.add_argument("--days", default="172,355")
    ap.add_argument("--step-minutes", type=float, default=3.0)
    ap.add_argument("--halo", type=float, default=2000.0, help="horizon search distance [m]")
    ap.add_argument("--horizon-step", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="fast engine threads")
    ap.add_argument("--fast-year", action="store_true",
                    help="also time the fast engine over days 1-365 in one call (as a tile task runs a year)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    days = parse_days(args.days)
    step_hours = args.step_minutes / 60.0
    with tempfile.TemporaryDirectory(prefix="eemt-bench-") as tmp:
        work = Path(tmp)
        if args.synthetic_cells:
            args.dem = work / "synthetic.tif"
            write_example_dem(args.dem, size_cells=args.synthetic_cells, cell_size_m=10.0)
        dem = read_dem(args.dem, max_cells=10**9)
        cells = int(np.isfinite(dem.elevation_m).sum())
        dem_tif = work / "dem.tif"
        write_geotiff(dem_tif, dem.elevation_m, dem.transform, dem.crs)

        terrain_s = grass_day_s = float("nan")
        horizon_maps = None
        if not args.skip_grass_engine:
            t0 = time.perf_counter()
            terrain_task(dem_tif, work / "terrain.tif", work / "horizons.tif", search_distance_m=args.halo,
                         horizon_step_deg=args.horizon_step)
            terrain_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            solar_task(dem_tif, work / "terrain.tif", work / "horizons.tif", days, step_minutes=args.step_minutes,
                       linke=3.0, albedo=0.2, horizon_step_deg=args.horizon_step, out=work / "sum.tif",
                       daily_out=work / "daily.tif")
            grass_day_s = (time.perf_counter() - t0) / len(days)
            with rasterio.open(work / "daily.tif") as src:
                horizon_maps = {d: src.read(i + 1, masked=True).astype("float64").filled(np.nan)
                                for i, d in enumerate(days)}

        internal_day_s, internal_maps = plain_rsun(dem_tif, days, step_hours, work)

    fast_horizon_s, fast_day_s, fast_maps, fast_year_s = fast_engine(dem, days, args.step_minutes, args.halo,
                                                                     args.horizon_step, args.threads, args.fast_year)
    accuracy = compare(internal_maps, horizon_maps) if horizon_maps else {}
    fast_accuracy = compare(fast_maps, horizon_maps) if horizon_maps else {}

    result = {
        "dem": str(args.dem), "shape": list(dem.shape), "valid_cells": cells, "days": days,
        "step_minutes": args.step_minutes, "halo_m": args.halo, "horizon_step_deg": args.horizon_step,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "rsun_internal_s_per_day": internal_day_s,
        "grass_engine_terrain_s": terrain_s,
        "grass_engine_s_per_day": grass_day_s,
        "grass_engine_s_per_day_incl_terrain_365": grass_day_s + terrain_s / 365,
        "fast_engine_horizons_s": fast_horizon_s,
        "fast_engine_s_per_day": fast_day_s,
        "fast_engine_threads": args.threads,
        "fast_engine_year_s": fast_year_s,
        "internal_vs_horizon": accuracy,
        "fast_vs_grass_engine": fast_accuracy,
    }
    print(f"DEM {args.dem} {dem.shape[1]}x{dem.shape[0]} ({cells:,} valid cells), days {args.days}, "
          f"step {args.step_minutes:g} min, halo {args.halo:g} m, horizon step {args.horizon_step:g}°")
    print(f"  r.sun internal shadows, plain per-day call: {internal_day_s:8.2f} s/day")
    print(f"  grass engine terrain (once per tile):       {terrain_s:8.2f} s")
    print(f"  grass engine solar (topo + flat):           {grass_day_s:8.2f} s/day "
          f"(ratio to plain r.sun {grass_day_s / internal_day_s:.2f}x)")
    print(f"  grass engine per day over a 365-day year:   {result['grass_engine_s_per_day_incl_terrain_365']:8.2f} s/day "
          f"(ratio {result['grass_engine_s_per_day_incl_terrain_365'] / internal_day_s:.2f}x)")
    print(f"  fast engine horizons (once per tile):       {fast_horizon_s:8.2f} s")
    print(f"  fast engine solar (topo + flat), {args.threads} threads:  {fast_day_s:8.3f} s/day "
          f"(r.sun internal / fast = {internal_day_s / fast_day_s:.0f}x, "
          f"grass engine / fast = {grass_day_s / fast_day_s:.0f}x)")
    year_fast = fast_horizon_s / 365 + fast_day_s
    year_grass = result["grass_engine_s_per_day_incl_terrain_365"]
    print(f"  per day over a 365-day year, horizons included: fast {year_fast:.3f} s/day, "
          f"r.sun internal / fast = {internal_day_s / year_fast:.0f}x, grass engine / fast = {year_grass / year_fast:.0f}x")
    if args.fast_year:
        print(f"  fast engine, days 1-365 in one call:        {fast_year_s:8.1f} s ({fast_year_s / 365:.3f} s/day); "
              f"with horizons {(fast_year_s + fast_horizon_s) / 60:.1f} min")
        print(f"  a 365-day year: r.sun internal {365 * internal_day_s / 3600:.1f} h (365 x its day), "
              f"fast engine {(fast_year_s + fast_horizon_s) / 60:.1f} min, ratio "
              f"{365 * internal_day_s / (fast_year_s + fast_horizon_s):.0f}x")
    for d, acc in fast_accuracy.items():
        print(f"  day {d}: fast engine vs grass engine (r.sun with horizon maps): mean {acc['mean_pct']:.4f} %, "
              f"p99 {acc['p99_pct']:.3f} %")
    for d, acc in accuracy.items():
        print(f"  day {d}: internal shadow search vs horizon maps: mean {acc['mean_pct']:.2f} %, "
              f"p99 {acc['p99_pct']:.1f} %")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
