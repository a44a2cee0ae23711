"""What the hull's coarse far field costs in accuracy, next to what the model itself resolves.

Issue 24's steep winter case: seeded steep hills (``_steep_hills`` of tests/solar/test_horizons.py:
Gaussian hills and fractal detail, 1,000 m of relief, 10 m cells), a 10 km search, 360
azimuths, daily global radiation of day 355 at 30-minute steps (Linke 3.0, albedo 0.2), byte
horizons as r.sun stores them (1/150 rad). The reference is the hull with no far field (the same
lines at full resolution everywhere). Printed for each variant: the share of angles within
0.1 and 0.5 degree of the reference and glob_rad's per-pixel relative difference (p99, p99.9,
max, cells above 0.5 % and above 2 %):

- the far field (the default, 128 full-resolution cells past a group of 256 origins);
- the reference's angles raised by 0.01 and 0.1 degree everywhere, and with uniform noise of
  +-0.1 degree: what any horizon error of that size does to the same model.

    .venv/bin/python benchmarks/far_field_sensitivity.py            # 600 x 600 cells
    .venv/bin/python benchmarks/far_field_sensitivity.py --cells 1200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "solar"))
from test_horizons import _steep_hills  # noqa: E402  (the tests' seeded steep DEM)

from eemt_flow.dem import geography  # noqa: E402
from eemt_flow.solar import fast, horizon, horizon_kernels  # noqa: E402
from eemt_flow.terrain.slope import slope_aspect  # noqa: E402

SEARCH_DISTANCE_M = 10_000.0
DAY, STEP_MINUTES, LINKE, ALBEDO = 355, 30, 3.0, 0.2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=600, help="side of the square DEM [cells]")
    args = parser.parse_args()
    dem, cell, crs, transform = _steep_hills(args.cells)
    lat, axes = geography.cell_geography(crs, transform, dem.shape)
    slope, aspect = slope_aspect(dem, (cell, cell))
    lat_range = (float(lat.mean()), float(lat.min()), float(lat.max()))

    def glob_rad(angles):
        stored = np.empty(angles.shape, np.uint8)
        horizon_kernels.quantize(angles.copy(), fast.R_SUN_HORIZON_RESOLUTION_RAD, stored)
        day = next(iter(fast.daily_radiation(dem, slope, aspect, lat, stored, [DAY], step_minutes=STEP_MINUTES,
                                             linke=LINKE, albedo=ALBEDO, reference_lat_deg=lat_range)))
        return day.glob_rad_wh_m2.astype(float)

    t0 = time.perf_counter()
    full = horizon.horizon_angles(dem, cell, 360, SEARCH_DISTANCE_M, geographic_axes=axes, method="hull",
                                  far_field_cells=None)
    t1 = time.perf_counter()
    far = horizon.horizon_angles(dem, cell, 360, SEARCH_DISTANCE_M, geographic_axes=axes, method="hull")
    t2 = time.perf_counter()
    print(f"{args.cells}^2 cells of {cell:g} m, 10 km search, 360 azimuths: full resolution {t1 - t0:.1f} s, "
          f"far field {t2 - t1:.1f} s")
    g_full = glob_rad(full)
    rng = np.random.default_rng(1)
    variants = [("far field (default)", far),
                ("reference + 0.01 deg", full + np.float32(np.radians(0.01))),
                ("reference + 0.1 deg", full + np.float32(np.radians(0.1))),
                ("reference + U(-0.1, 0.1) deg", full + np.radians(rng.uniform(-0.1, 0.1, full.shape)).astype(full.dtype))]
    print("| variant | angles within 0.1° / 0.5° | glob_rad p99 | p99.9 | max | cells > 0.5 % | cells > 2 % |")
    print("|---|---|---|---|---|---|---|")
    for name, angles in variants:
        d_deg = np.degrees(np.abs(angles - full))
        rel = np.abs(glob_rad(angles) - g_full) / g_full
        print(f"| {name} | {100 * (d_deg <= 0.1).mean():.3f} % / {100 * (d_deg <= 0.5).mean():.4f} % | "
              f"{100 * np.percentile(rel, 99):.4f} % | {100 * np.percentile(rel, 99.9):.4f} % | {100 * rel.max():.2f} % | "
              f"{100 * (rel > 0.005).mean():.4f} % | {int((rel > 0.02).sum())} |")


if __name__ == "__main__":
    main()
