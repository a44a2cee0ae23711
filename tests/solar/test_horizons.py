"""Horizons: Dozier's hull method against brute force and against the stencil sweep (the reference).

The sweep itself is held to an independent ray march and to GRASS r.horizon + r.sun in
``test_fast_solar.py``; here the hull method is held to the sweep:

* the 1-D kernel (upper convex hull over a bounded window of a line) equals a plain
  maximum over the window, for random lines with nodata, windows and block sizes;
* along the grid axes the digital lines are the rays themselves, so the two methods agree
  to float32 rounding;
* on the real Jemez DEM and on a steep synthetic mountain, at search distances well beyond
  the near field, >= 99 % of cell-azimuths within 0.5 degree, and daily (days 172, 355)
  and annual radiation within 0.1 % mean and 1 % p99 per cell (issue 12's bounds).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rasterio
from conftest import EEMT, SHARED_DATA, cli_env, run_cli

from eemt_flow.dem import geography
from eemt_flow.dem.raster import write_geotiff
from eemt_flow.solar import far_field, fast, horizon, horizon_kernels
from eemt_flow.terrain.slope import slope_aspect


def _brute_window_max(ks, xs, zc, first, last, t):
    """max over the points u with ks[t] + first <= ks[u] <= ks[t] + last of (zc[u] - zc[t]) / (xs[u] - xs[t]),
    NaN targets skipped."""
    best = -np.inf
    for u in range(zc.size):
        if ks[t] + first <= ks[u] <= ks[t] + last and not np.isnan(zc[u]):
            best = max(best, (zc[u] - zc[t]) / (xs[u] - xs[t]))
    return best


@pytest.mark.parametrize("gaps", [False, True], ids=["every-step", "coarse-far-field"])
def test_line_kernel_equals_brute_force_over_the_window(gaps):
    """Windows are counted in steps; with gaps (a coarse far field) a window holds the points whose steps fall in it."""
    rng = np.random.default_rng(3 + gaps)
    checked = 0
    for trial in range(300):
        n = int(rng.integers(1, 260))
        first = int(rng.integers(1, 12))
        last = int(rng.integers(first, 300))  # windows shorter and longer than the line, many blocks
        ks = np.cumsum(rng.integers(1, 9, n)) if gaps else np.arange(n)
        xs = ks * 10.0 + rng.uniform(-1.5, 1.5, n)  # projected centres: uneven, increasing
        zc = np.cumsum(rng.normal(0.0, 4.0, n)) + 40.0 * np.sin(xs / rng.uniform(50.0, 900.0))
        zc[rng.random(n) < 0.08] = np.nan
        queried = rng.random(n) < 0.9
        best = np.full(n, -np.inf)
        hx, hz = np.empty(n + 1), np.empty(n + 1)
        horizon_kernels.line_far_horizon(ks.astype(np.int64), xs, zc, queried, first, last, best, hx, hz)
        for t in range(n):
            expected = (_brute_window_max(ks, xs, zc, first, last, t) if queried[t] and not np.isnan(zc[t])
                        else -np.inf)
            if expected == -np.inf:
                assert best[t] == -np.inf, (trial, t)
            else:
                assert best[t] == pytest.approx(expected, rel=1e-12, abs=1e-12), (trial, t, n, first, last)
                checked += 1
    assert checked > (5000 if gaps else 20000)


def test_hull_equals_sweep_along_the_grid_axes():
    """East, north, west, south: digital lines are the rays, projected distances the exact ones."""
    rng = np.random.default_rng(5)
    dem = np.cumsum(np.cumsum(rng.normal(0.0, 1.0, (80, 90)), 0), 1)
    dem[40:44, 10:60] = np.nan  # nodata across many rays and as origins
    # 40 cells of search distance, near field of 3: nearly every sample comes from the hull
    hull = horizon.horizon_angles(dem, 10.0, 4, 400.0, method="hull", near_field_cells=3)
    sweep = horizon.horizon_angles(dem, 10.0, 4, 400.0, method="sweep")
    assert np.array_equal(np.isnan(hull), np.isnan(sweep))
    assert np.nanmin(hull) >= 0.0 and np.nanmax(hull) > 0.3
    np.testing.assert_allclose(hull, sweep, rtol=0, atol=2e-6)
    # a window (tile core) sees the same terrain as the whole grid
    win = horizon.horizon_angles(dem, 10.0, 4, 400.0, method="hull", near_field_cells=3, window=(20, 25, 30, 40))
    np.testing.assert_allclose(win, hull[:, 20:50, 25:65], rtol=0, atol=2e-6)


def test_methods_are_checked():
    with pytest.raises(ValueError, match="method must be one of"):
        horizon.horizon_angles(np.zeros((5, 5)), 10.0, 4, 100.0, method="dozier")
    with pytest.raises(ValueError, match="near_field_cells"):
        horizon.horizon_angles(np.zeros((5, 5)), 10.0, 4, 100.0, method="hull", near_field_cells=0)


def _steep_mountain(n=260, cell=20.0):
    """1,400 m Gaussian mountain on ridges, slopes to ~60 degrees, a nodata hole: 20 m cells."""
    y, x = (np.mgrid[0:n, 0:n] + 0.5) * cell
    dem = (2000.0 + 1400.0 * np.exp(-((x - 2600.0) ** 2 + (y - 2400.0) ** 2) / (2 * 700.0 ** 2))
           + 120.0 * np.sin(x / 150.0) * np.cos(y / 210.0) + 60.0 * np.sin((x + 2 * y) / 400.0))
    dem[120:126, 60:70] = np.nan
    return dem, cell, "EPSG:26913", rasterio.Affine(cell, 0.0, 380000.0, 0.0, -cell, 3970000.0)


def _jemez():
    path = SHARED_DATA / "mcn_10m.tif"
    assert path.exists(), f"{path} is missing: the real test DEMs live in ../shared/data"
    with rasterio.open(path) as ds:
        return ds.read(1).astype(np.float64), ds.transform.a, ds.crs, ds.transform


@pytest.mark.parametrize("name, max_distance_m, window, far_field_cells", [
    ("mcn_10m", 2000.0, None, horizon.FAR_FIELD_CELLS),
    ("steep synthetic", 3000.0, None, horizon.FAR_FIELD_CELLS),
    # a tile core inside its halo, as tasks compute it: the terrain beyond 16 cells past the
    # core comes from the max pyramid (levels 1 to 4), so nearly every far sample is coarse
    ("mcn_10m core, coarse beyond 16 cells", 2000.0, (70, 80, 60, 60), 16),
    # the default coarse far field: 128 cells past the core at full resolution, then levels 1 and 2
    ("steep synthetic 700 x 700, 100 x 100 core", 6000.0, (300, 300, 100, 100), horizon.FAR_FIELD_CELLS),
])
def test_hull_within_bounds_of_the_sweep(name, max_distance_m, window, far_field_cells):
    if name.startswith("mcn_10m"):
        dem, cell, crs, transform = _jemez()
    else:
        dem, cell, crs, transform = _steep_mountain(700 if window else 260)
    lat, axes = geography.cell_geography(crs, transform, dem.shape)
    assert max_distance_m / cell > 2 * horizon.NEAR_FIELD_CELLS  # most of each ray is the hull's
    hull = horizon.horizon_angles(dem, cell, 360, max_distance_m, geographic_axes=axes, method="hull", window=window,
                                  far_field_cells=far_field_cells)
    sweep = horizon.horizon_angles(dem, cell, 360, max_distance_m, geographic_axes=axes, method="sweep", window=window)
    if window is not None:
        row0, col0, height, width = window
        core = (slice(row0, row0 + height), slice(col0, col0 + width))
        assert min(max_distance_m / cell, row0, col0) > far_field_cells  # the pyramid serves part of the halo
    else:
        core = (slice(None), slice(None))
    assert np.array_equal(np.isnan(hull), np.isnan(sweep))
    ok = np.isfinite(dem[core])
    diff_deg = np.degrees(np.abs(hull[:, ok] - sweep[:, ok]))
    within = 100 * np.mean(diff_deg <= 0.5)
    print(f"{name}: hull within 0.5 deg of the sweep for {within:.3f} % of {diff_deg.size} cell-azimuths, "
          f"p99 {np.percentile(diff_deg, 99):.3f} deg, max {diff_deg.max():.2f} deg")
    assert within >= 99.0

    slope, aspect = (a[core] for a in slope_aspect(dem, cell))
    topo = ok & np.isfinite(slope)

    def radiation(hor, days, step_minutes):
        return [r.glob_rad_wh_m2
                for r in fast.daily_radiation(dem[core], slope, aspect, lat[core], hor, days, step_minutes)]

    def rel_stats(a, b):
        rel = np.abs(a[topo] - b[topo]) / b[topo]
        return 100 * rel.mean(), 100 * np.percentile(rel, 99)

    for day, g_hull, g_sweep in zip((172, 355), radiation(hull, (172, 355), 3.0), radiation(sweep, (172, 355), 3.0)):
        mean, p99 = rel_stats(g_hull, g_sweep)
        print(f"{name} day {day}: glob_rad |hull - sweep| / sweep mean {mean:.4f} %, p99 {p99:.4f} %")
        assert mean <= 0.1 and p99 <= 1.0, (day, mean, p99)
    year = range(1, 366)
    annual_hull = np.sum(radiation(hull, year, 15.0), axis=0)
    annual_sweep = np.sum(radiation(sweep, year, 15.0), axis=0)
    mean, p99 = rel_stats(annual_hull, annual_sweep)
    print(f"{name} annual: glob_rad mean {mean:.4f} %, p99 {p99:.4f} %")
    assert mean <= 0.1 and p99 <= 1.0


def test_byte_horizons_are_r_sun_storage():
    dem, cell, crs, transform = _steep_mountain(90)
    res = fast.R_SUN_HORIZON_RESOLUTION_RAD
    as_float = horizon.horizon_angles(dem, cell, 40, 1600.0, method="hull", near_field_cells=8)
    as_bytes = horizon.horizon_angles(dem, cell, 40, 1600.0, method="hull", near_field_cells=8, resolution_rad=res)
    assert as_bytes.dtype == np.uint8
    # r.sun's byte: round(angle / (1/150 rad)) clipped to [0, 255], nodata 0
    expected = np.clip(np.floor(np.nan_to_num(as_float.astype(np.float64), nan=0.0) / res + 0.5), 0, 255)
    np.testing.assert_array_equal(as_bytes, expected.astype(np.uint8))
    # the day kernel takes either and gives the same day
    lat = np.full(dem.shape, 36.0)
    slope, aspect = slope_aspect(dem, cell)
    (from_float,) = fast.daily_radiation(dem, slope, aspect, lat, as_float, [355], 15.0)
    (from_bytes,) = fast.daily_radiation(dem, slope, aspect, lat, as_bytes, [355], 15.0)
    np.testing.assert_array_equal(from_float.glob_rad_wh_m2, from_bytes.glob_rad_wh_m2)


def test_byte_horizons_hold_one_byte_per_cell_and_direction():
    """A 600 x 600 core, 360 directions: 130 MB of bytes; the float32 stack would be 518 MB."""
    script = textwrap.dedent("""
        import numpy as np
        from eemt_flow.solar import fast, horizon

        def status_kib(key):
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1])

        rng = np.random.default_rng(0)
        dem = np.cumsum(np.cumsum(rng.normal(0, 1, (700, 700)), 0), 1).astype(np.float32)
        horizon.horizon_angles(dem[:100, :100], 10.0, 360, 400.0, resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the present resident size
        before = status_kib("VmRSS")
        hor = horizon.horizon_angles(dem, 10.0, 360, 400.0, window=(50, 50, 600, 600),
                                     resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD)
        print(hor.nbytes, (status_kib("VmHWM") - before) * 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600)
    nbytes, grown = (int(v) for v in out.stdout.split())
    assert nbytes == 600 * 600 * 360
    float32_stack = 4 * nbytes
    print(f"byte horizons: {nbytes / 2**20:.0f} MiB held, peak grew by {grown / 2**20:.0f} MiB "
          f"(float32 stack: {float32_stack / 2**20:.0f} MiB)")
    # the bytes plus one float32 chunk of AZIMUTH_CHUNK directions (16 / 360 of the float32 stack)
    assert grown <= nbytes + float32_stack * horizon.AZIMUTH_CHUNK / 360 + 40 * 2**20


def test_auto_takes_the_sweep_for_short_searches_and_the_hull_for_long_ones():
    dem, cell, _, _ = _steep_mountain(120)
    short_m = horizon.SWEEP_MAX_CELLS * cell
    np.testing.assert_array_equal(horizon.horizon_angles(dem, cell, 8, short_m),
                                  horizon.horizon_angles(dem, cell, 8, short_m, method="sweep"))
    long_m = (horizon.SWEEP_MAX_CELLS + 1) * cell
    np.testing.assert_array_equal(horizon.horizon_angles(dem, cell, 8, long_m),
                                  horizon.horizon_angles(dem, cell, 8, long_m, method="hull"))
    assert not np.array_equal(horizon.horizon_angles(dem, cell, 8, long_m, method="hull"),
                              horizon.horizon_angles(dem, cell, 8, long_m, method="sweep"))


def test_fast_task_stays_within_its_declared_memory(tmp_path):
    """A 600 x 600-cell core (1 km halo): 124 MiB of byte horizons; the task's peak RSS is below its MEMORY."""
    script = textwrap.dedent("""
        import re, resource, subprocess, sys
        workdir, eemt = sys.argv[1], sys.argv[2]
        subprocess.run([eemt, "task", "cut-dem", "--job", "job.json", "--tile", "t0000"], cwd=workdir, check=True)
        subprocess.run([eemt, "task", "solar-fast", "--job", "job.json", "--tile", "t0000"], cwd=workdir, check=True)
        declared = int(re.search(r"CATEGORY solar-fast\\n.*\\n.MAKEFLOW MEMORY (\\d+)",
                                 open(workdir + "/workflow.mf").read()).group(1))
        print(declared, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    """)
    dem_path = tmp_path / "dem.tif"
    n, cell = 800, 10.0
    y, x = np.mgrid[0:n, 0:n] * cell
    dem = (1500.0 + 300.0 * np.sin(x / 900.0) * np.cos(y / 1300.0)).astype(np.float32)
    write_geotiff(dem_path, dem, rasterio.Affine(cell, 0, 380000.0, 0, -cell, 3970000.0), "EPSG:26913")
    workdir = tmp_path / "work"
    run_cli("plan", "--dem", dem_path, "--workdir", workdir, "--days", "172", "--tile-size", "600",
            "--halo", "1000", "--step-minutes", "30", "--threads-per-task", "2")
    out = subprocess.run([sys.executable, "-c", script, str(workdir), EEMT], capture_output=True, text=True,
                         check=True, timeout=900, env=cli_env())
    declared_mb, peak_mb = (int(v) for v in out.stdout.split()[-2:])
    print(f"solar-fast task on a 600 x 600 core: peak {peak_mb} MiB, declared MEMORY {declared_mb} MB")
    assert 124 < peak_mb <= declared_mb


def test_reduced_halo_gives_the_same_horizons_in_a_fraction_of_the_memory(tmp_path):
    """A tile's halo as the cut task stores it (full resolution within 386 cells of the core: a
    group of 256 origins and 128 cells past it, clipped pyramid levels beyond) gives bit for bit
    the horizons of the whole halo window, after a round trip through its file, and holds a
    small part of the window's cells."""
    from eemt_flow.solar.far_field import HaloTerrain

    dem, cell, crs, transform = _steep_mountain(1700)
    dem[700:720, 100:400] = np.nan  # nodata in the far halo
    core = (slice(800, 860), slice(780, 850))
    window = (800, 780, 60, 70)
    _, axes = geography.cell_geography(crs, transform, dem.shape)
    kwargs = dict(geographic_axes=axes, method="hull", window=window, resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD)
    whole = horizon.horizon_angles(dem, cell, 72, 16000.0, **kwargs)
    reduced = HaloTerrain.of_window(dem, core, max_distance_cells=16000.0 / cell,
                                    far_field_cells=horizon.FAR_FIELD_CELLS, near_field_cells=horizon.NEAR_FIELD_CELLS)
    reduced.save(tmp_path / "halo.npz")
    loaded = HaloTerrain.load(tmp_path / "halo.npz")
    # 800 cells of search on 20 m cells: levels 1 to 3 read past 128 cells, the top level (4) whole
    assert loaded.pyramid.n_levels == 5 and loaded.shape == dem.shape
    held = loaded.near.size + loaded.pyramid.values.size
    print(f"reduced halo: {held} of {dem.size} cells ({100 * held / dem.size:.1f} %)")
    assert held < 0.45 * dem.size  # 42 % on a 1,700^2 window; the 1 m LiDAR tile of benchmarks/scale.py keeps a few %
    np.testing.assert_array_equal(horizon.horizon_angles(loaded, cell, 72, 16000.0, **kwargs), whole)
    assert whole.max() > 10  # terrain above the core: angles of 10/150 rad and more
    with pytest.raises(ValueError, match="reduced halo"):
        horizon.horizon_angles(loaded, cell, 72, 16000.0, **{**kwargs, "method": "sweep"})


def _steep_hills(n, cell=10.0, seed=24):
    """Seeded steep terrain: ten Gaussian hills of 300-900 m and fractal detail, scaled to 1,000 m of relief."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(float)
    dem = np.zeros((n, n))
    for _ in range(10):
        cy, cx, s, h = rng.uniform(0, n), rng.uniform(0, n), rng.uniform(30, 110), rng.uniform(300, 900)
        dem += h * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
    for k in range(1, 6):  # octaves of blocky noise, 60 / k m each
        m = n // 2 ** (6 - k) + 1
        dem += 60.0 / k * np.kron(rng.normal(0, 1, (m, m)), np.ones((n // m + 1, n // m + 1)))[:n, :n]
    dem = (dem - dem.min()) * (1000.0 / (dem.max() - dem.min())) + 1500.0
    return dem.astype(np.float32), cell, "EPSG:32613", rasterio.Affine(cell, 0.0, 350000.0, 0.0, -cell, 4000000.0)


#: The far-field tests' case: 900 x 900 cells of 10 m, 4.5 km of search (450 cells): past a cell's
#: group of 256 and 128 more cells, level 1 of the pyramid is read.
FAR_N, FAR_DISTANCE_M, FAR_TILE = 900, 4500.0, 300


def _tile_windows(n, tile, halo):
    """(core rows, core cols, window rows, window cols) of the tiles of an n x n DEM, as the planner cuts them."""
    for r in range(0, n, tile):
        for c in range(0, n, tile):
            core = (slice(r, min(r + tile, n)), slice(c, min(c + tile, n)))
            win = (slice(max(r - halo, 0), min(r + tile + halo, n)), slice(max(c - halo, 0), min(c + tile + halo, n)))
            yield core, win


def test_tiled_horizons_equal_untiled_ones_with_the_far_field_in_use(tmp_path):
    """Issue 24: the hull's coarse far field is the DEM's, not the tile's. Nine tiles of 300 with a
    450-cell halo (the windows of the corner tiles end inside the DEM) give, bit for bit, the byte
    horizons of the whole DEM, from the whole window and from the reduced halo the cut task writes;
    before, a cell saw full resolution up to 128 cells past its tile's core, so the horizons
    depended on where the core ended. The cut of a job reads the DEM's pyramid, built once in regions,
    instead of building one from its whole window: the same float horizons, to the bit."""
    from eemt_flow.solar.far_field import HaloTerrain

    dem, cell, crs, transform = _steep_hills(FAR_N)
    _, axes = geography.cell_geography(crs, transform, dem.shape)
    kwargs = dict(geographic_axes=axes, method="hull", resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD)
    whole = horizon.horizon_angles(dem, cell, 36, FAR_DISTANCE_M, **kwargs)
    float_kwargs = dict(geographic_axes=axes, method="hull")
    whole_float = horizon.horizon_angles(dem, cell, 36, FAR_DISTANCE_M, **float_kwargs)
    # the DEM's max pyramid as a job's pyramid tasks build it, in regions of 200 x 200 cells
    regions = far_field.PyramidRegions.for_dem(dem.shape, FAR_DISTANCE_M / cell, horizon.FAR_FIELD_CELLS,
                                               region_cells=200)
    assert (regions.n_levels, regions.region_cells, regions.grid) == (4, 200, (5, 5))  # blocks of up to 8 cells
    for i, j in regions.regions():
        r0, c0, h, w = regions.window(i, j)
        regions.build(dem[r0:r0 + h, c0:c0 + w], i, j, tmp_path / regions.file(i, j))
    n_regions = []
    # the far field is in use: the search reaches past a group of origins and its full-resolution part
    assert FAR_DISTANCE_M / cell > far_field.ORIGIN_GROUP_CELLS + horizon.FAR_FIELD_CELLS
    halo = int(FAR_DISTANCE_M / cell)
    n_clipped = 0
    for core, win in _tile_windows(FAR_N, FAR_TILE, halo):
        origin = (win[0].start, win[1].start)
        n_clipped += (win[0].stop - win[0].start, win[1].stop - win[1].start) != dem.shape
        local = (core[0].start - origin[0], core[1].start - origin[1], core[0].stop - core[0].start,
                 core[1].stop - core[1].start)
        tiled = horizon.horizon_angles(dem[win], cell, 36, FAR_DISTANCE_M, window=local, origin=origin, **kwargs)
        np.testing.assert_array_equal(tiled, whole[:, core[0], core[1]])
        reduced = HaloTerrain.of_window(dem[win], (slice(local[0], local[0] + local[2]), slice(local[1], local[1] + local[3])),
                                        max_distance_cells=FAR_DISTANCE_M / cell, far_field_cells=horizon.FAR_FIELD_CELLS,
                                        near_field_cells=horizon.NEAR_FIELD_CELLS, origin=origin)
        np.testing.assert_array_equal(horizon.horizon_angles(reduced, cell, 36, FAR_DISTANCE_M, window=local, **kwargs),
                                      whole[:, core[0], core[1]])
        # the cut of a job: the window's near part read from the DEM, its pyramid blocks from the DEM's
        # pyramid regions (5 x 5 regions of 200 cells here, so a window meets up to 16): the float horizons
        # of the whole DEM, to the bit
        window = (origin[0], origin[1], win[0].stop - win[0].start, win[1].stop - win[1].start)
        cut = HaloTerrain.of_regions(dem[win], origin, regions, tmp_path, window, (
            slice(local[0], local[0] + local[2]), slice(local[1], local[1] + local[3])),
            far_field_cells=horizon.FAR_FIELD_CELLS, near_field_cells=horizon.NEAR_FIELD_CELLS)
        n_regions.append(len(regions.met(*window)))
        np.testing.assert_array_equal(horizon.horizon_angles(cut, cell, 36, FAR_DISTANCE_M, window=local, **float_kwargs),
                                      whole_float[:, core[0], core[1]])
    assert n_clipped == 8  # all tiles but the centre one see a window smaller than the DEM
    assert whole.max() > 40  # horizons of 40/150 rad (15 degrees) and more: steep terrain
    # windows of 750 cells from rows 0 and 150 meet regions 0-3 and 0-4: 16 to 25 of them
    assert sorted(set(n_regions)) == [16, 20, 25]


def test_a_cells_horizons_do_not_depend_on_where_it_sits_in_its_core():
    """The same cell at the centre of a 201 x 201 core and at its corner (and alone, a 1 x 1 core)
    gets the same float horizons, to the bit, in all 36 directions."""
    dem, cell, crs, transform = _steep_hills(FAR_N)
    r, c = 450, 450
    runs = [(r - 100, c - 100, 201, 201), (r, c, 201, 201), (r - 200, c - 200, 201, 201), (r, c, 1, 1)]
    angles = [horizon.horizon_angles(dem, cell, 36, FAR_DISTANCE_M, method="hull", window=w)[:, r - w[0], c - w[1]]
              for w in runs]
    for a in angles[1:]:
        np.testing.assert_array_equal(a, angles[0])
    assert np.degrees(angles[0].max()) > 10


def test_far_field_accuracy_against_full_resolution():
    """What the pyramid costs: horizons with the coarse far field against the same lines read at
    full resolution everywhere (far_field_cells=None), and daily global radiation on the winter
    solstice (day 355, 30-minute steps), whole DEM. Measured: 99.72 % of angles within 0.1 degree
    and 99.995 % within 0.5 (max 3.1); glob_rad p99.9 0.000 % (the bytes r.sun keeps hide most
    differences), max 18.9 % in the few cells where a too-high far horizon hides the low sun for
    one more step."""
    dem, cell, crs, transform = _steep_hills(FAR_N)
    lat, axes = geography.cell_geography(crs, transform, dem.shape)
    slope, aspect = slope_aspect(dem, (cell, cell))
    glob, angles = {}, {}
    for name, ff in (("far", horizon.FAR_FIELD_CELLS), ("full", None)):
        angles[name] = horizon.horizon_angles(dem, cell, 360, FAR_DISTANCE_M, geographic_axes=axes, method="hull",
                                              far_field_cells=ff)
        stored = np.empty(angles[name].shape, np.uint8)
        horizon_kernels.quantize(angles[name].copy(), fast.R_SUN_HORIZON_RESOLUTION_RAD, stored)
        lat_range = (float(lat.mean()), float(lat.min()), float(lat.max()))
        day = next(iter(fast.daily_radiation(dem, slope, aspect, lat, stored, [355], step_minutes=30, linke=3.0,
                                             albedo=0.2, reference_lat_deg=lat_range)))
        glob[name] = day.glob_rad_wh_m2.astype(float)
    d_deg = np.degrees(np.abs(angles["far"] - angles["full"]))
    within_01, within_05 = (d_deg <= 0.1).mean(), (d_deg <= 0.5).mean()
    rel = np.abs(glob["far"] - glob["full"]) / glob["full"]
    print(f"far field vs full resolution: {100 * within_01:.3f} % of angles within 0.1 deg, {100 * within_05:.3f} % "
          f"within 0.5 deg (max {d_deg.max():.3f}); glob_rad day 355 p99.9 {100 * np.percentile(rel, 99.9):.4f} %, "
          f"max {100 * rel.max():.3f} %")
    assert d_deg.max() > 0  # the far field is in use: some angles differ
    assert within_01 >= 0.99 and within_05 >= 0.999
    assert np.percentile(rel, 99.9) <= 0.005
