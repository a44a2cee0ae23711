"""The web service over real HTTP: a real ``eemt-flow serve`` (uvicorn) subprocess, real jobs.

Jobs are kept tiny (the example DEM, one day, 10° horizon step, 60-cell tiles, 300 m halo;
the EEMT job: a 40 x 40 DEM, one day per month, station normals) so the whole file stays
within a few minutes on two cores.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from prometheus_client.parser import text_string_to_metric_families

from conftest import EEMT, REPO, cli_env, free_port, read_raster, run_cli
from web_server import Server, submit, submit_with_csv, wait_for
from eemt_flow.web.runner import DataDir

FAST = {"days": "172", "tile_size_cells": 60, "halo_m": 300, "horizon_step_deg": 10}
ONE_DAY_PER_MONTH = "15,46,74,105,135,166,196,227,258,288,319,349"
#: A tiny EEMT job: station normals, one day per month (EEMT needs every month), coarse horizons.
EEMT_FAST = {"days": ONE_DAY_PER_MONTH, "horizon_step_deg": 10, "halo_m": 300, "climate": "station",
             "models": ["trad", "topo"], "station_elevation_m": 2300}
STATION_CSV = REPO / "examples" / "station_normals.csv"
FINISHED = {"succeeded", "failed", "cancelled"}


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture(scope="module")
def dem_bytes(example_dem) -> bytes:
    return Path(example_dem).read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("web") / "data", "--max-upload-mb", "1").start()
    yield srv
    srv.stop()


def test_full_job_from_upload_to_geotiff(server, dem_bytes, example_dem, tmp_path):
    with server.client() as client:
        r = submit(client, dem_bytes, FAST)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert r.headers["location"] == f"/api/jobs/{job_id}"

        job = wait_for(client, job_id, lambda j: j["state"] in FINISHED)
        assert job["state"] == "succeeded", job
        assert job["tasks_done"] == job["tasks_total"] > 0
        assert job["parameters"]["days"] == "172"
        names = {r["name"] for r in job["results"]}
        assert {"summary.json", "glob_rad_quicklook.png", "solar/monthly/glob_rad_06.tif"} <= names

        r = client.get(f"/api/jobs/{job_id}/results/solar/monthly/glob_rad_06.tif")
        assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
        tif = tmp_path / "glob_rad_06.tif"
        tif.write_bytes(r.content)
        glob_rad = read_raster(tif)  # Wh m-2, the sum over the one day (172) in June
        valid = np.isfinite(read_raster(example_dem))
        assert glob_rad.shape == valid.shape
        assert np.isfinite(glob_rad[valid]).all()
        assert (glob_rad[valid] > 0).all()
        # One clear June day cannot exceed the extraterrestrial daily total on a sun-facing slope (~12 kWh m-2).
        assert glob_rad[valid].max() < 15_000
        with rasterio.open(tif) as src:
            assert src.crs.to_epsg() == 32613

        png = client.get(job["map_url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")

        r = client.get(f"/api/jobs/{job_id}/results.zip")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert {n.split("/results/", 1)[1] for n in zf.namelist()} == names
            assert zf.testzip() is None

        # A result name is looked up in the job's list, never used as a path.
        for bad in ("..%2F..%2Fjobs.sqlite3", "%2Fetc%2Fpasswd", "../job.json", "solar/monthly/nope.tif"):
            assert client.get(f"/api/jobs/{job_id}/results/{bad}").status_code == 404
        assert client.get("/api/jobs/0123456789abcdef").status_code == 404
        assert client.get("/api/jobs/not-an-id").status_code == 422

        listed = client.get("/api/jobs").json()["jobs"]
        assert [j["id"] for j in listed].count(job_id) == 1
        page = client.get(f"/jobs/{job_id}").text
        assert "glob_rad_quicklook.png" in page and "succeeded" in page

        health = client.get("/health")
        assert health.status_code == 200 and health.json()["database"] == "ok" and health.json()["executor"] == "ok"
        metrics = client.get("/metrics").text
        assert 'eemt_jobs{state="succeeded"}' in metrics
        assert "eemt_running_jobs_tasks_done" in metrics and "eemt_running_jobs_tasks" in metrics
        assert "eemt_workqueue_workers_connected 0.0" in metrics
        # The task counters come from the jobs' Makeflow logs: every task of every job so far
        # (all succeeded, none retried) is counted once, in its category; one reducer per job.
        jobs = client.get("/api/jobs").json()["jobs"]
        assert jobs and all(j["state"] == "succeeded" for j in jobs), jobs
        samples = {(s.name, s.labels.get("category"), s.labels.get("le")): s.value
                   for f in text_string_to_metric_families(metrics) for s in f.samples}
        done = {c: v for (name, c, _), v in samples.items() if name == "eemt_tasks_done_total"}
        assert sum(done.values()) == sum(j["tasks_done"] for j in jobs) == sum(j["tasks_total"] for j in jobs) > 0
        assert done["reduce"] == len(jobs)
        for category, n in done.items():
            assert samples["eemt_task_duration_seconds_count", category, None] == n
            assert samples["eemt_task_duration_seconds_bucket", category, "+Inf"] == n
        assert sum(v for (name, _, _), v in samples.items()
                   if name in ("eemt_tasks_failed_total", "eemt_tasks_retried_total")) == 0
        assert samples["eemt_job_queue_wait_seconds_count", None, None] == len(jobs)
        schema = client.get("/openapi.json").json()
        assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/results.zip", "/health",
                "/metrics"} <= set(schema["paths"])
        assert "JobDetail" in schema["components"]["schemas"]


@pytest.fixture(scope="module")
def small_dem(tmp_path_factory) -> Path:
    """The example DEM at 40 x 40 cells (with its nodata corner)."""
    path = tmp_path_factory.mktemp("small-dem") / "example_dem_40.tif"
    run_cli("example-dem", "--size", "40", path)
    return path


def test_eemt_job_with_station_csv(server, small_dem, tmp_path):
    """EEMT through HTTP: DEM + station normals CSV in, EEMT GeoTIFFs and maps out (the same path as the CLI)."""
    with server.client() as client:
        r = submit_with_csv(client, small_dem.read_bytes(), {**EEMT_FAST, "model_parameters": {"pm_albedo": 0.23}},
                            STATION_CSV.read_bytes(), csv_name="station_normals.csv")
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        # The CSV is kept under a server-generated name beside the DEM upload.
        assert (server.data_dir / "uploads" / f"{job_id}.station.csv").read_bytes() == STATION_CSV.read_bytes()

        job = wait_for(client, job_id, lambda j: j["state"] in FINISHED, timeout_s=300)
        assert job["state"] == "succeeded", job
        params = job["parameters"]
        assert params["climate"] == "station" and params["models"] == ["trad", "topo"]
        assert params["station_elevation_m"] == 2300 and params["days"] == ONE_DAY_PER_MONTH
        assert params["model_parameters"] == {"pm_albedo": 0.23}
        summary = client.get(f"/api/jobs/{job_id}/results/summary.json").json()
        assert summary["eemt"]["model_parameters"]["pm_albedo"] == 0.23  # reached the EEMT tasks' job.json
        names = {r["name"] for r in job["results"]}
        expected = {f"eemt/{q}_{m}_normals.tif" for q in ("EEMT", "E_PPT", "E_BIO") for m in ("TRAD", "TOPO")}
        expected |= {"eemt/EEMT_TRAD_normals.png", "eemt/EEMT_TOPO_normals.png", "terrain/alpha.tif",
                     "eemt/monthly/E_PPT_TOPO_normals_07.tif", "glob_rad_quicklook.png"}
        assert expected <= names, expected - names
        assert {g["name"] for g in job["eemt_geotiffs"]} == {f"eemt/{q}_{m}_normals.tif" for q in ("EEMT", "E_PPT", "E_BIO")
                                                             for m in ("TRAD", "TOPO")}
        maps = {m["name"]: m for m in job["eemt_maps"]}
        assert set(maps) == {"eemt/EEMT_TRAD_normals.png", "eemt/EEMT_TOPO_normals.png"}
        assert "EEMT-TOPO" in maps["eemt/EEMT_TOPO_normals.png"]["title"]

        r = client.get(f"/api/jobs/{job_id}/results/eemt/EEMT_TOPO_normals.tif")
        assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
        tif = tmp_path / "EEMT_TOPO_normals.tif"
        tif.write_bytes(r.content)
        eemt = read_raster(tif)  # MJ m-2 yr-1
        valid = np.isfinite(read_raster(small_dem))
        assert eemt.shape == valid.shape and (~valid).any()
        assert np.isfinite(eemt[valid]).all() and (eemt[valid] >= 0).all() and eemt[valid].max() > 0
        assert np.isnan(eemt[~valid]).all()
        with rasterio.open(tif) as src:
            assert src.crs.to_epsg() == 32613

        png = client.get(maps["eemt/EEMT_TOPO_normals.png"]["url"])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        page = client.get(f"/jobs/{job_id}").text
        assert f'src="/api/jobs/{job_id}/results/eemt/EEMT_TOPO_normals.png"' in page
        assert f'href="/api/jobs/{job_id}/results/eemt/EEMT_TRAD_normals.tif"' in page
        assert "climate station, models trad, topo, station elevation 2300" in page

        r = client.get(f"/api/jobs/{job_id}/results.zip")
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            zipped = {n.split("/results/", 1)[1] for n in zf.namelist()}
        assert zipped == names and expected <= zipped


def test_bad_eemt_requests_get_clear_4xx(server, small_dem):
    data_dir = server.data_dir
    dem = small_dem.read_bytes()
    good_csv = STATION_CSV.read_text()
    lines = good_csv.splitlines()
    assert lines[5].startswith("5,")
    lines[5] = "5,0.5,18.5,-25.0,540"  # May: negative precipitation, on line 6 of the file
    bad_csv = ("\n".join(lines) + "\n").encode()
    with server.client() as client:
        jobs_before = client.get("/api/jobs").json()["jobs"]
        csvs_before = set((data_dir / "uploads").glob("*.csv"))
        cases = [
            (submit_with_csv(client, dem, EEMT_FAST, bad_csv, csv_name="bad-normals.csv"), 400,
             "bad-normals.csv line 6: prcp_mm -25 is negative"),
            (submit_with_csv(client, dem, EEMT_FAST, b"month,tmin_c\n1,2\n"), 400, "normals.csv line 1: missing column"),
            (submit_with_csv(client, dem, EEMT_FAST), 400, "climate_csv"),
            (submit_with_csv(client, dem, EEMT_FAST, b""), 400, "empty"),
            (submit_with_csv(client, dem, EEMT_FAST, b"x" * (1024 * 1024 + 10)), 413, "station CSV"),
            (submit_with_csv(client, dem, EEMT_FAST, good_csv.encode(), csv_name="../../normals.csv"), 400,
             "leaves its directory"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "station_elevation_m": None}, good_csv.encode()), 422,
             "station_elevation_m"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "days": "172"}, good_csv.encode()), 422,
             "days misses month(s) 1, 2, 3"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "models": ["topo-veg"]}, good_csv.encode()), 400,
             "models: topo-veg needs NDVI and canopy-height rasters; upload 'ndvi' and 'canopy_height'"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "models": ["magic"]}, good_csv.encode()), 422, "models.0"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "climate": "grids:/etc"}, good_csv.encode()), 422, "climate"),
            (submit_with_csv(client, dem, {**FAST, "models": ["topo"]}), 422, "EEMT needs a climate"),
            (submit_with_csv(client, dem, FAST, good_csv.encode()), 400, "climate 'station'"),
            (submit_with_csv(client, dem, {**FAST, "climate": "daymet"}), 422, "years"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "climate": "daymet", "station_elevation_m": None,
                                           "years": "1970"}), 422, "before DAYMET begins"),
            (submit_with_csv(client, dem, {**FAST, "cache_dir": "/tmp"}), 422, "cache_dir: unknown parameter"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "model_parameters": {"pm_albedo": 1.5}}, good_csv.encode()),
             422, "model_parameters: pm_albedo = 1.5 is outside the accepted range 0 to 0.95"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "model_parameters": {"hamon_mode": "daily"}},
                             good_csv.encode()), 422, "model_parameters: hamon_mode 'daily' is not available"),
            (submit_with_csv(client, dem, {**FAST, "model_parameters": {"pm_albedo": 0.2}}), 422,
             "model_parameters: EEMT needs a climate"),
            (submit_with_csv(client, dem, {**EEMT_FAST, "radiation": "real"}, good_csv.encode()), 422,
             "radiation: 'real' needs DAYMET's shortwave radiation"),
            (submit_with_csv(client, dem, {**FAST, "model": "eemt-topo", "climate_source": "grids"}), 422, "grids"),
        ]
        for response, status, text in cases:
            assert response.status_code == status, (status, text, response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail and text in detail, (text, detail)
            assert str(data_dir) not in detail  # no server paths in messages
        assert client.get("/api/jobs").json()["jobs"] == jobs_before
        assert not list((data_dir / "uploads").glob(".*.part"))
        assert set((data_dir / "uploads").glob("*.csv")) == csvs_before

        # Clients of earlier versions: model/climate_source "none" still means solar radiation only.
        r = submit(client, dem, {**FAST, "model": "eemt-topo", "climate_source": "none", "years": "2015"})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        try:
            params = client.get(f"/api/jobs/{job_id}").json()["parameters"]
            assert params["climate"] == "none" and params["models"] is None and params["years"] is None
        finally:
            assert client.post(f"/api/jobs/{job_id}/cancel").status_code in (200, 202, 409)


# -- user rasters (NDVI, canopy height, wind speed, NPP) through the API, against the command line ----------

#: The raster jobs: the EEMT_FAST job with the TOPO models on a 16 x 16 DEM (one tile).
RASTER_JOB = {**EEMT_FAST, "models": ["topo", "topo-veg"]}
#: Uniform canopy height [m] of the NDVI + canopy job, and the E_BIO_TOPO_VEG it gives (VZJ 2015 Eq. 12):
#: NPP_VEG = 196 + 36·10 − (0.61·10 − 12.0933)² = 556 − 35.919645 = 520.080355 g m-2 yr-1;
#: E_BIO = 520.080355 / 1000 · 22e6 J = 11.441768 MJ m-2 yr-1 (as in test_eemt_workflow).
CANOPY_HEIGHT_M = 10.0
E_BIO_TOPO_VEG_CANOPY_10 = 11.441768
#: Uniform NPP raster [g m-2 yr-1] and the E_BIO_TOPO it gives: 800 / 1000 · 22 = 17.6 MJ m-2 yr-1.
NPP_G_M2_YR = 800.0
E_BIO_TOPO_NPP_800 = 17.6
#: The wind raster: this speed [m s-1] in the DEM's west half (the reference job's constant
#: wind_speed_m_s), the default 2.0 in its east half.
WIND_WEST_M_S = 4.0
WIND_DEFAULT_M_S = 2.0


def write_raster(path: Path, values, *, crs, transform) -> Path:
    values = np.asarray(values, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", crs=crs, transform=transform) as dst:
        dst.write(values, 1)
    return path


@pytest.fixture(scope="module")
def raster_inputs(tmp_path_factory) -> dict[str, Path]:
    """A 16 x 16 example DEM (UTM 13N, 30 m, a nodata corner) and user rasters on other grids:
    NDVI from 0.2 (west) to 0.8 (east) in geographic coordinates, canopy height and NPP
    uniform on 60 m cells reaching 60 m beyond the DEM, wind on the DEM's own grid (4 / 2 m/s)."""
    from rasterio.transform import from_bounds, from_origin
    from rasterio.warp import transform_bounds

    tmp = tmp_path_factory.mktemp("rasters")
    dem = tmp / "dem16.tif"
    run_cli("example-dem", "--size", "16", dem)
    with rasterio.open(dem) as src:
        left, bottom, right, top = src.bounds
        crs, transform, shape = src.crs, src.transform, src.shape
    w, s, e, n = transform_bounds(crs, "EPSG:4326", left - 100, bottom - 100, right + 100, top + 100)
    ndvi = np.tile(np.linspace(0.2, 0.8, 12), (12, 1))
    coarse = from_origin(left - 60, top + 60, 60, 60)
    n_coarse = int((right - left) / 60) + 2
    wind = np.full(shape, WIND_DEFAULT_M_S)
    wind[:, : shape[1] // 2] = WIND_WEST_M_S
    return {
        "dem": dem,
        "ndvi": write_raster(tmp / "ndvi_wgs84.tif", ndvi, crs="EPSG:4326", transform=from_bounds(w, s, e, n, 12, 12)),
        "canopy_height": write_raster(tmp / "canopy_60m.tif", np.full((n_coarse, n_coarse), CANOPY_HEIGHT_M),
                                      crs=crs, transform=coarse),
        "npp": write_raster(tmp / "npp_60m.tif", np.full((n_coarse, n_coarse), NPP_G_M2_YR), crs=crs, transform=coarse),
        "wind_speed": write_raster(tmp / "wind_halves.tif", wind, crs=crs, transform=transform),
        # NDVI on another grid and CRS that misses the DEM's east half: a valid GeoTIFF, in range
        "ndvi_west_half": write_raster(tmp / "ndvi_west_half.tif", np.full((12, 12), 0.5), crs="EPSG:4326",
                                       transform=from_bounds(w, s, (w + e) / 2, n, 12, 12)),
    }


@pytest.fixture(scope="module")
def raster_reference(raster_inputs, tmp_path_factory):
    """The NDVI + canopy job through the command line and a YAML job file, with the constant
    wind_speed_m_s 4.0; started in the background, so it runs while the web job does."""
    tmp = tmp_path_factory.mktemp("raster-cli")
    job = tmp / "job.yaml"
    job.write_text(f"dem: {raster_inputs['dem']}\nclimate: station:{STATION_CSV}\nstation_elevation: 2300\n"
                   f"model: topo,topo-veg\nndvi: {raster_inputs['ndvi']}\ncanopy_height: {raster_inputs['canopy_height']}\n"
                   f"days: {ONE_DAY_PER_MONTH}\nhorizon_step: 10\nhalo: 300\n"
                   f"model_parameters:\n  wind_speed_m_s: {WIND_WEST_M_S}\n")
    work = tmp / "work"
    proc = subprocess.Popen([EEMT, "run", str(job), "--workdir", str(work), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env())
    done = []

    def results() -> Path:
        if not done:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out
            done.append(work / "results")
        return done[0]

    yield results
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def submit_rasters(client: httpx.Client, raster_inputs: dict, parameters: dict, **fields: str) -> httpx.Response:
    """DEM, station CSV and the rasters ``form field=key of raster_inputs``."""
    files = {"dem": ("dem16.tif", raster_inputs["dem"].read_bytes(), "image/tiff"),
             "climate_csv": ("normals.csv", STATION_CSV.read_bytes(), "text/csv")}
    for field, key in fields.items():
        files[field] = (raster_inputs[key].name, raster_inputs[key].read_bytes(), "image/tiff")
    return client.post("/api/jobs", files=files, data={"parameters": json.dumps(parameters)})


def result_raster(client: httpx.Client, job_id: str, name: str, tmp_path: Path) -> np.ndarray:
    r = client.get(f"/api/jobs/{job_id}/results/{name}")
    assert r.status_code == 200, (name, r.text)
    path = tmp_path / name.replace("/", "_")
    path.write_bytes(r.content)
    return read_raster(path)


def run_web_job(client: httpx.Client, response: httpx.Response) -> tuple[str, dict]:
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    job = wait_for(client, job_id, lambda j: j["state"] in FINISHED, timeout_s=300)
    assert job["state"] == "succeeded", job
    return job_id, job


def test_topo_veg_with_uploaded_ndvi_and_canopy_equals_the_command_line(server, raster_inputs, raster_reference,
                                                                        tmp_path):
    """models topo-veg through HTTP with the NDVI (geographic grid) and canopy-height (60 m) uploads: every
    TOPO and TOPO-VEG map equals the same job run from a YAML job file; E_BIO_TOPO_VEG is hand-computed."""
    with server.client() as client:
        r = submit_rasters(client, raster_inputs, {**RASTER_JOB, "model_parameters": {"wind_speed_m_s": WIND_WEST_M_S}},
                           ndvi="ndvi", canopy_height="canopy_height")
        reference = raster_reference()
        job_id, job = run_web_job(client, r)
        assert job["parameters"]["models"] == ["topo", "topo-veg"]
        assert job["rasters"] == {"ndvi": "ndvi_wgs84.tif", "canopy_height": "canopy_60m.tif"}
        for name in ("ndvi", "canopy_height"):  # kept under server-generated names
            assert (server.data_dir / "uploads" / f"{job_id}.{name}.tif").read_bytes() == raster_inputs[name].read_bytes()
        assert "ndvi ndvi_wgs84.tif, canopy_height canopy_60m.tif" in client.get(f"/jobs/{job_id}").text
        valid = np.isfinite(read_raster(raster_inputs["dem"]))
        assert (~valid).any() and valid.sum() > 100
        for quantity in ("EEMT", "E_PPT", "E_BIO"):
            for model in ("TOPO", "TOPO_VEG"):
                name = f"eemt/{quantity}_{model}_normals.tif"
                web = result_raster(client, job_id, name, tmp_path)
                cli = read_raster(reference / name)
                assert np.isfinite(web[valid]).all() and np.isnan(web[~valid]).all(), name
                np.testing.assert_allclose(web, cli, rtol=1e-6, atol=0, equal_nan=True, err_msg=name)
        e_bio = result_raster(client, job_id, "eemt/E_BIO_TOPO_VEG_normals.tif", tmp_path)
        np.testing.assert_allclose(e_bio[valid], E_BIO_TOPO_VEG_CANOPY_10, rtol=1e-5)
        # NDVI (0.2 west to 0.8 east) reached E_PPT_TOPO_VEG: LAI changes Tmax_veg, hence PET
        e_ppt = result_raster(client, job_id, "eemt/E_PPT_TOPO_VEG_normals.tif", tmp_path)
        e_ppt_topo = result_raster(client, job_id, "eemt/E_PPT_TOPO_normals.tif", tmp_path)
        assert np.abs(e_ppt - e_ppt_topo)[valid].max() > 0.01 * np.abs(e_ppt_topo[valid]).max()


def test_uploaded_wind_and_npp_rasters_reach_topo(server, raster_inputs, raster_reference, tmp_path):
    """models topo through HTTP with a wind raster (4 m/s west, 2 m/s = the default east) and an NPP raster
    (800, 60 m cells): E_BIO_TOPO = 17.6 (hand-computed); E_PPT_TOPO in the west half equals the command-line
    job's with the constant wind_speed_m_s 4.0, in the east half it differs from it (wind matters)."""
    with server.client() as client:
        r = submit_rasters(client, raster_inputs, {**RASTER_JOB, "models": ["topo"]}, wind_speed="wind_speed",
                           npp="npp")
        reference = raster_reference()
        job_id, job = run_web_job(client, r)
        assert job["rasters"] == {"wind_speed": "wind_halves.tif", "npp": "npp_60m.tif"}
        valid = np.isfinite(read_raster(raster_inputs["dem"]))
        e_bio = result_raster(client, job_id, "eemt/E_BIO_TOPO_normals.tif", tmp_path)
        np.testing.assert_allclose(e_bio[valid], E_BIO_TOPO_NPP_800, rtol=1e-5)
        e_ppt = result_raster(client, job_id, "eemt/E_PPT_TOPO_normals.tif", tmp_path)
        constant_4 = read_raster(reference / "eemt/E_PPT_TOPO_normals.tif")
        half = valid.shape[1] // 2
        west, east = (slice(None), slice(None, half)), (slice(None), slice(half, None))
        assert valid[west].sum() > 50 and valid[east].sum() > 50
        np.testing.assert_allclose(e_ppt[west], constant_4[west], rtol=1e-6, atol=0, equal_nan=True)
        differs = np.abs(e_ppt[east] - constant_4[east]) > 0.01 * np.abs(constant_4[east])
        assert differs[valid[east]].all()
        summary = client.get(f"/api/jobs/{job_id}/results/summary.json").json()["eemt"]
        assert summary["wind_speed_raster"].endswith(f"{job_id}.wind_speed.tif")
        assert summary["npp_raster"].endswith(f"{job_id}.npp.tif")


def test_bad_raster_uploads_get_clear_4xx(server, raster_inputs, tmp_path):
    """A missing, stray, unreadable, out-of-range or non-covering raster: one line naming the form field,
    and nothing written (no job, no upload, no work directory)."""
    data_dir = server.data_dir
    with rasterio.open(raster_inputs["ndvi_west_half"]) as src:
        w, s, e_half, n = src.bounds
    e = 2 * e_half - w
    over_dem = rasterio.Affine(200, 0, 362800, 0, -200, 3975200)  # 4 x 4 cells of 200 m around the DEM
    negative = write_raster(tmp_path / "negative_canopy.tif", np.full((4, 4), -3.0), crs="EPSG:32613",
                            transform=over_dem)
    not_tiff = tmp_path / "ndvi.txt"
    not_tiff.write_text("0.5\n" * 100)
    engineering = write_raster(tmp_path / "ndvi_local_grid.tif", np.full((4, 4), 0.5), transform=over_dem,
                               crs=rasterio.crs.CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1],'
                                                             'AXIS["x",EAST],AXIS["y",NORTH]]'))
    all_nodata = write_raster(tmp_path / "canopy_nodata.tif", np.full((4, 4), np.nan), crs="EPSG:32613",
                              transform=over_dem)
    inputs = {**raster_inputs, "negative": negative, "not_tiff": not_tiff, "engineering": engineering,
              "all_nodata": all_nodata}
    with server.client() as client:
        jobs_before = client.get("/api/jobs").json()["jobs"]
        uploads_before = set((data_dir / "uploads").iterdir())
        work_before = set((data_dir / "jobs").iterdir())
        cases = [
            ({"ndvi": "ndvi"}, RASTER_JOB, 400,
             "models: topo-veg needs NDVI and canopy-height rasters; upload 'canopy_height'"),
            ({}, {**RASTER_JOB, "models": ["topo-veg"]}, 400, "upload 'ndvi' and 'canopy_height'"),
            ({"ndvi": "ndvi_west_half", "canopy_height": "canopy_height"}, RASTER_JOB, 400,
             f"ndvi: NDVI (ndvi_west_half.tif): the grid covers x {w:.4f}..{(w + e) / 2:.4f}, y {s:.4f}..{n:.4f} "
             "but the DEM spans x "),
            ({"ndvi": "engineering", "canopy_height": "canopy_height"}, RASTER_JOB, 400,
             "ndvi: NDVI (ndvi_local_grid.tif): PROJ knows no transformation from the DEM's CRS (EPSG:32613) to the "
             "grid's (LOCAL_CS["),
            ({"ndvi": "ndvi", "canopy_height": "all_nodata"}, RASTER_JOB, 400,
             "canopy_height: canopy_nodata.tif: canopy height holds no values (every cell is nodata)"),
            ({"ndvi": "not_tiff", "canopy_height": "canopy_height"}, RASTER_JOB, 400,
             "ndvi: ndvi.txt: NDVI is not a raster GDAL can read"),
            ({"ndvi": "ndvi", "canopy_height": "negative"}, RASTER_JOB, 400,
             "canopy_height: negative_canopy.tif: canopy height values span -3 to -3, outside [0.0, inf]"),
            ({"wind_speed": "negative"}, {**RASTER_JOB, "models": ["topo"]}, 400,
             "wind_speed: negative_canopy.tif: wind speed (m/s) values span -3 to -3, outside [0.1, 50.0]"),
            ({"ndvi": "ndvi", "canopy_height": "canopy_height"}, {**RASTER_JOB, "models": ["topo"]}, 400,
             "canopy_height: this raster is used only by the model(s) topo-veg"),
            ({"npp": "npp"}, {**RASTER_JOB, "models": ["trad"]}, 400, "npp: this raster is used only by the model(s) topo"),
        ]
        for fields, parameters, status, text in cases:
            r = submit_rasters(client, inputs, parameters, **fields)
            assert r.status_code == status, (text, r.text)
            detail = r.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail and text in detail, (text, detail)
            assert str(data_dir) not in detail and ".part" not in detail
        files = {"dem": ("dem16.tif", raster_inputs["dem"].read_bytes(), "image/tiff"),
                 "ndvi": ("ndvi.tif", raster_inputs["ndvi"].read_bytes(), "image/tiff")}
        r = client.post("/api/jobs", files=files, data={"parameters": json.dumps(FAST)})
        assert r.status_code == 400 and r.json()["detail"].startswith("ndvi: the rasters are used only by EEMT"), r.text
        files["ndvi"] = ("ndvi.tif", b"", "image/tiff")
        r = client.post("/api/jobs", files=files, data={"parameters": json.dumps(RASTER_JOB)})
        assert r.status_code == 400 and r.json()["detail"] == ("ndvi: ndvi.tif: the file is empty; upload the NDVI "
                                                               "raster as a GeoTIFF"), r.text
        r = client.post("/api/jobs", files={**files, "canopy_height": ("h.tif", os.urandom(1536 * 1024))},
                        data={"parameters": json.dumps(RASTER_JOB)})
        assert r.status_code == 413 and "the canopy height raster ('canopy_height') is over the limit of 1 MiB" in r.text
        assert client.get("/api/jobs").json()["jobs"] == jobs_before
        assert set((data_dir / "uploads").iterdir()) == uploads_before
        assert set((data_dir / "jobs").iterdir()) == work_before


