"""The web pages in a real browser: Debian's headless Chromium driven by Playwright.

Submits the example DEM through the upload form, watches the job page show progress and
then the result map, and saves a screenshot to test-artifacts/web_job.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO
from web_server import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed: run scripts/bootstrap.sh (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_submit_through_form_and_see_the_map(browser, example_dem, tmp_path, artifacts_dir):
    srv = Server(tmp_path / "data").start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(srv.url + "/")
        assert "solar radiation only" in page.inner_text("form")  # without a climate

        page.set_input_files("#dem", str(example_dem))
        page.fill("#days", "172")
        page.fill("#step_minutes", "15")
        # The EEMT options appear with a climate; the server names what a station climate lacks.
        assert not page.is_visible("#models-topo")
        page.select_option("#climate", "station")
        assert page.is_checked("#models-trad") and page.is_checked("#models-topo")
        assert page.is_visible("#climate_csv") and not page.is_visible("#years")
        page.uncheck("#models-trad")
        page.fill("#station_elevation_m", "2300")
        page.click("#submit")
        page.wait_for_selector("#form-error:not([hidden])", timeout=30_000)
        assert "climate_csv" in page.inner_text("#form-error")
        # EEMT-TOPO-VEG takes its NDVI and canopy-height rasters from the form's file inputs; without them
        # the server names the missing fields.
        page.set_input_files("#climate_csv", str(REPO / "examples" / "station_normals.csv"))
        assert page.is_visible("#ndvi") and page.is_visible("#canopy_height") and page.is_visible("#wind_speed")
        page.check("#models-topo-veg")
        page.click("#submit")
        page.wait_for_function("() => document.getElementById('form-error').textContent.includes('topo-veg')",
                               timeout=30_000)
        assert "upload 'ndvi' and 'canopy_height'" in page.inner_text("#form-error")
        page.uncheck("#models-topo-veg")
        page.select_option("#climate", "daymet")
        assert page.is_visible("#years") and not page.is_visible("#climate_csv")
        page.select_option("#climate", "none")  # this job: solar radiation only (EEMT is tested in test_web_api)
        page.click("summary")  # open "Advanced"
        page.fill("#tile_size_cells", "60")
        page.fill("#halo_m", "300")
        page.fill("#horizon_step_deg", "10")
        page.click("#submit")

        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{16}$"), timeout=30_000)
        job_id = page.url.rsplit("/", 1)[1]
        # Live progress: the page's own polling moves the task counter while makeflow runs.
        page.wait_for_function(
            "() => { const t = document.getElementById('job-tasks').textContent.split('/');"
            " return Number(t[1]) > 0 && Number(t[0]) >= 1; }", timeout=120_000)
        assert page.inner_text("#job-state") in ("running", "succeeded")
        page.wait_for_function("() => document.getElementById('log').textContent.includes('makeflow')",
                               timeout=30_000)

        page.wait_for_function("() => document.getElementById('job-state').textContent !== 'running'"
                               " && document.getElementById('job-state').textContent !== 'queued'",
                               timeout=240_000)
        assert page.inner_text("#job-state") == "succeeded", page.inner_text("#job-error")
        page.wait_for_function("() => { const m = document.getElementById('map');"
                               " return m.complete && m.naturalWidth > 0; }", timeout=30_000)
        assert page.evaluate("document.getElementById('map').naturalWidth") > 0
        assert page.is_visible("#map")
        links = page.eval_on_selector_all("#result-list a", "els => els.map(e => e.textContent)")
        assert "solar/monthly/glob_rad_06.tif" in links
        assert page.get_attribute("#zip", "href") == f"/api/jobs/{job_id}/results.zip"
        assert "climate none" in page.inner_text("#job")
        page.screenshot(path=str(artifacts_dir / "web_job.png"), full_page=True)

        page.goto(srv.url + "/jobs")
        assert job_id in page.inner_text("table.jobs")
        assert errors == []
    finally:
        srv.stop()
