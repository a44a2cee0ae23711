"""DAYMET client against a real HTTP server on 127.0.0.1, and daily → monthly aggregation.

The server answers like ORNL's NCSS: for ``daymet_v4_daily_{region}_{var}_{year}.nc`` with
a lon/lat box it returns a NetCDF-3 file of the 1 km DAYMET LCC cells inside the box, x/y
in **km** with ``units`` attributes, a CF ``time`` coordinate at noon, and the DAYMET
calendar (a leap year keeps Feb 29 and has no Dec 31). The files are written by the small
NetCDF-3 classic writer below (the format of NCSS's ``accept=netcdf``), independent of
the reader under test (GDAL's netCDF driver).
"""

from __future__ import annotations

import base64
import datetime as dt
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform, transform_bounds

from eemt_flow.climate import load_climate
from eemt_flow.climate.aggregate import daily_to_monthly
from eemt_flow.climate.daymet import DAYMET_URL_ENV, DaymetClient, ncss_params, read_daymet_response, request_box_lonlat
from eemt_flow.climate.netcdf import read_netcdf_variable
from eemt_flow.dem.raster import Dem, read_dem
from eemt_flow.errors import UserError

# ---------------------------------------------------------------------------
# A minimal NetCDF-3 classic writer (Unidata "NetCDF Classic Format Specification")
# ---------------------------------------------------------------------------
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 0x0A, 0x0B, 0x0C
_NC_TYPE = {np.dtype("int16"): 3, np.dtype("int32"): 4, np.dtype("float32"): 5, np.dtype("float64"): 6}
_NC_CHAR = 2


def _pad4(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % 4)


def _nc_name(name: str) -> bytes:
    raw = name.encode()
    return struct.pack(">i", len(raw)) + _pad4(raw)


def _nc_attribute_values(value) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return struct.pack(">ii", _NC_CHAR, len(raw)) + _pad4(raw)
    arr = np.atleast_1d(np.asarray(value))
    arr = arr.astype("float64" if arr.dtype.kind == "f" and arr.dtype.itemsize == 8 else
                     "float32" if arr.dtype.kind == "f" else "int32")
    return struct.pack(">ii", _NC_TYPE[arr.dtype], arr.size) + _pad4(arr.astype(arr.dtype.newbyteorder(">")).tobytes())


def _nc_attributes(attrs: dict) -> bytes:
    if not attrs:
        return b"\0" * 8  # ABSENT
    return struct.pack(">ii", _NC_ATTRIBUTE, len(attrs)) + b"".join(
        _nc_name(k) + _nc_attribute_values(v) for k, v in attrs.items())


def write_netcdf_classic(path, dims: dict, variables: dict, global_attrs: dict | None = None) -> None:
    """Write a NetCDF-3 classic file without record dimension.

    ``dims``: {name: size}; ``variables``: {name: (dim names, array, attributes)}.
    """
    names = list(dims)
    head = b"CDF\x01" + struct.pack(">i", 0)
    head += struct.pack(">ii", _NC_DIMENSION, len(dims)) + b"".join(_nc_name(d) + struct.pack(">i", n) for d, n in dims.items())
    head += _nc_attributes(global_attrs or {})
    entries, blobs = [], []
    for name, (vdims, array, attrs) in variables.items():
        arr = np.asarray(array)
        blob = _pad4(arr.astype(arr.dtype.newbyteorder(">")).tobytes())
        entries.append(_nc_name(name) + struct.pack(">i", len(vdims)) + b"".join(struct.pack(">i", names.index(d)) for d in vdims)
                       + _nc_attributes(attrs) + struct.pack(">ii", _NC_TYPE[arr.dtype], len(blob)))
        blobs.append(blob)
    offset = len(head) + 8 + sum(len(e) + 4 for e in entries)
    out = head + struct.pack(">ii", _NC_VARIABLE, len(variables))
    for entry, blob in zip(entries, blobs):
        out += entry + struct.pack(">i", offset)
        offset += len(blob)
    with open(path, "wb") as handle:
        handle.write(out + b"".join(blobs))


