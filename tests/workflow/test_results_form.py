"""The form of the results (--results cog|vrt|auto) as planned: above 10^8 cells the reducer is a
tree of tasks over blocks, and what each of them declares does not grow with the DEM.

The DEMs are VRTs that repeat one 1,000 x 1,000 synthetic GeoTIFF (with overviews, cached), so a
DEM of 2.5 x 10^9 or 10^10 cells is planned in seconds (above 2 x 10^9 cells the planner scans a
decimated read).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from scale import CACHE, repeated_vrt, write_synthetic  # noqa: E402

# a solar-only job of one day: its map groups are the month's solar maps, the total and the sky view,
# one family (they read the same tile files: their blocks of level 0 are one task each)
JOB = ["--days", "172", "--tile-size", "2000", "--halo", "500", "--executor", "wq", "--quiet"]
N_GROUPS = 3


@pytest.fixture(scope="module")
def source():
    return write_synthetic(CACHE / "tile_1000_10m.tif", 1000, 10.0, 300.0, overviews=True)


def planned(tmp_path: Path, source: Path, repeats: int, *extra: str) -> tuple[dict, str]:
    dem = repeated_vrt(tmp_path / f"dem_{repeats}.vrt", source, repeats)
    work = tmp_path / f"work_{repeats}_{'_'.join(extra) or 'auto'}"
    run_cli("plan", "--dem", dem, "--workdir", work, "--max-cells", str(10**10), *JOB, *extra)
    return json.loads((work / "job.json").read_text()), (work / "workflow.mf").read_text()


def declared(workflow: str) -> dict[str, tuple[int, int]]:
    """(memory MB, disk MB) each category declares."""
    return {c: (int(m), int(d)) for c, m, d in re.findall(
        r"^\.MAKEFLOW CATEGORY (\S+)\n\.MAKEFLOW CORES \d+\n\.MAKEFLOW MEMORY (\d+)\n\.MAKEFLOW DISK (\d+)$",
        workflow, re.M)}


def commands(workflow: str, category: str) -> list[str]:
    out, current = [], None
    for line in workflow.splitlines():
        if line.startswith(".MAKEFLOW CATEGORY "):
            current = line.split()[2]
        elif line.startswith("\t") and current == category:
            out.append(line.strip())
    return out


def test_auto_is_the_vrt_form_above_1e8_cells_and_its_tasks_do_not_grow(tmp_path, source):
    """50,000^2 = 2.5 x 10^9 cells: blocks of 8,000 (the multiple of the tile size nearest 8,192):
    7 x 7 blocks at level 0 (a task each for the family), then 25,000^2 pixels of 2 cells in 4 x 4
    blocks, 12,500^2 in 2 x 2, 6,250^2 in one: 16 + 4 + 1 tasks a group. 100,000^2: 13 x 13
    blocks, then 7 x 7, 4 x 4, 2 x 2, 1: 49 + 16 + 4 + 1 = 70 tasks a group. The reducer's
    declarations are the same for both, while the COG form's disk grows with the DEM."""
    small, small_mf = planned(tmp_path, source, 50)
    large, large_mf = planned(tmp_path, source, 100)
    for job in (small, large):
        assert job["results_form"] == {"form": "vrt", "block_cells": 8000}
        assert all(f.endswith(".vrt") for f in job["results"] if f.startswith("results/solar/"))
    assert len(commands(small_mf, "reduce-maps")) == 49
    assert len(commands(small_mf, "reduce-tree")) == N_GROUPS * 21
    assert len(commands(large_mf, "reduce-maps")) == 169
    assert len(commands(large_mf, "reduce-tree")) == N_GROUPS * 70
    assert any(c.endswith("--group solar_06 --block L4_r000_c000") for c in commands(large_mf, "reduce-tree"))
    a, b = declared(small_mf), declared(large_mf)
    for category in ("reduce-maps", "reduce-tree"):
        assert a[category] == b[category], category
    # reduce-tree: 500 MB and 6 float32 copies of a 8,000^2 block band (244 MiB): 500 + 1,464
    assert a["reduce-tree"][0] == int(500 + 8000 * 8000 * 4 / 2**20 * 6) == 1964
    cog_small, cog_large = (declared(planned(tmp_path, source, n, "--results", "cog")[1]) for n in (50, 100))
    assert cog_large["reduce-maps"][1] > 3 * cog_small["reduce-maps"][1]


def test_small_dems_keep_single_cogs(tmp_path, source):
    job, workflow = planned(tmp_path, source, 2)
    assert job["results_form"] == {"form": "cog"}
    assert "reduce-tree" not in workflow
    assert "results/solar/monthly/glob_rad_06.tif" in job["results"]


def test_a_bad_block_is_refused_in_one_line(tmp_path, example_dem):
    proc = run_cli("plan", "--dem", example_dem, "--workdir", tmp_path / "w", "--results", "vrt",
                   "--results-block", "15", check=False)
    assert proc.returncode != 0 and not (tmp_path / "w").exists()
    assert proc.stderr.strip().splitlines() == [
        "Error: --results-block: the VRT form's block edge must be an even number of cells, at least 16"]
