"""Every user mistake gets one clear line, exit code 2, and leaves no work directory behind."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import EEMT, cli_env, run_cli


def _write(path, array, crs="EPSG:32613", nodata=float("nan")):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="float32", crs=crs, transform=from_origin(360000, 3975000, 30, 30), nodata=nodata) as d:
        d.write(array.astype("float32"), 1)


def assert_refused(tmp_path, args, *fragments):
    workdir = tmp_path / "work"
    proc = run_cli("plan", "--workdir", workdir, *args, check=False, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: "), lines
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not workdir.exists(), "a refused plan must not leave a work directory"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".work.planning-")]
    assert leftovers == []
    return lines[0]


def test_missing_file(tmp_path):
    assert_refused(tmp_path, ["--dem", tmp_path / "nope.tif"], "nope.tif", "no such file")


def test_not_a_raster(tmp_path):
    fake = tmp_path / "fake.tif"
    fake.write_text("this is not a GeoTIFF\n")
    assert_refused(tmp_path, ["--dem", fake], "fake.tif", "not a raster")


def test_no_crs(tmp_path):
    path = tmp_path / "nocrs.tif"
    _write(path, np.ones((20, 20)), crs=None)
    assert_refused(tmp_path, ["--dem", path], "no coordinate reference system")


def test_geographic_without_reproject(tmp_path, texas_dem):
    line = assert_refused(tmp_path, ["--dem", texas_dem], "geographic", "--reproject EPSG:")
    assert "EPSG:4326" in line


def test_all_nodata(tmp_path):
    path = tmp_path / "empty.tif"
    _write(path, np.full((20, 20), -9999.0), nodata=-9999.0)
    assert_refused(tmp_path, ["--dem", path], "every cell is nodata")


def test_too_many_cells(tmp_path, mcn_dem):
    # mcn_10m.tif is 228 x 211 = 48,108 cells
    assert_refused(tmp_path, ["--dem", mcn_dem, "--max-cells", "48107"], "48,108 cells exceeds the limit of 48,107")


@pytest.mark.parametrize("crs, fragment", [
    ("EPSG:3857", "Web Mercator (EPSG:3857) is not accepted"),
    ("EPSG:3395", "EPSG:3395 is not accepted (the Mercator projection"),  # World Mercator
])
def test_mercator_refused_by_projection_method(tmp_path, texas_dem, crs, fragment):
    assert_refused(tmp_path, ["--dem", texas_dem, "--reproject", crs], fragment)


def test_custom_mercator_refused(tmp_path):
    # a Mercator with no EPSG code at all, as a DEM file's own CRS
    dem = tmp_path / "merc.tif"
    _write(dem, 200.0 + np.add.outer(np.arange(40), np.arange(40)), crs="+proj=merc +lat_ts=32.8 +datum=WGS84 +units=m")
    assert_refused(tmp_path, ["--dem", dem], "the Mercator projection distorts distances and slopes")


def test_oblique_mercator_accepted(tmp_path):
    # an oblique Mercator centred on the DEM keeps true scale near its centre line (k0 0.9996)
    dem = tmp_path / "omerc.tif"
    _write(dem, 200.0 + np.add.outer(np.arange(40), np.arange(40)),
           crs="+proj=omerc +lat_0=32.8 +lonc=-97.4 +alpha=30 +gamma=0 +k=0.9996 +datum=WGS84 +units=m")
    proc = run_cli("plan", "--dem", dem, "--workdir", tmp_path / "w", "--days", "172")
    assert (tmp_path / "w" / "workflow.mf").exists(), proc.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--step-minutes", "90"], "--step-minutes"),
        (["--step-minutes", "0"], "--step-minutes"),
        (["--days", "0-400"], "--days"),
        (["--days", "May"], "--days"),
        (["--albedo", "1.5"], "--albedo"),
        (["--horizon-step", "7"], "--horizon-step"),
        (["--halo", "-10"], "--halo"),
        (["--tile-size", "4"], "--tile-size"),
        (["--exchange-group", "1"], "--exchange-group"),
        (["--reproject", "UTM13"], "--reproject"),
    ],
)
def test_bad_parameters(tmp_path, example_dem, args, fragment):
    assert_refused(tmp_path, ["--dem", example_dem, *args], fragment)


def test_bad_job_file(tmp_path, example_dem):
    """A misspelt key is named as written, with the file and the closest valid key."""
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {example_dem}\nstep_minuts: 3\n")
    proc = run_cli("plan", "job.yaml", "--workdir", tmp_path / "work", check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: job.yaml: unknown key 'step_minuts' (did you mean 'step_minutes'?)"
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("key, value, fragment", [
    ("wind_speed_m_s", -1, "wind_speed_m_s = -1 is outside the accepted range 0.1 to 50"),
    ("budyko_w", 0.5, "budyko_w = 0.5 is outside the accepted range 1.01 to 10"),
    ("h_bio_j_kg", 22.0, "h_bio_j_kg = 22 is outside the accepted range 1.5e+07 to 3e+07"),  # kJ/g for J/kg
    ("pm_albedo", 1.0, "pm_albedo = 1 is outside the accepted range 0 to 0.95"),
])
def test_model_parameters_out_of_range(tmp_path, example_dem, key, value, fragment):
    """Refused at plan time, naming the key and the range, before any task runs."""
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {example_dem}\nmodel_parameters:\n  {key}: {value}\n")
    assert_refused(tmp_path, [job], "model_parameters", fragment)


def test_job_file_key_with_no_near_match(tmp_path, example_dem):
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {example_dem}\ncolour: blue\n")
    line = assert_refused(tmp_path, [job], "job.yaml: unknown key 'colour'", "eemt-flow run --help")
    assert "did you mean" not in line


@pytest.mark.parametrize("shape, valid_block", [
    ((1, 1), None),            # one cell: no neighbours at all
    ((2, 40), None),           # two rows: no cell has a row above and below
    ((40, 2), None),
    ((10, 10), "diagonal"),    # 10 valid cells on the diagonal, never 3 x 3 together
    ((10, 10), "2x8"),         # a 2 x 8 strip of valid cells inside nodata
])
def test_no_three_by_three_valid_cells(tmp_path, shape, valid_block):
    """Slope needs a cell with all 8 neighbours valid; without one the plan is refused."""
    array = np.full(shape, 100.0)
    if valid_block == "diagonal":
        array[:] = np.nan
        np.fill_diagonal(array, 100.0)
    elif valid_block == "2x8":
        array[:] = np.nan
        array[4:6, 1:9] = 100.0
    path = tmp_path / "small.tif"
    _write(path, array)
    n_valid = int(np.isfinite(array).sum())
    assert_refused(tmp_path, ["--dem", path], "small.tif: no 3x3 block of valid cells",
                   f"{shape[1]}x{shape[0]} grid, {n_valid} valid")


def test_three_by_three_valid_cells_accepted(tmp_path):
    """The smallest DEM with a slope, a 3 x 3 block, plans (the boundary of the check above)."""
    array = np.full((3, 3), 100.0) + np.arange(3)[:, None] * 10.0
    path = tmp_path / "tiny.tif"
    _write(path, array)
    proc = run_cli("plan", "--dem", path, "--workdir", tmp_path / "work", "--days", "172", "--horizon-step", "10",
                   check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "work" / "job.json").exists()


def test_workdir_of_another_job(tmp_path, example_dem):
    work = tmp_path / "work"
    run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "172", "--horizon-step", "10")
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    proc = run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "173", "--horizon-step", "10",
                   check=False)
    assert proc.returncode == 2
    assert "holds a different job" in proc.stderr
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before


def test_reproject_geographic_dem(tmp_path, texas_dem):
    """--reproject makes the geographic DEM usable: a metric grid of ~90 m cells in UTM 14N."""
    work = tmp_path / "work"
    run_cli("plan", "--dem", texas_dem, "--reproject", "EPSG:32614", "--workdir", work, "--days", "172",
            "--horizon-step", "10", "--tile-size", "10000")
    job = json.loads((work / "job.json").read_text())
    assert len(job["tiles"]) == 1 and job["dem"]["warped"]
    # the tile's rule cuts its window from the source through the warp
    run_cli("task", "cut-dem", "--job", "job.json", "--tile", "t0000", cwd=work)
    with rasterio.open(work / job["tiles"][0]["files"]["dem"]) as src:
        assert src.crs.to_epsg() == 32614
        assert (src.height, src.width) == (job["grid"]["height"], job["grid"]["width"])
        # 3 arc-seconds = 0.000833° ≈ 92.6 m north-south; ≈ 92.6·cos(32.8°) ≈ 77.9 m east-west;
        # the square target cell is their geometric mean, about 85 m.
        assert 75 < src.res[0] < 95 and src.res[0] == pytest.approx(src.res[1])
        z = src.read(1, masked=True)
        # Source elevations span 147-298 m; bilinear resampling stays inside that range.
        assert 140 < float(z.min()) and float(z.max()) < 300


def test_dem_changed_after_planning_fails_the_run_by_name(example_dem, tmp_path):
    """Tiles are cut from the DEM file at run time: a DEM rewritten after planning stops the run
    with the cut task's one-line reason, not with results of another DEM."""
    dem = tmp_path / "dem.tif"
    dem.write_bytes(example_dem.read_bytes())
    work = tmp_path / "work"
    args = ["--dem", dem, "--workdir", work, "--days", "172", "--step-minutes", "60", "--horizon-step", "30",
            "--tile-size", "60", "--halo", "300", "--quiet"]
    run_cli("plan", *args[:-1])
    with rasterio.open(dem, "r+") as dst:
        z = dst.read(1)
        dst.write(z + 1.0, 1)
    proc = run_cli("run", *args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "task failed (exit code 2): eemt-flow task cut-dem --job job.json --tile t000" in proc.stderr
    assert f"{dem} changed after the job was planned; restore it or plan a new job in a new --workdir" in proc.stderr
    assert not (work / "results" / "summary.json").exists()


def test_damaged_job_file_in_the_workdir_is_one_line(example_dem, tmp_path):
    """A work directory whose job.json is not JSON (overwritten by something binary) is refused
    by name, without a traceback, and left as it is."""
    work = tmp_path / "work"
    run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "172", "--tile-size", "60", "--halo", "300")
    (work / "job.json").write_bytes(b"II*\x00\xf6\x00binary")
    proc = run_cli("plan", "--dem", example_dem, "--workdir", work, "--days", "172", "--tile-size", "60",
                   "--halo", "300", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"Error: --workdir {work}: its job.json is not an eemt-flow job file (damaged?); "
                                   "give a new --workdir to plan this job")
    assert (work / "job.json").read_bytes() == b"II*\x00\xf6\x00binary"


