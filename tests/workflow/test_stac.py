"""results/stac/item.json of a real CLI job: a valid STAC Item whose assets and projection match the COGs."""

from __future__ import annotations

import numpy as np
import pystac
import pytest
import rasterio
from pyproj import Transformer

from conftest import run_cli

JOB = ["--days", "172", "--tile-size", "200", "--halo", "300", "--horizon-step", "30", "--step-minutes", "60"]


@pytest.fixture(scope="module")
def results(example_dem, tmp_path_factory):
    work = tmp_path_factory.mktemp("stac")
    run_cli("run", "--dem", example_dem, "--workdir", work, "--quiet", *JOB)
    return work / "results"


def test_item_lists_every_map_with_the_cogs_projection(results, example_dem):
    item = pystac.Item.from_file(str(results / "stac" / "item.json"))
    tifs = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.tif")
                  if not any(part.startswith(".") for part in p.relative_to(results).parts))
    data = sorted(k for k, a in item.assets.items() if "data" in (a.roles or []))
    assert data == tifs and len(tifs) >= 3   # glob_rad, flat_glob_rad, insol_time for June at least
    for key in tifs:
        asset = item.assets[key]
        with rasterio.open(results / key) as src:
            assert asset.extra_fields["proj:shape"] == [src.height, src.width]
            assert asset.extra_fields["proj:transform"] == list(src.transform)[:6]
            assert asset.extra_fields["proj:code"] == f"EPSG:{src.crs.to_epsg()}"
            a = src.read(1).astype("float64")
        stats = asset.extra_fields["raster:bands"][0]["statistics"]
        valid = a[np.isfinite(a)]
        assert stats["minimum"] == pytest.approx(valid.min()) and stats["maximum"] == pytest.approx(valid.max())
        assert stats["valid_percent"] == pytest.approx(100.0 * valid.size / a.size)
    assert item.properties["start_datetime"] == "2001-06-21T00:00:00+00:00"   # day 172 of the reference year 2001
    assert item.properties["end_datetime"] == "2001-06-21T23:59:59+00:00"
    with rasterio.open(example_dem) as dem:
        corners_x = [dem.bounds.left, dem.bounds.right, dem.bounds.right, dem.bounds.left]
        corners_y = [dem.bounds.bottom, dem.bounds.bottom, dem.bounds.top, dem.bounds.top]
        lon, lat = Transformer.from_crs(dem.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(corners_x, corners_y)
    west, south, east, north = item.bbox
    assert all(west <= x <= east for x in lon) and all(south <= y <= north for y in lat)


def test_odc_stac_loads_an_asset_equal_to_the_cog(results):
    import odc.stac

    item = pystac.Item.from_file(str(results / "stac" / "item.json"))
    key = "solar/monthly/glob_rad_06.tif"
    ds = odc.stac.load([item], bands=[key], chunks=None)
    with rasterio.open(results / key) as src:
        expected, transform, crs = src.read(1), src.transform, src.crs
    loaded = ds[key].isel(time=0).values
    assert loaded.shape == expected.shape
    assert np.array_equal(loaded, expected, equal_nan=True)
    assert ds.odc.geobox.crs.epsg == crs.to_epsg()
    assert tuple(ds.odc.geobox.affine)[:6] == tuple(transform)[:6]
