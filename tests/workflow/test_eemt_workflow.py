"""EEMT end to end through the real workflow (GRASS r.sun, makeflow), against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import REPO, read_raster, relative_difference, rerun_in_strips, run_cli

ONE_DAY_PER_MONTH = "15,46,74,105,135,166,196,227,258,288,319,349"
FAST = ["--days", ONE_DAY_PER_MONTH, "--horizon-step", "10", "--halo", "300", "--quiet"]


def _station_csv(path, tmin, tmax, prcp, vp):
    rows = "\n".join(f"{m},{tmin},{tmax},{prcp},{vp}" for m in range(1, 13))
    path.write_text("month,tmin_c,tmax_c,prcp_mm,vp_pa\n" + rows + "\n")
    return path


def _flat_equator_dem(path, n_cells):
    """A flat n x n DEM of 30 m cells at 2000 m on the equator (UTM 31N, northing 600 m)."""
    with rasterio.open(path, "w", driver="GTiff", width=n_cells, height=n_cells, count=1, dtype="float32",
                       crs="EPSG:32631", transform=from_origin(500000, 600, 30, 30), nodata=float("nan")) as dst:
        dst.write(np.full((1, n_cells, n_cells), 2000.0, dtype="float32"))
    return path


@pytest.fixture(scope="module")
def flat_equator_run(tmp_path_factory):
    """A flat 20 x 20 DEM at 2000 m on the equator (UTM 31N, northing 600 m: latitude ≈ 0.003-0.005°)."""
    tmp = tmp_path_factory.mktemp("flat")
    dem = _flat_equator_dem(tmp / "flat.tif", 20)
    csv = _station_csv(tmp / "normals.csv", 5.0, 15.0, 100.0, 800.0)
    work = tmp / "work"
    run_cli("run", "--dem", dem, "--workdir", work, "--climate", f"station:{csv}", "--station-elevation", "2000",
            "--tile-size", "1000", *FAST)
    return work


def test_flat_trad_uniform_and_hand_computed(flat_equator_run):
    # Every month: Tmin 5, Tmax 15 -> T = 10 °C; P = 100 mm; station at the DEM's 2000 m (no lapse).
    # On the equator the astronomical daylength is 12 h every day (ω_s = arccos(-tan 0 · tan δ) = π/2).
    # e°(10) = 0.6108·exp(17.27·10/247.3) = 1.2279626 kPa
    # Hamon: 29.8·12·1.2279626/(10 + 273.2) = 1.5505630 mm/day; over 365 days 565.95548 mm (< P every month)
    # Peff = F = 1200 − 565.95548 = 634.04452 mm/yr
    # E_PPT = 4186·634.04452·10 = 26.541103 MJ m-2 yr-1
    # NPP = 3000/(1 + exp(1.315 − 0.119·10)) = 3000/(1 + exp(0.125)) = 1406.3719 g m-2 yr-1 (P > PET every month)
    # E_BIO = 1406.3719/1000·22e6 J = 30.940181 MJ m-2 yr-1
    # EEMT_TRAD = 26.541103 + 30.940181 = 57.481285 MJ m-2 yr-1
    eemt = read_raster(flat_equator_run / "results/eemt/EEMT_TRAD_normals.tif")
    e_ppt = read_raster(flat_equator_run / "results/eemt/E_PPT_TRAD_normals.tif")
    e_bio = read_raster(flat_equator_run / "results/eemt/E_BIO_TRAD_normals.tif")
    assert np.isfinite(eemt).all()
    np.testing.assert_allclose(e_ppt, 26.541103, rtol=2e-4)
    np.testing.assert_allclose(e_bio, 30.940181, rtol=1e-5)
    np.testing.assert_allclose(eemt, 57.481285, rtol=1e-4)
    assert eemt.max() - eemt.min() < 1e-3  # uniform


def test_flat_trad_thornthwaite_from_a_job_file(tmp_path):
    """``model_parameters: {pet: thornthwaite}`` in a job file: the 2005/2012 papers' TRAD on the flat equator DEM."""
    dem = _flat_equator_dem(tmp_path / "flat.tif", 8)
    csv = _station_csv(tmp_path / "normals.csv", 5.0, 15.0, 100.0, 800.0)
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {dem}\nclimate: station:{csv}\nstation_elevation: 2000\nmodels: trad\n"
                   "model_parameters:\n  pet: thornthwaite\n")
    run_cli("run", job, "--workdir", tmp_path / "work", *FAST)
    # T = 10 °C every month: heat index I = 12 (10/5)^1.514 = 34.27210; a = 1.0431584
    # (6.75e-7 I^3 - 7.71e-5 I^2 + 1.792e-2 I + 0.49239); daylength 12 h on the equator
    # PET_m = 16 (12/12) (d_m/30) (100/34.27210)^1.0431584 = 16 (d_m/30) 3.055839; over the 365 days
    # PET = 16 * 365/30 * 3.055839 = 594.8700 mm (< P = 100 mm in every month: at most 50.52 mm)
    # Peff = 1200 - 594.8700 = 605.1300 mm; E_PPT = 4186 * 605.1300 * 10 = 25.330742 MJ m-2 yr-1
    # NPP as with Hamon (P > PET every month): E_BIO = 30.940181; EEMT = 56.270923 MJ m-2 yr-1
    results = tmp_path / "work" / "results" / "eemt"
    np.testing.assert_allclose(read_raster(results / "E_PPT_TRAD_normals.tif"), 25.330742, rtol=2e-4)
    np.testing.assert_allclose(read_raster(results / "E_BIO_TRAD_normals.tif"), 30.940181, rtol=1e-5)
    np.testing.assert_allclose(read_raster(results / "EEMT_TRAD_normals.tif"), 56.270923, rtol=1e-4)
    summary = json.loads((tmp_path / "work" / "results" / "summary.json").read_text())
    assert "thornthwaite" in json.dumps(summary)


