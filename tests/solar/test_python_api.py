"""The notebook API: the docs page's example runs as written, and its radiation equals the CLI job's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401

from conftest import REPO, read_raster, run_cli
from eemt_flow.errors import UserError

DOCS_PAGE = REPO / "docs" / "python.md"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def docs_example(tmp_path_factory) -> Path:
    """The page's code blocks, run in order by a fresh interpreter in an empty directory."""
    where = tmp_path_factory.mktemp("docs")
    blocks = python_blocks(DOCS_PAGE)
    assert len(blocks) == 3
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=where, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "June global radiation: mean" in proc.stdout and "highest southern horizon" in proc.stdout
    assert "EEMT-TOPO: " in proc.stdout
    return where


def test_docs_example_equals_cli_job(docs_example):
    """June's map from the notebook API equals results/solar/monthly/glob_rad_06.tif of eemt-flow run
    on the same DEM with the same parameters (one tile, automatic halo)."""
    work = docs_example / "work"
    run_cli("run", "--dem", docs_example / "example_dem.tif", "--workdir", work, "--days", "1-365",
            "--step-minutes", "15", "--linke", "3.0", "--albedo", "0.2", "--quiet")
    api = read_raster(docs_example / "glob_rad_06.tif")
    cli = read_raster(work / "results" / "solar" / "monthly" / "glob_rad_06.tif")
    assert api.shape == cli.shape == (60, 60)
    np.testing.assert_array_equal(np.isnan(api), np.isnan(cli))
    assert np.isfinite(cli).sum() > 3000  # the example DEM's nodata corner aside
    np.testing.assert_array_equal(api, cli)


def test_docs_eemt_example_equals_cli_job(docs_example):
    """The page's EEMT-TOPO map equals eemt-flow run's with the same climate and parameters."""
    work = docs_example / "work-eemt"
    run_cli("run", "--dem", docs_example / "example_dem.tif", "--workdir", work,
            "--days", "15,46,74,105,135,166,196,227,258,288,319,349", "--horizon-step", "10", "--halo", "1000",
            "--climate", f"station:{docs_example / 'normals.csv'}", "--station-elevation", "2300",
            "--model", "trad,topo", "--quiet")
    api = read_raster(docs_example / "EEMT_TOPO_normals.tif")
    cli = read_raster(work / "results" / "eemt" / "EEMT_TOPO_normals.tif")
    np.testing.assert_array_equal(np.isnan(api), np.isnan(cli))
    assert np.isfinite(cli).sum() > 3000
    np.testing.assert_array_equal(api, cli)
    # EEMT of the example's semi-arid mountain climate: tens of MJ m-2 yr-1, as the papers' Catalina range
    assert 5 < np.nanmean(cli) < 60


def test_radiation_dataset(tmp_path):
    import eemt_flow.solar
    from eemt_flow.dem.example import write_example_dem

    path = tmp_path / "dem.tif"
    write_example_dem(path, size_cells=30)
    dem = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    ds = eemt_flow.solar.radiation(dem, days="172,173", max_distance_m=600, horizon_step_deg=10)
    assert list(ds.data_vars) == ["glob_rad", "flat_glob_rad", "insol_time"]
    assert ds.glob_rad.dims == ("day", "y", "x") and list(ds.day.values) == [172, 173]
    np.testing.assert_array_equal(ds.x.values, dem.x.values)
    np.testing.assert_array_equal(ds.y.values, dem.y.values)
    assert ds.rio.crs == dem.rio.crs
    assert ds.glob_rad.attrs["units"] == "Wh m-2 day-1" and ds.insol_time.attrs["units"] == "h"
    assert ds.attrs["max_distance_m"] == 600 and ds.attrs["horizon_step_deg"] == 10 and "eemt-flow" in ds.attrs["source"]
    # nodata cells of the DEM stay NaN
    np.testing.assert_array_equal(np.isnan(ds.glob_rad.isel(day=0)), np.isnan(dem))
    # On 21 June at 35.9 N the extraterrestrial daily irradiation of a horizontal surface is
    # about 11.6 kWh m-2 (Duffie & Beckman, Table 1.10.1: 41.7 MJ m-2 at 35-40 N = 11.6 kWh);
    # a clear sky (Linke 3) at the DEM's 2-3 km passes 70-90 % of it.
    flat = ds.flat_glob_rad.sel(day=172).values
    assert 0.70 * 11600 < np.nanmean(flat) < 0.90 * 11600
    # the month sums are the sums of the days
    month = eemt_flow.solar.radiation(path, days="172,173", max_distance_m=600, horizon_step_deg=10, per="month")
    np.testing.assert_allclose(month.glob_rad.sel(month=6), ds.glob_rad.sum("day", skipna=False), rtol=1e-6)


