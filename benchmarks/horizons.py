"""Horizon cost against the search distance: the stencil sweep and Dozier's hull method, one run.

The default method (``auto``) is the sweep up to ``SWEEP_MAX_CELLS`` and the hull beyond; its
line is derived from the two measured ones. A tile's horizons are computed for its core (``--core`` x ``--core`` cells) while the rays
sample a halo of the search distance around it, as ``eemt-flow task solar-fast`` does. For
each search distance (in cells) both methods run on the same synthetic terrain and the
seconds, ns per cell-azimuth and the ratios are printed, with the hull method's agreement
with the sweep (share of cell-azimuths within 0.5 degree). The targets (issue 12): the hull
method's time at 3,000 cells within 1.5 x its time at 200 cells, and at 200 cells no slower
than the sweep.

    .venv/bin/python benchmarks/horizons.py                       # 1000 x 1000, 200/1000/3000 cells
    .venv/bin/python benchmarks/horizons.py --core 300 --azimuths 36 --distances 200,1000

Memory: the DEM with a 3,000-cell halo is 7,000 x 7,000 float32 (196 MB), with its transpose and
the two max pyramids (for the hull's coarse far field) about 520 MB; the horizon stack of a
1000 x 1000 core with 360 azimuths is 1.44 GB float32.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from eemt_flow.solar import horizon


def synthetic_dem_m(n_cells, cell_m, seed=12):
    """Ridges, valleys and rough detail: 0-1,100 m relief at 10 m cells, slopes up to ~45 degrees."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n_cells, 0:n_cells].astype(np.float32) * np.float32(cell_m)
    dem = (1500.0 + 400.0 * np.sin(x / 3000.0) * np.cos(y / 2300.0)
           + 150.0 * np.sin((x + 2.0 * y) / 900.0) + 40.0 * np.sin(x / 170.0) * np.cos(y / 230.0))
    dem += rng.normal(0.0, 1.0, dem.shape).astype(np.float32)
    return dem.astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", type=int, default=1000, help="core side [cells]")
    parser.add_argument("--cell-m", type=float, default=10.0)
    parser.add_argument("--azimuths", type=int, default=horizon.DEFAULT_N_AZIMUTHS)
    parser.add_argument("--distances", default="200,1000,3000", help="search distances [cells], comma-separated")
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    parser.add_argument("--methods", default="sweep,hull")
    args = parser.parse_args()
    distances = [int(d) for d in args.distances.split(",")]
    methods = args.methods.split(",")
    core, cell = args.core, args.cell_m
    print(f"core {core} x {core} cells of {cell} m, {args.azimuths} azimuths, {args.threads} threads, "
          f"hull near field {horizon.NEAR_FIELD_CELLS} cells, full resolution to {horizon.FAR_FIELD_CELLS} cells "
          f"past the core, the max pyramid beyond")
    # compile before timing (cache=True keeps the machine code afterwards)
    small = synthetic_dem_m(300, cell)
    for method in methods:
        horizon.horizon_angles(small, cell, 8, 2 * horizon.NEAR_FIELD_CELLS * cell, n_threads=args.threads,
                               method=method)

    seconds = {}
    for dist in distances:
        dem = synthetic_dem_m(core + 2 * dist, cell)
        result = {}
        for method in methods:
            t0 = time.perf_counter()
            result[method] = horizon.horizon_angles(dem, cell, args.azimuths, dist * cell, n_threads=args.threads,
                                                    window=(dist, dist, core, core), method=method)
            seconds[method, dist] = time.perf_counter() - t0
            ns = seconds[method, dist] / (core * core * args.azimuths) * 1e9
            print(f"{dist:5d} cells ({dist * cell / 1000:g} km), {method:5s}: {seconds[method, dist]:8.2f} s "
                  f"({ns:6.1f} ns per cell-azimuth)", flush=True)
        if {"sweep", "hull"} <= set(result):
            diff_deg = np.degrees(np.abs(result["hull"] - result["sweep"]))
            print(f"{dist:5d} cells: hull within 0.5 deg of the sweep for {100 * np.mean(diff_deg <= 0.5):.3f} % "
                  f"of cell-azimuths (p99 {np.percentile(diff_deg, 99):.3f} deg); "
                  f"sweep / hull = {seconds['sweep', dist] / seconds['hull', dist]:.2f} x", flush=True)
        del dem, result
    if {"sweep", "hull"} <= set(methods):
        # what the default runs: the sweep up to SWEEP_MAX_CELLS, the hull beyond
        for dist in distances:
            seconds["auto", dist] = seconds["sweep" if dist <= horizon.SWEEP_MAX_CELLS else "hull", dist]
        methods = methods + ["auto"]
    for method in methods:
        base = seconds[method, distances[0]]
        ratios = ", ".join(f"{d}: {seconds[method, d] / base:.2f} x" for d in distances[1:])
        print(f"{method}: time relative to {distances[0]} cells -- {ratios}")


if __name__ == "__main__":
    main()
