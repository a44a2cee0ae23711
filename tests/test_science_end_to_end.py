"""EEMT science end to end through the real CLI, each against values computed here from the spec.

Every expected value is computed in this file with plain numpy from the equations of
EEMT-SPEC §2-5 (never by calling eemt_flow's model code), so that a wrong month, latitude,
lapse, day count or pass-through between planner, tasks and reducer makes a test fail.
DEMs are small, days few and steps coarse: each run takes seconds.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform

from conftest import read_raster, run_cli

ONE_DAY_PER_MONTH = "15,46,74,105,135,166,196,227,258,288,319,349"

# --- the spec's equations, written out again independently of eemt_flow.model ------------
#: Solar months of the non-leap year (EEMT-SPEC §2): first and last day of year, inclusive.
SOLAR_MONTH_DOYS = [(1, 31), (32, 59), (60, 90), (91, 120), (121, 151), (152, 181), (182, 212), (213, 243),
                    (244, 273), (274, 304), (305, 334), (335, 365)]
NON_LEAP_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
C_W, H_BIO, LAPSE = 4186.0, 22.0e6, 6.49  # J kg-1 K-1, J kg-1, °C km-1 (EEMT-SPEC §1.3)


def astronomical_daylength_h(lat_deg, month):
    """FAO-56 Eqs. 24, 25, 34, averaged over the days of the solar month."""
    first, last = SOLAR_MONTH_DOYS[month - 1]
    phi = np.radians(lat_deg)
    out = []
    for j in range(first, last + 1):
        delta = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
        out.append(24 / np.pi * np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1)))
    return np.mean(out, axis=0)


def sat_vp_kpa(t):
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def trad_month(tmin, tmax, prcp, daylength_h, days):
    """EEMT-SPEC §4 for one month: (E_PPT, E_BIO) in J m-2."""
    t = (tmin + tmax) / 2
    pet = days * 29.8 * daylength_h * sat_vp_kpa(t) / (t + 273.2)
    peff = np.maximum(prcp - pet, 0)
    e_ppt = C_W * peff * np.maximum(t, 0)
    npp = np.where(prcp > pet, 3000 / (1 + np.exp(1.315 - 0.119 * t)) * days / 365, 0.0)
    return e_ppt, npp / 1000 * H_BIO


def cell_latitudes(path):
    """Latitude of every cell centre [deg], by pyproj through rasterio (not eemt_flow's geography)."""
    with rasterio.open(path) as src:
        rows, cols = np.mgrid[0:src.height, 0:src.width]
        xs, ys = src.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
        _, lats = warp_transform(src.crs, "EPSG:4326", xs, ys)
        return np.asarray(lats).reshape(src.height, src.width)


def write_dem(path, values, crs, origin, cell_m):
    values = np.asarray(values, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", crs=crs, transform=from_origin(*origin, cell_m, cell_m),
                       nodata=float("nan")) as dst:
        dst.write(values[np.newaxis])
    return path


def write_station(path, tmin, tmax, prcp, vp):
    rows = [f"{m + 1},{tmin[m]},{tmax[m]},{prcp[m]},{vp[m]}" for m in range(12)]
    path.write_text("month,tmin_c,tmax_c,prcp_mm,vp_pa\n" + "\n".join(rows) + "\n")
    return path


# --- (a) TRAD at a mid-latitude station, the DEM 500 m above it --------------------------
STATION_TMIN = [-9.0, -8.0, -4.0, 0.0, 4.0, 8.0, 12.0, 11.0, 7.0, 2.0, -4.0, -8.0]
STATION_TMAX = [3.0, 5.0, 9.0, 14.0, 19.0, 25.0, 29.0, 28.0, 23.0, 16.0, 8.0, 3.0]
STATION_PRCP = [90.0, 80.0, 70.0, 60.0, 55.0, 30.0, 20.0, 25.0, 40.0, 60.0, 80.0, 90.0]


def test_trad_mid_latitude_station_500_m_below_the_dem(tmp_path):
    """TRAD on a flat DEM at 2500 m spanning 44.9-45.1 N, the station at 2000 m.

    The lapse correction (−3.245 °C), each cell's own latitude and each month's mean
    astronomical daylength all enter; the expected maps are computed here per cell.
    """
    # 10 x 10 cells of 2 km, UTM 13N, northing 5,000 km at the top: about 45.1 N down to 44.9 N
    dem = write_dem(tmp_path / "dem.tif", np.full((10, 10), 2500.0), "EPSG:32613", (400_000, 5_000_000), 2000)
    csv = write_station(tmp_path / "normals.csv", STATION_TMIN, STATION_TMAX, STATION_PRCP, [600.0] * 12)
    work = tmp_path / "work"
    run_cli("run", "--dem", dem, "--workdir", work, "--climate", f"station:{csv}", "--station-elevation", "2000",
            "--model", "trad", "--days", ONE_DAY_PER_MONTH, "--horizon-step", "30", "--step-minutes", "60",
            "--halo", "2000", "--quiet")
    lat = cell_latitudes(dem)
    assert 44.8 < lat.min() < lat.max() < 45.2
    shift = LAPSE * (2500 - 2000) / 1000  # 3.245 °C colder than the station
    e_ppt = np.zeros(lat.shape)
    e_bio = np.zeros(lat.shape)
    for m in range(1, 13):
        d = astronomical_daylength_h(lat, m)
        p, b = trad_month(STATION_TMIN[m - 1] - shift, STATION_TMAX[m - 1] - shift, STATION_PRCP[m - 1], d,
                          NON_LEAP_DAYS[m - 1])
        e_ppt += p
        e_bio += b
        got = read_raster(work / f"results/eemt/monthly/E_PPT_TRAD_normals_{m:02d}.tif")
        np.testing.assert_allclose(got, p / 1e6, rtol=2e-4, atol=1e-7, err_msg=f"month {m}")
    # The climate makes every branch count: frozen winter months (E_PPT = 0), summer months
    # with P < PET (no NPP), and months where water percolates.
    january_t = (STATION_TMIN[0] + STATION_TMAX[0]) / 2 - shift
    assert january_t < 0
    results = work / "results/eemt"
    np.testing.assert_allclose(read_raster(results / "E_PPT_TRAD_normals.tif"), e_ppt / 1e6, rtol=2e-4)
    np.testing.assert_allclose(read_raster(results / "E_BIO_TRAD_normals.tif"), e_bio / 1e6, rtol=2e-4)
    np.testing.assert_allclose(read_raster(results / "EEMT_TRAD_normals.tif"), (e_ppt + e_bio) / 1e6, rtol=2e-4)
    # Sensitivity: in May (P barely above PET) the north and south rows differ by ~3 %, far
    # more than the tolerance, so one latitude for the whole DEM would fail; without the
    # lapse correction the annual result would be far off.
    may = read_raster(work / "results/eemt/monthly/E_PPT_TRAD_normals_05.tif")
    assert abs(may[0].mean() - may[-1].mean()) / may.mean() > 0.01
    total = (e_ppt + e_bio) / 1e6
    no_lapse = sum(sum(trad_month(STATION_TMIN[m - 1], STATION_TMAX[m - 1], STATION_PRCP[m - 1],
                                  astronomical_daylength_h(lat, m), NON_LEAP_DAYS[m - 1])) for m in range(1, 13)) / 1e6
    assert np.all(np.abs(no_lapse - total) / total > 0.05)
    summary = json.loads((work / "results/summary.json").read_text())
    assert summary["eemt"]["station_elevation_m"] == 2000


# --- (c) a DAYMET leap year through the local DAYMET test server --------------------------
@pytest.fixture
def daymet_server(tmp_path):
    """The NCSS-like DAYMET server of test_climate_daymet on 127.0.0.1 (leap years keep Feb 29, drop Dec 31)."""
    from test_climate_daymet import FakeNcss, make_handler

    state = FakeNcss(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_daymet_leap_year_2020_end_to_end(daymet_server, tmp_path):
    """DAYMET 2020 through the CLI: Feb has 29 climate days, Dec 30, solar months stay non-leap.

    The server's truth (test_climate_daymet.daily_field): tmin = m °C on every day of month
    m except Feb 29 at 31 °C, so Feb 2020's mean is (28·2 + 31)/29 = 3.0 °C; tmax = tmin + 10
    + 0.5·(x_km + 800) (a plane in DAYMET's LCC x, which bilinear reproduces); prcp 1 mm
    every day, so P_Feb = 29 mm and P_Dec = 30 mm (Dec 31 dropped). Flat DEM at 2000 m:
    z_base = 2000 m, no lapse shift.
    """
    from test_climate_daymet import DAYMET_LCC, TMAX_GRADIENT_C_PER_KM, TMAX_X_REF_KM

    # UTM 12N near 35.7 N 109.3 W, where DAYMET's LCC x is about -805 km: tmax ≈ tmin + 7.5 °C
    dem = write_dem(tmp_path / "dem.tif", np.full((8, 8), 2000.0), "EPSG:32612", (657_000, 3_949_400), 30)
    job = tmp_path / "job.yaml"
    # hamon_k = 10 (not 29.8) keeps PET below this dry server's 1 mm a day, so that water percolates
    job.write_text(f"dem: {dem}\nclimate: daymet\nyears: [2020]\nmodels: trad,topo\n"
                   f"cache_dir: {tmp_path / 'cache'}\nmodel_parameters:\n  hamon_k: 10\n")
    work = tmp_path / "work"
    # days 59 (Feb 28) and 60 (Mar 1 of the non-leap solar year, Feb 29 in 2020's dates) requested
    days = "15,46,59,60,74,105,135,166,196,227,258,288,319,349"
    run_cli("run", job, "--workdir", work, "--days", days, "--horizon-step", "30", "--step-minutes", "60",
            "--halo", "300", "--quiet",
            env={"EEMT_DAYMET_URL": daymet_server.data_url, "EARTHDATA_TOKEN": "token-for-tests-123"})
    # srad and dayl too: every DAYMET job writes real-sky maps
    assert {r["path"].rsplit("/", 1)[-1] for r in daymet_server.data_requests()} == {
        f"daymet_v4_daily_na_{v}_2020.nc" for v in ("tmin", "tmax", "prcp", "vp", "srad", "dayl")}
    summary = json.loads((work / "results/summary.json").read_text())
    [climate] = summary["eemt"]["climate"]
    assert climate["year"] == "2020"
    assert climate["days_in_month"] == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30]
    # Solar months follow the non-leap calendar whatever the climate year: DOY 59 in
    # February, DOY 60 in March.
    job_json = json.loads((work / "job.json").read_text())
    assert job_json["months"]["02"] == [46, 59] and job_json["months"]["03"] == [60, 74]

    lat = cell_latitudes(dem)
    with rasterio.open(dem) as src:
        rows, cols = np.mgrid[0:8, 0:8]
        xs, ys = src.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
        x_km = np.asarray(warp_transform(src.crs, DAYMET_LCC, xs, ys)[0]).reshape(8, 8) / 1000
    tmax_plane = 10 + TMAX_GRADIENT_C_PER_KM * (x_km - TMAX_X_REF_KM)
    results = work / "results/eemt"
    for month, tmin, days_m in ((2, 3.0, 29), (12, 12.0, 30), (3, 3.0, 31)):
        t = (tmin + tmin + tmax_plane) / 2
        pet = days_m * 10 * astronomical_daylength_h(lat, month) * sat_vp_kpa(t) / (t + 273.2)
        assert np.all(pet < days_m)  # water percolates: Peff > 0, NPP gate open
        e_ppt = C_W * (days_m - pet) * t
        e_bio = 3000 / (1 + np.exp(1.315 - 0.119 * t)) * days_m / 365 / 1000 * H_BIO
        np.testing.assert_allclose(read_raster(results / f"monthly/E_PPT_TRAD_2020_{month:02d}.tif"), e_ppt / 1e6,
                                   rtol=5e-4, err_msg=f"month {month}")
        np.testing.assert_allclose(read_raster(results / f"monthly/E_BIO_TRAD_2020_{month:02d}.tif"), e_bio / 1e6,
                                   rtol=5e-4, err_msg=f"month {month}")
        # TOPO's NPP share is d_m/365 of NPP_TOPO = 0.39·2000 − 187 = 593 g m-2 yr-1 (flat: n = 0)
        np.testing.assert_allclose(read_raster(results / f"monthly/E_BIO_TOPO_2020_{month:02d}.tif"),
                                   593 / 1000 * H_BIO * days_m / 365 / 1e6, rtol=1e-5)
    # The year sums to 365 days of NPP_TOPO
    np.testing.assert_allclose(read_raster(results / "E_BIO_TOPO_2020.tif"), 593 / 1000 * 22.0, rtol=1e-5)
    # Real-sky maps: on flat ground the real-sky global irradiation is DAYMET's own, the month's
    # mean day of srad · dayl / 3600 = (200 + 10 m)(36 000 + 600 m) / 3600 Wh m-2 (the server's
    # fields), e.g. February 220 · 37 200 / 3600 = 2273.33, December 320 · 43 200 / 3600 = 3840
    for m in range(1, 13):
        real = read_raster(work / f"results/solar/monthly/glob_rad_real_{m:02d}.tif")
        np.testing.assert_allclose(real, (200 + 10 * m) * (36_000 + 600 * m) / 3600, rtol=1e-5, err_msg=f"month {m}")
    assert summary["eemt"]["real_sky"] is True and summary["eemt"]["radiation"] == "clear"


# --- (b) EEMT-TOPO on tilted planes, facing south and facing north -----------------------
# Mediterranean: cool, very wet winters (where S_i is far from 1), dry summers
PLANE_TMIN = [-2.0, -2.0, -1.0, 3.0, 9.0, 13.0, 16.0, 16.0, 13.0, 5.0, -1.0, -2.0]
PLANE_TMAX = [7.0, 7.0, 8.0, 13.0, 19.0, 23.0, 26.0, 26.0, 23.0, 15.0, 8.0, 7.0]
PLANE_PRCP = [800.0, 800.0, 600.0, 100.0, 5.0, 5.0, 5.0, 5.0, 5.0, 100.0, 600.0, 800.0]
PLANE_VP = [350.0, 350.0, 400.0, 450.0, 600.0, 800.0, 900.0, 900.0, 750.0, 500.0, 400.0, 350.0]
TAN_BETA = 10.92 / 30  # 20.0 degrees: 10.92 m drop per 30 m cell


def topo_expected(z, s_topo_sum, s_flat_sum, alpha, northness, n_days_requested):
    """EEMT-SPEC §5 per cell, written out: annual (E_PPT, E_BIO) [MJ m-2] and monthly E_PPT [MJ m-2]."""
    shift = LAPSE * (z - 2440.0) / 1000
    e_ppt_months = []
    for m in range(12):
        days = NON_LEAP_DAYS[m]
        s_i = np.clip(s_topo_sum[m] / s_flat_sum[m], 0.1, 10)
        tmin = PLANE_TMIN[m] - shift
        tmax = PLANE_TMAX[m] - shift + 1.0 * (s_i - 1 / s_i)  # Moore, C = 1 °C
        t = (tmin + tmax) / 2
        r_m = s_topo_sum[m] / n_days_requested * days * 3600  # J m-2: mean day × days_m
        p_atm = 101.3 * ((293 - 0.0065 * z) / 293) ** 5.26
        gamma = 1013 * p_atm / (0.622 * 2.45e6)
        delta = 4098 * sat_vp_kpa(t) / (t + 237.3) ** 2
        vpd = np.maximum((sat_vp_kpa(tmax) + sat_vp_kpa(tmin)) / 2 - PLANE_VP[m] / 1000, 0)
        rho = 1000 * p_atm / (287.05 * (t + 273.15))
        r_a = 4.72 * np.log(2 / 0.00137) ** 2 / (1 + 0.536 * 2.0)
        pet = (delta * r_m + rho * 1013 * vpd / r_a * days * 86400) / (2.45e6 * (delta + gamma))
        p = PLANE_PRCP[m]
        phi = pet / p
        aet = np.clip(p * (1 + phi - (1 + phi ** 2.63) ** (1 / 2.63)), 0, np.minimum(p, pet))
        f = np.where(t <= 0, 0.0, np.maximum(alpha * (p - aet), 0))
        e_ppt_months.append(f * C_W * np.maximum(t, 0) / 1e6)
    npp = np.maximum(0.39 * z + 346 * northness - 187, 100)
    return sum(e_ppt_months), npp / 1000 * H_BIO / 1e6, e_ppt_months


def _plane(facing):
    rows = np.arange(12)[:, None] * np.ones((1, 12))
    downhill = rows if facing == "south" else 11 - rows  # row 0 is the northern edge
    return downhill, 2500.0 - 10.92 * downhill


@pytest.fixture(scope="module")
def plane_runs(tmp_path_factory):
    """One TOPO run on each plane, 20° facing south and facing north, 12 x 12 cells of 30 m at 36 N."""
    tmp = tmp_path_factory.mktemp("planes")
    csv = write_station(tmp / "normals.csv", PLANE_TMIN, PLANE_TMAX, PLANE_PRCP, PLANE_VP)
    runs = {}
    for facing in ("south", "north"):
        dem = write_dem(tmp / f"{facing}.tif", _plane(facing)[1], "EPSG:32613", (380_000, 3_985_000), 30)
        runs[facing] = tmp / facing
        run_cli("run", "--dem", dem, "--workdir", runs[facing], "--climate", f"station:{csv}",
                "--station-elevation", "2440", "--model", "topo", "--days", ONE_DAY_PER_MONTH,
                "--horizon-step", "10", "--step-minutes", "30", "--halo", "300", "--quiet")
    return runs


INNER = (slice(1, -1), slice(1, -1))  # the outer ring has no slope (r.slope.aspect's null ring)


@pytest.mark.parametrize("facing", ["south", "north"])
def test_topo_on_tilted_planes(plane_runs, facing):
    """E_PPT_TOPO and E_BIO_TOPO per cell on a 20° plane at 36 N, against §5 written out here.

    The radiation sums are the job's own solar maps (results/solar/monthly, the input of the
    EEMT stage); alpha is the job's whole-DEM map, whose shape along the slope is checked
    against ln(a / tan β) with the specific catchment area a = (k + 1)·30 m of row k.
    """
    work = plane_runs[facing]
    downhill, z = _plane(facing)
    alpha = read_raster(work / "results/terrain/alpha.tif")
    assert alpha.mean() == pytest.approx(1.0, rel=1e-5)  # α = λ / mean(λ)
    k = downhill[INNER]  # cells above, along the flow line
    lam = np.log((k + 1) * 30 / TAN_BETA)
    np.testing.assert_allclose(alpha[INNER] / alpha[INNER].mean(), lam / lam.mean(), rtol=1e-5)
    s_topo = [read_raster(work / f"results/solar/monthly/glob_rad_{m:02d}.tif") for m in range(1, 13)]
    s_flat = [read_raster(work / f"results/solar/monthly/flat_glob_rad_{m:02d}.tif") for m in range(1, 13)]
    sin_beta = np.sin(np.arctan(TAN_BETA))
    northness = -sin_beta if facing == "south" else sin_beta  # n = cos(aspect from north)·sin β
    e_ppt, e_bio, months = topo_expected(z, s_topo, s_flat, alpha, northness, 1)
    got_ppt = read_raster(work / "results/eemt/E_PPT_TOPO_normals.tif")
    got_bio = read_raster(work / "results/eemt/E_BIO_TOPO_normals.tif")
    np.testing.assert_allclose(got_bio[INNER], e_bio[INNER], rtol=1e-5)
    np.testing.assert_allclose(got_ppt[INNER], e_ppt[INNER], rtol=1e-4)
    for m in (1, 6):
        got = read_raster(work / f"results/eemt/monthly/E_PPT_TOPO_normals_{m:02d}.tif")
        np.testing.assert_allclose(got[INNER], months[m - 1][INNER], rtol=1e-4, atol=1e-9, err_msg=f"month {m}")
    # S_i is exercised: winter sun on a 20° slope at 36 N, well above 1 facing south, below facing north
    s_i_dec = (s_topo[11] / s_flat[11])[INNER]
    assert (s_i_dec > 1.3).all() if facing == "south" else (s_i_dec < 0.7).all()
    assert json.loads((work / "results/summary.json").read_text())["eemt"]["models"] == ["TOPO"]


def test_south_face_exceeds_north_face(plane_runs):
    """With wet winters the sunnier south face carries more energy with its water.

    Compared cell by cell at the same elevation and place on the slope (row k from the
    ridge): in winter the Moore term warms the south face's Tmax (S_i ≈ 1.5) and cools the
    north face's (S_i ≈ 0.4), which outweighs the south face's larger evaporation while
    water is plentiful. (Where the water comes in summer, S_i is near 1 on both faces and
    the north face, evaporating less, wins; EEMT-TOPO is not south-biased by
    construction.) NPP_TOPO (Eq. 11) goes the other way: +346·n favours the north face.
    """
    ppt = {f: read_raster(plane_runs[f] / "results/eemt/E_PPT_TOPO_normals.tif")[INNER] for f in plane_runs}
    bio = {f: read_raster(plane_runs[f] / "results/eemt/E_BIO_TOPO_normals.tif")[INNER] for f in plane_runs}
    assert (ppt["south"] > 1.05 * ppt["north"][::-1]).all()
    # E_BIO: 346·2·sin 20° = 236.7 g m-2 yr-1 more on the north face = 5.207 MJ m-2 yr-1
    np.testing.assert_allclose(bio["north"][::-1] - bio["south"], 2 * 346 * np.sin(np.arctan(TAN_BETA)) * 0.022,
                               rtol=1e-4)


# --- (d) Linke turbidity and albedo reach the radiation: the workflow against GRASS r.sun --
#: Cases: (Linke turbidity, albedo); each value of the issue once, the other parameter at
#: its default, so that each effect is seen alone.
RSUN_CASES = [(2.0, 0.2), (5.0, 0.2), (3.0, 0.1), (3.0, 0.4)]
RSUN_DAYS = {172: 6, 355: 12}  # day of year -> month: June and December, one day each
RSUN_STEP_MINUTES = 15.0
RSUN_MAX_DISTANCE_M = 300.0
RSUN_HORIZON_STEP_DEG = 5.0  # coarse and cheap: 72 horizon maps in both
#: One GRASS session: slope, aspect and clamped horizons once (as test_fast_solar's
#: reference, at a 5° step), then r.sun for every case, topographic and flat (-p).
RSUN_SCRIPT = r"""
set -e
r.in.gdal input="$DEM" output=dem --quiet
g.region raster=dem
r.slope.aspect -e elevation=dem slope=slope aspect=aspect --quiet
r.horizon elevation=dem step=$HSTEP maxdistance=$MAXD output=hor --quiet
for m in $(g.list type=raster pattern='hor_*'); do echo "horc_${m#hor_} = max(${m}, 0)"; done > clamp.txt
r.mapcalc file=clamp.txt --quiet
r.out.gdal input=slope output="$OUT/slope.tif" type=Float64 -c --quiet
r.out.gdal input=aspect output="$OUT/aspect.tif" type=Float64 -c --quiet
for case in $CASES; do
  linke=${case%_*}; albedo=${case#*_}
  for d in $DAYS; do
    r.sun elevation=dem slope=slope aspect=aspect horizon_basename=horc horizon_step=$HSTEP day=$d \
          step=$STEP linke_value=$linke albedo_value=$albedo glob_rad=g beam_rad=b refl_rad=r --quiet --overwrite
    r.sun elevation=dem slope_value=0 aspect_value=0 -p day=$d step=$STEP \
          linke_value=$linke albedo_value=$albedo glob_rad=f beam_rad=fb --quiet --overwrite
    for m in g f b r fb; do
      r.out.gdal input=$m output="$OUT/${m}_${case}_$d.tif" type=Float64 -c --quiet --overwrite
    done
  done
done
"""


def _write_hill(path):
    """A Gaussian hill (450 m) with slopes up to ~45°, 64 x 64 cells of 20 m, UTM 13N (35.9 N)."""
    n, cell = 64, 20.0
    y, x = (np.mgrid[0:n, 0:n] + 0.5) * cell
    dem = 2000.0 + 450.0 * np.exp(-((x - 700.0) ** 2 + (y - 600.0) ** 2) / (2 * 220.0 ** 2))
    return write_dem(path, dem, "EPSG:26913", (380_000, 3_970_000), cell)


@pytest.fixture(scope="module")
def rsun_cases(tmp_path_factory):
    """Each case through ``eemt-flow run`` (fast engine, 5° horizons) and through GRASS r.sun."""
    import os
    import subprocess

    from test_fast_solar import GRASS, _read

    assert GRASS is not None, "GRASS GIS (grass) missing: run scripts/bootstrap.sh"
    tmp = tmp_path_factory.mktemp("rsun")
    dem = _write_hill(tmp / "hill.tif")
    case_names = {c: f"{c[0]:g}_{c[1]:g}" for c in RSUN_CASES}
    (tmp / "reference.sh").write_text(RSUN_SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C", "DEM": str(dem),
           "OUT": str(tmp), "MAXD": f"{RSUN_MAX_DISTANCE_M:g}", "DAYS": " ".join(map(str, RSUN_DAYS)),
           "STEP": str(RSUN_STEP_MINUTES / 60.0), "HSTEP": f"{RSUN_HORIZON_STEP_DEG:g}",
           "CASES": " ".join(case_names.values())}
    # The four jobs and the GRASS session run at once (each mostly waits on its task runner).
    works = {case: tmp / f"work_{name}" for case, name in case_names.items()}
    with ThreadPoolExecutor(max_workers=len(RSUN_CASES)) as pool:
        jobs = [pool.submit(run_cli, "run", "--dem", dem, "--workdir", works[case], "--days",
                            ",".join(map(str, RSUN_DAYS)), "--step-minutes", f"{RSUN_STEP_MINUTES:g}",
                            "--linke", f"{case[0]:g}", "--albedo", f"{case[1]:g}",
                            "--horizon-step", f"{RSUN_HORIZON_STEP_DEG:g}",
                            "--halo", f"{RSUN_MAX_DISTANCE_M:g}", "--tile-size", "1000", "--jobs", "1", "--quiet")
                for case in RSUN_CASES]
        subprocess.run([GRASS, "--tmp-location", str(dem), "--exec", "bash", str(tmp / "reference.sh")], env=env,
                       cwd=tmp, check=True, capture_output=True, timeout=600)
        for job in jobs:
            job.result()
    slope, aspect = _read(tmp / "slope.tif"), _read(tmp / "aspect.tif")
    cases = {}
    for case, name in case_names.items():
        work = works[case]
        cases[case] = {
            "ref": {d: _read(tmp / f"g_{name}_{d}.tif") for d in RSUN_DAYS},
            "ref_flat": {d: _read(tmp / f"f_{name}_{d}.tif") for d in RSUN_DAYS},
            "ours": {d: read_raster(work / f"results/solar/monthly/glob_rad_{m:02d}.tif")
                     for d, m in RSUN_DAYS.items()},
            "flat": {d: read_raster(work / f"results/solar/monthly/flat_glob_rad_{m:02d}.tif")
                     for d, m in RSUN_DAYS.items()},
            "summary": json.loads((work / "results/summary.json").read_text()),
            # r.sun's beam_rad and refl_rad (topographic) and the flat run's beam_rad, and the
            # same parts in the workflow's monthly tile file (one tile: the whole DEM)
            "ref_parts": {d: [_read(tmp / f"{m}_{name}_{d}.tif") for m in ("b", "r", "fb")] for d in RSUN_DAYS},
            "parts": {d: _tile_parts(work, m) for d, m in RSUN_DAYS.items()},
        }
    return dem, slope, aspect, cases


def _tile_parts(work, month):
    """beam, reflected and flat beam sums of the only tile's monthly solar file [Wh m-2]."""
    job = json.loads((work / "job.json").read_text())
    [tile] = job["tiles"]
    with rasterio.open(work / tile["files"]["solar"][str(month)]) as src:
        names = list(src.descriptions)
        return [src.read(names.index(n) + 1).astype("float64")
                for n in ("beam_rad_wh_m2", "refl_rad_wh_m2", "flat_beam_rad_wh_m2")]


def _rsun_mask(dem, slope, aspect):
    """Cells compared with r.sun, as test_fast_solar compares them (edges and GRASS 8.2.1's steep-slope bug out)."""
    from test_fast_solar import _compare_mask, _grass_821_steep_slope_bug

    with rasterio.open(dem) as src:
        cell, shape = src.transform.a, src.shape
    lat = cell_latitudes(dem)
    return _compare_mask(shape, RSUN_MAX_DISTANCE_M, cell) & ~_grass_821_steep_slope_bug(slope, aspect, lat)


@pytest.mark.parametrize("linke,albedo", RSUN_CASES)
def test_linke_and_albedo_against_r_sun(rsun_cases, linke, albedo):
    """glob_rad within 1 % mean / 3 % p99 of r.sun's with the same Linke turbidity and albedo."""
    dem, slope, aspect, cases = rsun_cases
    case = cases[(linke, albedo)]
    assert case["summary"]["parameters"]["linke"] == linke and case["summary"]["parameters"]["albedo"] == albedo
    mask = _rsun_mask(dem, slope, aspect)
    for day in RSUN_DAYS:
        ref, ours = case["ref"][day], case["ours"][day]
        ok = mask & np.isfinite(ref) & np.isfinite(ours)
        assert ok.sum() > 500
        rel = np.abs(ours[ok] - ref[ok]) / ref[ok]
        assert rel.mean() <= 0.01 and np.percentile(rel, 99) <= 0.03, (day, rel.mean(), np.percentile(rel, 99))
        rel_flat = np.abs(case["flat"][day][ok] - case["ref_flat"][day][ok]) / case["ref_flat"][day][ok]
        assert rel_flat.max() <= 0.005, (day, rel_flat.max())
        # the clear-sky parts real-sky radiation needs: beam and reflected as r.sun's beam_rad,
        # refl_rad; the flat run's beam_rad (relative to the global value)
        for what, ours_part, ref_part, whole in zip(("beam", "reflected", "flat beam"), case["parts"][day],
                                                    case["ref_parts"][day], (ref, ref, case["ref_flat"][day])):
            dev = np.abs(ours_part[ok] - ref_part[ok]) / whole[ok]
            assert dev.mean() <= 0.01 and np.percentile(dev, 99) <= 0.03, (what, day, dev.mean())


def test_linke_and_albedo_effects_equal_r_sun(rsun_cases):
    """The change each parameter makes equals r.sun's change (a value lost on the way would not)."""
    dem, slope, aspect, cases = rsun_cases
    mask = _rsun_mask(dem, slope, aspect)
    steep = mask & (np.nan_to_num(slope) > 25)
    assert steep.sum() > 100
    for day in RSUN_DAYS:
        ok = mask & np.isfinite(cases[(2.0, 0.2)]["ref"][day]) & np.isfinite(cases[(2.0, 0.2)]["ours"][day])
        # Linke 2 -> 5 (clear to hazy): the flat global radiation of the compared cells falls
        ours = cases[(5.0, 0.2)]["flat"][day][ok].sum() / cases[(2.0, 0.2)]["flat"][day][ok].sum()
        theirs = cases[(5.0, 0.2)]["ref_flat"][day][ok].sum() / cases[(2.0, 0.2)]["ref_flat"][day][ok].sum()
        assert theirs < 0.9
        assert abs(ours - theirs) < 0.05 * (1 - theirs), (day, ours, theirs)
        ours = cases[(5.0, 0.2)]["ours"][day][ok].sum() / cases[(2.0, 0.2)]["ours"][day][ok].sum()
        theirs = cases[(5.0, 0.2)]["ref"][day][ok].sum() / cases[(2.0, 0.2)]["ref"][day][ok].sum()
        assert abs(ours - theirs) < 0.1 * (1 - theirs), (day, ours, theirs)
        # albedo 0.1 -> 0.4: more light reflected onto slopes from the ground around them
        # [Wh m-2]; nothing on flat ground, so compared on the steep cells
        ours = (cases[(3.0, 0.4)]["ours"][day] - cases[(3.0, 0.1)]["ours"][day])[steep].mean()
        theirs = (cases[(3.0, 0.4)]["ref"][day] - cases[(3.0, 0.1)]["ref"][day])[steep].mean()
        assert theirs > 10
        assert abs(ours - theirs) < 0.1 * theirs, (day, ours, theirs)


# --- real-sky radiation from DAYMET's srad and dayl ----------------------------------------
def real_sky_expected(parts, real_global, lat_deg, month):
    """Real-sky mean day [Wh m-2] from the clear-sky sums of one computed day, written out:
    FAO-56 Eq. 21 for H0, Erbs et al. (1982) monthly diffuse fraction, r.sun's coeff_bh/coeff_dh."""
    glob, flat, beam, refl, flat_beam = parts
    first, last = SOLAR_MONTH_DOYS[month - 1]
    j = np.arange(first, last + 1)[:, None, None]
    phi = np.radians(lat_deg)[None]
    delta = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
    omega = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))
    h0 = (24 * 60 / np.pi * 0.0820 * (1 + 0.033 * np.cos(2 * np.pi * j / 365))
          * (omega * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(omega))).mean(0) * 1e6 / 3600
    kt = np.clip(real_global / h0, 0.3, 0.8)
    fd = np.where(np.degrees(omega).mean(0) <= 81.4, 1.391 - 3.560 * kt + 4.189 * kt ** 2 - 2.137 * kt ** 3,
                  1.311 - 3.022 * kt + 3.427 * kt ** 2 - 1.821 * kt ** 3)
    flat_diffuse = flat - flat_beam
    c_b, c_d = (1 - fd) * real_global / flat_beam, fd * real_global / flat_diffuse
    return c_b * beam + c_d * (glob - beam - refl) + refl * real_global / flat


