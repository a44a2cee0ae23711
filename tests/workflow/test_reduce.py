"""The reducer as many tasks: one rule per group of maps, statistics merged from partial sums.

The job: the real 10 m DEM (211 x 228 cells) in 4 tiles of 120 cells, EEMT-TRAD/TOPO on
station normals, one day a month. Its map groups are counted by hand: 12 months of solar
maps, the total (the quick look), the sky view factor, the terrain layers, the year's annual
EEMT maps and its 12 months of EEMT maps: 12 + 1 + 1 + 1 + 1 + 12 = 28.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds

from eemt_flow.workflow.reduce import Stats
from conftest import REPO as _REPO, read_raster, run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from makespan import calibrate, load_rules, parse_workflow, read_makeflow_log, simulate  # noqa: E402
STATION = REPO / "examples" / "station_normals.csv"
ONE_DAY_PER_MONTH = "15,46,74,105,135,166,196,227,258,288,319,349"
MONTHS = [f"{m:02d}" for m in range(1, 13)]
GROUPS = ([f"solar_{mm}" for mm in MONTHS] + ["total", "sky_view", "terrain", "eemt_normals"]
          + [f"eemt_normals_{mm}" for mm in MONTHS])
STATS_RTOL = 1e-9  # the bound for statistics merged from partial sums


def test_partial_sums_merge_to_the_closed_form():
    """Cells 10^6 + k, k = 1..N, in parts of uneven size with nodata: the merged statistics are
    the closed forms, mean 10^6 + (N + 1) / 2 and std sqrt((N^2 - 1) / 12) (the population
    standard deviation of 1..N), although the mean is 10^6 times the spread."""
    n = 100_000
    values = 1e6 + np.arange(1, n + 1, dtype="float64")
    cuts = [0, 1, 7, 4_000, 4_001, 55_555, n]
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        s = Stats()
        s.add(np.concatenate([values[a:b], [np.nan, np.inf]]))  # neither counts as a cell
        parts.append(s.sums())
    parts.append(Stats().sums())  # an empty part (a tile with no valid cell) changes nothing
    got = Stats.from_sums(*json.loads(json.dumps(parts))).as_dict()  # through JSON, as the tasks pass them
    assert got["valid_cells"] == n
    assert (got["min"], got["max"]) == (1e6 + 1, 1e6 + n)
    assert math.isclose(got["mean"], 1e6 + (n + 1) / 2, rel_tol=1e-15)
    assert math.isclose(got["std"], math.sqrt((n * n - 1) / 12), rel_tol=1e-12)  # 28,867.51 cells


@pytest.fixture(scope="module")
def job(tmp_path_factory, mcn_dem):
    work = tmp_path_factory.mktemp("reduce") / "work"
    run_cli("run", "--dem", mcn_dem, "--workdir", work, "--climate", f"station:{STATION}",
            "--station-elevation", "2300", "--model", "trad,topo", "--days", ONE_DAY_PER_MONTH,
            "--step-minutes", "60", "--horizon-step", "30", "--tile-size", "120", "--quiet")
    return work


def rules(workflow: Path) -> list[tuple[str, str, str, str]]:
    """(category, outputs, inputs, command) of every rule."""
    out, category = [], None
    lines = workflow.read_text().splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"\.MAKEFLOW CATEGORY (\S+)", line):
            category = m.group(1)
        elif line.startswith("\t"):
            outputs, inputs = lines[i - 1].split(":", 1)
            out.append((category, outputs.split(), inputs.split(), line.strip()))
    return out


def test_each_group_of_maps_is_its_own_rule(job):
    planned = json.loads((job / "job.json").read_text())
    all_rules = rules(job / "workflow.mf")
    groups = [r for r in all_rules if "task reduce-maps" in r[3]]
    assert [re.search(r"--group (\S+)", r[3]).group(1) for r in groups] == GROUPS
    # on a worker or a core of its own, in its own category; the summary alone runs on the manager
    assert all(r[0] == "reduce-maps" and not r[3].startswith("LOCAL") for r in groups)
    (summary,) = [r for r in all_rules if r[0] == "reduce"]
    assert summary[3] == "LOCAL $(EEMT) task reduce --job job.json"
    assert sorted(summary[1]) == ["results/stac/item.json", "results/summary.json"]
    # every result file is written by exactly one rule, and the summary reads every group's statistics
    written = [f for r in groups for f in r[1] if f.startswith("results/")] + summary[1]
    assert sorted(written) == sorted(planned["results"])
    assert {f"reduce/{g}.json" for g in GROUPS} <= set(summary[2])
    # a month's group reads that month's tile files (and the tiles' DEM for the nodata), nothing else
    (june,) = [r for r in groups if "--group solar_06" in r[3]]
    assert sorted(june[2]) == sorted(["job.json"] + [f for t in planned["tiles"]
                                                     for f in (t["files"]["dem"], t["files"]["solar"]["6"])])
    # the declared disk of a group is bounded by the grid, not by the number of maps of the job
    declared = re.search(r"CATEGORY reduce-maps\n.*\n\.MAKEFLOW MEMORY \d+\n\.MAKEFLOW DISK (\d+)",
                         (job / "workflow.mf").read_text()).group(1)
    grid_mb = 211 * 228 * 4 / 2**20  # 0.18 MB a float32 map
    # the largest group on a local run: the annual EEMT maps, 2 models x (3 maps + 3 QA bands),
    # each as an uncompressed mosaic and a COG: 1000 + 0.18 x 2 x 12 = 1004 MB (the tile files it
    # reads are in the work directory already)
    assert int(declared) == int(1000 + grid_mb * 2 * 12)


def test_summary_statistics_equal_the_whole_maps(job, mcn_dem):
    """Every statistic in summary.json, merged from the groups' partial sums, equals numpy's on
    the whole COG (float64, population std) to 1e-9 relative; the total from the 12 monthly maps."""
    summary = json.loads((job / "results" / "summary.json").read_text())
    results = job / "results"

    def check(stats: dict, values: np.ndarray, what: str) -> None:
        v = values[np.isfinite(values)]
        assert stats["valid_cells"] == v.size, what
        for key, expected in (("min", v.min()), ("max", v.max()), ("mean", v.mean()), ("std", v.std())):
            assert math.isclose(stats[key], expected, rel_tol=STATS_RTOL), (what, key, stats[key], expected)

    monthly = {}
    for mm in MONTHS:
        for var in ("glob_rad", "flat_glob_rad", "insol_time"):
            monthly[mm, var] = read_raster(results / "solar" / "monthly" / f"{var}_{mm}.tif")
            check(summary["months"][mm][var], monthly[mm, var], f"{var}_{mm}")
    total = sum(monthly[mm, "glob_rad"] for mm in MONTHS).astype("float32").astype("float64")
    check(summary["total_glob_rad_wh_m2"], total, "total")
    check(summary["sky_view_factor"], read_raster(results / "terrain" / "sky_view_factor.tif"), "sky view")
    for model in ("TRAD", "TOPO"):
        for q in ("EEMT", "E_PPT", "E_BIO"):
            check(summary["eemt"]["statistics"][model]["normals"][q],
                  read_raster(results / "eemt" / f"{q}_{model}_normals.tif"), f"{q}_{model}")
    # the maps are the DEM's grid, valid where the DEM is (48,016 of its 48,108 cells)
    assert summary["months"]["06"]["glob_rad"]["valid_cells"] == np.isfinite(read_raster(mcn_dem)).sum()


def test_maps_are_the_tiles_cores(job):
    """A month's COG holds each tile's own cells where the tile's core lies on the DEM grid
    (placed by the tiles' transforms: an independent mosaic)."""
    planned = json.loads((job / "job.json").read_text())
    with rasterio.open(job / "results" / "solar" / "monthly" / "glob_rad_03.tif") as cog:
        mosaic = cog.read(1)
        for t in planned["tiles"]:
            with rasterio.open(job / t["files"]["solar"]["3"]) as tile:
                left, top = cog.xy(t["row"], t["col"], offset="ul")
                right, bottom = cog.xy(t["row"] + t["height"] - 1, t["col"] + t["width"] - 1, offset="lr")
                core = from_bounds(left, bottom, right, top, transform=tile.transform)
                values = tile.read(1, window=core.round_offsets().round_lengths())
            np.testing.assert_array_equal(mosaic[t["row"]:t["row"] + t["height"], t["col"]:t["col"] + t["width"]],
                                          values)


def test_makespan_simulator_calibrates_on_the_run_and_reproduces_it(job):
    """benchmarks/makespan.py on this real run (makeflow -T local, 2 jobs at once): its DAG is
    makeflow's own (the log's # PARENTS lines), every rule's duration is in the log, and
    simulated on 1 worker with makeflow's job slots as its cores, with the cost model calibrated from the same log, the
    makespan is within 15 % of the measured wall time."""
    work = job
    rules = parse_workflow(work / "workflow.mf")
    log_text = (work / "workflow.mf.makeflowlog").read_text()
    # makeflow's own DAG (its log's # PARENTS lines) is ours: node ids are the rules in file order
    parents = {}
    for line in log_text.splitlines():
        if line.startswith("# PARENTS"):
            f = line.split("\t")
            parents[int(f[1])] = sorted({int(p) for p in f[2:] if p})
    assert parents == {r.id: r.parents for r in rules}
    log = read_makeflow_log(work / "workflow.mf.makeflowlog")
    assert set(log.durations_s) == {r.id for r in rules}
    assert log.node_categories == {r.id: r.category for r in rules}
    model = calibrate(work)
    assert set(model.categories) == {r.category for r in rules}
    assert all(c.time_s.mean > 0 for c in model.categories.values())
    assert model.categories["reduce"].bytes_out.mean > 0
    # makeflow -j: the job's jobs, or one per core (eemt_flow.workflow.execute)
    slots = json.loads((work / "job.json").read_text())["parameters"].get("jobs") or os.cpu_count()
    res = simulate(load_rules(work), model, 1, slots,
                   dispatch_rate_hz=None, bandwidth_gbps=None, local_on_workers=True)
    assert abs(res.makespan_s - log.wall_s) <= 0.15 * log.wall_s, (res.makespan_s, log.wall_s)


# --- The VRT form: the same job's tile files reduced into VRTs over blocks of 64 cells ---------
# 211 x 228 cells in blocks of 64: level 0 has 4 x 4 blocks, level 1 (106 x 114 pixels of 2 cells)
# 2 x 2, level 2 (53 x 57 pixels of 4 cells) one: three levels, 16 + 4 + 1 = 21 tasks a group.
VRT_BLOCK = 64
VRT_LEVELS = [(211, 228), (106, 114), (53, 57)]


def nanmean_2x2(a: np.ndarray) -> np.ndarray:
    """An independent 2 x 2 mean ignoring NaN (numpy's nanmean on the padded array's 2 x 2 windows)."""
    h, w = a.shape
    padded = np.full((h + h % 2, w + w % 2), np.nan)
    padded[:h, :w] = a
    windows = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).transpose(0, 2, 1, 3)
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        return np.nanmean(windows.reshape(*windows.shape[:2], 4), axis=2)