def test_qa_layers_count_flagged_months(tmp_path):
    """QA_{MODEL}_{YEAR}.tif: months with S_i clamped, with P below small_p_mm, and frozen, per cell."""
    # a plane facing south, 20 degrees (tan = 0.364: 10.9 m per 30 m row), at 36 N (UTM 13N)
    rows = np.arange(12)[:, None] * np.ones((1, 12))
    dem = tmp_path / "plane.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=12, height=12, count=1, dtype="float32", crs="EPSG:32613",
                       transform=from_origin(380000, 3985000, 30, 30), nodata=float("nan")) as dst:
        dst.write((2500.0 - 10.92 * rows)[np.newaxis].astype("float32"))
    # Dec, Jan, Feb frozen (T = -15 °C, far from 0 whatever the lapse over 120 m); July dry (0.5 mm < 1 mm)
    lines = ["month,tmin_c,tmax_c,prcp_mm,vp_pa"]
    for m in range(1, 13):
        tmin, tmax = (-20.0, -10.0) if m in (12, 1, 2) else (10.0, 20.0)
        lines.append(f"{m},{tmin},{tmax},{0.5 if m == 7 else 50.0},500")
    csv = tmp_path / "normals.csv"
    csv.write_text("\n".join(lines) + "\n")
    job = tmp_path / "job.yaml"
    # s_min = s_max = 1: every month whose topographic / flat ratio is not exactly 1 is clamped
    job.write_text(f"dem: {dem}\nclimate: station:{csv}\nstation_elevation: 2450\nmodels: trad,topo\n"
                   "model_parameters:\n  s_min: 1.0\n  s_max: 1.0\n")
    run_cli("run", job, "--workdir", tmp_path / "work", *FAST)
    with rasterio.open(tmp_path / "work" / "results" / "eemt" / "QA_TOPO_normals.tif") as src:
        si, small_p, frozen = src.read().astype("float64")
        assert src.descriptions[0].startswith("QA_SI_MONTHS")
    inner = (slice(1, -1), slice(1, -1))  # the edge ring has no slope (r.slope.aspect's null ring)
    assert np.all(si[inner] == 12) and np.all(small_p == 1) and np.all(frozen == 3)
    with rasterio.open(tmp_path / "work" / "results" / "eemt" / "QA_TRAD_normals.tif") as src:
        si, small_p, frozen = src.read().astype("float64")
    assert np.all(si == 0) and np.all(small_p == 1) and np.all(frozen == 3)