def test_run_refused_when_the_reducer_cannot_fit_the_workdir_disk(example_dem, tmp_path):
    """makeflow measures the work directory's free disk once when it starts and never starts a
    LOCAL rule that declares more: it would end "nothing left to do" with exit 0, every time it
    is run again. eemt-flow refuses before starting it, in one line naming the task, what it
    declares and what is free. The work directory here is a 48 MB tmpfs (its own mount
    namespace); the reducer declares at least 1,000 MB (makeflow.job_resources)."""
    script = ('mount -t tmpfs -o size=48m tmpfs "$W" && cd "$W" && '
              '"$EEMT" run --dem "$DEM" --workdir work --days 172 --step-minutes 60 --horizon-step 30 '
              '--tile-size 60 --halo 300 --quiet; rc=$?; '
              'test -e work/job.json && echo PLANNED; test -e work/workflow.mf.makeflowlog && echo MAKEFLOW-RAN; '
              'exit $rc')
    (tmp_path / "mnt").mkdir()
    env = cli_env()
    env.update(W=str(tmp_path / "mnt"), EEMT=EEMT, DEM=str(example_dem))
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    m = re.fullmatch(r"Error: makeflow would never start some of this job's tasks here: (.*) tasks declare "
                     r"([\d,]+) MB of disk, and (\S+) has ([\d,]+) MB of disk free on a machine with [\d,]+ MB of "
                     r"memory and \d+ cores; free space there \(or plan into a work directory on a larger file "
                     r"system, or run on a larger machine\), then run the same command again", lines[0])
    assert m, lines[0]
    # the cut (100 MB) and solar-fast (105 MB) tasks do not fit either: listed before the reducer
    assert m.group(1).startswith("cut tasks declare 100 MB of disk, ") and m.group(1).endswith(", reduce"), m.group(1)
    declared, workdir, free = int(m.group(2).replace(",", "")), m.group(3), int(m.group(4).replace(",", ""))
    assert declared >= 1000 and free < 48 and workdir == str(tmp_path / "mnt" / "work"), (declared, free, workdir)
    assert proc.stdout.split() == ["PLANNED"], proc.stdout  # planned, and makeflow never started
