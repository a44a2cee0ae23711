"""Scale: the planner reads the DEM in blocks and its memory does not grow with the DEM."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from eemt_flow.dem import open_dem, read_dem
from eemt_flow.dem_scan import scan_dem
from eemt_flow.solar.geography import cell_latitudes_deg
from eemt_flow.tiles import make_tiles

from conftest import REPO

#: Peak resident memory allowed to the planner on a 4000 x 4000 DEM [MiB] (issue 13).
PLANNER_PEAK_MIB_4000 = 300


def _write_synthetic(path, n, *, hole=None):
    """A smooth n x n DEM (10 m cells) written in strips, so the test itself stays small; ``hole``:
    (row0, row1, col0, col1) set to nodata."""
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:32613",
                   transform=from_origin(400000, 4000000, 10, 10), nodata=float("nan"), tiled=True,
                   compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, n, 500):
            h = min(500, n - r)
            y, x = np.mgrid[r:r + h, 0:n].astype("float64")
            z = (2000 + 300 * np.sin(x / 300) * np.cos(y / 250) + 0.05 * x).astype("float32")
            if hole is not None:
                r0, r1, c0, c1 = hole
                z[max(r0 - r, 0):max(min(r1 - r, h), 0), c0:c1] = np.nan
            dst.write(z[np.newaxis], window=Window(0, r, n, h))


# The planner's own peak: VmHWM of its process. getrusage's ru_maxrss would not do here: Linux
# carries it across fork and exec, so a child of pytest starts with pytest's peak.
PEAK_SCRIPT = """
import re, sys
from click.testing import CliRunner
from eemt_flow.cli import cli
result = CliRunner().invoke(cli, sys.argv[1:])
status = open("/proc/self/status").read()
print(result.exit_code, re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


def test_planner_peak_memory_on_4000_by_4000_stays_under_300_mib(tmp_path):
    """An EEMT job on 16 million cells plans in one process that peaks under 300 MiB
    (the whole DEM as float32 alone is 61 MiB; the planner before issue 13 needed ~7.5 GB)."""
    dem = tmp_path / "dem4000.tif"
    _write_synthetic(dem, 4000)
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, "plan", "--dem", str(dem), "--workdir", str(work),
                           "--climate", f"station:{REPO / 'examples' / 'station_normals.csv'}",
                           "--station-elevation", "2300", "--model", "trad,topo", "--days", "1-365"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    exit_code, peak_kib = map(int, proc.stdout.split()[-2:])
    assert exit_code == 0, proc.stdout + proc.stderr
    peak_mib = peak_kib / 1024
    print(f"planner peak RSS on 4000 x 4000: {peak_mib:.0f} MiB")
    assert peak_mib < PLANNER_PEAK_MIB_4000
    job = json.loads((work / "job.json").read_text())
    assert len(job["tiles"]) == 64  # 4000 / 500 = 8 x 8
    # relief of the synthetic surface, from the scan: z spans about 2000 ± 300 + 0.05 x (x up to 3999.5)
    assert 600 < job["grid"]["relief_m"] < 800
    # no DEM-sized file was written by the planner: only job.json, the rules and the climate
    sizes = sorted(p.stat().st_size for p in work.rglob("*") if p.is_file())
    assert sizes[-1] < 2_000_000


def test_scan_equals_the_dem_in_memory(tmp_path, monkeypatch):
    """The block scan finds what the whole DEM in memory shows: relief, the tiles that hold a
    valid cell (with a nodata hole covering whole tiles), and the latitude range — with blocks
    much smaller than the DEM, so that several blocks and block borders are crossed."""
    import eemt_flow.dem_scan as dem_scan

    dem_path = tmp_path / "holed.tif"
    _write_synthetic(dem_path, 700, hole=(100, 420, 0, 330))
    monkeypatch.setattr(dem_scan, "SCAN_BLOCK_CELLS", 10_000)  # blocks of one 100 x 100 tile
    grid = open_dem(dem_path, max_cells=10**8)
    scan = scan_dem(grid, 100)
    dem = read_dem(dem_path, max_cells=10**8)
    valid = np.isfinite(dem.elevation_m)
    assert scan.min_m == float(np.nanmin(dem.elevation_m)) and scan.max_m == float(np.nanmax(dem.elevation_m))
    assert scan.valid_cells == int(valid.sum()) and scan.has_3x3
    # tiles at rows 100-399 and columns 0-299 lie wholly inside the hole (rows 100-419, columns
    # 0-329): 3 x 3 tiles dropped; the tiles the hole only touches stay
    expected = np.array([[valid[r:r + 100, c:c + 100].any() for c in range(0, 700, 100)] for r in range(0, 700, 100)])
    assert (~expected).sum() == 9
    np.testing.assert_array_equal(scan.tile_valid, expected)
    tiles = make_tiles(grid.shape, grid.cell_size_m, 100, 50.0, scan.tile_valid)
    assert len(tiles) == 49 - 9
    lat = cell_latitudes_deg(dem.crs, dem.transform, dem.shape)[valid]
    assert scan.lat_deg[1:] == (lat.min(), lat.max())
    assert abs(scan.lat_deg[0] - lat.mean()) < 1e-10