def test_flat_topo_bio_and_alpha(flat_equator_run):
    # NPP_TOPO = max(0.39·2000 + 346·0 − 187, 100) = 593 g m-2 yr-1 (flat: northness 0)
    # E_BIO = 593/1000·22e6 J = 13.046 MJ m-2 yr-1, the same in every cell
    e_bio = read_raster(flat_equator_run / "results/eemt/E_BIO_TOPO_normals.tif")
    np.testing.assert_allclose(e_bio, 13.046, rtol=1e-5)
    # α = λ / mean(λ) over the whole DEM: Σα = N valid cells (400)
    alpha = read_raster(flat_equator_run / "results/terrain/alpha.tif")
    assert alpha.sum() == pytest.approx(400, rel=1e-5)
    e_ppt = read_raster(flat_equator_run / "results/eemt/E_PPT_TOPO_normals.tif")
    assert np.isfinite(e_ppt).all() and (e_ppt >= 0).all()


def test_monthly_components_sum_to_annual(flat_equator_run):
    for model in ("TRAD", "TOPO"):
        annual = read_raster(flat_equator_run / f"results/eemt/E_PPT_{model}_normals.tif")
        months = sum(read_raster(flat_equator_run / f"results/eemt/monthly/E_PPT_{model}_normals_{m:02d}.tif")
                     for m in range(1, 13))
        np.testing.assert_allclose(months, annual, rtol=1e-5)


@pytest.fixture(scope="module")
def example_runs(example_dem, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eemt-tiling")
    csv = REPO / "examples" / "station_normals.csv"
    runs = {}
    # tiled: 3 × 3 tiles of 40 cells, the fill and flow exchanges in groups of 2 × 2 (4 groups, then the top)
    for name, size, group in (("tiled", 40, 2), ("untiled", 1000, 8)):
        runs[name] = tmp / name
        run_cli("run", "--dem", example_dem, "--workdir", runs[name], "--climate", f"station:{csv}",
                "--station-elevation", "2300", "--tile-size", size, "--exchange-group", group, *FAST)
    return runs


def test_terrain_tiled_in_exchange_groups_equals_untiled(example_runs):
    """The job's terrain from 9 tiles whose fill and flow exchanges ran up and down two group levels equals
    the one-tile job's: the catchment area within 1e-6 relative, the rest to float32 rounding."""
    rules = (example_runs["tiled"] / "workflow.mf").read_text()
    for kind in ("fill", "flow"):
        assert rules.count(f"--stage {kind}_up --group 1,") == 4 and rules.count(f"--stage {kind}_down --group 1,") == 4
    for layer in ("specific_catchment_area_m", "wetness_index", "alpha"):
        tiled = read_raster(example_runs["tiled"] / f"results/terrain/{layer}.tif")
        untiled = read_raster(example_runs["untiled"] / f"results/terrain/{layer}.tif")
        np.testing.assert_array_equal(np.isnan(tiled), np.isnan(untiled))
        assert relative_difference(tiled, untiled, floor=1e-3).max() <= 1e-6, layer


@pytest.mark.parametrize("name", ["EEMT_TRAD", "EEMT_TOPO", "E_PPT_TOPO", "E_BIO_TOPO"])
def test_eemt_tiled_equals_untiled(example_runs, example_dem, name):
    tiled = read_raster(example_runs["tiled"] / f"results/eemt/{name}_normals.tif")
    untiled = read_raster(example_runs["untiled"] / f"results/eemt/{name}_normals.tif")
    dem = read_raster(example_dem)
    # nodata exactly where the DEM has none; no NaN elsewhere
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(dem))
    np.testing.assert_array_equal(np.isnan(untiled), np.isnan(dem))
    rel = relative_difference(tiled, untiled, floor=1e-3)
    assert rel.max() <= 0.005, rel.max()


