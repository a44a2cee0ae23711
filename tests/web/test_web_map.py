"""The job page's interactive map and charts in a real browser (Debian Chromium via Playwright).

One tiny EEMT job (the example DEM at 40 x 40 cells, one day per month, station normals, coarse
horizons) through the real HTTP API; then the job page: the map's tiles (GET .../tiles) load
as 256 x 256 images, the layer chooser switches the tiles, a click's popup (GET .../point)
shows the value that the COG holds at the clicked lon/lat (read here with rasterio + pyproj),
and the monthly charts have one point per monthly map with the maps' means (computed here
from the COGs). The OpenStreetMap base layer is switched on: without a network its tiles fail,
which must not break the page. Screenshots: test-artifacts/ (and docs/images/ with
EEMT_DOC_IMAGES=1, which is how the committed ones were made).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import rasterio
from pyproj import Transformer

from conftest import REPO, run_cli
from test_web_browser import browser  # noqa: F401  (the module's Chromium fixture)
from web_server import Server, submit_with_csv, wait_for

ONE_DAY_PER_MONTH = "15,46,74,105,135,166,196,227,258,288,319,349"
EEMT_FAST = {"days": ONE_DAY_PER_MONTH, "horizon_step_deg": 10, "halo_m": 300, "climate": "station",
             "models": ["topo"], "station_elevation_m": 2300}
STATION_CSV = REPO / "examples" / "station_normals.csv"
TILE_SIZE_PX = 256
DOC_IMAGES = REPO / "docs" / "images"


@pytest.fixture(scope="module")
def eemt_job(tmp_path_factory):
    dem = tmp_path_factory.mktemp("map-dem") / "example_dem_40.tif"
    run_cli("example-dem", "--size", "40", dem)
    srv = Server(tmp_path_factory.mktemp("map-data")).start()
    try:
        with srv.client() as client:
            r = submit_with_csv(client, dem.read_bytes(), EEMT_FAST, STATION_CSV.read_bytes())
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            job = wait_for(client, job_id, lambda j: j["state"] in ("succeeded", "failed", "cancelled"),
                           timeout_s=300)
            assert job["state"] == "succeeded", job
            r = client.get(f"/api/jobs/{job_id}/maps")  # CONTRACT.md section 2 (branch tiles)
            assert r.status_code == 200, f"GET /api/jobs/{job_id}/maps: {r.status_code} {r.text[:200]}"
        yield srv, job_id, srv.data_dir / "jobs" / job_id / "results"
    finally:
        srv.stop()


def cog_value_at(path: Path, lon: float, lat: float) -> float:
    """The band-1 value of the cell holding (lon, lat), read from the COG: lon/lat -> the map's CRS -> row/col."""
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
        row, col = src.index(x, y)
        assert 0 <= row < src.height and 0 <= col < src.width, (row, col)
        value = float(src.read(1)[row, col])
        assert value != src.nodata and math.isfinite(value), (path, row, col, value)
        return value


def cog_mean(path: Path) -> float:
    with rasterio.open(path) as src:
        a = src.read(1, masked=True).astype("float64")
    return float(a.mean())


def wait_for_tiles(page, map_path: str) -> int:
    """Every result tile <img> (in the layer container div.result-tile) of ``map_path`` loaded, 256 px wide, none broken; their count."""
    page.wait_for_function(
        """(p) => { const imgs = [...document.querySelectorAll('.result-tile img.leaflet-tile')]
                      .filter((i) => decodeURIComponent(i.src).includes('map=' + p));
                    return imgs.length > 0 && imgs.every((i) => i.complete); }""",
        arg=map_path, timeout=30_000)
    widths = page.evaluate(
        """(p) => [...document.querySelectorAll('.result-tile img.leaflet-tile')]
                  .filter((i) => decodeURIComponent(i.src).includes('map=' + p)).map((i) => i.naturalWidth)""",
        map_path)
    assert widths and all(w == TILE_SIZE_PX for w in widths), widths
    return len(widths)


