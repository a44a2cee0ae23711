"""User climate grids (grids:DIR): GeoTIFF and NetCDF, monthly and daily, any CRS."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from test_climate_daymet import LCC_GRID_MAPPING, write_netcdf_classic

from conftest import read_raster, run_cli
from eemt_flow.climate import load_climate
from eemt_flow.climate.resample import footprint_mean_elevation
from eemt_flow.dem.raster import Dem
from eemt_flow.errors import UserError

UTM13 = CRS.from_epsg(32613)
ORIGIN_M = (363_000.0, 3_975_000.0)
#: The climate grid: 300 m cells aligned with the DEM, 2 cells (600 m) beyond it on every side.
CLIMATE_CELL_M = 300.0
CLIMATE_TRANSFORM = from_origin(ORIGIN_M[0] - 600.0, ORIGIN_M[1] + 600.0, CLIMATE_CELL_M, CLIMATE_CELL_M)
CLIMATE_SHAPE = (8, 8)
MONTHS = np.arange(1, 13, dtype="float64")


@pytest.fixture
def plane_dem() -> Dem:
    """40×40 cells of 30 m (1.2 km square) in UTM 13N; a plane rising 3 m per column eastwards from 2000 m."""
    z = 2000.0 + 3.0 * np.arange(40)[np.newaxis, :].repeat(40, axis=0)
    return Dem(z.astype("float32"), from_origin(*ORIGIN_M, 30.0, 30.0), UTM13)


def write_tif(path, bands, transform=CLIMATE_TRANSFORM, crs=UTM13) -> None:
    bands = np.asarray(bands, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype="float32", crs=crs, transform=transform, nodata=np.nan) as dst:
        dst.write(bands)


def constant_bands(values, shape=CLIMATE_SHAPE) -> np.ndarray:
    return np.asarray(values, dtype="float64")[:, None, None] * np.ones(shape)


def climate_x_centres_m() -> np.ndarray:
    """Easting of the climate cell centres, one per column [m]."""
    return CLIMATE_TRANSFORM.c + CLIMATE_CELL_M * (np.arange(CLIMATE_SHAPE[1]) + 0.5)


def write_monthly_set(directory, skip=()) -> None:
    """tmin = m °C, tmax = m + 10 °C, prcp = 10·m + 0.01·(x − 363 000 m) mm, vp = 600 Pa (month m)."""
    directory.mkdir(exist_ok=True)
    prcp = 10.0 * MONTHS[:, None, None] + 0.01 * (climate_x_centres_m() - ORIGIN_M[0])[None, None, :] * np.ones(CLIMATE_SHAPE)
    fields = {"tmin": constant_bands(MONTHS), "tmax": constant_bands(MONTHS + 10.0), "prcp": prcp,
              "vp": constant_bands(np.full(12, 600.0))}
    for name, bands in fields.items():
        if name not in skip:
            write_tif(directory / f"{name}.tif", bands)


def test_monthly_geotiff_bilinear_and_footprint_base(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    [climate] = load_climate(f"grids:{tmp_path / 'g'}", plane_dem)
    assert climate.year == "normals" and climate.days_in_month.sum() == 365
    # prcp is a plane in x; bilinear resampling gives it back at each DEM cell centre x = 363 000 + 15 + 30·col:
    # Jan, col 20: 10 + 0.01·(15 + 600) = 10 + 6.15 = 16.15 mm (nearest would give the cell centre value 17.5 mm).
    assert climate.prcp_mm[0, 20, 20] == pytest.approx(16.15, abs=1e-3)
    # Dec, col 7: 120 + 0.01·(15 + 210) = 122.25 mm.
    assert climate.prcp_mm[11, 3, 7] == pytest.approx(122.25, abs=1e-3)
    # No elevation.tif: z_base = mean of the DEM over each 300 m cell. The mean of a plane over a
    # cell is the plane at the cell centre, and bilinear interpolation of a plane is the plane, so
    # between the outermost cell centres (cols 5..34) z_base = z and T is unchanged: tmin(Apr) = 4 °C.
    assert climate.base_elevation_m[10, 20] == pytest.approx(2060.0, abs=1e-2)
    assert np.allclose(climate.tmin_c[3, :, 5:35], 4.0, atol=1e-4)
    assert np.allclose(climate.tmax_c[3, :, 5:35], 14.0, atol=1e-4)
    # West of the first centre (cols 0..4) z_base is the edge cell's mean, 2000 + 3·4.5 = 2013.5 m;
    # col 0 (z = 2000 m) is 13.5 m lower: tmin(Apr) = 4 + 6.49·0.0135 = 4.0876 °C.
    assert climate.base_elevation_m[0, 0] == pytest.approx(2013.5, abs=1e-2)
    assert climate.tmin_c[3, 0, 0] == pytest.approx(4.0876, abs=1e-4)
    assert np.allclose(climate.vp_pa, 600.0)
    assert "bilinear" in climate.source


def test_nearest_and_cubic_resampling(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    [nearest] = load_climate(f"grids:{tmp_path / 'g'}", plane_dem, resampling="nearest")
    # climate col c spans x = 362 400 + 300 c ... + 300 (c + 1); DEM col j has its centre at 363 015 + 30 j.
    # DEM col 20 (363 615) lies in climate col 4 (363 600 ... 363 900, centre 363 750), whose value is
    # Jan prcp = 10 + 0.01·(363 750 − 363 000) = 17.5 mm: the cell's own, not the bilinear 16.15 mm
    assert nearest.prcp_mm[0, 20, 20] == pytest.approx(17.5, abs=1e-4)
    # piecewise constant: DEM cols 20..29 (centres 363 615 ... 363 885) all lie in that cell
    assert np.ptp(nearest.prcp_mm[0, 20, 20:30]) == pytest.approx(0.0, abs=1e-5)
    assert nearest.prcp_mm[0, 20, 30] == pytest.approx(20.5, abs=1e-4)  # the next cell: 10 + 0.01·1050
    assert "nearest" in nearest.source
    [cubic] = load_climate(f"grids:{tmp_path / 'g'}", plane_dem, resampling="cubic")
    # cubic convolution reproduces a plane too, away from the grid edge: 16.15 mm as bilinear
    assert cubic.prcp_mm[0, 20, 20] == pytest.approx(16.15, abs=1e-3)
    assert "cubic" in cubic.source


def test_climate_resampling_through_the_cli(tmp_path, plane_dem):
    """--climate-resampling nearest reaches the grids: E_PPT steps with the 300 m cells; summary.json records it."""
    write_monthly_set(tmp_path / "g")
    dem = tmp_path / "plane.tif"
    write_tif(dem, plane_dem.elevation_m[np.newaxis], transform=plane_dem.transform)
    work = tmp_path / "work"
    run_cli("run", "--dem", dem, "--workdir", work, "--climate", f"grids:{tmp_path / 'g'}", "--model", "trad",
            "--climate-resampling", "nearest", "--days", "15,46,74,105,135,166,196,227,258,288,319,349",
            "--horizon-step", "10", "--halo", "300", "--quiet")
    e_ppt = read_raster(work / "results" / "eemt" / "E_PPT_TRAD_normals.tif")
    # DEM cols 20..29 share climate col 4 (see above): within it E_PPT changes only through the lapse
    # correction of T (z rises 3 m per column); at col 30, the next cell, P jumps by 3 mm every month
    within = np.abs(np.diff(e_ppt[20, 20:30])).max()
    jump = e_ppt[20, 30] - e_ppt[20, 29]
    assert jump > 5 * within, (jump, within)
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert summary["parameters"]["climate_resampling"] == "nearest"


def test_footprint_mean_by_hand(plane_dem):
    # The 300 m cell in row 2, col 3 of the climate grid covers DEM cols 10..19 (x from 300 to 600 m):
    # mean z = 2000 + 3·(10 + 19)/2 = 2000 + 43.5 = 2043.5 m.
    base = footprint_mean_elevation(plane_dem, CLIMATE_SHAPE, CLIMATE_TRANSFORM, UTM13)
    assert base[2, 3] == pytest.approx(2043.5, abs=1e-3)
    # Cells beyond the DEM repeat the edge: the row above the DEM (row 1) equals row 2.
    assert np.isfinite(base).all()
    assert np.allclose(base[1], base[2]) and np.allclose(base[:, 0], 2013.5)


def test_other_crs_with_elevation_tif(tmp_path, plane_dem):
    """A lon/lat climate grid at 0.005° with its own elevation (1900 m everywhere)."""
    west, south, east, north = transform_bounds(UTM13, CRS.from_epsg(4326), *plane_dem_bounds(), densify_pts=21)
    step = 0.005
    left, top = np.floor(west / step) * step - 2 * step, np.ceil(north / step) * step + 2 * step
    cols, rows = int(np.ceil((east - left) / step)) + 2, int(np.ceil((top - south) / step)) + 2
    geo = from_origin(left, top, step, step)
    directory = tmp_path / "geo"
    directory.mkdir()
    for name, values in {"tmin": MONTHS, "tmax": MONTHS + 10, "prcp": 10 * MONTHS, "vp": np.full(12, 700.0)}.items():
        write_tif(directory / f"{name}.tif", constant_bands(values, (rows, cols)), geo, CRS.from_epsg(4326))
    write_tif(directory / "elevation.tif", constant_bands([1900.0], (rows, cols)), geo, CRS.from_epsg(4326))
    [climate] = load_climate(f"grids:{directory}", plane_dem, lapse_tmax_c_per_km=5.0)
    # col 0: z = 2000 m, 100 m above the grid: tmin(Jan) = 1 − 6.49·0.1 = 0.351 °C.
    assert climate.tmin_c[0, 7, 0] == pytest.approx(0.351, abs=1e-4)
    # col 20: z = 2060 m, 160 m above: tmin(Jan) = 1 − 6.49·0.16 = 1 − 1.0384 = −0.0384 °C;
    # tmax(Jul) with 5 °C/km = 17 − 5·0.16 = 16.2 °C.
    assert climate.tmin_c[0, 30, 20] == pytest.approx(-0.0384, abs=1e-4)
    assert climate.tmax_c[6, 30, 20] == pytest.approx(16.2, abs=1e-4)
    assert np.allclose(climate.base_elevation_m, 1900.0)
    assert np.allclose(climate.prcp_mm[4], 50.0)


def plane_dem_bounds():
    return ORIGIN_M[0], ORIGIN_M[1] - 1200.0, ORIGIN_M[0] + 1200.0, ORIGIN_M[1]


def test_daily_geotiff_leap_year(tmp_path, plane_dem):
    directory = tmp_path / "daily"
    write_monthly_set(directory, skip=("prcp", "tmin"))
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=d) for d in range(365)]  # DAYMET 2020: Feb 29 kept, no Dec 31
    write_tif(directory / "prcp.tif", constant_bands(np.ones(365)))  # 1 mm/day
    # tmin = day of month: a 31-day month averages (1 + 31)/2 = 16, Feb 2020 (1 + 29)/2 = 15, Dec 2020 (1 + 30)/2 = 15.5.
    write_tif(directory / "tmin.tif", constant_bands([float(d.day) for d in days]))
    [climate] = load_climate(f"grids:{directory}", plane_dem, years=[2020])
    assert climate.year == 2020
    assert climate.days_in_month.tolist() == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 30]
    assert np.allclose(climate.prcp_mm[:, 20, 20], climate.days_in_month)
    assert climate.tmin_c[0, 20, 20] == pytest.approx(16.0, abs=1e-4)
    assert climate.tmin_c[1, 20, 20] == pytest.approx(15.0, abs=1e-4)
    assert climate.tmin_c[11, 20, 20] == pytest.approx(15.5, abs=1e-4)


def write_lcc_netcdf(path, variable, values, time_days, x_km, y_km):
    write_netcdf_classic(path, {"time": len(time_days), "y": y_km.size, "x": x_km.size}, {
        "x": (["x"], x_km, {"units": "km"}), "y": (["y"], y_km, {"units": "km"}),
        "time": (["time"], np.asarray(time_days, dtype="float64"), {"units": "days since 1950-01-01 00:00:00", "calendar": "standard"}),
        "lambert_conformal_conic": ([], np.array(0, dtype="int16"), LCC_GRID_MAPPING),
        variable: (["time", "y", "x"], np.asarray(values, dtype="float32"), {"grid_mapping": "lambert_conformal_conic",
                                                                            "_FillValue": np.float32(-9999.0)}),
    })


def lcc_axes(dem: Dem):
    """1 km DAYMET-like axes (km) around the DEM, x ascending, y descending."""
    lcc = CRS.from_proj4("+proj=lcc +lat_1=25 +lat_2=60 +lat_0=42.5 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    left, bottom, right, top = transform_bounds(UTM13, lcc, *plane_dem_bounds(), densify_pts=21)
    x_km = np.arange(np.floor(left / 1000) - 3, np.ceil(right / 1000) + 3) + 0.25
    y_km = (np.arange(np.floor(bottom / 1000) - 3, np.ceil(top / 1000) + 3) + 0.25)[::-1]
    return x_km, y_km


def test_netcdf_daily_standard_calendar_and_monthly(tmp_path, plane_dem):
    directory = tmp_path / "nc"
    write_monthly_set(directory, skip=("tmin", "vp"))
    x_km, y_km = lcc_axes(plane_dem)
    # tmin daily for 2020 on the standard calendar: 366 days, Dec 31 poisoned at 1000 °C (must be dropped).
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=d) for d in range(366)]
    daily = np.array([1000.0 if (d.month, d.day) == (12, 31) else float(d.month) for d in days])
    ones = np.ones((len(days), y_km.size, x_km.size))
    write_lcc_netcdf(directory / "tmin.nc", "tmin", daily[:, None, None] * ones,
                     [(d - dt.date(1950, 1, 1)).days + 0.5 for d in days], x_km, y_km)
    # vp monthly: 12 steps on the 15th, given out of order (Dec first); month m = 400 + m Pa.
    mids = [dt.date(2020, m, 15) for m in [12, *range(1, 12)]]
    write_lcc_netcdf(directory / "vp.nc", "vp", np.array([400.0 + d.month for d in mids])[:, None, None] * ones[:12],
                     [(d - dt.date(1950, 1, 1)).days for d in mids], x_km, y_km)
    elevation = 2000.0 + 3.0 * 20  # the DEM at col 20
    [climate] = load_climate(f"grids:{directory}", plane_dem)
    assert climate.year == 2020  # from the daily file's dates
    assert climate.days_in_month[11] == 30
    # Dec tmin = 12 (Dec 31 dropped). The DEM plane inside one 1 km cell: z_base ≈ z, so only a small lapse shift.
    assert climate.tmin_c[11, 20, 20] == pytest.approx(12.0 - 6.49 * (elevation - climate.base_elevation_m[20, 20]) / 1000, abs=1e-4)
    assert abs(climate.tmin_c[11, 20, 20] - 12.0) < 0.5
    assert climate.vp_pa[:, 20, 20].tolist() == pytest.approx([400.0 + m for m in range(1, 13)])


# ---------------------------------------------------------------------------
# Bad input: one line naming the variable and the file
# ---------------------------------------------------------------------------
def test_missing_variable(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g", skip=("vp",))
    with pytest.raises(UserError) as err:
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)
    message = str(err.value)
    assert "variable vp is missing" in message and str(tmp_path / "g") in message and "\n" not in message


def test_wrong_band_count(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    write_tif(tmp_path / "g" / "tmax.tif", constant_bands(np.arange(5.0)))
    with pytest.raises(UserError) as err:
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)
    assert "tmax" in str(err.value) and str(tmp_path / "g" / "tmax.tif") in str(err.value) and "5 bands" in str(err.value)


def test_grid_does_not_cover_dem(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    # prcp on a grid that stops 300 m east of the DEM's west edge.
    write_tif(tmp_path / "g" / "prcp.tif", constant_bands(np.ones(12), (8, 3)))
    with pytest.raises(UserError) as err:
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)
    message = str(err.value)
    assert message.startswith(f"prcp ({tmp_path / 'g' / 'prcp.tif'}): the grid covers x")
    assert "give a grid that covers the DEM" in message and "\n" not in message


def test_nodata_over_the_dem(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    bands = constant_bands(np.full(12, 600.0))
    bands[6, 2:6, 2:6] = np.nan  # July vp nodata over the whole DEM
    write_tif(tmp_path / "g" / "vp.tif", bands)
    with pytest.raises(UserError, match=r"vp \(.*vp\.tif\): nodata over 1600 DEM cells in month 7"):
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)


def test_daily_geotiff_needs_a_year(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    write_tif(tmp_path / "g" / "prcp.tif", constant_bands(np.ones(365)))
    with pytest.raises(UserError, match=r"prcp \(.*prcp\.tif\): 365 daily bands need the year"):
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)
    with pytest.raises(UserError, match="at most one year"):
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem, years=[2019, 2020])


def test_variable_given_twice(tmp_path, plane_dem):
    write_monthly_set(tmp_path / "g")
    (tmp_path / "g" / "tmin.nc").write_bytes(b"CDF\x01")
    with pytest.raises(UserError, match=r"variable tmin is given twice \(tmin\.tif, tmin\.nc\)"):
        load_climate(f"grids:{tmp_path / 'g'}", plane_dem)


def test_netcdf_wrong_step_count_and_missing_variable(tmp_path, plane_dem):
    directory = tmp_path / "nc"
    write_monthly_set(directory, skip=("tmin",))
    x_km, y_km = lcc_axes(plane_dem)
    write_lcc_netcdf(directory / "tmin.nc", "tmin", np.zeros((30, y_km.size, x_km.size)),
                     np.arange(30) + 25202.5, x_km, y_km)
    with pytest.raises(UserError, match=r"tmin \(.*tmin\.nc\): 30 time steps"):
        load_climate(f"grids:{directory}", plane_dem)
    write_lcc_netcdf(directory / "tmin.nc", "temperature", np.zeros((12, y_km.size, x_km.size)),
                     np.arange(12) * 30 + 25202.5, x_km, y_km)
    with pytest.raises(UserError, match=r"tmin\.nc: no variable 'tmin'"):
        load_climate(f"grids:{directory}", plane_dem)
