"""The reducer: crop halos, mosaic tiles onto the DEM grid, write COGs, summary.json and PNGs.

The maps are written in groups (a month's solar maps, a year's annual EEMT maps, a month's
EEMT maps, ...: :func:`map_groups`), each its own task (``eemt-flow task reduce-maps``), so
the groups are written in parallel, on workers or on a machine's cores, and each task's
memory and disk are bounded by its group. A group task holds one tile at a time, never a
DEM-sized array: each map is written tile by tile into an uncompressed tiled GeoTIFF, then
copied into a Cloud Optimized GeoTIFF (GDAL streams the copy and its overviews), and the
partial sums of its statistics (count, sum, M2, min, max: :class:`Stats`) are accumulated as it
is written and saved in the work directory's ``reduce/``. The summary task
(``eemt-flow task reduce``) merges them into results/summary.json and writes the STAC item.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from eemt_flow.dem.raster import read_float32
from eemt_flow.dem.tiles import Tile, crop_core
from eemt_flow.errors import UserError
from eemt_flow.workflow.layout import JOB_FILE, REDUCE_DIR, SKY_VIEW_RESULT, SOLAR_VARIABLES

#: Units of each solar variable, per month (monthly maps) and per day (daily maps).
UNITS = {
    "glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "flat_glob_rad": ("Wh m-2 month-1", "Wh m-2 day-1"),
    "insol_time": ("h month-1", "h day-1"),
}
#: Longest side of a quick-look PNG [pixels]; larger maps are read decimated (from the COG's overviews).
QUICKLOOK_MAX_PIXELS = 1000
#: Compression of the result COGs: deflate with the floating-point predictor (about 30 % smaller
#: than without it, at the same speed; measured on a 1,500 x 1,500 EEMT-TOPO job, docs/performance.md).
COG_OPTIONS = {"compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER"}


def _read(path: Path, indexes: list[int] | None = None) -> np.ndarray:
    """Bands (1-based ``indexes``; default all) of a raster as float32, NaN where nodata."""
    with rasterio.open(path) as src:
        return src.read(indexes, masked=True).astype("float32").filled(np.nan)


class Stats:
    """Statistics of the valid cells of a map, as partial sums that merge across tiles, groups
    or tasks: count, sum, M2 (the sum of squared deviations from the part's mean), min and max.

    M2 rather than the sum of squares: merged with Chan, Golub & LeVeque's (1979) pairwise
    update, the standard deviation keeps its precision where the mean is large against it (a
    month's flat-terrain radiation: mean ~ 5,000 Wh m-2, std ~ 6), where sum_sq / n - mean^2
    loses six of its sixteen digits and changed in the tenth with the memory alignment of the
    BLAS dot product (measured on a 211 x 228 job: 5e-10 relative between two identical runs).
    """

    def __init__(self):
        self.n, self.lo, self.hi, self.total, self.m2 = 0, math.inf, -math.inf, 0.0, 0.0

    def add(self, a: np.ndarray) -> None:
        v = a[np.isfinite(a)].astype("float64")
        if v.size:
            total = float(v.sum())
            d = v - total / v.size
            self.merge(v.size, total, float(np.dot(d, d)), float(v.min()), float(v.max()))

    def merge(self, n: int, total: float, m2: float, lo: float, hi: float) -> None:
        """Merge the partial sums of ``n`` more cells (Chan et al. 1979)."""
        if n == 0:
            return
        if self.n:
            delta = total / n - self.total / self.n
            self.m2 += m2 + delta * delta * self.n * n / (self.n + n)
        else:
            self.m2 = m2
        self.n += n
        self.total += total
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)

    def sums(self) -> dict:
        """The partial sums, for :meth:`from_sums`."""
        return {"count": self.n, "sum": self.total, "m2": self.m2,
                "min": self.lo if self.n else None, "max": self.hi if self.n else None}

    @classmethod
    def from_sums(cls, *parts: dict) -> "Stats":
        out = cls()
        for p in parts:
            out.merge(p["count"], p["sum"], p["m2"], p["min"], p["max"])
        return out

    def as_dict(self) -> dict:
        if self.n == 0:
            return {"valid_cells": 0}
        return {"valid_cells": self.n, "min": self.lo, "max": self.hi, "mean": self.total / self.n,
                "std": math.sqrt(self.m2 / self.n)}


class MapWriter:
    """A group of maps written a window at a time, finished as COGs (see the module docstring);
    ``threads`` compress each COG.

    ``frame``: the grid the windows are in (``height``, ``width``, ``transform``, ``crs_wkt``:
    the DEM's, or a level's of the VRT form, :mod:`.vrt`). With a ``block`` (a window of the
    frame), each map is written only where a window meets the block, into a file of the block's
    size that ``rename(path)`` names (its block COG); without, into a file of the frame's size.
    """

    def __init__(self, frame: dict, stack: ExitStack, threads: int = 1, block: Window | None = None, rename=None):
        self.crs = CRS.from_wkt(frame["crs_wkt"])
        self.block = block if block is not None else Window(0, 0, frame["width"], frame["height"])
        self.transform = Affine(*frame["transform"][:6]) @ Affine.translation(self.block.col_off, self.block.row_off)
        self.rename = rename or (lambda path: path)
        self.stack, self.threads = stack, max(1, int(threads))
        self.open: dict[Path, tuple] = {}

    def meets(self, window: Window) -> bool:
        from eemt_flow.workflow.vrt import windows_meet

        return windows_meet(window, self.block)

    def create(self, path: Path, descriptions: tuple) -> None:
        """Open map ``path`` with a band for each of ``descriptions`` (None: none), all nodata."""
        target = self.rename(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".mosaic.tif")
        # uncompressed: compressing it too would cost as much again as the COG (measured)
        dst = self.stack.enter_context(rasterio.open(
            part, "w", driver="GTiff", width=self.block.width, height=self.block.height, count=len(descriptions),
            dtype="float32", crs=self.crs, transform=self.transform, nodata=float("nan"), tiled=True,
            blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER"))
        for i, text in enumerate(descriptions, start=1):
            if text:
                dst.set_band_description(i, text)
        self.open[path] = (dst, part, target, [Stats() for _ in descriptions])

    def add(self, path: Path, window: Window, bands: np.ndarray, band: int | None = None) -> None:
        """Write ``bands`` (n, rows, cols) or (rows, cols) at ``window`` of the map ``path``
        where it meets the block (or, given a ``band``, the (rows, cols) of that 1-based band),
        and add what is written to the map's statistics."""
        bands = bands if bands.ndim == 3 else bands[np.newaxis]
        b = self.block
        r0, r1 = max(window.row_off, b.row_off), min(window.row_off + window.height, b.row_off + b.height)
        c0, c1 = max(window.col_off, b.col_off), min(window.col_off + window.width, b.col_off + b.width)
        if r0 >= r1 or c0 >= c1:
            return
        bands = bands[:, r0 - window.row_off:r1 - window.row_off, c0 - window.col_off:c1 - window.col_off]
        dst, _, _, stats = self.open[path]
        indexes = list(range(1, len(stats) + 1)) if band is None else [band]
        dst.write(bands.astype("float32", copy=False), indexes=indexes,
                  window=Window(c0 - b.col_off, r0 - b.row_off, c1 - c0, r1 - r0))
        for i, values in zip(indexes, bands):
            stats[i - 1].add(values)

    def finish(self) -> dict[Path, list[Stats]]:
        """Close every map, copy each into its COG; the statistics of each band (:class:`Stats`)."""
        out = {}
        for path, (dst, part, target, stats) in self.open.items():
            dst.close()
            rasterio.shutil.copy(part, target, driver="COG", num_threads=self.threads, **COG_OPTIONS)
            part.unlink()
            out[path] = stats
        self.open.clear()
        return out


def tile_nodata(workdir: Path, entry: dict) -> np.ndarray:
    """Where the tile's core is nodata in the DEM it was computed from (its core window only is read)."""
    tile = Tile.from_dict(entry)
    staged = entry["files"].get("dem_window")
    rows, cols = tile.core_in(Window(*staged)) if staged else tile.core_in_halo
    with rasterio.open(workdir / entry["files"]["dem"]) as src:
        return ~np.isfinite(read_float32(src, Window(cols.start, rows.start, tile.width, tile.height)))


class NodataMasks:
    """Each tile's nodata mask (None where it has none), read from its DEM core at most once per
    group. A tile found to have no nodata is remembered by its name and not read again, so the
    many groups of a job read the DEM of its edge tiles only (profiled at 10^8 cells: reading
    every tile's mask took 16 s of a 74 s month group, cold from disk, and a job has 27 groups).
    It holds names, not cells: memory grows with the number of tiles."""

    def __init__(self, workdir: Path):
        self.workdir, self.clean = workdir, set()

    def __call__(self, entry: dict) -> np.ndarray | None:
        if entry["name"] in self.clean:
            return None
        mask = tile_nodata(self.workdir, entry)
        if not mask.any():
            self.clean.add(entry["name"])
            return None
        return mask


def tile_core(workdir: Path, entry: dict, file_key: str, key, nodata: np.ndarray | None,
              indexes: list[int] | None = None) -> np.ndarray:
    """The core of bands ``indexes`` (1-based; default all) of the tile's ``file_key`` file
    (month or year ``key``), NaN where the DEM is nodata (``nodata``; None: nowhere)."""
    tile = Tile.from_dict(entry)
    data = crop_core(tile, _read(workdir / entry["files"][file_key][str(key)], indexes))  # JSON keys are strings
    if nodata is not None:
        data[:, nodata] = np.nan
    return data


def tiles_with_nodata(job: dict, masks: NodataMasks, maps: MapWriter):
    """(entry, core window, nodata mask or None) of each tile whose core meets the maps' block, one at a time."""
    for entry in job["tiles"]:
        window = Tile.from_dict(entry).core_window
        if maps.meets(window):
            yield entry, window, masks(entry)


@dataclass(frozen=True)
class MapGroup:
    """Maps the reducer writes together, in one task (or, in the VRT form, one task a block): a
    month's solar maps, a year's annual EEMT maps, ... ``maps``: (path, band descriptions) of
    each map, named by its single-COG path (workdir-relative); ``sources``: (core window as
    col_off, row_off, width, height; files) of each tile it reads; ``pngs`` the quick looks it
    makes; ``in_bands`` and ``out_bands`` the float32 bands per cell it reads and writes (its
    declared disk, :func:`eemt_flow.workflow.makeflow.job_resources`), ``tile_bands`` the float32
    bands of one tile it holds at once (its declared memory)."""

    name: str
    kind: str
    key: tuple
    maps: tuple[tuple[str, tuple], ...]
    sources: tuple[tuple[tuple[int, int, int, int], tuple[str, ...]], ...]
    pngs: tuple[str, ...]
    in_bands: int
    out_bands: int
    tile_bands: int

    @property
    def stats_file(self) -> str:
        return f"{REDUCE_DIR}/{self.name}.json"

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(f for _, files in self.sources for f in files)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The result files of the single-COG form (the hidden total is not one)."""
        return tuple(p for p, _ in self.maps if not Path(p).name.startswith(".")) + self.pngs


#: The sum of the months' global radiation, written for the quick look only.
TOTAL_MAP = "results/.total_glob_rad.tif"


def map_groups(job: dict) -> list[MapGroup]:
    """Every group of maps of a planned job, each one reducer task (see the module docstring)."""
    from eemt_flow.terrain.stages import TERRAIN_DIR, terrain_grid
    from eemt_flow.workflow.layout import TERRAIN_RESULTS

    entries = json.loads(json.dumps(job["tiles"]))  # as job.json has them: string keys
    windows = [tuple(int(v) for v in Tile.from_dict(e).core_window.flatten()) for e in entries]
    keep_daily = job["parameters"]["keep_daily"]
    nv = len(SOLAR_VARIABLES)
    one = (None,)
    groups = []

    def group(name, kind, key, per_tile, maps, in_bands, out_bands, tile_bands, pngs=()):
        sources = tuple((w, (e["files"]["dem"], *per_tile(e["files"]))) for w, e in zip(windows, entries))
        groups.append(MapGroup(name, kind, key, tuple(maps), sources, tuple(pngs), in_bands, out_bands, tile_bands))

    for mm, days in job["months"].items():
        maps = [(f"results/solar/monthly/{v}_{mm}.tif", one) for v in SOLAR_VARIABLES]
        if keep_daily:
            maps += [(f"results/solar/daily/{v}_day{d:03d}.tif", one) for d in days for v in SOLAR_VARIABLES]
        group(f"solar_{mm}", "solar", (mm,),
              lambda t, mm=mm: [t["solar"][str(int(mm))], *([t["daily"][str(int(mm))]] if keep_daily else [])],
              maps, nv * (1 + len(days) * keep_daily), nv * (1 + len(days) * keep_daily), nv * (1 + len(days) * keep_daily))
    group("total", "total", (), lambda t: [t["solar"][str(int(mm))] for mm in job["months"]],
          [(TOTAL_MAP, one)], nv * len(job["months"]), 1, 3, ["results/glob_rad_quicklook.png"])  # a float64 sum
    if any(e["files"].get("sky_view") for e in entries):
        group("sky_view", "sky_view", (), lambda t: [t["sky_view"]], [(SKY_VIEW_RESULT, ("sky_view_factor",))], 1, 1, 1)
    if not job.get("eemt"):
        return groups
    from eemt_flow.workflow.tasks import QA_LAYERS, REAL_SKY_BANDS, eemt_bands

    meta = job["eemt"]
    models, years = meta["models"], meta["years"]
    eemt_file_bands = len(models) * len(eemt_bands(models[0])) + (len(REAL_SKY_BANDS) if meta.get("real_sky") else 0)
    grid = job["grid"]
    terrain = tuple((tuple(int(v) for v in t.window.flatten()),
                     tuple(f"{TERRAIN_DIR}/{t.name}/{name}.tif" for name in TERRAIN_RESULTS))
                    for t in terrain_grid((grid["height"], grid["width"]), job["parameters"]["tile_size_cells"]).tiles)
    groups.append(MapGroup("terrain", "terrain", (), tuple((f"results/terrain/{n}.tif", one) for n in TERRAIN_RESULTS),
                           terrain, (), len(TERRAIN_RESULTS) * 2, len(TERRAIN_RESULTS), 2))  # float64 tile rasters
    n_qa = len(QA_LAYERS)
    qa_names = tuple(f"{name}: {text}" for name, text in QA_LAYERS.items())
    for year in years:
        maps = [(f"results/eemt/{q}_{model}_{year}.tif", one) for model in models for q in ("EEMT", "E_PPT", "E_BIO")]
        maps += [(f"results/eemt/QA_{model}_{year}.tif", qa_names) for model in models]
        group(f"eemt_{year}", "annual", (year,), lambda t, year=year: [t["eemt"][year]], maps, eemt_file_bands,
              len(models) * (3 + n_qa), len(models) * (3 + n_qa), [f"results/eemt/EEMT_{model}_{year}.png" for model in models])
        for m in range(1, 13):
            group(f"eemt_{year}_{m:02d}", "monthly", (year, m), lambda t, year=year: [t["eemt"][year]],
                  [(f"results/eemt/monthly/{q}_{model}_{year}_{m:02d}.tif", one) for model in models
                   for q in ("E_PPT", "E_BIO")], eemt_file_bands, len(models) * 2, len(models) * 2)
    every_year = lambda t: [t["eemt"][y] for y in years]  # noqa: E731
    if len(years) > 1:
        group("eemt_mean", "mean", (), every_year, [(f"results/eemt/EEMT_{model}_mean.tif", one) for model in models],
              eemt_file_bands * len(years), len(models), len(years) + 1)
    if meta.get("real_sky"):
        for m in range(1, 13):
            group(f"real_sky_{m:02d}", "real_sky", (m,), every_year,
                  [(f"results/solar/monthly/glob_rad_real_{m:02d}.tif", one)], eemt_file_bands * len(years), 1,
                  2 * len(years) + 2)  # float64
    return groups


def results_form(job: dict) -> dict:
    """The job's form of results: {"form": "cog"} or {"form": "vrt", "block_cells": N}."""
    return job.get("results_form") or {"form": "cog"}


def pyramid_of(job: dict):
    from eemt_flow.workflow.vrt import Pyramid

    return Pyramid(job["grid"]["height"], job["grid"]["width"], results_form(job)["block_cells"])


def group_results(job: dict, g: MapGroup) -> list[str]:
    """The result files of group ``g`` in the job's form (the VRT form: each map's VRTs)."""
    if results_form(job)["form"] == "cog":
        return list(g.outputs)
    from eemt_flow.workflow.vrt import level_vrt_path, vrt_path

    top = pyramid_of(job).top
    return [f for p, _ in g.maps for f in (vrt_path(p), *(level_vrt_path(p, k) for k in range(1, top + 1)))] + list(g.pngs)


#: The VRT form's families of groups (by kind) that read the same tile files: their blocks of
#: level 0 are written by one task, so a tile's file crosses to a worker once, not once a group.
FAMILIES = {"solar": "solar", "total": "solar", "sky_view": "solar", "terrain": "terrain",
            "annual": "eemt_{year}", "monthly": "eemt_{year}", "mean": "years", "real_sky": "years"}


def families(groups: list[MapGroup]) -> list[list[MapGroup]]:
    """The groups in families (:data:`FAMILIES`; a year's annual and monthly EEMT groups are one), in order."""
    out: dict[str, list[MapGroup]] = {}
    for g in groups:
        out.setdefault(FAMILIES[g.kind].format(year=g.key[0] if g.key else ""), []).append(g)
    return list(out.values())


def family_in_bands(family: list[MapGroup]) -> int:
    """The float32 bands a tile's files of a family hold (each file once; a group's bands shared
    evenly among its files, less the DEM, which every group reads)."""
    seen, bands = set(), 0.0
    for g in family:
        files = g.sources[0][1][1:] if g.sources else ()
        for f in files:
            if f not in seen:
                seen.add(f)
                bands += g.in_bands / len(files)
    return math.ceil(bands)


#: The categories of the reducer's rules (the template names them from the rules)
REDUCE_RULE_CATEGORIES = ("reduce-maps", "reduce-tree")


def reduce_rules(job: dict, groups: list[MapGroup]) -> list[dict]:
    """The reducer's rules ({category, outputs, inputs, block, group}), in execution order.

    Single COGs: one ``reduce-maps`` rule a group. The VRT form (:mod:`.vrt`): a
    ``reduce-maps`` rule a family of groups (:func:`families`) and block of level 0, which reads
    the tiles meeting the block; a ``reduce-tree`` rule a group and block of each level above,
    which reads the four blocks below. The top one writes the group's VRTs, quick looks and
    statistics.
    """
    if results_form(job)["form"] == "cog":
        return [{"category": "reduce-maps", "group": g.name, "block": None, "outputs": [*g.outputs, g.stats_file],
                 "inputs": ["job.json", *g.inputs]} for g in groups]
    from eemt_flow.workflow.vrt import block_name, block_path, blocks_met

    pyramid, rules = pyramid_of(job), []
    top = pyramid.top

    def block_outputs(g, level, r, c):
        name = block_name(level, r, c)
        out = [block_path(p, level, r, c) for p, _ in g.maps] + [f"{REDUCE_DIR}/{g.name}/{name}.json"]
        return out + ([*group_results(job, g), g.stats_file] if level == top else [])

    for family in families(groups):
        meeting: dict[tuple[int, int], list[str]] = {}  # level-0 block -> the files of the tiles that meet it
        for g in family:
            for w, files in g.sources:
                for k in blocks_met(Window(*w), pyramid.block_cells):
                    meeting.setdefault(k, []).extend(files)
        for r, c in pyramid.blocks(0):
            rules.append({"category": "reduce-maps", "group": ",".join(g.name for g in family),
                          "block": block_name(0, r, c),
                          "outputs": [f for g in family for f in block_outputs(g, 0, r, c)],
                          "inputs": ["job.json", *dict.fromkeys(meeting.get((r, c), []))]})
    for level in range(1, top + 1):
        for g in groups:
            for r, c in pyramid.blocks(level):
                below = pyramid.children(level, r, c)
                inputs = [block_path(p, level - 1, *k) for k in below for p, _ in g.maps]
                inputs += [f"{REDUCE_DIR}/{g.name}/{block_name(level - 1, *k)}.json" for k in below]
                rules.append({"category": "reduce-tree", "group": g.name, "block": block_name(level, r, c),
                              "outputs": block_outputs(g, level, r, c), "inputs": ["job.json", *inputs]})
    return rules


def summary_inputs(job: dict, groups: list[MapGroup]) -> list[str]:
    """What the summary task reads: every group's (``groups``: :func:`map_groups`) statistics
    and maps (the STAC item describes the maps), and the tiled terrain's domain mean of the
    wetness index."""
    from eemt_flow.terrain.stages import TERRAIN_DIR

    files = [g.stats_file for g in groups] + [f for g in groups for f in group_results(job, g)]
    return files + ([f"{TERRAIN_DIR}/wetness_mean.npz"] if job.get("eemt") else [])


#: The summary task's own outputs; every other result file is a map group's.
SUMMARY_OUTPUTS = ("results/summary.json", "results/stac/item.json")


def _group(job: dict, name: str) -> MapGroup:
    groups = {g.name: g for g in map_groups(job)}
    if name not in groups:
        raise UserError(f"--group {name}: this job has no map group of that name; its groups are {', '.join(groups)}")
    return groups[name]


def _save_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def reduce_groups(workdir: Path, names: list[str], threads: int = 1, block: str | None = None) -> None:
    """Write the maps of the groups ``names`` of the job planned in ``workdir`` and the partial
    sums of their statistics. Single COGs: the whole maps and ``reduce/<name>.json``. The VRT
    form: ``block`` (``L0_r000_c000``: from the tiles, for a family of groups; ``L1_...``: from
    the four blocks below), its block COGs and ``reduce/<name>/<block>.json``, and at the top of
    the tree the maps' VRTs, quick looks and ``reduce/<name>.json``. The job, its groups and the
    tiles' nodata masks are read once for all of them; :func:`reduce_job` merges the sums."""
    workdir = Path(workdir)
    job = json.loads((workdir / JOB_FILE).read_text())
    groups = [_group(job, name) for name in names]
    masks = NodataMasks(workdir)
    if results_form(job)["form"] == "cog":
        if block is not None:
            raise UserError(f"--block {block}: this job writes single COGs (--results cog), whose groups have no blocks")
        for g in groups:
            sums = _write_from_tiles(job, workdir, g, masks, threads)
            for png, (source, title, label, scale) in zip(g.pngs, _quicklooks(job, g)):
                quicklook_png(workdir / source, workdir / png, title=title, label=label, scale=scale)
            if any(p == TOTAL_MAP for p, _ in g.maps):
                (workdir / TOTAL_MAP).unlink()
            _save_json(workdir / g.stats_file, {"group": g.name, "maps": sums})
        return
    from eemt_flow.workflow.vrt import block_path

    pyramid = pyramid_of(job)
    level, r, c = _parse_block(block, pyramid)
    for g in groups:
        if level == 0:
            sums = _write_from_tiles(job, workdir, g, masks, threads, pyramid.window(0, r, c),
                                     lambda path: workdir / block_path(str(path.relative_to(workdir)), 0, r, c))
        else:
            sums = _halve_blocks(job, workdir, g, pyramid, level, r, c, threads)
        _save_json(workdir / REDUCE_DIR / g.name / f"{block}.json", {"group": g.name, "block": block, "maps": sums})
        if level == pyramid.top:
            _finish_tree(job, workdir, g, pyramid, sums)


def _write_from_tiles(job, workdir, g, masks, threads, block=None, rename=None) -> dict[str, list[dict]]:
    """The maps of group ``g`` from the tiles (where they meet ``block``, into the files
    ``rename`` names: :class:`MapWriter`); the partial sums of their bands, by map."""
    with ExitStack() as stack:
        maps = MapWriter(job["grid"], stack, threads, block, rename)
        for path, descriptions in g.maps:
            maps.create(workdir / path, descriptions)
        WRITERS[g.kind](job, workdir, masks, maps, *g.key)
        written = maps.finish()
    return {str(path.relative_to(workdir)): [s.sums() for s in stats] for path, stats in written.items()}


def _parse_block(block: str | None, pyramid) -> tuple[int, int, int]:
    import re

    from eemt_flow.workflow.vrt import block_name

    m = re.fullmatch(r"L(\d+)_r(\d+)_c(\d+)", block or "")
    if not m or int(m[1]) > pyramid.top or (int(m[2]), int(m[3])) not in pyramid.blocks(int(m[1])):
        raise UserError(f"--block {block}: give one of this job's blocks, from {block_name(0, 0, 0)} to "
                        f"{block_name(pyramid.top, 0, 0)} (its Makeflow rules name them)")
    return int(m[1]), int(m[2]), int(m[3])


def _halve_blocks(job, workdir, g, pyramid, level, r, c, threads) -> dict[str, list[dict]]:
    """Block (r, c) of ``level`` of each map of ``g``: the 2 x 2 mean (:func:`.vrt.halve`) of the
    blocks below, a band of one of them at a time; their partial sums merged."""
    from eemt_flow.workflow.vrt import block_name, block_path, halve, level_transform

    h, w = pyramid.shapes[level]
    frame = {"height": h, "width": w, "crs_wkt": job["grid"]["crs_wkt"],
             "transform": list(level_transform(Affine(*job["grid"]["transform"]), level))[:6]}
    below = pyramid.children(level, r, c)
    with ExitStack() as stack:
        maps = MapWriter(frame, stack, threads, pyramid.window(level, r, c),
                         rename=lambda path: workdir / block_path(str(path.relative_to(workdir)), level, r, c))
        for path, descriptions in g.maps:
            maps.create(workdir / path, descriptions)
            for k in below:
                child = pyramid.window(level - 1, *k)
                with rasterio.open(workdir / block_path(path, level - 1, *k)) as src:
                    for i in range(1, src.count + 1):
                        half = halve(src.read(i))
                        window = Window(child.col_off // 2, child.row_off // 2, half.shape[1], half.shape[0])
                        maps.add(workdir / path, window, half, band=i)
        maps.finish()
    sums = {}
    for k in below:
        part = json.loads((workdir / REDUCE_DIR / g.name / f"{block_name(level - 1, *k)}.json").read_text())["maps"]
        for path, bands in part.items():
            sums.setdefault(path, []).append(bands)
    return {path: [Stats.from_sums(*band).sums() for band in zip(*parts)] for path, parts in sums.items()}


def _finish_tree(job, workdir, g, pyramid, sums) -> None:
    """The top of a group's tree: each map's VRTs, the quick looks (from the top block, which
    holds the whole map at the top level's resolution), the group's statistics."""
    from eemt_flow.workflow.vrt import block_path, write_vrts

    for path, descriptions in g.maps:
        write_vrts(workdir, path, pyramid, Affine(*job["grid"]["transform"][:6]), job["grid"]["crs_wkt"], list(descriptions))
    for png, (source, title, label, scale) in zip(g.pngs, _quicklooks(job, g)):
        quicklook_png(workdir / block_path(source, pyramid.top, 0, 0), workdir / png, title=title, label=label, scale=scale)
    _save_json(workdir / g.stats_file, {"group": g.name, "maps": sums})


def _quicklooks(job: dict, g: MapGroup) -> list[tuple[str, str, str, float]]:
    """(map, title, label, scale) of each of ``g.pngs``, in order."""
    if g.kind == "total":
        n_days = sum(len(d) for d in job["months"].values())
        return [(TOTAL_MAP, f"Global radiation, sum of {n_days} day(s)", "kWh m⁻²", 1e-3)]
    if g.kind == "annual":
        year = g.key[0]
        return [(f"results/eemt/EEMT_{model}_{year}.tif", f"EEMT-{model.replace('_', '-')} {year}",
                 "EEMT [MJ m⁻² yr⁻¹]", 1.0) for model in job["eemt"]["models"]]
    return []


def _write_solar(job, workdir, masks, maps, mm):
    results, days = workdir / "results", job["months"][mm]
    solar_indexes = list(range(1, len(SOLAR_VARIABLES) + 1))
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        month = tile_core(workdir, entry, "solar", int(mm), nodata, solar_indexes)
        for var, band in zip(SOLAR_VARIABLES, month):
            maps.add(results / "solar" / "monthly" / f"{var}_{mm}.tif", window, band)
        if job["parameters"]["keep_daily"]:
            daily = tile_core(workdir, entry, "daily", int(mm), nodata)
            for i, var in enumerate(SOLAR_VARIABLES):
                for j, day in enumerate(days):
                    maps.add(results / "solar" / "daily" / f"{var}_day{day:03d}.tif", window, daily[i * len(days) + j])


def _write_total(job, workdir, masks, maps):
    """The sum of the months' global radiation (float64 sums in month order), for the quick look."""
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        total = np.zeros((window.height, window.width), dtype="float64")
        for mm in job["months"]:
            total = total + tile_core(workdir, entry, "solar", int(mm), nodata, [1])[0]
        maps.add(workdir / TOTAL_MAP, window, total.astype("float32"))


def _write_sky_view(job, workdir, masks, maps):
    """The tiles' sky view factor (either engine's) mosaicked into results/terrain/."""
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        svf = crop_core(Tile.from_dict(entry), _read(workdir / entry["files"]["sky_view"]))
        if nodata is not None:
            svf[:, nodata] = np.nan
        maps.add(workdir / SKY_VIEW_RESULT, window, svf)


def _write_terrain(job, workdir, masks, maps):
    from eemt_flow.terrain.stages import TERRAIN_DIR, terrain_grid
    from eemt_flow.workflow.layout import TERRAIN_RESULTS

    grid = job["grid"]
    for t in terrain_grid((grid["height"], grid["width"]), job["parameters"]["tile_size_cells"]).tiles:
        if maps.meets(t.window):
            for name in TERRAIN_RESULTS:
                maps.add(workdir / "results" / "terrain" / f"{name}.tif", t.window,
                         _read(workdir / TERRAIN_DIR / t.name / f"{name}.tif")[0])


def _eemt_band(job: dict):
    """``band(model, name)``: the 1-based band of ``model``'s band ``name`` in a tile's EEMT file."""
    from eemt_flow.workflow.tasks import eemt_bands

    models = job["eemt"]["models"]
    per_model = len(eemt_bands(models[0]))
    return lambda model, name: models.index(model) * per_model + eemt_bands(model).index(name) + 1


def _write_annual(job, workdir, masks, maps, year):
    from eemt_flow.workflow.tasks import QA_LAYERS

    results, models, band = workdir / "results", job["eemt"]["models"], _eemt_band(job)
    names = [(model, q) for model in models for q in ("EEMT", "E_PPT", "E_BIO", *QA_LAYERS)]
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        data = dict(zip(names, tile_core(workdir, entry, "eemt", year, nodata,
                                         [band(model, f"{q}_{model}") for model, q in names])))
        for model in models:
            for q in ("EEMT", "E_PPT", "E_BIO"):
                maps.add(results / "eemt" / f"{q}_{model}_{year}.tif", window, data[model, q])
            maps.add(results / "eemt" / f"QA_{model}_{year}.tif", window,
                     np.stack([data[model, name] for name in QA_LAYERS]))


def _write_monthly(job, workdir, masks, maps, year, m):
    results, models, band = workdir / "results", job["eemt"]["models"], _eemt_band(job)
    names = [(model, q) for model in models for q in ("E_PPT", "E_BIO")]
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        data = tile_core(workdir, entry, "eemt", year, nodata,
                         [band(model, f"{q}_{model}_m{m:02d}") for model, q in names])
        for (model, q), values in zip(names, data):
            maps.add(results / "eemt" / "monthly" / f"{q}_{model}_{year}_{m:02d}.tif", window, values)


def _write_mean(job, workdir, masks, maps):
    band = _eemt_band(job)
    models, years = job["eemt"]["models"], job["eemt"]["years"]
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        for model in models:
            annual = [tile_core(workdir, entry, "eemt", year, nodata, [band(model, f"EEMT_{model}")])[0]
                      for year in years]
            maps.add(workdir / "results" / "eemt" / f"EEMT_{model}_mean.tif", window, np.mean(annual, axis=0))


def _write_real_sky(job, workdir, masks, maps, m):
    """Real-sky radiation: the mean day of month ``m``, averaged over the years [Wh m-2 day-1]."""
    from eemt_flow.workflow.tasks import REAL_SKY_BANDS, eemt_bands

    models, years = job["eemt"]["models"], job["eemt"]["years"]
    index = len(eemt_bands(models[0])) * len(models) + REAL_SKY_BANDS.index(f"glob_rad_real_m{m:02d}") + 1
    path = workdir / "results" / "solar" / "monthly" / f"glob_rad_real_{m:02d}.tif"
    for entry, window, nodata in tiles_with_nodata(job, masks, maps):
        real = [tile_core(workdir, entry, "eemt", year, nodata, [index])[0].astype("float64") for year in years]
        maps.add(path, window, np.mean(real, axis=0).astype("float32"))


#: Each kind of group's writer: ``writer(job, workdir, masks, maps, *key)`` adds the tiles' cores to ``maps``.
WRITERS = {"solar": _write_solar, "total": _write_total, "sky_view": _write_sky_view, "terrain": _write_terrain,
           "annual": _write_annual, "monthly": _write_monthly, "mean": _write_mean, "real_sky": _write_real_sky}


def reduce_job(workdir: Path) -> dict:
    """Merge the map groups' statistics into results/summary.json and write the STAC item;
    return the summary. Every group (:func:`reduce_groups`) has run before."""
    from eemt_flow.workflow.stac import write_item  # pystac and pyproj: 0.15 s a map group would not use

    workdir = Path(workdir)
    job = json.loads((workdir / JOB_FILE).read_text())
    grid, results = job["grid"], workdir / "results"
    stats: dict[str, list[dict]] = {}
    for g in map_groups(job):
        stats.update(json.loads((workdir / g.stats_file).read_text())["maps"])

    def of(path: str) -> dict:
        return Stats.from_sums(stats[path][0]).as_dict()

    month_stats = {mm: {"days": days, "n_days": len(days),
                        **{var: of(f"results/solar/monthly/{var}_{mm}.tif") for var in SOLAR_VARIABLES}}
                   for mm, days in job["months"].items()}
    total_stats = of(TOTAL_MAP)
    sky_view_stats = of(SKY_VIEW_RESULT) if SKY_VIEW_RESULT in stats else None
    eemt_stats = None
    if job.get("eemt"):
        models, years = job["eemt"]["models"], job["eemt"]["years"]
        eemt_stats = {model: {year: {q: of(f"results/eemt/{q}_{model}_{year}.tif") for q in ("EEMT", "E_PPT", "E_BIO")}
                              for year in years} for model in models}
        if len(years) > 1:
            for model in models:
                eemt_stats[model]["mean"] = {"EEMT": of(f"results/eemt/EEMT_{model}_mean.tif")}
        if job["eemt"].get("real_sky"):
            eemt_stats["glob_rad_real_wh_m2_day"] = {f"{m:02d}": of(f"results/solar/monthly/glob_rad_real_{m:02d}.tif")
                                                     for m in range(1, 13)}

    summary = {
        "eemt_flow_summary": 1,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": job["parameters"],
        "step_hours": job["parameters"]["step_minutes"] / 60.0,
        "halo_m": job["halo_m"],
        "halo_source": job["halo_source"],
        "tiles": len(job["tiles"]),
        "grid": {k: grid[k] for k in ("width", "height", "transform", "cell_size_m")},
        "crs": CRS.from_wkt(grid["crs_wkt"]).to_string(),
        "units": {var: UNITS[var][0] for var in SOLAR_VARIABLES},
        "shadows": "r.horizon maps (negative angles clamped at 0), search distance = halo; not r.sun's internal search",
        "months": month_stats,
        "total_glob_rad_wh_m2": total_stats,
        "sky_view_factor": dict(sky_view_stats, units="1", source="Dozier & Frew (1990) Eq. 7b from the horizons "
                                "of the solar tasks (fast) or r.horizon (grass)") if sky_view_stats is not None else None,
        "eemt": dict(job["eemt"], units="MJ m-2 yr-1 (annual), MJ m-2 month-1 (monthly)", statistics=eemt_stats,
                     **terrain_figures(workdir))
        if eemt_stats is not None else None,
        "software": job["software"],
    }
    (results / "summary.json").write_text(json.dumps(summary, indent=2))
    write_item(job, summary, results, stats)
    return summary


def terrain_figures(workdir: Path) -> dict:
    """The tiled terrain's whole-DEM figures (the domain mean of the wetness index)."""
    from eemt_flow.terrain.stages import TERRAIN_DIR

    with np.load(workdir / TERRAIN_DIR / "wetness_mean.npz") as f:
        return {"mean_wetness_index": float(f["mean"])}


def quicklook_png(raster: Path, path: Path, *, title: str, label: str, scale: float = 1.0) -> None:
    """A PNG map of a raster's first band (read decimated when large) with a colour bar and units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with rasterio.open(raster) as src:
        factor = max(1.0, max(src.height, src.width) / QUICKLOOK_MAX_PIXELS)
        shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
        array = src.read(1, out_shape=shape, masked=True).astype("float32").filled(np.nan) * scale
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    img = ax.imshow(np.ma.masked_invalid(array), cmap="inferno")
    ax.set_title(title)
    ax.set_axis_off()
    fig.colorbar(img, ax=ax, label=label, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