def test_job_page_map_popup_and_charts(browser, eemt_job, artifacts_dir):  # noqa: F811
    srv, job_id, results = eemt_job
    page = browser.new_page(viewport={"width": 1100, "height": 1600})
    errors, tile_responses = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: tile_responses.append((r.url, r.status, r.headers.get("content-type")))
            if f"/api/jobs/{job_id}/tiles/" in r.url else None)
    page.goto(f"{srv.url}/jobs/{job_id}")
    # The static quick-looks and the downloads stay.
    assert page.evaluate("document.getElementById('map').getAttribute('src')").endswith("glob_rad_quicklook.png")
    assert page.locator("#eemt-list a", has_text="eemt/EEMT_TOPO_normals.tif").count() == 1

    page.wait_for_function("() => window.eemtMap && window.eemtLayer", timeout=30_000)
    index = page.evaluate(f"fetch('/api/jobs/{job_id}/maps').then((r) => r.json())")
    paths = {m["path"]: m for m in index["maps"]}
    first = page.input_value("#layer-select")
    assert first == "eemt/EEMT_TOPO_normals.tif", first
    wait_for_tiles(page, first)
    assert "MJ" in page.inner_text("#legend-title")  # EEMT's units
    # The chooser offers monthly global radiation, the EEMT maps, the terrain maps.
    options = page.eval_on_selector_all("#layer-select option", "els => els.map((e) => e.value)")
    assert "solar/monthly/glob_rad_07.tif" in options and "terrain/sky_view_factor.tif" in options
    assert not any("/daily/" in o for o in options)

    page.check("#osm-toggle")  # no network here: its tiles fail quietly

    layer = "solar/monthly/glob_rad_07.tif"
    page.select_option("#layer-select", layer)
    n_tiles = wait_for_tiles(page, layer)
    assert page.inner_text("#legend-title").startswith(paths[layer]["title"])
    assert page.inner_text("#legend-vmin") != "" and page.inner_text("#legend-vmax") != ""
    ours = [t for t in tile_responses if "map=" in t[0]]
    assert ours and all(status == 200 and ctype == "image/png" for _, status, ctype in ours), ours

    # Click the centre cell of the DEM: its lon/lat -> a container point; the clicked point's
    # lon/lat comes back from Leaflet (pixel rounding), and the COG is read there.
    cog = results / layer
    with rasterio.open(cog) as src:
        cx, cy = src.xy(src.height // 2, src.width // 2)
        lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(cx, cy)
    point = page.evaluate("([lat, lon]) => { const p = eemtMap.latLngToContainerPoint([lat, lon]);"
                          " return [Math.round(p.x), Math.round(p.y)]; }", [lat, lon])
    clicked = page.evaluate("([x, y]) => { const ll = eemtMap.containerPointToLatLng([x, y]);"
                            " return [ll.lng, ll.lat]; }", point)
    box = page.locator("#leaflet-map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    page.wait_for_selector(".point-popup .point-value", timeout=15_000)
    shown = float(page.get_attribute(".point-popup .point-value", "data-value"))
    expected = cog_value_at(cog, *clicked)
    assert shown == pytest.approx(expected, rel=1e-6), (shown, expected, clicked)
    assert paths[layer]["units"] in page.inner_text(".point-popup")
    page.locator("#leaflet-map").screenshot(path=str(artifacts_dir / "job-page-map.png"))

    # Charts: radiation (topographic + flat), E_PPT, E_BIO; one point per monthly map, at its mean.
    titles = page.eval_on_selector_all("#charts svg.chart", "els => els.map((e) => e.dataset.title)")
    assert titles == ["Global radiation, monthly mean", "E_PPT, monthly mean", "E_BIO, monthly mean"], titles
    points = page.eval_on_selector_all(
        "#charts circle.chart-point",
        "els => els.map((e) => [e.dataset.series, Number(e.dataset.month), Number(e.dataset.mean)])")
    by_series: dict[str, dict[int, float]] = {}
    for series, month, mean in points:
        by_series.setdefault(series, {})[month] = mean
    monthly = {v: sorted(m["month"] for m in index["maps"] if m["variable"] == v and m["period"] == "monthly")
               for v in ("glob_rad", "flat_glob_rad", "E_PPT", "E_BIO")}
    assert monthly["glob_rad"] == list(range(1, 13)), monthly
    assert sorted(by_series["topographic glob_rad"]) == monthly["glob_rad"]
    assert sorted(by_series["flat flat_glob_rad"]) == monthly["flat_glob_rad"]
    (model,) = {m["model"] for m in index["maps"] if m["variable"] == "E_PPT" and m["period"] == "monthly"}
    assert model.lower() == "topo"  # the reducer names the model as the job does: TOPO
    assert sorted(by_series[f"E_PPT {model}"]) == monthly["E_PPT"] and sorted(by_series[f"E_BIO {model}"]) == monthly["E_BIO"]
    # Each point's mean is the map's mean over the DEM's valid cells, from the COG itself.
    assert by_series["topographic glob_rad"][7] == pytest.approx(cog_mean(results / layer), rel=1e-5)
    e_ppt_07 = next(m["path"] for m in index["maps"] if m["variable"] == "E_PPT" and m.get("month") == 7)
    assert by_series[f"E_PPT {model}"][7] == pytest.approx(cog_mean(results / e_ppt_07), rel=1e-5)
    assert page.locator("#charts polygon.chart-band").count() == 4  # a p10-p90 band per series
    page.locator("#charts").screenshot(path=str(artifacts_dir / "job-page-chart.png"))
    if os.environ.get("EEMT_DOC_IMAGES"):
        for name in ("job-page-map.png", "job-page-chart.png"):
            (DOC_IMAGES / name).write_bytes((artifacts_dir / name).read_bytes())
    assert errors == [], errors
    assert n_tiles > 0