def test_restart_fails_a_queued_job_whose_raster_is_gone(tmp_path):
    """A queued job keeps its rasters under uploads/<id>.<field>.tif; when one is gone at start-up, the job
    fails with a line naming it instead of running without it (real SQLite store, the runner's recovery)."""
    from eemt_flow.web.runner import ExecutorSettings, Runner
    from eemt_flow.web.store import JobStore

    data = DataDir.create(tmp_path / "data")
    store = JobStore(data.database)
    store.init()
    parameters = {**RASTER_JOB, "rasters": {"ndvi": "ndvi.tif", "canopy_height": "h.tif"}}
    for job_id in ("0123456789abcdef", "fedcba9876543210"):
        store.create(job_id, "dem.tif", parameters)
        data.upload_of(job_id).write_bytes(b"dem")
        data.climate_csv_of(job_id).write_bytes(b"csv")
        data.raster_of(job_id, "ndvi").write_bytes(b"ndvi")
    data.raster_of("fedcba9876543210", "canopy_height").write_bytes(b"h")
    Runner(store, data, ExecutorSettings(), keep_succeeded_days=30, keep_failed_days=30).recover()
    gone = store.get("0123456789abcdef")
    assert gone.state == "failed"
    assert gone.error == "the server stopped and the uploaded raster(s) canopy_height are gone; submit the job again"
    assert store.get("fedcba9876543210").state == "queued"
    # DELETE and retention remove a job's rasters with its other files
    data.remove_job_files("fedcba9876543210")
    assert sorted(p.name for p in data.uploads.iterdir()) == ["0123456789abcdef.ndvi.tif", "0123456789abcdef.station.csv",
                                                             "0123456789abcdef.tif"]