def test_eemt_task_in_strips_equals_one_strip(example_runs):
    """An EEMT task that computes its tile in strips of 16 rows (so 8 strips, the last of 8, on the
    120-row example) writes the same values, bit for bit, as the job's task computed in one strip:
    each cell's EEMT is its own cell's (its slope from its 3 x 3 neighbours, which the strip's
    1-cell ring holds at strip edges; its climate from its own position)."""
    from eemt_flow.workflow.makeflow import eemt_memory_mb, eemt_strip_rows
    from eemt_flow.workflow.tasks import eemt_task

    work = example_runs["untiled"]
    job = json.loads((work / "job.json").read_text())
    (tile,) = job["tiles"]
    assert (tile["height"], tile["width"]) == (120, 120) and eemt_strip_rows(tile["width"], 2) >= 100
    path = tile["files"]["eemt"]["normals"]
    ((whole, strips, names, strip_names),) = rerun_in_strips(
        work, [path], lambda: eemt_task(work / "job.json", tile["name"], "normals", strip_rows=16)).values()
    assert strip_names == names and len(names) == 2 * 30  # TRAD and TOPO: 3 + 12 + 12 + 3 bands each
    np.testing.assert_array_equal(strips, whole)  # NaN where the other is NaN, every other value equal
    assert np.isfinite(whole).mean() > 0.5
    # The declaration: 300 MB, 64 MB of GDAL's cache, then (strip rows + 2) x (width + 2) cells of
    # 4 bytes x (200 + 500 x 2) float32: on a 2,000-cell wide core of two models, a strip of
    # 1 GiB / (2,002 x 4 x 1,200 B) = 111.7 -> 96 rows, so (98 x 2,002 x 4,800 B) / 2^20 = 898.2 MB -> 1,262 MB
    # for any height; the example's 120 x 120: 122 x 122 x 4,800 / 2^20 = 68.1 -> 432 MB.
    assert eemt_strip_rows(2000, 2) == 96
    assert eemt_memory_mb(2000, 2000, 2) == eemt_memory_mb(100_000, 2000, 2) == 1262
    assert eemt_memory_mb(120, 120, 2) == 432


def test_eemt_invariants(example_runs):
    work = example_runs["tiled"]
    for model in ("TRAD", "TOPO"):
        eemt = read_raster(work / f"results/eemt/EEMT_{model}_normals.tif")
        assert np.nanmin(eemt) >= 0
    # E_PPT = 0 in frozen months: the example station's January mean is (−11.5 + 3.5)/2 = −4 °C at 2300 m and
    # colder above (the example DEM lies at 2200-2900 m), so every cell has T ≤ 0 in January.
    jan = read_raster(work / "results/eemt/monthly/E_PPT_TRAD_normals_01.tif")
    assert np.nanmax(jan) == 0.0
    jan_topo = read_raster(work / "results/eemt/monthly/E_PPT_TOPO_normals_01.tif")
    assert np.nanmax(jan_topo) == 0.0
    summary = json.loads((work / "results/summary.json").read_text())
    meta = summary["eemt"]
    assert meta["models"] == ["TRAD", "TOPO"]
    assert meta["model_parameters"]["c_w_j_kg_k"] == 4186
    assert any("Santa Catalina" in note for note in meta["notes"])
    assert meta["climate"][0]["days_in_month"] == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def test_mcn_station_end_to_end(mcn_dem, tmp_path):
    csv = REPO / "examples" / "station_normals.csv"
    work = tmp_path / "work"
    proc = run_cli("run", "--dem", mcn_dem, "--workdir", work, "--climate", f"station:{csv}",
                   "--station-elevation", "2300", "--tile-size", "1000", *FAST[:-1])
    assert str(work / "results" / "summary.json") in proc.stdout
    dem = read_raster(mcn_dem)
    for model in ("TRAD", "TOPO"):
        eemt = read_raster(work / f"results/eemt/EEMT_{model}_normals.tif")
        np.testing.assert_array_equal(np.isnan(eemt), np.isnan(dem))
        # semi-arid montane climate: EEMT of order 10-100 MJ m-2 yr-1 (VZJ 2015 Fig. 6 range)
        assert 1 < np.nanmean(eemt) < 100
    assert (work / "results/eemt/EEMT_TOPO_normals.png").stat().st_size > 10_000


def test_climate_errors_are_one_line(example_dem, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("month,tmin_c,tmax_c,prcp_mm,vp_pa\n1,0,10,-5,300\n")
    proc = run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--climate", f"station:{bad}",
                   "--station-elevation", "2300", "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.csv" in proc.stderr
    assert not (tmp_path / "w").exists()
    proc = run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--climate", "station:x.csv",
                   "--days", "172", check=False)
    assert proc.returncode == 2 and "--days misses month(s)" in proc.stderr
    proc = run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--climate", "station:x.csv",
                   "--model", "topo-veg", "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2 and "--ndvi and --canopy-height" in proc.stderr


