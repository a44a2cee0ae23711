"""Shared fixtures: real DEMs, the real eemt-flow command, raster comparisons."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EEMT = str(Path(sys.executable).parent / "eemt-flow")


def cli_env() -> dict:
    """The environment for the real ``eemt-flow``: this interpreter's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_cli(*args, cwd=None, check=True, timeout=900, env=None) -> subprocess.CompletedProcess:
    """Run the real ``eemt-flow`` console script."""
    full_env = cli_env()
    full_env.update(env or {})
    proc = subprocess.run([EEMT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"eemt-flow {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_raster(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype("float64").filled(np.nan)


def relative_difference(a: np.ndarray, b: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """|a - b| / |b| on cells valid in both (b is the reference)."""
    ok = np.isfinite(a) & np.isfinite(b)
    return np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor)


def rerun_in_strips(work: Path, paths: list[str], task) -> dict[str, tuple[np.ndarray, np.ndarray, tuple, tuple]]:
    """Run ``task()`` in the finished job ``work`` again (a tile task, now in strips), with the
    files ``paths`` (relative to ``work``) it rewrites moved aside; restore them. Returns per
    path (the job's bands, the rerun's bands, the job's band descriptions, the rerun's)."""
    saved = {p: work / (p + ".job") for p in paths}
    for p, aside in saved.items():
        (work / p).rename(aside)
    cwd = os.getcwd()
    try:
        os.chdir(work)
        task()
        out = {}
        for p, aside in saved.items():
            with rasterio.open(aside) as a, rasterio.open(work / p) as b:
                out[p] = (a.read(), b.read(), a.descriptions, b.descriptions)
        return out
    finally:
        os.chdir(cwd)
        for p, aside in saved.items():
            aside.replace(work / p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mcn_dem() -> Path:
    path = SHARED_DATA / "mcn_10m.tif"
    if not path.exists():
        pytest.fail(f"{path} is missing: the real 10 m test DEM lives in ../shared/data")
    return path


@pytest.fixture(scope="session")
def texas_dem() -> Path:
    path = SHARED_DATA / "dem_4326_texas.tif"
    if not path.exists():
        pytest.fail(f"{path} is missing: the real test DEMs live in ../shared/data")
    return path


@pytest.fixture(scope="session")
def example_dem(tmp_path_factory) -> Path:
    """The built-in example DEM, written by the real command."""
    path = tmp_path_factory.mktemp("example") / "example_dem.tif"
    run_cli("example-dem", path)
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def require_tools():
    for tool in ("grass", "makeflow", "work_queue_worker"):
        assert shutil.which(tool) or os.path.exists(f"/usr/bin/{tool}"), f"{tool} missing: run scripts/bootstrap.sh"