def _geotiff_bytes(tmp_path: Path, *, crs) -> bytes:
    path = tmp_path / "nocrs.tif"
    data = np.linspace(100, 200, 32 * 32, dtype="float32").reshape(32, 32)
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="float32", crs=crs,
                       transform=rasterio.Affine(30, 0, 500000, 0, -30, 4000000)) as dst:
        dst.write(data, 1)
    return path.read_bytes()


def test_bad_uploads_get_clear_4xx(server, dem_bytes, tmp_path):
    data_dir = server.data_dir
    no_crs = _geotiff_bytes(tmp_path, crs=None)
    outside_before = files_under(data_dir.parent.parent)
    with server.client() as client:
        jobs_before = client.get("/api/jobs").json()["jobs"]
        cases = [
            (submit(client, b"this is not a raster\n" * 50, FAST), 400, "not a raster"),
            (submit(client, b"", FAST), 400, "empty"),
            (submit(client, os.urandom(1536 * 1024), FAST), 413, "limit of 1 MiB"),
            (submit(client, no_crs, FAST), 400, "no coordinate reference system"),
            (submit(client, dem_bytes, FAST, filename="../../etc/passwd.tif"), 400, "leaves its directory"),
            (submit(client, dem_bytes, {"days": "400"}), 422, "days"),
            (submit(client, dem_bytes, {**FAST, "step_minutes": 90}), 422, "step_minutes"),
            (submit(client, dem_bytes, {**FAST, "workdir": "/etc"}), 422, "workdir: unknown parameter"),
            (submit(client, dem_bytes, {**FAST, "model": "magic"}), 422, "model"),
            (submit(client, dem_bytes, "{not json"), 422, "not valid JSON"),
            (client.post("/api/jobs", data={"parameters": json.dumps(FAST)}, files={"other": ("x", b"x")}), 400, "'dem'"),
            (client.post("/api/jobs", json=FAST), 415, "multipart/form-data"),
        ]
        for response, status, text in cases:
            assert response.status_code == status, (status, text, response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str) and text in detail, (text, detail)
            assert str(data_dir) not in detail  # no server paths in messages
        # Nothing was queued and nothing was left behind: no job, no upload, nothing outside the data dir.
        assert client.get("/api/jobs").json()["jobs"] == jobs_before
        assert not list((data_dir / "uploads").glob(".*.part"))
        created_outside = {p for p in files_under(data_dir.parent.parent) - outside_before
                           if data_dir not in p.parents and not p.name.endswith("-server.log")}
        assert created_outside == set(), created_outside
        assert not list(data_dir.parent.parent.rglob("passwd.tif"))

        # A file name with markup is stored as text and escaped in the HTML page.
        evil = "<script>alert(1)</script>.tif"
        r = submit(client, dem_bytes, FAST, filename=evil)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        try:
            assert client.get(f"/api/jobs/{job_id}").json()["filename"] == evil
            for url in (f"/jobs/{job_id}", "/jobs", "/"):
                html = client.get(url).text
                assert "&lt;script&gt;alert(1)&lt;/script&gt;.tif" in html, url
                assert "<script>alert(1)" not in html, url
            assert not list(data_dir.parent.parent.rglob("*alert*"))
        finally:
            assert client.post(f"/api/jobs/{job_id}/cancel").status_code in (200, 202, 409)


