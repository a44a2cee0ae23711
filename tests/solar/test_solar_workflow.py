"""The tiled r.sun workflow against untiled runs and against a direct whole-DEM GRASS call.

Real GRASS (r.slope.aspect, r.horizon, r.sun) and real makeflow; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import read_raster, relative_difference, rerun_in_strips, run_cli
from eemt_flow.dem.example import example_elevation_m

DAYS = (172, 355)  # summer and winter solstice
HALO_M = 300


def _run(dem, workdir, *extra):
    run_cli("run", "--dem", dem, "--workdir", workdir, "--days", ",".join(map(str, DAYS)), "--keep-daily",
            "--halo", HALO_M, "--engine", "grass", "--quiet", *extra)
    return Path(workdir)


@pytest.fixture(scope="module")
def mcn_tiled(mcn_dem, tmp_path_factory):
    # 228 x 211 cells in tiles of 120: 4 tiles, each with a 30-cell halo.
    return _run(mcn_dem, tmp_path_factory.mktemp("mcn") / "tiled", "--tile-size", 120)


@pytest.fixture(scope="module")
def mcn_untiled(mcn_dem, tmp_path_factory):
    return _run(mcn_dem, tmp_path_factory.mktemp("mcn") / "untiled", "--tile-size", 1000)


@pytest.fixture(scope="module")
def grass_reference(mcn_dem, tmp_path_factory):
    """Direct whole-DEM GRASS: r.horizon at 1° (clamped at 0), r.sun with those horizons."""
    out = tmp_path_factory.mktemp("grassref")
    clamp = "\n".join(f"hor_{a:03d} = if(hor_{a:03d} < 0, 0, hor_{a:03d})" for a in range(360))
    (out / "clamp.txt").write_text(clamp + "\n")
    lines = [
        "set -e",
        f"r.in.gdal -o --quiet input={mcn_dem} output=dem",
        "g.region raster=dem",
        "r.slope.aspect -e --quiet elevation=dem slope=slope aspect=aspect",
        f"r.horizon --quiet elevation=dem step=1 maxdistance={HALO_M} output=hor",
        f"r.mapcalc --quiet --overwrite file={out / 'clamp.txt'}",
    ]
    for day in DAYS:
        lines.append(
            f"r.sun --quiet elevation=dem slope=slope aspect=aspect horizon_basename=hor horizon_step=1 day={day} "
            f"step=0.25 linke_value=3 albedo_value=0.2 glob_rad=g{day} insol_time=i{day}"
        )
        lines.append(f"r.out.gdal --quiet -f input=g{day} output={out}/glob_rad_{day}.tif type=Float64")
    (out / "ref.sh").write_text("\n".join(lines) + "\n")
    env = dict(os.environ, TMPDIR=str(out))
    subprocess.run(["grass", "--tmp-location", str(mcn_dem), "--exec", "bash", str(out / "ref.sh")], check=True,
                   env=env, capture_output=True)
    return out


def _dem_nan(dem_path):
    with rasterio.open(dem_path) as src:
        return ~np.isfinite(src.read(1, masked=True).astype("float64").filled(np.nan))


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("variable", ["glob_rad", "flat_glob_rad", "insol_time"])
def test_mcn_tiled_equals_untiled(mcn_tiled, mcn_untiled, mcn_dem, day, variable):
    tiled = read_raster(mcn_tiled / f"results/solar/daily/{variable}_day{day:03d}.tif")
    untiled = read_raster(mcn_untiled / f"results/solar/daily/{variable}_day{day:03d}.tif")
    nodata = _dem_nan(mcn_dem)
    assert nodata.sum() > 0
    # nodata preserved exactly, and no hole elsewhere
    np.testing.assert_array_equal(~np.isfinite(tiled), nodata)
    np.testing.assert_array_equal(~np.isfinite(untiled), nodata)
    rel = relative_difference(tiled, untiled)
    assert rel.size == (~nodata).sum()
    assert rel.max() <= 0.005, f"max per-pixel difference {rel.max():.4%}"


def test_mcn_tiled_run_used_four_tiles(mcn_tiled):
    job = json.loads((mcn_tiled / "job.json").read_text())
    assert len(job["tiles"]) == 4
    # a 30-cell halo: 300 m / 10 m
    t = job["tiles"][0]
    assert (t["halo_height"], t["halo_width"]) == (150, 150)


def _assert_same_cells_mean_p99(ours, ref, *, mean_max, p99_max):
    """NaN in the same cells; mean and 99th percentile of the per-pixel relative difference within bounds."""
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
    rel = relative_difference(ours, ref)
    assert rel.mean() <= mean_max, f"mean {rel.mean():.4%}"
    assert np.percentile(rel, 99) <= p99_max, f"p99 {np.percentile(rel, 99):.4%}"


@pytest.mark.parametrize("day", DAYS)
def test_mcn_matches_direct_grass(mcn_tiled, grass_reference, day):
    _assert_same_cells_mean_p99(read_raster(mcn_tiled / f"results/solar/daily/glob_rad_day{day:03d}.tif"),
                                read_raster(grass_reference / f"glob_rad_{day}.tif"), mean_max=0.005, p99_max=0.03)


def test_monthly_is_sum_of_daily(mcn_tiled):
    # June has only day 172 requested here, so the monthly sum equals that day's map.
    monthly = read_raster(mcn_tiled / "results/solar/monthly/glob_rad_06.tif")
    daily = read_raster(mcn_tiled / "results/solar/daily/glob_rad_day172.tif")
    np.testing.assert_allclose(monthly, daily, rtol=1e-6, equal_nan=True)
    summary = json.loads((mcn_tiled / "results/summary.json").read_text())
    assert summary["months"]["06"]["days"] == [172]
    assert summary["months"]["12"]["days"] == [355]
    assert summary["step_hours"] == 0.25  # 15 minutes
    # mean June-solstice global radiation on this 35.9°N mountain: the flat run gives
    # ~9.5 kWh m-2 day-1 clear sky at 2,300-2,600 m; the topographic mean is lower
    assert 8000 < summary["months"]["06"]["glob_rad"]["mean"] < summary["months"]["06"]["flat_glob_rad"]["mean"] < 10500


def test_results_are_cogs(mcn_tiled):
    with rasterio.open(mcn_tiled / "results/solar/monthly/glob_rad_12.tif") as src:
        assert src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        # deflate with the floating-point predictor (reduce.COG_OPTIONS)
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
        assert src.compression.value == "DEFLATE"
        assert np.isnan(src.nodata)
        assert src.crs.to_epsg() == 26913
    # the reducer's uncompressed mosaics are gone once their COGs are written
    assert not list((mcn_tiled / "results").rglob("*.mosaic.tif"))


@pytest.fixture(scope="module")
def steep_dem(tmp_path_factory):
    """A larger synthetic steep DEM: 260 x 260 cells of 15 m, relief ~1 km, nodata corner."""
    path = tmp_path_factory.mktemp("steep") / "steep.tif"
    z = example_elevation_m(260, 15.0) + (example_elevation_m(260, 15.0)[::-1, :] - 2200.0) * 0.5
    with rasterio.open(path, "w", driver="GTiff", width=260, height=260, count=1, dtype="float32",
                       crs="EPSG:32613", transform=from_origin(363000, 3975000, 15, 15), nodata=float("nan")) as d:
        d.write(z.astype("float32"), 1)
    return path


def test_steep_tiled_equals_untiled(steep_dem, tmp_path):
    common = ["--horizon-step", "5", "--halo", 600, "--engine", "grass"]
    tiled = tmp_path / "tiled"
    untiled = tmp_path / "untiled"
    for work, size in ((tiled, 100), (untiled, 1000)):
        run_cli("run", "--dem", steep_dem, "--workdir", work, "--days", "172,355", "--keep-daily", "--quiet",
                "--tile-size", size, *common)
    assert len(json.loads((tiled / "job.json").read_text())["tiles"]) == 9
    for day in DAYS:
        a = read_raster(tiled / f"results/solar/daily/glob_rad_day{day:03d}.tif")
        b = read_raster(untiled / f"results/solar/daily/glob_rad_day{day:03d}.tif")
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        rel = relative_difference(a, b)
        assert rel.max() <= 0.005, f"day {day}: max per-pixel difference {rel.max():.4%}"
        # the steep DEM really casts shadows: on the winter day some cells get under half the flat value
        flat = read_raster(tiled / f"results/solar/daily/flat_glob_rad_day{day:03d}.tif")
        if day == 355:
            assert np.nanmin(a / flat) < 0.5


# --- the fast engine through the same workflow ------------------------------------------

@pytest.fixture(scope="module")
def mcn_fast_tiled(mcn_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("fast") / "tiled"
    run_cli("run", "--dem", mcn_dem, "--workdir", work, "--days", "172,355", "--keep-daily", "--halo", HALO_M,
            "--engine", "fast", "--tile-size", 120, "--quiet")
    return work


@pytest.fixture(scope="module")
def mcn_fast_untiled(mcn_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("fast") / "untiled"
    run_cli("run", "--dem", mcn_dem, "--workdir", work, "--days", "172,355", "--keep-daily", "--halo", HALO_M,
            "--engine", "fast", "--tile-size", 1000, "--quiet")
    return work


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("variable", ["glob_rad", "flat_glob_rad", "insol_time"])
def test_fast_tiled_equals_untiled(mcn_fast_tiled, mcn_fast_untiled, mcn_dem, day, variable):
    tiled = read_raster(mcn_fast_tiled / f"results/solar/daily/{variable}_day{day:03d}.tif")
    untiled = read_raster(mcn_fast_untiled / f"results/solar/daily/{variable}_day{day:03d}.tif")
    np.testing.assert_array_equal(~np.isfinite(tiled), _dem_nan(mcn_dem))
    rel = relative_difference(tiled, untiled)
    assert rel.max() <= 0.005, f"max per-pixel difference {rel.max():.4%}"


def test_fast_task_in_strips_equals_one_strip(mcn_fast_untiled):
    """The solar-fast task computing its core in strips of 16 rows (horizons, sky view and days of one
    strip at a time) writes every file, daily maps included, with the same values, bit for bit, as
    the job's task in one strip: a cell's horizons are its own (lines fixed on the DEM's grid)."""
    from eemt_flow.workflow.makeflow import fast_strip_rows
    from eemt_flow.workflow.tasks import solar_fast_task

    job = json.loads((mcn_fast_untiled / "job.json").read_text())
    (tile,) = job["tiles"]
    files = tile["files"]
    n_azimuths = round(360 / job["parameters"]["horizon_step_deg"])
    assert tile["height"] > 3 * 16 and fast_strip_rows(tile["width"], n_azimuths, True, 1) >= tile["height"]
    paths = [files["sky_view"], *files["solar"].values(), *files["daily"].values()]
    assert len(paths) == 1 + 2 + 2  # June and December: a monthly and a daily file each
    rerun = rerun_in_strips(mcn_fast_untiled, paths,
                            lambda: solar_fast_task(mcn_fast_untiled / "job.json", tile["name"], strip_rows=16))
    for path, (whole, strips, names, strip_names) in rerun.items():
        assert strip_names == names, path
        np.testing.assert_array_equal(strips, whole, err_msg=path)
        assert np.isfinite(whole).mean() > 0.5, path


def test_fast_tiles_hold_their_core_only(mcn_fast_tiled):
    """The fast engine computes the core of each tile, not its halo (horizons need the halo only as terrain)."""
    job = json.loads((mcn_fast_tiled / "job.json").read_text())
    assert len(job["tiles"]) == 4
    for entry in job["tiles"]:
        assert (entry["halo_height"], entry["halo_width"]) != (entry["height"], entry["width"])
        with rasterio.open(mcn_fast_tiled / entry["files"]["solar"]["6"]) as src:
            assert (src.height, src.width) == (entry["height"], entry["width"])
            with rasterio.open(mcn_fast_tiled / entry["files"]["dem"]) as dem:
                # the core's origin: the halo window's origin moved by the core offset
                col0, row0 = entry["col"] - entry["halo_col"], entry["row"] - entry["halo_row"]
                assert src.transform.c == pytest.approx(dem.transform.c + col0 * dem.transform.a)
                assert src.transform.f == pytest.approx(dem.transform.f + row0 * dem.transform.e)


def test_fast_sky_view_factor_tiled_equals_untiled_and_the_api(mcn_fast_tiled, mcn_fast_untiled, mcn_dem):
    """results/terrain/sky_view_factor.tif: the same map from 4 tiles with halos as from one
    tile, and the same as eemt_flow.solar.sky_view_factor on the whole DEM (same horizons:
    the search distance is the halo, 360 directions)."""
    import eemt_flow.solar

    tiled = read_raster(mcn_fast_tiled / "results/terrain/sky_view_factor.tif")
    untiled = read_raster(mcn_fast_untiled / "results/terrain/sky_view_factor.tif")
    np.testing.assert_array_equal(~np.isfinite(tiled), _dem_nan(mcn_dem))
    np.testing.assert_array_equal(tiled, untiled)
    api = eemt_flow.solar.sky_view_factor(mcn_dem, n_azimuths=360, max_distance_m=HALO_M)
    np.testing.assert_array_equal(api.values, tiled)
    valid = tiled[np.isfinite(tiled)]
    # the Jemez DEM's slopes (to 72 degrees) and cliffs (horizons to 76 degrees): 0.34 at the
    # least (a 62-degree slope under a cliff), 0.92 the median, never above 1
    assert 0.2 < valid.min() < np.median(valid) < valid.max() <= 1.0
    assert 0.85 < np.median(valid) < 0.97
    summary = json.loads((mcn_fast_tiled / "results/summary.json").read_text())
    assert summary["sky_view_factor"]["units"] == "1"
    assert summary["sky_view_factor"]["mean"] == pytest.approx(float(valid.mean()), rel=1e-6)
    print(f"mcn_10m sky view factor: {valid.min():.4f} to {valid.max():.4f}, mean {valid.mean():.4f}")


def test_grass_sky_view_factor_tiled_equals_untiled_and_the_fast_engine(mcn_tiled, mcn_untiled, mcn_fast_untiled,
                                                                     mcn_dem):
    """The GRASS engine's results/terrain/sky_view_factor.tif, from r.horizon's maps at 1 degree:
    4 tiles with 30-cell halos against one tile (r.horizon's horizons depend on the window only
    through the search distance, 300 m = the halo), and against the fast engine's map from its
    own horizons (the hull or the sweep, 360 directions; another sampling of the rays).
    Measured: tiled against untiled at most 3.3e-5 (r.horizon's rays near a window's edge);
    against the fast engine a median of 2.1e-4 and p99 of 2.9e-3."""
    tiled = read_raster(mcn_tiled / "results/terrain/sky_view_factor.tif")
    untiled = read_raster(mcn_untiled / "results/terrain/sky_view_factor.tif")
    fast = read_raster(mcn_fast_untiled / "results/terrain/sky_view_factor.tif")
    np.testing.assert_array_equal(~np.isfinite(tiled), _dem_nan(mcn_dem))
    np.testing.assert_array_equal(~np.isfinite(untiled), _dem_nan(mcn_dem))
    valid = np.isfinite(tiled)
    tiled_diff = np.abs(tiled - untiled)[valid]
    engine_diff = np.abs(untiled - fast)[valid]
    print(f"GRASS sky view factor: tiled vs untiled max {tiled_diff.max():.2e}; vs the fast engine median "
          f"{np.median(engine_diff):.2e}, p99 {np.percentile(engine_diff, 99):.2e}, max {engine_diff.max():.2e}")
    assert tiled_diff.max() <= 1e-4
    assert np.median(engine_diff) <= 0.002 and np.percentile(engine_diff, 99) <= 0.02
    summary = json.loads((mcn_tiled / "results/summary.json").read_text())
    assert summary["sky_view_factor"]["mean"] == pytest.approx(float(tiled[valid].mean()), rel=1e-6)


@pytest.mark.parametrize("day", DAYS)
def test_fast_engine_matches_grass_engine(mcn_fast_tiled, mcn_untiled, day):
    """The whole workflow with --engine fast against --engine grass, every cell of the DEM."""
    _assert_same_cells_mean_p99(read_raster(mcn_fast_tiled / f"results/solar/daily/glob_rad_day{day:03d}.tif"),
                                read_raster(mcn_untiled / f"results/solar/daily/glob_rad_day{day:03d}.tif"),
                                mean_max=0.01, p99_max=0.03)
    flat_fast = read_raster(mcn_fast_tiled / f"results/solar/daily/flat_glob_rad_day{day:03d}.tif")
    flat_grass = read_raster(mcn_untiled / f"results/solar/daily/flat_glob_rad_day{day:03d}.tif")
    assert relative_difference(flat_fast, flat_grass).max() <= 0.005
    insol_fast = read_raster(mcn_fast_tiled / f"results/solar/daily/insol_time_day{day:03d}.tif")
    insol_grass = read_raster(mcn_untiled / f"results/solar/daily/insol_time_day{day:03d}.tif")
    within_one_step = np.abs(insol_fast - insol_grass)[np.isfinite(insol_grass)] <= 0.25 + 1e-6  # 15-min step
    assert within_one_step.mean() >= 0.99
