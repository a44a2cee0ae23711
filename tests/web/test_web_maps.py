"""The maps API over real HTTP (a real ``eemt-flow serve``, a real job on the example DEM, one day,
coarse horizons): the index's statistics against numpy on rasterio's decimated read, tiles
decoded with PIL, point values against rasterio's read at the cell pyproj and the inverse
transform give."""

from __future__ import annotations

import io
import math
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.windows import Window

from web_server import Server, submit, wait_for

FAST = {"days": "172", "tile_size_cells": 60, "halo_m": 300, "horizon_step_deg": 10}
MAX_PIXELS = 1000  # QUICKLOOK_MAX_PIXELS: at most 1000 px a side


@pytest.fixture(scope="module")
def job(tmp_path_factory, example_dem):
    srv = Server(tmp_path_factory.mktemp("maps") / "data", "--max-upload-mb", "1").start()
    with srv.client() as client:
        r = submit(client, Path(example_dem).read_bytes(), FAST)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        detail = wait_for(client, job_id, lambda j: j["state"] in {"succeeded", "failed", "cancelled"})
        assert detail["state"] == "succeeded", detail
    yield srv, job_id, srv.data_dir / "jobs" / job_id / "results", detail
    srv.stop()


def decimated(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        factor = max(1.0, max(src.height, src.width) / MAX_PIXELS)
        shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
        return src.read(1, out_shape=shape, masked=True).astype("float32").filled(np.nan)


def test_maps_index_statistics_equal_numpy(job):
    srv, job_id, results, detail = job
    with srv.client() as client:
        index = client.get(f"/api/jobs/{job_id}/maps").json()
    tifs = sorted(r["name"] for r in detail["results"] if r["name"].endswith(".tif"))
    assert sorted(m["path"] for m in index["maps"]) == tifs and tifs
    west, south, east, north = index["bounds_lonlat"]
    assert west < east and south < north and 0 <= index["minzoom"] <= index["maxzoom"] <= 24
    for m in index["maps"]:
        v = decimated(results / m["path"])
        v = v[np.isfinite(v)].astype("float64")
        s = m["statistics"]
        assert s["valid_cells"] == v.size > 0
        assert s["min"] == v.min() and s["max"] == v.max()
        assert math.isclose(s["mean"], v.mean(), rel_tol=1e-6) and math.isclose(s["std"], v.std(), rel_tol=1e-6)
        for p, q in zip((2, 10, 50, 90, 98), np.percentile(v, [2, 10, 50, 90, 98])):
            assert s[f"p{p}"] == q, (m["path"], p)
        assert m["legend"]["vmin"] == s["p2"] and m["legend"]["vmax"] == s["p98"] and len(m["legend"]["colors"]) == 9
        assert m["tiles_url"] == f"/api/jobs/{job_id}/tiles/{{z}}/{{x}}/{{y}}.png?map={m['path']}"
    june = next(m for m in index["maps"] if m["path"] == "solar/monthly/glob_rad_06.tif")
    assert (june["kind"], june["period"], june["month"], june["units"], june["legend"]["colormap"]) == (
        "solar", "monthly", 6, "Wh m-2 month-1", "inferno")


def test_tiles_and_points(job):
    srv, job_id, results, _ = job
    with srv.client() as client:
        index = client.get(f"/api/jobs/{job_id}/maps").json()
        west, south, east, north = index["bounds_lonlat"]
        lon, lat = (west + east) / 2, (south + north) / 2
        t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, index["maxzoom"])
        r = client.get(f"/api/jobs/{job_id}/tiles/{t.z}/{t.x}/{t.y}.png", params={"map": "solar/monthly/glob_rad_06.tif"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
        img = Image.open(io.BytesIO(r.content))
        assert img.size == (256, 256) and img.mode == "RGBA"
        assert (np.asarray(img)[..., 3] == 255).sum() > 0
        # z=10, the other side of the globe from the DEM centre
        far = morecantile.tms.get("WebMercatorQuad").tile(lon + 180 if lon < 0 else lon - 180, -lat, 10)
        r = client.get(f"/api/jobs/{job_id}/tiles/10/{far.x}/{far.y}.png", params={"map": "solar/monthly/glob_rad_06.tif"})
        assert r.status_code == 204
        for bad in ("../../etc/passwd", "summary.json"):
            r = client.get(f"/api/jobs/{job_id}/tiles/{t.z}/{t.x}/{t.y}.png", params={"map": bad})
            assert r.status_code == 404 and "\n" not in r.json()["detail"]
        for z, x, y in ((-1, 0, 0), (3, 8, 0), (40, 0, 0)):
            assert 400 <= client.get(f"/api/jobs/{job_id}/tiles/{z}/{x}/{y}.png", params={"map": "x"}).status_code < 500

        r = client.get(f"/api/jobs/{job_id}/point", params={"lon": lon, "lat": lat})
        assert r.status_code == 200, r.text
        body = r.json()
        with rasterio.open(results / "solar/monthly/glob_rad_06.tif") as src:
            x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
            col, row = ~src.transform @ (x, y)
        row, col = math.floor(row), math.floor(col)
        assert (body["row"], body["col"]) == (row, col)
        expected = [m["path"] for m in index["maps"] if m["bands"] == 1 and m["period"] != "daily"]
        assert [v["path"] for v in body["values"]] == expected and expected
        for v in body["values"]:
            with rasterio.open(results / v["path"]) as src:
                cell = float(src.read(1, window=Window(col, row, 1, 1))[0, 0])
            assert v["value"] == (None if math.isnan(cell) else cell), v
        r = client.get(f"/api/jobs/{job_id}/point", params={"lon": 0, "lat": 0})
        assert r.status_code == 422 and "\n" not in r.json()["detail"]
        assert client.get(f"/api/jobs/{job_id}/point", params={"lon": 200, "lat": 0}).status_code == 422
        assert client.get("/api/jobs/0123456789abcdef/maps").status_code == 404