def test_real_sky_radiation_on_a_south_facing_plane(daymet_server, tmp_path):
    """radiation: real, DAYMET 2019 through the local server, on a 20° plane facing south.

    glob_rad_real per cell and month, and E_PPT_TOPO driven by it (S_i = real topographic /
    DAYMET horizontal, R_m = real topographic · d_m · 3600), against the equations written
    out here from the job's clear-sky parts (its monthly tile file) and the server's fields.
    The DAYMET 1 km base elevation is given as 2000 m, so the lapse shift is 6.49 (z − 2000)/1000.
    """
    from test_climate_daymet import DAYMET_LCC, TMAX_GRADIENT_C_PER_KM, TMAX_X_REF_KM

    rows = np.arange(10)[:, None] * np.ones((1, 10))
    z = 2100.0 - 10.92 * rows
    dem = write_dem(tmp_path / "plane.tif", z, "EPSG:32612", (657_000, 3_949_400), 30)
    with rasterio.open(dem) as src:
        left, bottom, right, top = rasterio.warp.transform_bounds(src.crs, DAYMET_LCC, *src.bounds)
    base = write_dem(tmp_path / "daymet_dem_1km.tif", np.full((10, 10), 2000.0), DAYMET_LCC,
                     (np.floor(left / 1000) * 1000 - 4000, np.ceil(top / 1000) * 1000 + 4000), 1000)
    job = tmp_path / "job.yaml"
    job.write_text(f"dem: {dem}\nclimate: daymet:{base}\nyears: 2019\nmodels: topo\nradiation: real\n"
                   f"cache_dir: {tmp_path / 'cache'}\n")
    work = tmp_path / "work"
    run_cli("run", job, "--workdir", work, "--days", ONE_DAY_PER_MONTH, "--horizon-step", "10", "--step-minutes", "30",
            "--halo", "300", "--quiet",
            env={"EEMT_DAYMET_URL": daymet_server.data_url, "EARTHDATA_TOKEN": "token-for-tests-123"})
    job_json = json.loads((work / "job.json").read_text())
    [tile] = job_json["tiles"]
    lat = cell_latitudes(dem)
    with rasterio.open(dem) as src:
        r_idx, c_idx = np.mgrid[0:10, 0:10]
        xs, ys = src.transform @ (c_idx.ravel() + 0.5, r_idx.ravel() + 0.5)
        x_km = np.asarray(warp_transform(src.crs, DAYMET_LCC, xs, ys)[0]).reshape(10, 10) / 1000
    alpha = read_raster(work / "results/terrain/alpha.tif")
    shift = LAPSE * (z - 2000.0) / 1000
    e_ppt = np.zeros(z.shape)
    for m in range(1, 13):
        with rasterio.open(work / tile["files"]["solar"][str(m)]) as src:
            sums = dict(zip(src.descriptions, src.read().astype("float64")))
        parts = [sums[k] for k in ("glob_rad_wh_m2", "flat_glob_rad_wh_m2", "beam_rad_wh_m2", "refl_rad_wh_m2",
                                   "flat_beam_rad_wh_m2")]
        h = (200 + 10 * m) * (36_000 + 600 * m) / 3600  # DAYMET's mean day, the server's srad · dayl / 3600
        real = real_sky_expected(parts, h, lat, m)
        got = read_raster(work / f"results/solar/monthly/glob_rad_real_{m:02d}.tif")
        np.testing.assert_allclose(got[INNER], real[INNER], rtol=1e-4, err_msg=f"month {m}")
        # EEMT-TOPO with the real-sky radiation (EEMT-SPEC §5, as topo_expected above)
        days = NON_LEAP_DAYS[m - 1]
        s_i = np.clip(real / h, 0.1, 10)
        tmin = m - shift
        tmax = m + 10 + TMAX_GRADIENT_C_PER_KM * (x_km - TMAX_X_REF_KM) - shift + (s_i - 1 / s_i)
        t = (tmin + tmax) / 2
        p_atm = 101.3 * ((293 - 0.0065 * z) / 293) ** 5.26
        gamma = 1013 * p_atm / (0.622 * 2.45e6)
        delta = 4098 * sat_vp_kpa(t) / (t + 237.3) ** 2
        vpd = np.maximum((sat_vp_kpa(tmax) + sat_vp_kpa(tmin)) / 2 - (500 + 10 * m) / 1000, 0)
        rho = 1000 * p_atm / (287.05 * (t + 273.15))
        r_a = 4.72 * np.log(2 / 0.00137) ** 2 / (1 + 0.536 * 2.0)
        pet = (delta * real * days * 3600 + rho * 1013 * vpd / r_a * days * 86400) / (2.45e6 * (delta + gamma))
        p = float(days)  # 1 mm every day
        phi = pet / p
        aet = np.clip(p * (1 + phi - (1 + phi ** 2.63) ** (1 / 2.63)), 0, np.minimum(p, pet))
        f = np.where(t <= 0, 0.0, np.maximum(alpha * (p - aet), 0))
        e_ppt += f * C_W * np.maximum(t, 0) / 1e6
    # real sky lies well below clear sky under this server's cloudy srad: K_c < 0.7 in June
    june_flat_clear = read_raster(work / "results/solar/monthly/flat_glob_rad_06.tif")
    assert ((200 + 60) * (36_000 + 3600) / 3600 / june_flat_clear[INNER] < 0.7).all()
    got = read_raster(work / "results/eemt/E_PPT_TOPO_2019.tif")
    assert np.nanmax(e_ppt[INNER]) > 0
    np.testing.assert_allclose(got[INNER], e_ppt[INNER], rtol=2e-4, atol=1e-6)
    meta = json.loads((work / "results/summary.json").read_text())["eemt"]
    assert meta["radiation"] == "real" and meta["real_sky"] is True
    assert any("Erbs" in note and "radiation: real" in note for note in meta["notes"])