def test_no_token_needed_when_unset(server, dem_bytes):
    with server.client() as client:
        r = submit(client, dem_bytes, FAST)
        assert r.status_code == 201
        assert client.post(f"/api/jobs/{r.json()['id']}/cancel").status_code in (200, 202)
        wait_for(client, r.json()["id"], lambda j: j["state"] in FINISHED, timeout_s=120)
        assert client.delete(f"/api/jobs/{r.json()['id']}").status_code == 204
        assert client.get(f"/api/jobs/{r.json()['id']}").status_code == 404


def test_second_server_on_same_data_dir_is_refused(server):
    proc = run_cli("serve", "--port", free_port(), "--data-dir", server.data_dir, check=False, timeout=60)
    assert proc.returncode == 2
    assert "in use by another eemt-flow serve" in proc.stderr


def test_job_file_removal_stays_inside_the_data_dir(tmp_path):
    """Retention and DELETE remove jobs/<id> and uploads/<id>.tif only; a link pointing outside is unlinked, not followed."""
    data = DataDir.create(tmp_path / "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    (data.jobs / "0123456789abcdef").symlink_to(outside, target_is_directory=True)
    data.upload_of("0123456789abcdef").symlink_to(outside / "precious.txt")
    (data.jobs / "fedcba9876543210" / "results").mkdir(parents=True)
    data.upload_of("fedcba9876543210").write_bytes(b"dem")
    data.remove_job_files("0123456789abcdef")
    data.remove_job_files("fedcba9876543210")
    data.remove_job_files("../outside")
    assert (outside / "precious.txt").read_text() == "keep me"
    assert list(data.jobs.iterdir()) == [] and list(data.uploads.iterdir()) == []


def test_token_required_when_set(tmp_path, dem_bytes):
    token = "s3cret-token-for-tests"
    srv = Server(tmp_path / "data", env={"EEMT_API_TOKEN": token}).start()
    good = {"Authorization": f"Bearer {token}"}
    try:
        with srv.client() as client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                r = submit(client, dem_bytes, FAST, headers=headers)
                assert r.status_code == 401, r.text
                assert "token" in r.json()["detail"]
            assert client.get("/api/jobs").json()["jobs"] == []
            r = submit(client, dem_bytes, FAST, headers=good)
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            assert client.get(f"/api/jobs/{job_id}").status_code == 200  # reading needs no token
            assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 401
            assert client.post(f"/api/jobs/{job_id}/cancel", headers=good).status_code in (200, 202)
            wait_for(client, job_id, lambda j: j["state"] in FINISHED, timeout_s=120)
            assert client.delete(f"/api/jobs/{job_id}").status_code == 401
            assert client.delete(f"/api/jobs/{job_id}", headers=good).status_code == 204
    finally:
        srv.stop()


def test_server_restarted_mid_job_resumes(tmp_path, dem_bytes):
    """SIGTERM stops makeflow cleanly and leaves the job queued; SIGKILL leaves it 'running' with an
    orphan makeflow. Either way the next start resumes it from the Makeflow log."""
    data_dir = tmp_path / "data"
    srv = Server(data_dir).start()
    try:
        with srv.client() as client:
            job_id = submit(client, dem_bytes, FAST).json()["id"]
            wait_for(client, job_id, lambda j: j["state"] == "running" and j["tasks_done"] >= 1)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status still says why it stopped.
        assert srv.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in srv.log()
        with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
            state, note = db.execute("SELECT state, note FROM jobs WHERE id = ?", (job_id,)).fetchone()
        assert state == "queued" and "interrupted by server shutdown" in note
        assert "# ABORTED" in (data_dir / "jobs" / job_id / "workflow.mf.makeflowlog").read_text()

        srv.start()
        with srv.client() as client:
            wait_for(client, job_id, lambda j: j["state"] == "running")
        srv.stop(signal.SIGKILL)

        srv.start()
        with srv.client() as client:
            job = wait_for(client, job_id, lambda j: j["state"] in FINISHED)
            assert job["state"] == "succeeded" or (job["state"] == "failed" and job["error"]), job
            assert job["state"] == "succeeded", job  # resumed, not redone from scratch
            assert "resum" in (job["note"] or "")
            assert "recovering from log file" in job["log_tail"]
            assert client.get(f"/api/jobs/{job_id}/results/solar/monthly/glob_rad_06.tif").status_code == 200
            assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == [job_id]
    finally:
        srv.stop()


def test_concurrent_submissions_are_neither_lost_nor_duplicated(tmp_path, dem_bytes):
    data_dir = tmp_path / "data"
    srv = Server(data_dir, "--keep-failed-days", "0").start()
    n = 20
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one():
        with srv.client() as client:
            barrier.wait()
            r = submit(client, dem_bytes, FAST)
        with lock:
            responses.append(r)

    try:
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(responses) == n
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == n
        with srv.client() as client:
            listed = [j["id"] for j in client.get("/api/jobs").json()["jobs"]]
            assert sorted(listed) == sorted(ids)
            assert sum(j["state"] == "running" for j in client.get("/api/jobs").json()["jobs"]) <= 1
            metrics = client.get("/metrics").text
            assert 'eemt_jobs{state="queued"}' in metrics
            for job_id in listed:  # newest first, so the runner does not start the ones about to be cancelled
                assert client.post(f"/api/jobs/{job_id}/cancel").status_code in (200, 202)
            for job_id in ids:
                wait_for(client, job_id, lambda j: j["state"] == "cancelled", timeout_s=120)
        # Cancelled jobs are removed at the next start-up with --keep-failed-days 0; rows stay.
        srv.stop()
        assert {p.name for p in (data_dir / "uploads").iterdir()} == {f"{i}.tif" for i in ids}
        srv.start()
        with srv.client() as client:
            jobs = client.get("/api/jobs").json()["jobs"]
            assert len(jobs) == n
            assert all(client.get(f"/api/jobs/{i}").json()["files_removed"] for i in ids)
        assert list((data_dir / "uploads").iterdir()) == []
        assert list((data_dir / "jobs").iterdir()) == []
    finally:
        srv.stop()


def test_work_queue_executor_and_worker_metric(tmp_path, dem_bytes):
    """--executor wq: the job's makeflow is a Work Queue manager; /metrics counts the connected worker."""
    password = tmp_path / "wq.password"
    password.write_text(os.urandom(16).hex() + "\n")
    wq_port = free_port()
    srv = Server(tmp_path / "data", "--executor", "wq", "--wq-port", str(wq_port), "--password-file", password).start()
    worker = None
    try:
        with srv.client() as client:
            assert "eemt_workqueue_workers_connected 0.0" in client.get("/metrics").text
            job_id = submit(client, dem_bytes, FAST).json()["id"]
            wait_for(client, job_id, lambda j: j["state"] == "running" and j["tasks_total"] > 0, timeout_s=60)
            (tmp_path / "w").mkdir()
            with open(tmp_path / "worker.log", "w") as log:
                worker = subprocess.Popen([EEMT, "worker", f"127.0.0.1:{wq_port}", "--password-file", str(password),
                                           "--cores", "2", "--idle-timeout", "60", "--workdir", str(tmp_path / "w")],
                                          stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while "eemt_workqueue_workers_connected 1.0" not in client.get("/metrics").text:
                assert time.monotonic() < deadline, client.get("/metrics").text
                time.sleep(0.5)
            job = wait_for(client, job_id, lambda j: j["state"] in FINISHED)
            assert job["state"] == "succeeded", job
            assert "-T wq" in job["log_tail"]
            assert client.get(f"/api/jobs/{job_id}/results/solar/monthly/glob_rad_06.tif").status_code == 200
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        srv.stop()
