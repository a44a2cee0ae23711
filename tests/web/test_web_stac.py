"""GET /api/jobs/{id}/stac over real HTTP: a STAC Item whose asset hrefs download the result files."""

from __future__ import annotations

from pathlib import Path

import pystac
import pytest

from web_server import Server, submit, wait_for
from eemt_flow.web.runner import DataDir

FAST = {"days": "172", "tile_size_cells": 60, "halo_m": 300, "horizon_step_deg": 30}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("web") / "data").start()
    yield srv
    srv.stop()


def test_stac_item_hrefs_download_the_results(server, example_dem):
    with server.client() as client:
        r = submit(client, Path(example_dem).read_bytes(), FAST)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        missing = client.get(f"/api/jobs/{job_id}/stac")   # queued or running: no results yet
        job = wait_for(client, job_id, lambda j: j["state"] in {"succeeded", "failed", "cancelled"})
        assert job["state"] == "succeeded", job
        r = client.get(f"/api/jobs/{job_id}/stac")
        assert r.status_code == 200, r.text
        item = pystac.Item.from_dict(r.json())
        assert item.get_self_href() == f"{server.url}/api/jobs/{job_id}/stac"
        key = "solar/monthly/glob_rad_06.tif"
        href = item.assets[key].href
        assert href == f"{server.url}/api/jobs/{job_id}/results/{key}"
        got = client.get(href)
        assert got.status_code == 200
        results = DataDir(server.data_dir).workdir_of(job_id) / "results"
        assert got.content == (results / key).read_bytes()
        summary = client.get(item.assets["summary"].href)
        assert summary.content == (results / "summary.json").read_bytes()
    if missing.status_code != 200:   # the job may already have finished (it is tiny)
        assert missing.status_code == 404 and missing.json()["detail"] == f"job {job_id} has no results"
