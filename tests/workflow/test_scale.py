"""Scale: the planner reads the DEM in blocks and its memory does not grow with the DEM."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from eemt_flow.dem.geography import cell_latitudes_deg
from eemt_flow.dem.raster import open_dem, read_dem
from eemt_flow.dem.scan import scan_dem
from eemt_flow.dem.tiles import make_tiles

from conftest import REPO, rerun_in_strips

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
    import eemt_flow.dem.scan as dem_scan

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


def test_tiles_keep_the_halo_as_the_hull_reads_it(tmp_path):
    """With the hull method a tile keeps its halo reduced (halo.npz: full resolution within 130 cells of
    the core, max pyramid levels beyond) and dem.tif holds only its core and one ring; the solar-fast
    task's monthly sums equal, bit for bit, the same function run on the tile's whole halo window."""
    from conftest import run_cli

    from eemt_flow.dem.tiles import Tile
    from eemt_flow.solar.far_field import near_margin_cells
    from eemt_flow.solar.fast_tile import SunReference, tile_daily_radiation

    dem = tmp_path / "dem.tif"
    _write_synthetic(dem, 500, hole=(300, 310, 20, 120))
    work = tmp_path / "work"
    # 2.5 km of halo on 10 m cells: past 128 cells the lines read pyramid levels 1 and 2
    # one day a month (EEMT needs every month); June is day 172 alone, December day 355
    run_cli("run", "--dem", dem, "--workdir", work, "--days", "15,46,75,105,135,172,196,227,258,288,319,355",
            "--step-minutes", "60",
            "--horizon-step", "10", "--halo", "2500", "--tile-size", "250", "--horizon-method", "hull",
            "--climate", f"station:{REPO / 'examples/station_normals.csv'}", "--station-elevation", "2300",
            "--model", "topo", "--quiet")
    job = json.loads((work / "job.json").read_text())
    assert job["reduced_halo"] == {"far_field_cells": 128, "near_field_cells": 64}
    assert len(job["tiles"]) == 4
    # the DEM's max pyramid, built once: 250 cells of search past 128 need levels 1 and 2
    # (pyramid_levels: 2 + ceil(log2(250 / 128)) = 3), one region task for the 500^2 DEM, read by every cut
    assert job["pyramid"] == {"shape": [500, 500], "n_levels": 3, "region_cells": 8192}
    assert all(t["files"]["pyramid"] == ["pyramid/region_0_0.npy"] for t in job["tiles"])
    assert (work / "workflow.mf").read_text().count("task max-pyramid --job job.json --region 0,0") == 1
    entry = job["tiles"][0]
    tile = Tile.from_dict(entry)
    with rasterio.open(work / entry["files"]["dem"]) as src:
        assert (src.height, src.width) == (tile.height + 1, tile.width + 1)  # core + the ring inside the DEM
    # a corner tile: its core and 386 cells (a group of 256 origins, 128 past it, 2 more) inside the DEM,
    # here all of its 500 x 500 window
    assert near_margin_cells(128, 64) == 386
    with np.load(work / entry["files"]["halo"]) as f:
        assert f["near"].shape == (500, 500) and tuple(f["shape"]) == (500, 500)
        assert tuple(f["origin"]) == (tile.halo_row, tile.halo_col) == (0, 0)
    grid = open_dem(dem, max_cells=10**7)
    window = grid.read(tile.halo_window)
    days, _ = tile_daily_radiation(window, grid.transform @ rasterio.Affine.translation(tile.halo_col, tile.halo_row),
                                   grid.crs, [172, 355], SunReference.from_dict(job["fast_reference"]),
                                   step_minutes=60.0, linke=3.0, albedo=0.2, n_azimuths=36, max_distance_m=2500.0,
                                   core=tile.core_in_halo, horizon_method="hull", origin=(tile.halo_row, tile.halo_col))
    expected = {r.day: r.glob_rad_wh_m2 for r in days}
    for month, day in (("6", 172), ("12", 355)):
        with rasterio.open(work / entry["files"]["solar"][month]) as src:
            got = src.read(src.descriptions.index("glob_rad_wh_m2") + 1)
        np.testing.assert_array_equal(got, expected[day].astype("float32"))
        assert np.isfinite(got).mean() > 0.9 and np.nanstd(got) > 10  # shaded and sunny cells alike
    # in strips of 16 rows (16 strips, the last of 10), the horizons from the same reduced halo: the same
    # monthly sums and sky view factor, bit for bit
    from eemt_flow.workflow.tasks import solar_fast_task

    paths = [entry["files"]["sky_view"], *entry["files"]["solar"].values()]
    rerun = rerun_in_strips(work, paths, lambda: solar_fast_task(work / "job.json", entry["name"], strip_rows=16))
    assert len(rerun) == 13
    for path, (whole, strips, names, strip_names) in rerun.items():
        assert strip_names == names, path
        np.testing.assert_array_equal(strips, whole, err_msg=path)
    # the tiled terrain reads the reduced cuts (core and ring) and still equals the whole-DEM terrain,
    # and the EEMT tasks find their cores in them
    from eemt_flow.terrain.whole_dem import compute_terrain

    whole = compute_terrain(read_dem(dem, max_cells=10**7).elevation_m, 10.0)
    with rasterio.open(work / "results/terrain/alpha.tif") as src:
        np.testing.assert_allclose(src.read(1, masked=True).filled(np.nan), whole.alpha, rtol=1e-6, equal_nan=True)
    with rasterio.open(work / "results/eemt/EEMT_TOPO_normals.tif") as src:
        eemt = src.read(1, masked=True).filled(np.nan)
    np.testing.assert_array_equal(np.isnan(eemt), np.isnan(whole.alpha))
    assert np.nanmin(eemt) > 0
