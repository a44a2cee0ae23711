"""Station normals spread over the DEM by lapse rates (eemt_flow.climate.station)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from eemt_flow.climate import NORMALS, load_climate, parse_climate_source
from eemt_flow.dem.raster import Dem, read_dem
from eemt_flow.errors import UserError

HEADER = "month,tmin_c,tmax_c,prcp_mm,vp_pa"
#: UTM 13N near 35.9°N, 106.5°W (inside DAYMET coverage), as the built-in example DEM.
ORIGIN_M = (363_000.0, 3_975_000.0)


def normals_rows() -> list[str]:
    """Month m: tmin = m °C, tmax = m + 10 °C, prcp = 10·m mm, vp = 500 + m Pa."""
    return [f"{m},{m:.1f},{m + 10:.1f},{10 * m:.1f},{500 + m:.1f}" for m in range(1, 13)]


def write_csv(path, lines) -> str:
    path.write_text("\n".join(lines) + "\n")
    return f"station:{path}"


def small_dem(elevation_m: np.ndarray) -> Dem:
    return Dem(elevation_m.astype("float32"), from_origin(*ORIGIN_M, 30.0, 30.0), CRS.from_epsg(32613))


@pytest.fixture
def dem_40() -> Dem:
    """40×40 cells of 30 m: row 0 at 2500 m, row 1 at 3000 m, the rest at 2000 m, one nodata cell."""
    z = np.full((40, 40), 2000.0)
    z[0] = 2500.0
    z[1] = 3000.0
    z[5, 5] = np.nan
    return small_dem(z)


def test_lapse_correction_hand_values(tmp_path, dem_40):
    source = write_csv(tmp_path / "st.csv", [HEADER, *normals_rows()])
    [climate] = load_climate(source, dem_40, station_elevation_m=2000.0, lapse_tmin_c_per_km=6.49,
                             lapse_tmax_c_per_km=5.0)
    # January, station at 2000 m; cell at 2500 m is 0.5 km higher.
    # tmin: 1 − 6.49·0.5 = 1 − 3.245 = −2.245 °C;  tmax: 11 − 5.0·0.5 = 8.5 °C
    assert climate.tmin_c[0, 0, 7] == pytest.approx(-2.245, abs=1e-5)
    assert climate.tmax_c[0, 0, 7] == pytest.approx(8.5, abs=1e-5)
    # October at 3000 m (1 km higher): tmin 10 − 6.49 = 3.51 °C; tmax 20 − 5.0 = 15.0 °C
    assert climate.tmin_c[9, 1, 3] == pytest.approx(3.51, abs=1e-5)
    assert climate.tmax_c[9, 1, 3] == pytest.approx(15.0, abs=1e-5)
    # At the station elevation nothing changes: July tmin 7 °C.
    assert climate.tmin_c[6, 20, 20] == pytest.approx(7.0)
    # Precipitation and vapour pressure are uniform: March 30 mm, 503 Pa everywhere.
    assert np.nanmin(climate.prcp_mm[2]) == np.nanmax(climate.prcp_mm[2]) == pytest.approx(30.0)
    assert np.nanmin(climate.vp_pa[2]) == np.nanmax(climate.vp_pa[2]) == pytest.approx(503.0)

    assert climate.year == NORMALS
    assert climate.days_in_month.tolist() == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert climate.days_in_month.sum() == 365
    assert climate.base_elevation_m == 2000.0
    assert climate.lapse_tmin_c_per_km == (6.49,) * 12
    for field in (climate.tmin_c, climate.tmax_c, climate.prcp_mm, climate.vp_pa):
        assert field.shape == (12, 40, 40) and field.dtype == np.float32
        # NaN exactly where the DEM is NaN, in every month.
        assert np.array_equal(np.isnan(field), np.broadcast_to(np.isnan(dem_40.elevation_m), field.shape))


def test_monthly_lapse_table(tmp_path, dem_40):
    """A 12-month table: month m uses Γ = m °C/km, so 1 km up costs m °C."""
    source = write_csv(tmp_path / "st.csv", [HEADER, *normals_rows()])
    table = [float(m) for m in range(1, 13)]
    [climate] = load_climate(source, dem_40, station_elevation_m=2000.0, lapse_tmin_c_per_km=table)
    # Cell at 3000 m, month m: tmin = m − m·1.0 = 0 °C for every month.
    assert np.allclose(climate.tmin_c[:, 1, 0], 0.0, atol=1e-6)
    # Tmax kept the default 6.49: June at 3000 m = 16 − 6.49 = 9.51 °C.
    assert climate.tmax_c[5, 1, 0] == pytest.approx(9.51, abs=1e-5)


def test_months_in_any_order(tmp_path, dem_40):
    rows = normals_rows()
    source = write_csv(tmp_path / "st.csv", [HEADER, *reversed(rows)])
    [climate] = load_climate(source, dem_40, station_elevation_m=2000.0)
    assert climate.prcp_mm[:, 10, 10].tolist() == [10.0 * m for m in range(1, 13)]


def test_real_dem(tmp_path, mcn_dem):
    dem = read_dem(mcn_dem, max_cells=10**7)
    source = write_csv(tmp_path / "st.csv", [HEADER, *normals_rows()])
    [climate] = load_climate(source, dem, station_elevation_m=2400.0)
    with rasterio.open(mcn_dem) as src:
        z = src.read(1, masked=True).astype("float64").filled(np.nan)
    row, col = 100, 120
    # August tmin = 8 − 6.49·(z − 2400)/1000 at that cell.
    expected = 8.0 - 6.49 * (z[row, col] - 2400.0) / 1000.0
    assert climate.tmin_c[7, row, col] == pytest.approx(expected, abs=1e-4)
    assert np.array_equal(np.isnan(climate.tmax_c[0]), np.isnan(z))
    assert np.isnan(z).sum() > 0


BAD_CASES = [
    # (description, lines, expected fragments of the message)
    ("missing month", [HEADER, *normals_rows()[:6], *normals_rows()[7:]], ["month 7 missing"]),
    ("extra month 13", [HEADER, *normals_rows(), "13,1,2,3,4"], ["line 14", "month '13'"]),
    ("duplicate month", [HEADER, *normals_rows()[:3], "3,1,2,3,4", *normals_rows()[3:]],
     ["line 5", "month 3 appears twice", "first on line 4"]),
    ("missing column", ["month,tmin_c,tmax_c,prcp_mm", *[r.rsplit(",", 1)[0] for r in normals_rows()]],
     ["line 1", "missing column vp_pa"]),
    ("unexpected column", [HEADER + ",wind", *[r + ",2" for r in normals_rows()]], ["line 1", "unexpected column wind"]),
    ("non-number", [HEADER, *normals_rows()[:2], "3,1.0,warm,30,503", *normals_rows()[3:]],
     ["line 4", "tmax_c 'warm' is not a number"]),
    ("negative precipitation", [HEADER, *normals_rows()[:4], "5,5,15,-2,505", *normals_rows()[5:]],
     ["line 6", "prcp_mm -2 is negative"]),
    ("vp not positive", [HEADER, *normals_rows()[:8], "9,9,19,90,0", *normals_rows()[9:]], ["line 10", "vp_pa 0 must be > 0"]),
    ("tmin above tmax", [HEADER, "1,12,11,10,501", *normals_rows()[1:]], ["line 2", "tmin_c 12 is above tmax_c 11"]),
    ("short row", [HEADER, "1,1,11,10", *normals_rows()[1:]], ["line 2", "4 fields"]),
    ("empty file", [""], ["empty"]),
]


@pytest.mark.parametrize("lines, fragments", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_station_file(tmp_path, dem_40, lines, fragments):
    path = tmp_path / "bad.csv"
    source = write_csv(path, lines)
    with pytest.raises(UserError) as err:
        load_climate(source, dem_40, station_elevation_m=2000.0)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_station_needs_elevation(tmp_path, dem_40):
    source = write_csv(tmp_path / "st.csv", [HEADER, *normals_rows()])
    with pytest.raises(UserError, match="station elevation"):
        load_climate(source, dem_40)


@pytest.mark.parametrize("lapse, fragment", [([6.49] * 11, "got 11 values"), ("steep", "not a number")])
def test_bad_lapse_rate(tmp_path, dem_40, lapse, fragment):
    source = write_csv(tmp_path / "st.csv", [HEADER, *normals_rows()])
    with pytest.raises(UserError, match="lapse_tmin_c_per_km") as err:
        load_climate(source, dem_40, station_elevation_m=2000.0, lapse_tmin_c_per_km=lapse)
    assert fragment in str(err.value)


def test_parse_climate_source(tmp_path):
    csv_path = tmp_path / "st.csv"
    csv_path.write_text(HEADER + "\n")
    assert parse_climate_source(f"station:{csv_path}").kind == "station"
    assert parse_climate_source(f"grids:{tmp_path}").path == tmp_path
    assert parse_climate_source("daymet").path is None
    with pytest.raises(UserError, match="no such station file"):
        parse_climate_source(f"station:{tmp_path / 'nope.csv'}")
    with pytest.raises(UserError, match="not a directory"):
        parse_climate_source(f"grids:{csv_path}")
    with pytest.raises(UserError, match="station:FILE.csv, grids:DIR or daymet"):
        parse_climate_source("prism")