@pytest.fixture(scope="module")
def vrt_job(job, tmp_path_factory, mcn_dem):
    """The same job planned with --results vrt --results-block 64, its tile files copied from
    the COG run (the same DEM, tiles and parameters: the same files), and its reducer rules run
    in file order through the CLI, each checked to have written what it declares."""
    import shutil

    from click.testing import CliRunner

    from eemt_flow.cli import cli

    work = tmp_path_factory.mktemp("vrt") / "work"
    run_cli("plan", "--dem", mcn_dem, "--workdir", work, "--climate", f"station:{STATION}",
            "--station-elevation", "2300", "--model", "trad,topo", "--days", ONE_DAY_PER_MONTH,
            "--step-minutes", "60", "--horizon-step", "30", "--tile-size", "120", "--quiet",
            "--results", "vrt", "--results-block", str(VRT_BLOCK))
    cog_job, vrt = (json.loads((d / "job.json").read_text()) for d in (job, work))
    assert cog_job["tiles"] == vrt["tiles"]
    for sub in ("tiles", "terrain"):
        shutil.copytree(job / sub, work / sub, dirs_exist_ok=True)
    reducer = [r for r in rules(work / "workflow.mf") if r[0] in ("reduce-maps", "reduce-tree", "reduce")]
    runner, here = CliRunner(), os.getcwd()
    os.chdir(work)
    try:
        for category, outputs, inputs, command in reducer:
            assert all((work / f).exists() for f in inputs), command
            result = runner.invoke(cli, command.removeprefix("LOCAL ").removeprefix("$(EEMT) ").split())
            assert result.exit_code == 0, (command, result.output, result.exception)
            assert all((work / f).exists() for f in outputs), command
    finally:
        os.chdir(here)
    return work, reducer