def test_ndvi_out_of_range_refused(example_dem, tmp_path):
    """NDVI must lie in [-1, 1]; the plan refuses the file by name and writes nothing."""
    with rasterio.open(example_dem) as src:
        profile = src.profile
        shape = src.shape
    ndvi = tmp_path / "ndvi.tif"
    height = tmp_path / "height.tif"
    for path, value in ((ndvi, 1.7), (height, 12.0)):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((1, *shape), value, dtype="float32"))
    csv = REPO / "examples" / "station_normals.csv"
    proc = run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--climate", f"station:{csv}",
                   "--station-elevation", "2300", "--model", "topo-veg", "--ndvi", ndvi, "--canopy-height", height,
                   "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"Error: {ndvi}: NDVI values span 1.7 to 1.7, outside [-1.0, 1.0]"
    assert not (tmp_path / "w").exists()


def test_flat_topo_veg_bio_hand_computed(tmp_path):
    """EEMT-TOPO-VEG through the workflow: NPP_VEG from canopy height (VZJ 2015 Eq. 12)."""
    dem = tmp_path / "flat.tif"
    profile = dict(driver="GTiff", width=20, height=20, count=1, dtype="float32", crs="EPSG:32631",
                   transform=from_origin(500000, 600, 30, 30), nodata=float("nan"))
    for path, value in ((dem, 2000.0), (tmp_path / "ndvi.tif", 0.5), (tmp_path / "h.tif", 10.0)):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((1, 20, 20), value, dtype="float32"))
    csv = _station_csv(tmp_path / "normals.csv", 5.0, 15.0, 100.0, 800.0)
    work = tmp_path / "work"
    run_cli("run", "--dem", dem, "--workdir", work, "--climate", f"station:{csv}", "--station-elevation", "2000",
            "--model", "trad,topo-veg", "--ndvi", tmp_path / "ndvi.tif", "--canopy-height", tmp_path / "h.tif",
            "--tile-size", "1000", *FAST)
    # NPP_VEG = 196 + 36·10 − (0.61·10 − 12.0933)² = 556 − (−5.9933)² = 556 − 35.919645 = 520.080355 g m-2 yr-1
    # E_BIO = 520.080355/1000·22e6 J = 11.441768 MJ m-2 yr-1
    e_bio = read_raster(work / "results/eemt/E_BIO_TOPO_VEG_normals.tif")
    np.testing.assert_allclose(e_bio, 11.441768, rtol=1e-5)
    eemt = read_raster(work / "results/eemt/EEMT_TOPO_VEG_normals.tif")
    assert np.isfinite(eemt).all() and (eemt >= e_bio - 1e-4).all()  # E_PPT ≥ 0 adds to E_BIO
    # TRAD in the same job is unchanged by the vegetation rasters: 57.481285 (see the test above)
    np.testing.assert_allclose(read_raster(work / "results/eemt/EEMT_TRAD_normals.tif"), 57.481285, rtol=1e-4)