# ---------------------------------------------------------------------------
# A DAYMET-like NCSS server
# ---------------------------------------------------------------------------
LCC_GRID_MAPPING = dict(
    grid_mapping_name="lambert_conformal_conic", longitude_of_central_meridian=-100.0, latitude_of_projection_origin=42.5,
    false_easting=0.0, false_northing=0.0, standard_parallel=np.array([25.0, 60.0]), semi_major_axis=6378137.0,
    inverse_flattening=298.257223563)
DAYMET_LCC = CRS.from_proj4("+proj=lcc +lat_1=25 +lat_2=60 +lat_0=42.5 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
#: DAYMET cell centres lie at (k + 0.25) km in x and y.
CENTRE_OFFSET_KM = 0.25
#: tmax gains 0.5 °C per km eastwards from this x [km] (a plane: bilinear reproduces it exactly).
TMAX_X_REF_KM = -800.0
TMAX_GRADIENT_C_PER_KM = 0.5
UTM13 = CRS.from_epsg(32613)
ORIGIN_M = (363_000.0, 3_975_000.0)


def daymet_server_dates(year: int) -> list[dt.date]:
    """DAYMET's 365 days: from Jan 1, so a leap year ends on Dec 30."""
    return [dt.date(year, 1, 1) + dt.timedelta(days=d) for d in range(365)]


def daily_field(variable: str, day: dt.date, x_km: np.ndarray, y_km: np.ndarray) -> np.ndarray:
    """The synthetic truth on the 1 km grid (shape (ny, nx))."""
    m = day.month
    ones = np.ones((y_km.size, x_km.size))
    if variable == "tmin":
        # Month m is m °C, except Feb 29, which is 31 °C: Feb 2020 mean = (28·2 + 31)/29 = 87/29 = 3.0 °C.
        return ones * (31.0 if (m, day.day) == (2, 29) else float(m))
    if variable == "tmax":
        return daily_field("tmin", day, x_km, y_km) + 10.0 + TMAX_GRADIENT_C_PER_KM * (x_km[np.newaxis, :] - TMAX_X_REF_KM)
    if variable == "prcp":
        return ones * 1.0  # 1 mm every day: the monthly sum is the number of days
    if variable == "vp":
        return ones * (500.0 + 10.0 * m)
    if variable == "srad":  # shortwave flux over the daylight period [W m-2]
        return ones * (200.0 + 10.0 * m)
    if variable == "dayl":  # day length [s]
        return ones * (36_000.0 + 600.0 * m)
    raise KeyError(variable)


def ncss_response(path, variable: str, year: int, query: dict) -> None:
    west, south, east, north = (float(query[k][0]) for k in ("west", "south", "east", "north"))
    left, bottom, right, top = transform_bounds(CRS.from_epsg(4326), DAYMET_LCC, west, south, east, north, densify_pts=21)
    x_km = np.arange(np.ceil(left / 1000 - CENTRE_OFFSET_KM), np.floor(right / 1000 - CENTRE_OFFSET_KM) + 1) + CENTRE_OFFSET_KM
    y_km = (np.arange(np.ceil(bottom / 1000 - CENTRE_OFFSET_KM), np.floor(top / 1000 - CENTRE_OFFSET_KM) + 1) + CENTRE_OFFSET_KM)[::-1]
    days = daymet_server_dates(year)
    data = np.stack([daily_field(variable, d, x_km, y_km) for d in days]).astype("float32")
    time_days = np.array([(d - dt.date(1950, 1, 1)).days + 0.5 for d in days])
    write_netcdf_classic(path, {"time": len(days), "y": y_km.size, "x": x_km.size}, {
        "x": (["x"], x_km.astype("float32"), {"units": "km", "standard_name": "projection_x_coordinate"}),
        "y": (["y"], y_km.astype("float32"), {"units": "km", "standard_name": "projection_y_coordinate"}),
        "time": (["time"], time_days, {"units": "days since 1950-01-01 00:00:00", "calendar": "standard", "standard_name": "time"}),
        "lambert_conformal_conic": ([], np.array(0, dtype="int16"), LCC_GRID_MAPPING),
        variable: (["time", "y", "x"], data, {"units": "degrees C", "_FillValue": np.float32(-9999.0),
                                              "grid_mapping": "lambert_conformal_conic"}),
    }, {"Conventions": "CF-1.6"})


class FakeNcss:
    """State of the test server: request log and failure modes."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.log: list[dict] = []
        self.fail_next_with_503 = 0
        self.force_status: int | None = None
        self.answer_html = False  # answer 200 with an HTML page, as a login page would
        self.earthdata_login: tuple[str, str] | None = None  # (login, password) expected at the login host
        self.lock = threading.Lock()
        self.port = 0

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/thredds/ncss/grid/ornldaac/2129"

    def data_requests(self) -> list[dict]:
        return [r for r in self.log if r["path"].startswith("/thredds/")]


def make_handler(state: FakeNcss):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            host = self.headers.get("Host", "").split(":")[0]
            with state.lock:
                state.log.append({"path": url.path, "query": query, "host": host,
                                  "authorization": self.headers.get("Authorization"), "cookie": self.headers.get("Cookie")})
                fail = state.fail_next_with_503 > 0
                state.fail_next_with_503 -= fail
            if fail:
                return self._send(503, b"busy")
            if state.force_status:
                return self._send(state.force_status, b"denied")
            if state.answer_html:
                return self._send(200, b"<html><body>Earthdata Login</body></html>", {"Content-Type": "text/html"})
            here = f"http://{host}:{state.port}"
            if url.path == "/oauth/authorize":  # the Earthdata login host
                expected = "Basic " + base64.b64encode(":".join(state.earthdata_login).encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._send(401, b"bad login")
                back = f"http://127.0.0.1:{state.port}/login-callback?" + urllib.parse.urlencode({"return": query["return"][0]})
                return self._send(302, headers={"Location": back})
            if url.path == "/login-callback":
                return self._send(302, headers={"Location": query["return"][0], "Set-Cookie": "edl_session=ok; Path=/"})
            if state.earthdata_login and "edl_session=ok" not in (self.headers.get("Cookie") or ""):
                login = f"http://localhost:{state.port}/oauth/authorize?" + urllib.parse.urlencode({"return": here + self.path})
                return self._send(302, headers={"Location": login})
            name = url.path.rsplit("/", 1)[-1]  # daymet_v4_daily_na_tmin_2020.nc
            _, _, _, region, variable, year = name[:-3].split("_")
            out = state.workdir / f"answer-{threading.get_ident()}.nc"
            ncss_response(out, variable, int(year), query)
            self._send(200, out.read_bytes(), {"Content-Type": "application/x-netcdf"})

    return Handler


@pytest.fixture
def ncss(tmp_path):
    state = FakeNcss(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def flat_dem() -> Dem:
    """40×40 cells of 30 m in UTM 13N near 35.9°N 106.5°W, flat at 2000 m."""
    return Dem(np.full((40, 40), 2000.0, dtype="float32"), from_origin(*ORIGIN_M, 30.0, 30.0), UTM13)


def dem_cell_lcc_x_km(dem: Dem, row: int, col: int) -> float:
    x, y = dem.transform @ (col + 0.5, row + 0.5)
    xs, _ = transform(dem.crs, DAYMET_LCC, [x], [y])
    return xs[0] / 1000.0


# ---------------------------------------------------------------------------
# End to end through load_climate
# ---------------------------------------------------------------------------
def test_daymet_end_to_end_leap_year_and_cache(ncss, flat_dem, tmp_path, monkeypatch):
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    monkeypatch.setenv("EARTHDATA_TOKEN", "token-for-tests-123")
    cache = tmp_path / "cache"
    climates = load_climate("daymet", flat_dem, years=[2019, 2020], cache_dir=cache)
    assert [c.year for c in climates] == [2019, 2020]
    c2019, c2020 = climates

    # Days: 2020 keeps Feb 29 and drops Dec 31 (December has 30 days).
    assert c2019.days_in_month.tolist() == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert c2020.days_in_month.tolist() == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30]
    # prcp = 1 mm/day: the monthly sum is days_m (Feb 2020 29 mm, Dec 2020 30 mm, Dec 2019 31 mm).
    assert np.allclose(c2020.prcp_mm[:, 20, 20], c2020.days_in_month)
    assert np.allclose(c2019.prcp_mm[:, 20, 20], c2019.days_in_month)
    # tmin: flat DEM, so z_base (DEM mean over each 1 km cell) = z = 2000 m and no lapse shift.
    # Feb 2020: (28 days · 2 °C + Feb 29 at 31 °C)/29 = 87/29 = 3.0 °C; Feb 2019: 2.0 °C; Mar 2020: 3.0 °C.
    assert c2020.tmin_c[1, 20, 20] == pytest.approx(3.0, abs=1e-5)
    assert c2019.tmin_c[1, 20, 20] == pytest.approx(2.0, abs=1e-5)
    assert c2020.tmin_c[2, 20, 20] == pytest.approx(3.0, abs=1e-5)
    assert c2020.tmin_c[11, 0, 0] == pytest.approx(12.0, abs=1e-5)
    # vp: 500 + 10·m Pa; July 570 Pa.
    assert np.allclose(c2020.vp_pa[6], 570.0)
    assert np.allclose(c2020.base_elevation_m, 2000.0)
    # tmax is a plane in x: bilinear resampling reproduces it at every DEM cell.
    # Jan at a cell: 1 + 10 + 0.5·(x_km − (−800)); e.g. x = −811.3 km → 11 + 0.5·(−11.3) = 5.35 °C.
    for row, col in [(0, 0), (17, 23), (39, 39)]:
        expected = 1.0 + 10.0 + TMAX_GRADIENT_C_PER_KM * (dem_cell_lcc_x_km(flat_dem, row, col) - TMAX_X_REF_KM)
        assert c2020.tmax_c[0, row, col] == pytest.approx(expected, abs=2e-3)
    assert "2129" in c2020.source

    # The requests: 4 variables × 2 years, DAYMET V4 names, small padded boxes, one year each.
    requests = ncss.data_requests()
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in requests) == sorted(
        f"daymet_v4_daily_na_{v}_{y}.nc" for v in ("tmin", "tmax", "prcp", "vp") for y in (2019, 2020))
    dem_left, dem_bottom, dem_right, dem_top = transform_bounds(UTM13, DAYMET_LCC, ORIGIN_M[0], ORIGIN_M[1] - 1200,
                                                                ORIGIN_M[0] + 1200, ORIGIN_M[1], densify_pts=21)
    # The box must hold the DEM plus 2 DAYMET cells (2 km) on every side.
    need_w, need_s, need_e, need_n = transform_bounds(DAYMET_LCC, CRS.from_epsg(4326), dem_left - 2000, dem_bottom - 2000,
                                                      dem_right + 2000, dem_top + 2000, densify_pts=21)
    for r in requests:
        q = {k: v[0] for k, v in r["query"].items()}
        assert r["path"].endswith(f"_{q['var']}_{q['time_start'][:4]}.nc")
        assert float(q["west"]) <= need_w and float(q["south"]) <= need_s
        assert float(q["east"]) >= need_e and float(q["north"]) >= need_n
        assert float(q["north"]) - float(q["south"]) < 0.2 and float(q["east"]) - float(q["west"]) < 0.2
        year = q["time_start"][:4]
        assert q["time_start"] == f"{year}-01-01T12:00:00Z"
        assert q["time_end"] == ("2020-12-30T12:00:00Z" if year == "2020" else "2019-12-31T12:00:00Z")
        assert q["accept"] == "netcdf"
        assert r["authorization"] == "Bearer token-for-tests-123"

    # Cache hit: the same request again makes no HTTP request at all.
    before = len(ncss.log)
    again = load_climate("daymet", flat_dem, years=[2020], cache_dir=cache)
    assert len(ncss.log) == before
    assert np.array_equal(again[0].tmin_c, c2020.tmin_c)


def test_daymet_supplied_1km_base_elevation(ncss, flat_dem, tmp_path, monkeypatch):
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    base = tmp_path / "daymet_dem_1km.tif"
    # A DAYMET 1 km DEM at 1900 m around the DEM (in the DAYMET projection).
    left, bottom, right, top = transform_bounds(UTM13, DAYMET_LCC, ORIGIN_M[0], ORIGIN_M[1] - 1200,
                                                ORIGIN_M[0] + 1200, ORIGIN_M[1], densify_pts=21)
    x0, y0 = np.floor(left / 1000) * 1000 - 3000, np.ceil(top / 1000) * 1000 + 3000
    with rasterio.open(base, "w", driver="GTiff", width=10, height=10, count=1, dtype="float32", crs=DAYMET_LCC,
                       transform=from_origin(x0, y0, 1000, 1000)) as dst:
        dst.write(np.full((1, 10, 10), 1900.0, dtype="float32"))
    [climate] = load_climate(f"daymet:{base}", flat_dem, years=[2021], cache_dir=tmp_path / "cache",
                             lapse_tmax_c_per_km=[5.0] * 12)
    # Jan tmin 1 °C at z_base 1900 m moved to 2000 m: 1 − 6.49·(2000 − 1900)/1000 = 1 − 0.649 = 0.351 °C.
    assert climate.tmin_c[0, 10, 10] == pytest.approx(0.351, abs=1e-5)
    # Jun tmin 6 − 0.649 = 5.351 °C.
    assert climate.tmin_c[5, 39, 0] == pytest.approx(5.351, abs=1e-5)
    # tmax with 5 °C/km: shift −0.5 °C.
    expected = 1.0 + 10.0 + TMAX_GRADIENT_C_PER_KM * (dem_cell_lcc_x_km(flat_dem, 10, 10) - TMAX_X_REF_KM) - 0.5
    assert climate.tmax_c[0, 10, 10] == pytest.approx(expected, abs=2e-3)
    assert np.allclose(climate.base_elevation_m, 1900.0)
    assert all(r["authorization"] is None for r in ncss.data_requests())


def test_daymet_real_dem_base_is_footprint_mean(ncss, mcn_dem, tmp_path, monkeypatch):
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    dem = read_dem(mcn_dem, max_cells=10**7)
    [climate] = load_climate("daymet", dem, years=[2019], cache_dir=tmp_path / "cache")
    z = dem.elevation_m
    assert np.array_equal(np.isnan(climate.tmin_c[3]), np.isnan(z))
    base = climate.base_elevation_m
    # z_base is a smoothed DEM: within the DEM's range, and T_loc = T − 6.49·(z − z_base)/1000 (April tmin 4 °C).
    assert np.nanmin(z) <= np.nanmin(base) and np.nanmax(base) <= np.nanmax(z)
    expected = 4.0 - 6.49 * (z - base) / 1000.0
    assert np.nanmax(np.abs(climate.tmin_c[3] - expected)) < 1e-4
    assert np.nanstd(base) < np.nanstd(z)


# ---------------------------------------------------------------------------
# The client: retries, errors, Earthdata login
# ---------------------------------------------------------------------------
def test_retry_after_two_503(ncss, flat_dem, tmp_path):
    ncss.fail_next_with_503 = 2
    client = DaymetClient(ncss.data_url, tmp_path / "cache", backoff_s=0.01)
    path = client.fetch("na", "vp", 2019, request_box_lonlat(flat_dem))
    assert path.is_file()
    assert len(ncss.data_requests()) == 3
    assert read_netcdf_variable(path, "vp").values.shape[0] == 365


def test_server_keeps_failing(ncss, flat_dem, tmp_path):
    ncss.fail_next_with_503 = 10
    client = DaymetClient(ncss.data_url, tmp_path / "cache", max_attempts=3, backoff_s=0.01)
    with pytest.raises(UserError, match="HTTP 503 3 times") as err:
        client.fetch("na", "vp", 2019, request_box_lonlat(flat_dem))
    assert "DAYMET vp 2019" in str(err.value)
    assert not list((tmp_path / "cache").glob("*.nc"))


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorised(ncss, flat_dem, tmp_path, monkeypatch, status):
    ncss.force_status = status
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    monkeypatch.setenv("EARTHDATA_TOKEN", "secret-token-value")
    with pytest.raises(UserError) as err:
        load_climate("daymet", flat_dem, years=[2019], cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert f"HTTP {status}" in message and "EARTHDATA_TOKEN" in message and ".netrc" in message
    assert "secret-token-value" not in message and "\n" not in message
    assert len(ncss.data_requests()) == 1  # no retry of an authorisation failure


def test_offline(flat_dem, tmp_path):
    import socket
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = DaymetClient(f"http://127.0.0.1:{port}/ncss", tmp_path / "cache", max_attempts=2, backoff_s=0.01, timeout_s=5)
    with pytest.raises(UserError, match=r"could not reach 127\.0\.0\.1 .* after 2 attempts; check the network connection"):
        client.fetch("na", "tmin", 2019, request_box_lonlat(flat_dem))


def test_outside_coverage_before_any_request(ncss, tmp_path, monkeypatch):
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    # 40×40 cells of 30 m in UTM 33N near Vienna (48.2°N, 16.4°E).
    europe = Dem(np.full((40, 40), 200.0, dtype="float32"), from_origin(600_000.0, 5_340_000.0, 30.0, 30.0),
                 CRS.from_epsg(32633))
    with pytest.raises(UserError, match="outside DAYMET coverage") as err:
        load_climate("daymet", europe, years=[2019], cache_dir=tmp_path / "cache")
    assert "lon 16." in str(err.value)
    assert ncss.log == []


def test_years_checked_before_any_request(ncss, flat_dem, tmp_path, monkeypatch):
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    with pytest.raises(UserError, match="before DAYMET begins"):
        load_climate("daymet", flat_dem, years=[1975], cache_dir=tmp_path)
    with pytest.raises(UserError, match="give the years"):
        load_climate("daymet", flat_dem, years=None, cache_dir=tmp_path)
    assert ncss.log == []


def test_netrc_earthdata_login_flow(ncss, flat_dem, tmp_path, monkeypatch):
    """Data host → login host (Basic auth from netrc) → callback sets a cookie → data."""
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine localhost login edl-user password edl-pass\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    ncss.earthdata_login = ("edl-user", "edl-pass")
    # "localhost" plays urs.earthdata.nasa.gov; 127.0.0.1 plays the data host.
    client = DaymetClient(ncss.data_url, tmp_path / "cache", login_host="localhost", backoff_s=0.01)
    path = client.fetch("na", "tmin", 2019, request_box_lonlat(flat_dem))
    assert read_netcdf_variable(path, "tmin").values.shape[0] == 365
    hosts = [(r["host"], r["path"]) for r in ncss.log]
    assert hosts[1] == ("localhost", "/oauth/authorize") and hosts[-1][0] == "127.0.0.1"
    # The password went only to the login host.
    assert all(r["authorization"] is None for r in ncss.log if r["host"] != "localhost")
    assert ncss.log[-1]["cookie"] == "edl_session=ok"


def test_login_host_refuses_without_credentials(ncss, flat_dem, tmp_path, monkeypatch):
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))
    ncss.earthdata_login = ("someone", "else")
    client = DaymetClient(ncss.data_url, tmp_path / "cache", login_host="localhost", backoff_s=0.01)
    with pytest.raises(UserError, match="HTTP 401 .*no Earthdata credentials were found"):
        client.fetch("na", "tmin", 2019, request_box_lonlat(flat_dem))


def test_answer_that_is_not_netcdf(ncss, flat_dem, tmp_path):
    ncss.answer_html = True
    client = DaymetClient(ncss.data_url, tmp_path / "cache", backoff_s=0.01)
    with pytest.raises(UserError, match="not NetCDF"):
        client.fetch("na", "tmin", 2019, request_box_lonlat(flat_dem))
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_km_coordinates_labelled_m_are_refused(tmp_path):
    """x/y values in km with units 'm' would make 1 m cells: refused, not silently used."""
    path = tmp_path / "mislabelled.nc"
    dates = daymet_server_dates(2019)
    write_netcdf_classic(path, {"time": 365, "y": 2, "x": 2}, {
        "x": (["x"], np.array([-800.75, -799.75]), {"units": "m"}), "y": (["y"], np.array([-300.25, -301.25]), {"units": "m"}),
        "time": (["time"], np.array([(d - dt.date(1950, 1, 1)).days + 0.5 for d in dates]),
                 {"units": "days since 1950-01-01 00:00:00", "calendar": "standard"}),
        "tmin": (["time", "y", "x"], np.zeros((365, 2, 2), dtype="float32"), {}),
    })
    with pytest.raises(UserError, match="not DAYMET's 1 km; check the x/y units"):
        read_daymet_response(path, "tmin", 2019)


# ---------------------------------------------------------------------------
# Reading DAYMET NetCDF and aggregating
# ---------------------------------------------------------------------------
def test_km_and_m_coordinates_give_the_same_transform(tmp_path):
    x_km, y_km = np.array([-800.75, -799.75, -798.75]), np.array([-300.25, -301.25])
    for units, factor in (("km", 1.0), ("m", 1000.0)):
        write_netcdf_classic(tmp_path / f"{units}.nc", {"time": 1, "y": 2, "x": 3}, {
            "x": (["x"], x_km * factor, {"units": units}), "y": (["y"], y_km * factor, {"units": units}),
            "time": (["time"], np.array([25202.5]), {"units": "days since 1950-01-01 00:00:00", "calendar": "standard"}),
            "lambert_conformal_conic": ([], np.array(0, dtype="int16"), LCC_GRID_MAPPING),
            "tmin": (["time", "y", "x"], np.arange(6, dtype="float32").reshape(1, 2, 3), {"grid_mapping": "lambert_conformal_conic"}),
        })
        grid = read_netcdf_variable(tmp_path / f"{units}.nc", "tmin")
        # Left edge = first centre − half a cell: −800.75 km − 0.5 km = −801 250 m; top = −300.25 + 0.5 = −299 750 m.
        assert tuple(grid.transform)[:6] == pytest.approx((1000.0, 0.0, -801_250.0, 0.0, -1000.0, -299_750.0))
        # 25202.5 days after 1950-01-01 is 2019-01-01 (noon).
        assert str(grid.dates[0]) == "2019-01-01"
        assert grid.crs.to_dict()["proj"] == "lcc"


def test_south_up_file_is_flipped(tmp_path):
    write_netcdf_classic(tmp_path / "up.nc", {"time": 1, "y": 2, "x": 2}, {
        "x": (["x"], np.array([0.25, 1.25]), {"units": "km"}), "y": (["y"], np.array([0.25, 1.25]), {"units": "km"}),
        "time": (["time"], np.array([0.5]), {"units": "days since 2020-01-01", "calendar": "standard"}),
        "tmin": (["time", "y", "x"], np.array([[[1, 2], [3, 4]]], dtype="float32"), {}),
    })
    grid = read_netcdf_variable(tmp_path / "up.nc", "tmin", default_crs=DAYMET_LCC)
    # Row y = 1.25 km (values 3, 4) is the northern one and comes first.
    assert grid.values[0].tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert grid.transform.f == pytest.approx(1750.0)


def test_aggregate_drops_dec31_and_uses_dates():
    # A standard-calendar 2020 series of 366 days: value = month, Dec 31 poisoned with 1000.
    dates = np.datetime64("2020-01-01") + np.arange(366)
    months = dates.astype("datetime64[M]").astype(int) % 12 + 1
    values = months.astype(float)[:, None]
    values[-1] = 1000.0
    out = daily_to_monthly(values, dates, "mean", year=2020, what="test")
    assert out.values[:, 0].tolist() == [float(m) for m in range(1, 13)]  # Dec 31 dropped: Dec mean 12
    assert out.days_in_month.tolist() == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30]
    total = daily_to_monthly(np.ones((366, 1)), dates, "sum", year=2020, what="test")
    assert total.values[:, 0].sum() == 365  # 365 DAYMET days


def test_aggregate_missing_day_is_nodata():
    dates = np.datetime64("2019-01-01") + np.arange(365)
    values = np.ones((365, 2))
    values[40, 1] = np.nan  # Feb 10 missing at pixel 1 only
    keep = dates != np.datetime64("2019-04-10")  # Apr 10 absent from the time coordinate
    out = daily_to_monthly(values[keep], dates[keep], "sum", year=2019, what="test")
    assert out.incomplete_months == (4,)
    assert np.isnan(out.values[3]).all()  # April nodata everywhere
    assert out.values[1].tolist()[0] == 28.0 and np.isnan(out.values[1, 1])  # Feb: 28 mm at pixel 0, nodata at pixel 1
    assert out.values[0].tolist() == [31.0, 31.0]


def test_aggregate_duplicate_date():
    dates = np.datetime64("2019-01-01") + np.arange(365)
    dates[5] = dates[4]
    with pytest.raises(UserError, match="2019-01-05 appears 2 times"):
        daily_to_monthly(np.ones((365, 1)), dates, "mean", year=2019, what="tmin (x.nc)")


def test_ncss_params_leap_year():
    params = dict(ncss_params("prcp", 2016, (-106.6, 35.8, -106.4, 36.0)))
    assert params["time_end"] == "2016-12-30T12:00:00Z"  # DAYMET drops Dec 31 in leap years
    assert (params["west"], params["south"], params["east"], params["north"]) == ("-106.6000", "35.8000", "-106.4000", "36.0000")


def test_daymet_global_radiation_for_real_sky(ncss, flat_dem, tmp_path, monkeypatch):
    """radiation=True also fetches srad and dayl: the monthly mean day of srad · dayl / 3600 on the DEM."""
    monkeypatch.setenv(DAYMET_URL_ENV, ncss.data_url)
    monkeypatch.setenv("EARTHDATA_TOKEN", "token-for-tests-123")
    [c2020] = load_climate("daymet", flat_dem, years=[2020], cache_dir=tmp_path / "cache", radiation=True)
    # month m: srad = 200 + 10 m W m-2 over dayl = 36 000 + 600 m s, so (200 + 10 m)(36 000 + 600 m) / 3600 Wh m-2;
    # Feb: 220 · 37 200 / 3600 = 2273.333; Dec: 320 · 43 200 / 3600 = 3840
    m = np.arange(1, 13)
    expected = (200.0 + 10.0 * m) * (36_000.0 + 600.0 * m) / 3600.0
    np.testing.assert_allclose(c2020.glob_wh_m2_day[:, 20, 20], expected, rtol=1e-6)
    assert c2020.glob_wh_m2_day[1, 0, 0] == pytest.approx(2273.3333, rel=1e-6)
    names = {r["path"].rsplit("/", 1)[-1] for r in ncss.data_requests()}
    assert names == {f"daymet_v4_daily_na_{v}_2020.nc" for v in ("tmin", "tmax", "prcp", "vp", "srad", "dayl")}
    # without radiation: neither requested nor set
    [plain] = load_climate("daymet", flat_dem, years=[2020], cache_dir=tmp_path / "cache2")
    assert plain.glob_wh_m2_day is None
