"""Timing of the fast solar engine on a synthetic 1000 x 1000 DEM at 3-minute steps.

Times a whole year as the engine runs it (one call, every day): the horizons (once per
tile), then every day, and prints a few days' ms per day and ns per cell-step
(cell-steps = cells x steps with the Sun above the horizontal; the first day includes
the one-off set-up), and the measured total.  Target: a year on 1000 x 1000 in under
10 minutes on 2 cores.

    .venv/bin/python benchmarks/solar_fast_kernel.py --threads 2

``--days 1,91,172`` times only those days and projects a 365-day year from their mean.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from eemt_flow.solar import fast, horizon, sun
from eemt_flow.terrain.slope import slope_aspect


def synthetic_dem_m(n_cells, cell_m):
    """Ridges and valleys, 0-900 m relief, slopes up to about 40 degrees."""
    y, x = np.mgrid[0:n_cells, 0:n_cells] * cell_m
    return (1500.0 + 300.0 * np.sin(x / 900.0) * np.cos(y / 1300.0)
            + 150.0 * np.sin((x + 2.0 * y) / 400.0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--cell-m", type=float, default=10.0)
    parser.add_argument("--azimuths", type=int, default=horizon.DEFAULT_N_AZIMUTHS)
    parser.add_argument("--max-distance-m", type=float, default=2000.0)
    parser.add_argument("--step-minutes", type=float, default=3.0)
    parser.add_argument("--days", default="1-365", help="comma-separated days, or FIRST-LAST")
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    args = parser.parse_args()
    if "-" in args.days:
        first, last = (int(d) for d in args.days.split("-"))
        days = list(range(first, last + 1))
    else:
        days = [int(d) for d in args.days.split(",")]
    shown = {days[0], 1, 91, 172, 274, 355, days[-1]}

    dem = synthetic_dem_m(args.cells, args.cell_m)
    slope, aspect = slope_aspect(dem, args.cell_m)
    lat = np.full(dem.shape, 35.9)
    print(f"{args.cells} x {args.cells} cells of {args.cell_m} m, relief {dem.max() - dem.min():.0f} m, "
          f"max slope {slope.max():.1f} deg, {args.azimuths} azimuths, {args.max_distance_m:.0f} m search, "
          f"{args.step_minutes} min steps, {args.threads} threads")

    # compile on a small tile first so that timings exclude JIT (cache=True keeps it afterwards)
    small = dem[:32, :32]
    h_small = horizon.horizon_angles(small, args.cell_m, 8, 100.0, n_threads=args.threads)
    list(fast.daily_radiation(small, slope[:32, :32], aspect[:32, :32], lat[:32, :32], h_small, [1],
                              args.step_minutes, n_threads=args.threads))

    t0 = time.perf_counter()
    hor = horizon.horizon_angles(dem, args.cell_m, args.azimuths, args.max_distance_m, n_threads=args.threads)
    t_hor = time.perf_counter() - t0
    print(f"horizons: {t_hor:.1f} s once per tile ({hor.nbytes / 2**30:.2f} GiB float32)")

    step_h = args.step_minutes / 60.0
    per_day, cell_steps = [], 0
    # one call for all days, as the engine is used: set-up (byte horizons, static terms) once
    t_start = t0 = time.perf_counter()
    cpu_start = cpu0 = time.process_time()
    for res in fast.daily_radiation(dem, slope, aspect, lat, hor, days, args.step_minutes,
                                    n_threads=args.threads):
        dt = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        decl = sun.declination_rad(res.day)
        omega = sun.hour_angle_rad(sun.step_midpoints_h(step_h))
        n_steps = int(np.sum(sun.sin_solar_altitude(np.deg2rad(35.9), decl, omega) > 0))
        per_day.append(dt)
        cell_steps += dem.size * n_steps
        if res.day in shown:
            print(f"day {res.day:3d}: {1000 * dt:8.1f} ms/day wall ({cpu:.2f} s CPU), {n_steps} steps, "
                  f"{1e9 * dt / (dem.size * n_steps):6.2f} ns per cell-step (wall), "
                  f"mean glob {np.nanmean(res.glob_rad_wh_m2):.0f} Wh/m2")
        t0 = time.perf_counter()
        cpu0 = time.process_time()
    t_rad = time.perf_counter() - t_start
    cpu_rad = time.process_time() - cpu_start
    print(f"{len(days)} days: {t_rad:.1f} s wall ({cpu_rad:.1f} s CPU), median {1000 * np.median(per_day):.0f} ms/day, "
          f"{1e9 * t_rad / cell_steps:.2f} ns per cell-step (wall, set-up included)")
    if len(days) >= 365:
        print(f"measured year: {t_rad:.0f} s radiation + {t_hor:.0f} s horizons = {(t_rad + t_hor) / 60:.1f} min")
    else:
        year_s = t_hor + 365 * float(np.mean(per_day))
        print(f"projected year: {365 * np.mean(per_day):.0f} s radiation + {t_hor:.0f} s horizons = "
              f"{year_s / 60:.1f} min")

if __name__ == "__main__":
    main()
