"""Tiled terrain against the whole-DEM terrain: wall time per stage, small-file sizes, exchange memory.

Runs :func:`eemt_flow.terrain.whole_dem.compute_terrain` and the tiled stages of
:mod:`eemt_flow.terrain.stages` (in Makeflow order, one process) on the same DEM, checks that
the filled elevations are equal bit for bit and the catchment areas to 1e-6, and prints the
seconds of each stage summed over tiles, the bytes of the small files the exchanges read, and
each exchange's peak RSS rise in a fresh process. The numba kernels are compiled (or loaded
from the cache) by a warm-up run first. ``--groups`` runs the tiled stages once per exchange
group size (one at least as wide as the tile grid is the single exchange of all tiles) and
prints the exchanges' tasks and the largest peak of each kind.

    .venv/bin/python benchmarks/terrain_tiled.py --dem ../shared/data/mcn_10m.tif --tile 64
    .venv/bin/python benchmarks/terrain_tiled.py --size 2000 --tile 500            # synthetic
    .venv/bin/python benchmarks/terrain_tiled.py --size 2000 --tile 500 --lake     # + a 1000² flat lake
    .venv/bin/python benchmarks/terrain_tiled.py --size 4000 --tile 125 --groups 32,4   # the exchanges in groups
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from eemt_flow.terrain import stages as S
from eemt_flow.terrain.whole_dem import compute_terrain

CELL_M = 10.0


def synthetic_dem_m(n: int, lake: bool, seed: int = 0) -> np.ndarray:
    """Sloping wavy terrain with noise, a bowl that fills into a lake, a flat plateau (cm, float32)."""
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[0:n, 0:n].astype(float)
    z = 500.0 - 0.05 * i - 0.03 * j + 8.0 * np.sin(i / 23.0) * np.cos(j / 31.0) + 3.0 * np.sin((i + j) / 11.0)
    z += rng.normal(0.0, 0.4, size=z.shape)
    z -= 15.0 * np.exp(-(np.hypot(i - n * 0.45, j - n * 0.5) / (0.25 * n)) ** 2)
    z[int(n * 0.1):int(n * 0.3), int(n * 0.6):int(n * 0.9)] = 520.0
    if lake:  # a hydro-flattened lake half the DEM wide, draining east through a channel
        z[n // 4:3 * n // 4, n // 4:3 * n // 4] = 400.0
        z[n // 2, 3 * n // 4:] = 399.0
    return np.round(z, 2).astype(np.float32).astype(float)


_EXCHANGE_RSS = """
import sys
from eemt_flow.terrain import stages as S
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
stage, work, group = sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3:]]
before = status("VmRSS:")
S.STAGE_FUNCTIONS[stage](*group, work)
print(status("VmHWM:") - before)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dem", type=Path, help="a GeoTIFF DEM (default: a synthetic one)")
    ap.add_argument("--size", type=int, default=2000, help="synthetic DEM edge [cells]")
    ap.add_argument("--lake", action="store_true", help="add a flat lake half the DEM wide")
    ap.add_argument("--tile", type=int, default=500, help="tile edge [cells]")
    ap.add_argument("--groups", default="", help="exchange group sizes to compare, e.g. 32,4,2")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="terrain-tiled-"))
    if args.dem:
        dem_path = args.dem
    else:
        dem_path = tmp / "dem.tif"
        dem = synthetic_dem_m(args.size, args.lake)
        with rasterio.open(dem_path, "w", driver="GTiff", width=dem.shape[1], height=dem.shape[0], count=1,
                           dtype="float32", crs="EPSG:32612", transform=from_origin(500000, 4000000, CELL_M, CELL_M),
                           nodata=np.nan) as dst:
            dst.write(dem.astype(np.float32)[np.newaxis])
    with rasterio.open(dem_path) as src:
        dem = S.read_dem_window(src, 0, 0, src.height, src.width)
        cell = (abs(src.transform.a), abs(src.transform.e))
    S.run_tiled_terrain(dem_path, args.tile, tmp / "warm")

    t0 = time.perf_counter()
    ref = compute_terrain(dem, cell)
    t_whole = time.perf_counter() - t0
    work = tmp / "work"
    rules = S.stage_list(dem.shape, args.tile)
    seconds = collections.defaultdict(float)
    t0 = time.perf_counter()
    for rule in rules:
        t1 = time.perf_counter()
        rule.call(dem_path, work)
        seconds[rule.stage] += time.perf_counter() - t1
    t_tiled = time.perf_counter() - t0
    grid = S.terrain_grid(dem.shape, args.tile)
    print(f"DEM {dem.shape[0]} x {dem.shape[1]}, {len(grid.tiles)} tiles of {args.tile}, {len(rules)} tasks")
    print(f"compute_terrain {t_whole:.2f} s   run_tiled_terrain {t_tiled:.2f} s")
    for stage, s in seconds.items():
        print(f"  {stage:14s} {s:7.2f} s")
    base = work / S.TERRAIN_DIR
    for name in ("fill_graph", "flat_graph", "flow_graph", "filled_edge"):
        files = list(base.glob(f"*/{name}.npz"))
        print(f"  {name}.npz: {sum(f.stat().st_size for f in files) / 2**20:.2f} MiB in {len(files)} files")
    flow = [np.load(f) for f in base.glob("*/flow_graph.npz")]
    flat = [np.load(f) for f in base.glob("*/flat_graph.npz")]
    print(f"  perimeter cells {sum(len(g['perim_z']) for g in flow)}, transfer entries "
          f"{sum(len(g['m_value']) for g in flow)}, crossing cells {sum(len(g['cross_level']) for g in flat)}, "
          f"pair distances {sum(len(g['pair_a']) for g in flat)}, open-flat tiles {sum(bool(g['open_flat']) for g in flat)}")
    for stage in ("fill_exchange", "flat_exchange", "flow_exchange"):
        out = subprocess.run([sys.executable, "-c", _EXCHANGE_RSS, stage, str(work)], capture_output=True, text=True,
                             check=True)
        print(f"  {stage} peak RSS rise {int(out.stdout.split()[-1]) / 2**20:.1f} MiB (incl. loading the kernels)")
    _check(work, grid, dem, ref)
    for g in [int(v) for v in args.groups.split(",") if v]:
        _grouped(dem_path, dem, ref, args.tile, g, tmp / f"group{g}")


