"""A real ``eemt-flow serve`` for tests: a uvicorn subprocess on 127.0.0.1, and the job calls
the web, browser, fuzz and interrupt tests make against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from conftest import EEMT, free_port

#: The paths of the served OpenAPI schema and the methods served there (FastAPI's routes serve only
#: the methods they declare: no HEAD).
API_METHODS = {
    "/api/jobs": {"GET", "POST"},
    "/api/jobs/{job_id}": {"GET", "DELETE"},
    "/api/jobs/{job_id}/cancel": {"POST"},
    "/api/jobs/{job_id}/results.zip": {"GET"},
    "/api/jobs/{job_id}/stac": {"GET"},
    "/api/jobs/{job_id}/results/{name}": {"GET"},
    "/api/jobs/{job_id}/maps": {"GET"},
    "/api/jobs/{job_id}/tiles/{z}/{x}/{y}.png": {"GET"},
    "/api/jobs/{job_id}/point": {"GET"},
    "/health": {"GET"},
    "/metrics": {"GET"},
}


class Server:
    """``eemt-flow serve`` on 127.0.0.1 and a free port, over ``data_dir``."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.args = [str(a) for a in args]
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self, timeout_s: float = 60.0) -> "Server":
        env = dict(os.environ)
        env.pop("EEMT_API_TOKEN", None)
        env["PATH"] = str(Path(EEMT).parent) + os.pathsep + env.get("PATH", "")
        env.update(self.env)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([EEMT, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                                          *self.args], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited {self.proc.returncode}:\n{self.log()}"
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"server did not come up in {timeout_s} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 180.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"server did not stop within {timeout_s} s of signal {sig}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kw)


def submit(client: httpx.Client, dem_bytes: bytes, parameters: dict | str | None = None, *,
           filename: str = "dem.tif", headers: dict | None = None) -> httpx.Response:
    data = {}
    if parameters is not None:
        data["parameters"] = parameters if isinstance(parameters, str) else json.dumps(parameters)
    return client.post("/api/jobs", files={"dem": (filename, dem_bytes, "image/tiff")}, data=data,
                       headers=headers or {})


def submit_with_csv(client: httpx.Client, dem_bytes: bytes, parameters: dict, csv: bytes | None = None, *,
                    csv_name: str = "normals.csv") -> httpx.Response:
    files = {"dem": ("dem.tif", dem_bytes, "image/tiff")}
    if csv is not None:
        files["climate_csv"] = (csv_name, csv, "text/csv")
    return client.post("/api/jobs", files=files, data={"parameters": json.dumps(parameters)})


def wait_for(client: httpx.Client, job_id: str, predicate, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    job = None
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach the expected state in {timeout_s} s: {job}")