def test_wind_and_npp_rasters_reach_topo(tmp_path):
    """--wind-speed and --npp rasters (any grid: 60 m cells over the 30 m DEM), through a YAML job file.

    NPP: a raster of 800 g m-2 yr-1 replaces NPP_TOPO (593 on this DEM): E_BIO_TOPO =
    800/1000 · 22 = 17.6 MJ m-2 yr-1 in every cell; TRAD keeps Lieth's NPP (30.940181).
    Wind: a uniform 4 m/s raster gives exactly what the constant wind_speed_m_s: 4 gives;
    a raster of 4 m/s in the west half and 8 m/s in the east half gives the west half that
    same value and the east half another.
    """
    dem = _flat_equator_dem(tmp_path / "flat.tif", 8)
    csv = _station_csv(tmp_path / "normals.csv", 5.0, 15.0, 100.0, 800.0)

    def raster(name, values, cell_m=60, n=6):
        """n x n cells from 60 m west and north of the DEM (60 m cells), or on the DEM's grid (30 m)."""
        origin = (499_940, 660) if cell_m == 60 else (500_000, 600)
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
                           crs="EPSG:32631", transform=from_origin(*origin, cell_m, cell_m)) as dst:
            dst.write(np.asarray(values, dtype="float32").reshape(1, n, n))
        return tmp_path / name

    npp = raster("npp.tif", np.full(36, 800.0))
    wind4 = raster("wind4.tif", np.full(36, 4.0))
    # on the DEM's own grid, so that no cell is interpolated between the halves
    split = raster("wind_split.tif", np.tile([4.0] * 4 + [8.0] * 4, 8), cell_m=30, n=8)
    runs = {}
    for name, extra in (("raster", f"wind_speed: {wind4.name}\nnpp: {npp.name}\n"),
                        ("constant", "model_parameters:\n  wind_speed_m_s: 4.0\n"),
                        ("split", f"wind_speed: {split.name}\n")):
        job = tmp_path / f"{name}.yaml"
        job.write_text(f"dem: {dem.name}\nclimate: station:{csv.name}\nstation_elevation: 2000\n{extra}")
        runs[name] = tmp_path / f"work_{name}"
        run_cli("run", job, "--workdir", runs[name], *FAST)
    e = {name: {q: read_raster(work / f"results/eemt/{q}_TOPO_normals.tif") for q in ("E_PPT", "E_BIO")}
         for name, work in runs.items()}
    np.testing.assert_allclose(e["raster"]["E_BIO"], 17.6, rtol=1e-5)
    np.testing.assert_allclose(e["constant"]["E_BIO"], 13.046, rtol=1e-5)  # NPP_TOPO = 593 (see above)
    np.testing.assert_allclose(read_raster(runs["raster"] / "results/eemt/E_BIO_TRAD_normals.tif"), 30.940181,
                               rtol=1e-5)
    np.testing.assert_allclose(e["raster"]["E_PPT"], e["constant"]["E_PPT"], rtol=1e-6)
    np.testing.assert_allclose(e["split"]["E_PPT"][:, :4], e["constant"]["E_PPT"][:, :4], rtol=1e-6)
    west, east = e["split"]["E_PPT"][:, :4], e["split"]["E_PPT"][:, 4:]
    assert (np.abs(east - west.mean()) > 0.01 * west.mean()).all()  # 8 m/s evaporates more than 4 m/s
    meta = json.loads((runs["raster"] / "results/summary.json").read_text())["eemt"]
    assert meta["wind_speed_raster"] == str(wind4) and meta["npp_raster"] == str(npp)
    assert any("user's NPP raster" in note for note in meta["notes"])

    # Out of range: one line naming the file and the accepted range, nothing written
    bad = raster("wind_bad.tif", np.full(36, -1.0))
    proc = run_cli("plan", "--dem", dem, "--workdir", tmp_path / "w", "--climate", f"station:{csv}",
                   "--station-elevation", "2000", "--wind-speed", bad, "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2 and not (tmp_path / "w").exists()
    assert proc.stderr.strip() == f"Error: {bad}: wind speed (m/s) values span -1 to -1, outside [0.1, 50.0]"
    bad = raster("npp_bad.tif", np.full(36, 9000.0))
    proc = run_cli("plan", "--dem", dem, "--workdir", tmp_path / "w", "--climate", f"station:{csv}",
                   "--station-elevation", "2000", "--npp", bad, "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2 and "NPP (g m-2 yr-1) values span 9000 to 9000, outside [0.0, 5000.0]" in proc.stderr


def test_hamon_daily_refused_at_plan_time(tmp_path):
    """hamon_mode: daily is refused before anything is written (the EEMT tasks receive monthly climate only)."""
    dem = _flat_equator_dem(tmp_path / "flat.tif", 8)
    csv = _station_csv(tmp_path / "normals.csv", 5.0, 15.0, 100.0, 800.0)
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {dem}\nclimate: station:{csv}\nstation_elevation: 2000\nmodel_parameters:\n"
                   "  hamon_mode: daily\n")
    proc = run_cli("plan", job, "--workdir", tmp_path / "w", "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2 and not (tmp_path / "w").exists()
    assert proc.stderr.strip() == ("Error: model_parameters: hamon_mode 'daily' is not available in a job (the EEMT "
                                   "tasks receive monthly climate only); use hamon_mode 'monthly', the default")


def test_real_radiation_needs_daymet(tmp_path):
    """--radiation real with station normals: one line at plan time, nothing written."""
    dem = _flat_equator_dem(tmp_path / "flat.tif", 8)
    csv = _station_csv(tmp_path / "normals.csv", 5.0, 15.0, 100.0, 800.0)
    proc = run_cli("plan", "--dem", dem, "--workdir", tmp_path / "w", "--climate", f"station:{csv}",
                   "--station-elevation", "2000", "--radiation", "real", "--days", ONE_DAY_PER_MONTH, check=False)
    assert proc.returncode == 2 and not (tmp_path / "w").exists()
    assert proc.stderr.strip() == ("Error: --radiation real needs DAYMET's shortwave radiation (srad, dayl): use "
                                   "--climate daymet, or --radiation clear")