def _check(work, grid, dem, ref) -> None:
    filled = S.read_mosaic(work, grid, "filled_m")
    sca = S.read_mosaic(work, grid, "specific_catchment_area_m")
    ok = ~np.isnan(dem)
    print(f"filled equal bit for bit: {np.array_equal(filled, ref.filled_dem_m, equal_nan=True)}; "
          f"max relative SCA difference {np.max(np.abs(sca[ok] / ref.specific_catchment_area_m[ok] - 1)):.2e}")


def _grouped(dem_path, dem, ref, tile, group, work) -> None:
    """The tiled stages with the exchanges in groups of ``group`` × ``group``: their tasks' seconds,
    declared memory and measured peak RSS rise (each task in a fresh process)."""
    rules = S.stage_list(dem.shape, tile, group)
    fill = tuple(f"{kind}_{step}" for kind in ("fill", "flat", "flow") for step in ("up", "exchange", "down"))
    seconds = collections.defaultdict(float)
    peak = collections.defaultdict(int)
    declared = collections.defaultdict(int)
    count = collections.Counter()
    for rule in rules:
        if rule.stage in fill:
            args = [str(v) for v in ((rule.group.level, rule.group.gi, rule.group.gj) if rule.group else ())]
            t1 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _EXCHANGE_RSS, rule.stage, str(work), *args],
                                 capture_output=True, text=True, check=True)
            seconds[rule.stage] += time.perf_counter() - t1
            peak[rule.stage] = max(peak[rule.stage], int(out.stdout.split()[-1]))
            declared[rule.stage] = max(declared[rule.stage], rule.memory_bytes)
            count[rule.stage] += 1
        else:
            rule.call(dem_path, work)
    grid = S.terrain_grid(dem.shape, tile, group_tiles=group)
    print(f"exchange groups of {group} x {group}: {len(S.exchange_levels(grid))} level(s)")
    for stage in fill:
        if count[stage]:
            print(f"  {stage:14s} {count[stage]:4d} tasks, {seconds[stage]:6.2f} s (fresh processes), largest peak RSS "
                  f"rise {peak[stage] / 2**20:7.1f} MiB, declared {declared[stage] / 2**20:7.1f} MiB")
    _check(work, grid, dem, ref)


if __name__ == "__main__":
    main()