def test_vrt_form_rules_form_a_tree(vrt_job):
    """Level 0: a task a block and family of groups that read the same tile files (the solar
    maps, the total and the sky view; the terrain; the year's EEMT maps): 3 x 16. Above: a task
    a group and block, 28 x (4 + 1)."""
    work, reducer = vrt_job
    proc = subprocess.run(["makeflow_analyze", "-k", "workflow.mf"], cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Syntax OK" in proc.stdout, proc.stderr  # makeflow's own parser accepts the tree
    planned = json.loads((work / "job.json").read_text())
    assert planned["results_form"] == {"form": "vrt", "block_cells": VRT_BLOCK}
    counts = {c: sum(r[0] == c for r in reducer) for c in ("reduce-maps", "reduce-tree", "reduce")}
    assert counts == {"reduce-maps": 3 * 16, "reduce-tree": 28 * 5, "reduce": 1}
    by_block = {re.search(r"--group (\S+) --block (\S+)", r[3]).groups(): r for r in reducer if r[0] != "reduce"}
    solar = ",".join([f"solar_{mm}" for mm in MONTHS] + ["total", "sky_view"])
    # block (1, 2) of level 0 is rows 64-127, columns 128-191: it meets tiles r0 c1 (rows 0-119,
    # columns 120-227) and r1 c1 (rows 120-210), and reads their DEM, months and sky view once each
    first = by_block[solar, "L0_r001_c002"]
    tiles = [t for t in planned["tiles"] if t["col"] == 120]
    assert sorted(first[2]) == sorted(["job.json"] + [f for t in tiles for f in (
        t["files"]["dem"], t["files"]["sky_view"], *(t["files"]["solar"][str(m)] for m in range(1, 13)))])
    eemt = by_block[",".join(["eemt_normals"] + [f"eemt_normals_{mm}" for mm in MONTHS]), "L0_r001_c002"]
    assert sorted(eemt[2]) == sorted(["job.json"] + [f for t in tiles for f in (t["files"]["dem"], t["files"]["eemt"]["normals"])])
    # a block of level 1 reads the four blocks below it, of each of its group's maps, and their partial sums
    up = by_block["solar_06", "L1_r001_c000"]
    below = ["L0_r002_c000", "L0_r002_c001", "L0_r003_c000", "L0_r003_c001"]
    assert sorted(up[2]) == sorted(["job.json"] + [f"results/solar/monthly/{v}_06/{b}.tif" for v in
                                                    ("glob_rad", "flat_glob_rad", "insol_time") for b in below]
                                   + [f"reduce/solar_06/{b}.json" for b in below])
    # every planned result is written by one rule; no task writes a whole map
    written = [f for r in reducer for f in r[1] if f.startswith("results/") and f.endswith((".vrt", ".png", ".json"))]
    assert set(planned["results"]) <= set(written)
    assert all(f.endswith(".vrt") for f in planned["results"] if "/" in f and f.rsplit(".", 1)[-1] in ("tif", "vrt"))


def test_vrt_form_equals_the_cogs_and_opens_with_the_dems_grid(job, vrt_job, mcn_dem):
    """Every map of the VRT form reads, at full resolution, the very values of the COG form, with
    the DEM's CRS, transform and nodata (NaN; the DEM's own nodata where it has one is NaN in both)."""
    work, _ = vrt_job
    cogs = sorted(p.relative_to(job).as_posix() for p in (job / "results").rglob("*.tif"))
    assert len(cogs) == 97  # 12 x 3 solar, sky view, 4 terrain, 2 x (3 + QA) annual, 12 x 2 x 2 monthly
    with rasterio.open(mcn_dem) as dem:
        crs, transform = dem.crs, dem.transform
    for rel in cogs:
        with rasterio.open(job / rel) as cog, rasterio.open(work / (rel.removesuffix(".tif") + ".vrt")) as vrt:
            assert (vrt.crs, vrt.transform, vrt.width, vrt.height) == (crs, transform, 228, 211), rel
            assert vrt.count == cog.count and vrt.descriptions == cog.descriptions and math.isnan(vrt.nodata), rel
            assert np.array_equal(vrt.read(), cog.read(), equal_nan=True), rel


def test_vrt_overviews_are_the_tree_of_2x2_means(job, vrt_job):
    """The VRT's overviews are its levels 1 and 2, each the NaN-ignoring 2 x 2 mean of the level
    below (checked against numpy's nanmean on the COG), and a decimated read uses them."""
    work, _ = vrt_job
    full = read_raster(job / "results" / "eemt" / "EEMT_TOPO_normals.tif")
    level1 = nanmean_2x2(full)
    level2 = nanmean_2x2(level1.astype("float32").astype("float64"))
    path = work / "results" / "eemt" / "EEMT_TOPO_normals.vrt"
    with rasterio.open(path) as vrt:
        assert vrt.overviews(1) == [2, 4]
        for level, expected in ((1, level1), (2, level2)):
            got = vrt.read(1, out_shape=VRT_LEVELS[level]).astype("float64")
            np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)
    with rasterio.open(path, overview_level=1) as coarse:  # GDAL's OVERVIEW_LEVEL: level 2
        assert (coarse.height, coarse.width) == VRT_LEVELS[2]
        assert coarse.transform.a == 4 * 10.0000000000651
        np.testing.assert_allclose(coarse.read(1), level2, rtol=1e-6, equal_nan=True)