def test_horizons_dataarray(tmp_path):
    import eemt_flow.solar
    from eemt_flow.dem.example import write_example_dem

    path = tmp_path / "dem.tif"
    write_example_dem(path, size_cells=30)
    hor = eemt_flow.solar.horizons(path, n_azimuths=8, max_distance_m=600)
    assert hor.dims == ("azimuth", "y", "x") and hor.shape == (8, 30, 30)
    assert list(hor.azimuth.values) == [0, 45, 90, 135, 180, 225, 270, 315]
    assert hor.attrs["units"] == "rad" and float(hor.min()) >= 0


def test_sky_view_factor_dataarray(tmp_path):
    """Flat open ground sees the whole sky: 1 everywhere; the result lies on the DEM's grid."""
    import xarray as xr

    import eemt_flow.solar
    from eemt_flow.dem.example import write_example_dem

    y = 3975000.0 - (np.arange(20) + 0.5) * 30.0
    x = 363000.0 + (np.arange(25) + 0.5) * 30.0
    flat = xr.DataArray(np.full((20, 25), 1800.0), dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs("EPSG:26913")
    svf = eemt_flow.solar.sky_view_factor(flat, n_azimuths=36, max_distance_m=300)
    assert svf.dims == ("y", "x") and svf.shape == (20, 25) and svf.name == "sky_view_factor"
    np.testing.assert_array_equal(svf.x.values, x)
    np.testing.assert_array_equal(svf.y.values, y)
    assert svf.rio.crs == flat.rio.crs and svf.rio.transform() == flat.rio.transform()
    assert svf.attrs["units"] == "1" and svf.attrs["n_azimuths"] == 36 and svf.attrs["max_distance_m"] == 300
    np.testing.assert_allclose(svf.values, 1.0, rtol=0, atol=1e-6)

    # a DEM with relief and nodata, from a path and from its DataArray: the same map, NaN where
    # the DEM is, 0 < V <= 1, and the automatic halo by default
    path = tmp_path / "dem.tif"
    write_example_dem(path, size_cells=30)
    dem = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    from_path = eemt_flow.solar.sky_view_factor(path, n_azimuths=36)
    from_array = eemt_flow.solar.sky_view_factor(dem, n_azimuths=36)
    np.testing.assert_array_equal(from_path.values, from_array.values)
    np.testing.assert_array_equal(np.isnan(from_path.values), np.isnan(dem.values))
    assert 0.0 < np.nanmin(from_path.values) < np.nanmax(from_path.values) <= 1.0
    assert from_path.attrs["max_distance_m"] == eemt_flow.solar.horizons(path, n_azimuths=4).attrs["max_distance_m"]


def test_sky_view_factor_refuses_bad_input(tmp_path):
    import xarray as xr

    import eemt_flow.solar

    no_crs = xr.DataArray(np.ones((10, 10)), dims=("y", "x"), coords={"y": np.arange(10.0), "x": np.arange(10.0)})
    with pytest.raises(UserError, match="no coordinate reference system"):
        eemt_flow.solar.sky_view_factor(no_crs)
    with pytest.raises(ValueError, match="n_azimuths"):
        eemt_flow.solar.sky_view_factor(no_crs, n_azimuths=2)
    with pytest.raises(ValueError, match="n_azimuths"):
        eemt_flow.solar.sky_view_factor(no_crs, n_azimuths=36.5)
    with pytest.raises(UserError, match="no such file"):
        eemt_flow.solar.sky_view_factor(tmp_path / "missing.tif")
    y = 3975000.0 - (np.arange(10) + 0.5) * 30.0
    x = 363000.0 + (np.arange(10) + 0.5) * 30.0
    dem = xr.DataArray(np.ones((10, 10)), dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs("EPSG:26913")
    with pytest.raises(ValueError, match="max_distance_m must be positive"):
        eemt_flow.solar.sky_view_factor(dem, max_distance_m=-5)


def test_api_refuses_bad_input_with_one_line(tmp_path):
    import xarray as xr

    import eemt_flow.solar

    no_crs = xr.DataArray(np.ones((10, 10)), dims=("y", "x"), coords={"y": np.arange(10.0), "x": np.arange(10.0)})
    with pytest.raises(UserError, match="no coordinate reference system"):
        eemt_flow.solar.radiation(no_crs, days=172)
    with pytest.raises(ValueError, match="step_minutes"):
        eemt_flow.solar.radiation(tmp_path / "missing.tif", days=172, step_minutes=90)
    with pytest.raises(UserError, match="no such file"):
        eemt_flow.solar.radiation(tmp_path / "missing.tif", days=172)


def test_cli_and_tasks_do_not_import_xarray():
    code = "import sys, eemt_flow.cli, eemt_flow.workflow.tasks, eemt_flow.solar.fast_tile; print('xarray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