def test_vrt_statistics_equal_the_cog_forms(job, vrt_job):
    """Statistics merged up the tree equal the COG form's (merged over tiles) to 1e-9 relative."""
    work, _ = vrt_job
    a, b = (json.loads((d / "results" / "summary.json").read_text()) for d in (job, work))

    def pairs(x, y, where=""):
        if isinstance(x, dict):
            for k in x:
                yield from pairs(x[k], y[k], f"{where}/{k}")
        elif isinstance(x, float):
            yield where, x, y

    found = list(pairs(a["months"], b["months"])) + list(pairs(a["eemt"]["statistics"], b["eemt"]["statistics"]))
    assert len(found) == 12 * 3 * 4 + 2 * 3 * 4  # min, max, mean, std of 36 solar and 6 EEMT maps
    for where, x, y in found:
        assert math.isclose(x, y, rel_tol=STATS_RTOL), (where, x, y)
    item = json.loads((work / "results" / "stac" / "item.json").read_text())
    asset = item["assets"]["eemt/EEMT_TOPO_normals.vrt"]
    assert asset["href"] == "../eemt/EEMT_TOPO_normals.vrt" and asset["proj:shape"] == [211, 228]
    assert math.isclose(asset["raster:bands"][0]["statistics"]["mean"],
                        a["eemt"]["statistics"]["TOPO"]["normals"]["EEMT"]["mean"], rel_tol=STATS_RTOL)
