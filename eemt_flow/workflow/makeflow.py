"""The Makeflow file: the rules of a planned job, rendered from ``makeflows/solar.mf.j2``,
and what each category of rule declares (cores, memory, disk).

Declarations are bounded by the job's largest tile or group, and are what the task needs:
makeflow silently refuses a rule that declares more than a worker has, so they must stay
honest (:mod:`.local_fit` checks them against this machine before a local run).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import jinja2

from eemt_flow import __version__
from eemt_flow.solar.parameters import format_days
from eemt_flow.workflow.layout import terrain_result_files, terrain_tile_cuts
from eemt_flow.workflow.spec import JobSpec


def eemt_float32_per_cell(n_models: int) -> int:
    """Declared memory of an EEMT task [float32 a cell of its core], above 300 MB. Peak RSS
    measured with benchmarks/scale.py job: 871 MiB on a 500 x 500 core with one model (TOPO:
    571 float32 a cell above 300 MB) and 15,651 MiB on a 2,000 x 2,000 core with two (TRAD,
    TOPO: 1,003); a line through them is 139 + 432 a model, declared 200 + 500 a model."""
    return 200 + 500 * n_models


#: The float32 arrays an EEMT task holds at a time [bytes]: it computes a tile's core in strips
#: of rows (:func:`eemt_strip_rows`), so its memory is bounded whatever the tile's size.
EEMT_STRIP_BYTES = 1024 * 1024 * 1024


def eemt_strip_rows(width: int, n_models: int) -> int:
    """Rows of the strips an EEMT task computes a core ``width`` cells wide in: as many as keep
    a strip's arrays (with its 1-cell ring, :func:`eemt_float32_per_cell`) within
    EEMT_STRIP_BYTES, a multiple of 16 (the strip is a block row of its GeoTIFF)."""
    per_row = (width + 2) * 4 * eemt_float32_per_cell(n_models)
    return max(16, EEMT_STRIP_BYTES // per_row // 16 * 16)


def eemt_memory_mb(height: int, width: int, n_models: int) -> int:
    """Declared memory of an EEMT task on a core of ``height`` x ``width`` cells [MB]: 300 MB,
    one strip's arrays (and their ring) and GDAL's block cache."""
    from eemt_flow.workflow.tasks import TASK_GDAL_CACHE_MB

    rows = min(height, eemt_strip_rows(width, n_models))
    return int(300 + TASK_GDAL_CACHE_MB + (rows + 2) * (width + 2) * 4 * eemt_float32_per_cell(n_models) / (1024 * 1024))


#: The core cells' arrays a solar-fast task holds at a time [bytes]: it computes a tile's core in
#: strips of rows (:func:`fast_strip_rows`), horizons and days of one strip at a time.
FAST_STRIP_BYTES = 768 * 1024 * 1024


def fast_bytes_per_core_cell(n_azimuths: int, keep_daily: bool, max_days: int) -> int:
    """What a solar-fast task holds for each cell of the strip it computes [bytes]: its byte
    horizons, one float32 chunk of directions in flight, the surface and the radiation's static
    terms (about 20 float32 and float64 maps), and a month's maps: with ``keep_daily`` the
    month's days stacked and their daily file's bands, else one day's float32 maps, the float64
    sums and their float32 stack."""
    from eemt_flow.solar.horizon import AZIMUTH_CHUNK

    month = 6 * max_days * 4 + 3 * max_days * 4 + 6 * 8 if keep_daily else 6 * (4 + 8 + 4)
    return n_azimuths + min(AZIMUTH_CHUNK, n_azimuths) * 4 + 160 + month


def fast_strip_rows(width: int, n_azimuths: int, keep_daily: bool, max_days: int) -> int:
    """Rows of the strips a solar-fast task computes a core ``width`` cells wide in: as many as
    keep a strip within FAST_STRIP_BYTES (:func:`fast_bytes_per_core_cell`), a multiple of 256
    (whole blocks of its files) or, below that, of 16."""
    rows = FAST_STRIP_BYTES // (width * fast_bytes_per_core_cell(n_azimuths, keep_daily, max_days))
    return rows // 256 * 256 if rows >= 256 else max(16, rows // 16 * 16)


def _resources(tile_cells: int, core_cells: int, n_azimuths: int, max_days_per_task: int,
               fast_tile_cells: int | None = None, keep_daily: bool = True,
               fast_strip_cells: int | None = None) -> dict:
    """CATEGORY resources [MB]: terrain holds the horizon stack; solar the daily stack.

    ``tile_cells``: the largest halo window; ``core_cells``: the largest core (the fast
    engine computes horizons and radiation for the core only); ``fast_tile_cells``: the
    cells of the halo the fast engine holds (a reduced halo's; default the whole window);
    ``keep_daily``: whether the tasks write each month's daily maps; ``fast_strip_cells``:
    the largest strip of a core the fast engine computes at a time (default the largest core).
    """
    fast_tile_cells = tile_cells if fast_tile_cells is None else fast_tile_cells
    mb = 1024 * 1024
    horizons_mb = tile_cells * n_azimuths * 4 / mb
    daily_mb = tile_cells * 6 * max_days_per_task * 4 / mb  # the MONTHLY_BANDS of each day
    core_month_mb = core_cells * 6 * 31 * 4 / mb
    fast_strip_cells = core_cells if fast_strip_cells is None else fast_strip_cells
    fast_strip_mb = fast_strip_cells * fast_bytes_per_core_cell(n_azimuths, keep_daily, max_days_per_task) / mb
    # the sky view factor of the window, one direction at a time: about 12 float64 maps in flight
    sky_view_mb = tile_cells * 12 * 8 / mb
    return {
        "terrain": {"memory_mb": int(300 + max(2 * horizons_mb / n_azimuths * 8, sky_view_mb)),
                    "disk_mb": int(100 + 2 * horizons_mb + tile_cells * 4 / mb)},
        "solar": {"memory_mb": int(300 + 2 * daily_mb), "disk_mb": int(100 + horizons_mb + 2 * daily_mb)},
        # the core: climate, monthly solar sums, static and output bands, a strip at a time;
        # its memory is set by job_resources (eemt_memory_mb), by the tiles' widths and the models
        "eemt": {"memory_mb": 0,
                 "disk_mb": int(100 + core_cells * 4 * 150 / mb)},
        # fast engine: the halo window's float32 terrain, its transpose and two max pyramids
        # (4 + 4 + 2 x 4/3 bytes a cell, 2 more while it is read), and one strip of the core
        "fast": {"memory_mb": int(500 + fast_tile_cells * 16 / mb + fast_strip_mb),
                 "disk_mb": int(100 + 2 * core_month_mb)},
        # a map group of the reducer holds one tile at a time: its memory and disk are its groups'
        # (job_resources); the summary reads only small files
        "reduce-maps": {"memory_mb": 500, "disk_mb": 1000},
        "reduce": {"memory_mb": 500, "disk_mb": 1000},
        # a halo window of float32 read and written (and its max pyramid for a reduced halo)
        "cut": {"memory_mb": int(300 + tile_cells * 14 / mb), "disk_mb": int(100 + tile_cells * 4 / mb)},
    }


def job_resources(job: dict, n_azimuths: int, executor: str = "local", groups: list | None = None) -> dict:
    """The CATEGORY resources of a planned job, from its largest tile (:func:`_resources`) or
    group of maps; ``executor``: where the tasks run (on a local run a task's inputs are already
    in the work directory, elsewhere they are copied into its sandbox); ``groups``: the job's
    :func:`~eemt_flow.workflow.reduce.map_groups`, when the caller has them."""
    max_cells = max((t["halo_height"] * t["halo_width"] for t in job["tiles"]), default=1)
    max_core_cells = max((t["height"] * t["width"] for t in job["tiles"]), default=1)
    max_days = max((len(d) for d in job["months"].values()), default=1)
    from eemt_flow.solar.far_field import near_margin_cells, pyramid_levels

    fast_cells = None
    reduced = job.get("reduced_halo")
    if reduced:
        # the near part (core + the far field's full reach) and at most as much for each pyramid level
        reach = near_margin_cells(reduced["far_field_cells"], reduced["near_field_cells"])
        near = max((t["height"] + 2 * reach) * (t["width"] + 2 * reach) for t in job["tiles"])
        cell = job["grid"]["cell_size_m"][0]
        fast_cells = near * pyramid_levels(job["halo_m"] / cell, reduced["far_field_cells"])
    keep_daily = job["parameters"].get("keep_daily", True)
    strip_cells = max((min(t["height"], fast_strip_rows(t["width"], n_azimuths, keep_daily, max_days)) * t["width"]
                       for t in job["tiles"]), default=1)
    out = _resources(max_cells, max_core_cells, n_azimuths, max_days, fast_cells, keep_daily=keep_daily,
                     fast_strip_cells=strip_cells)
    # the largest core with its 1-cell ring (what an EEMT task and the fast engine's tile files hold)
    ring_cells = max(((t["height"] + 2) * (t["width"] + 2) for t in job["tiles"]), default=1)
    if job.get("eemt"):
        n_models = len(job["eemt"]["models"])
        out["eemt"]["memory_mb"] = max((eemt_memory_mb(t["height"], t["width"], n_models) for t in job["tiles"]),
                                       default=0)
    # a map group of the reducer (eemt_flow.workflow.reduce.map_groups): on its disk, the uncompressed
    # mosaics of its maps and their COGs, and where the tasks run in sandboxes (Work Queue, Slurm),
    # the tile files it reads (at most their uncompressed float32 size, and one DEM band a tile for
    # the nodata mask). The VRT form: a block's mosaics and COGs, and the tiles that meet it
    # (reduce-maps) or the four blocks below (reduce-tree: one band of one of them in memory at a time)
    from eemt_flow.workflow.reduce import families, family_in_bands, map_groups, results_form

    copied = executor != "local"
    groups = groups if groups is not None else map_groups(job)
    mb = 1024 * 1024
    # memory: one tile's bands at a time, as read (masked, copied to float32, filled: about 20 bytes a
    # band and cell); the fast engine's tile files hold the core and one ring, the GRASS engine's the window
    read_cells = max_cells if job["parameters"]["engine"] == "grass" else ring_cells
    out["reduce-maps"]["memory_mb"] = int(500 + read_cells * 20 * max(g.tile_bands for g in groups) / mb)
    form = results_form(job)
    if form["form"] == "cog":
        grid_mb = job["grid"]["height"] * job["grid"]["width"] * 4 / mb
        out["reduce-maps"]["disk_mb"] += int(grid_mb * max(copied * (g.in_bands + 1) + 2 * g.out_bands for g in groups))
    else:
        side = form["block_cells"]
        block_mb = side * side * 4 / mb
        size = job["parameters"]["tile_size_cells"]
        # the tiles a block meets: (side / tile)^2 where blocks are whole tiles, else one more a side
        tiles_a_block = (side // size if side % size == 0 else math.ceil((side - 1) / size) + 1) ** 2
        # a tile's files at their uncompressed float32 size (its cells as read), its DEM the window's
        # a family of groups a task (reduce.families): each tile file once, a group's mosaics at a time, all COGs
        out["reduce-maps"]["disk_mb"] += int(max(
            copied * tiles_a_block * (read_cells * family_in_bands(f) + max_cells) * 4 / mb
            + block_mb * (sum(g.out_bands for g in f) + max(g.out_bands for g in f)) for f in families(groups)))
        out["reduce-tree"] = {"memory_mb": int(500 + block_mb * 6),  # a band: read, padded, its float64 sums
                              "disk_mb": int(1000 + max((copied * 4 + 2) * block_mb * g.out_bands for g in groups))}
    if job.get("pyramid"):
        out.update(pyramid_resources(job, fast_cells))
    if job["eemt"]:
        for group in terrain_rules(job):
            out[group["category"]] = {"memory_mb": group["memory_mb"], "disk_mb": group["disk_mb"]}
    return out


#: Bytes a pyramid task holds a cell of its region: the float32 cells as read and their copy
#: (rasterio's masked read), the levels (4/3 of a float32 a cell) and the levels as written.
PYRAMID_BYTES_PER_CELL = 4 + 4 + 16 / 3 + 16 / 3


def pyramid_resources(job: dict, fast_cells: int) -> dict:
    """The pyramid and cut categories of a job whose cuts read the DEM's max pyramid [MB]: a
    pyramid task holds its region; a cut its tile's near window (read, copied and written: 14
    bytes a cell) and the pyramid blocks it keeps (``fast_cells``, float32, read and written)."""
    from eemt_flow.solar.far_field import PyramidRegions, near_margin_cells

    regions = PyramidRegions.from_dict(job["pyramid"])
    mb = 1024 * 1024
    region_cells = max(h * w for h, w in (regions.window(i, j)[2:] for i, j in regions.regions()))
    reduced = job["reduced_halo"]
    margin = near_margin_cells(reduced["far_field_cells"], reduced["near_field_cells"])
    near = max(min(t["height"] + 2 * margin, t["halo_height"]) * min(t["width"] + 2 * margin, t["halo_width"])
               for t in job["tiles"])
    return {
        "pyramid": {"memory_mb": int(300 + region_cells * PYRAMID_BYTES_PER_CELL / mb),
                    "disk_mb": int(16 + region_cells * 16 / 3 / mb)},
        "cut": {"memory_mb": int(300 + (near * 14 + fast_cells * 8) / mb),
                "disk_mb": int(100 + (near + fast_cells) * 4 / mb)},
    }


def pyramid_rules(job: dict) -> list[dict]:
    """The max-pyramid region rules of a job whose cuts read the DEM's pyramid (none otherwise)."""
    if not job.get("pyramid"):
        return []
    from eemt_flow.solar.far_field import PyramidRegions

    regions = PyramidRegions.from_dict(job["pyramid"])
    return [{"i": i, "j": j, "file": regions.file(i, j)} for i, j in regions.regions()]


def count_rules(workflow: Path) -> tuple[int, int]:
    """Rules in a rendered Makeflow file (lines that start a command: a tab after a rule line)
    and the largest memory a category declares [MB], read line by line."""
    rules, memory_mb = 0, 0
    with open(workflow) as f:
        for line in f:
            if line.startswith("\t"):
                rules += 1
            elif line.startswith(".MAKEFLOW MEMORY "):
                memory_mb = max(memory_mb, int(line.split()[2]))
    return rules, memory_mb


TERRAIN_CATEGORIES = ("terrain", "terrain-exchange", "terrain-flats")


def terrain_rules(job: dict) -> list[dict]:
    """The tiled terrain's Makeflow rules (:func:`eemt_flow.terrain.stages.stage_list`) in three
    categories, ``terrain`` (the per-tile stages, a block of tiles a task), ``terrain-exchange`` (the fill and flow
    exchanges' group tasks and the mean wetness index) and ``terrain-flats`` (the one flat
    exchange of all tiles' crossing cells), each declaring the largest memory and disk of its
    rules [MB], in execution order.

    Terrain tiles are the job's tiles (same size, same origin); a tile the planner dropped
    (no valid cell) still runs its trivial terrain stages, on no DEM. The DEM comes from each
    tile's cut (its halo holds the 1-cell ring the stages need). The grid file is written
    by the planner.
    """
    from eemt_flow.terrain.stages import block_span, stage_list

    size = job["parameters"]["tile_size_cells"]
    cut = terrain_tile_cuts(job)
    mb = 1024 * 1024
    groups: list[dict] = []
    declared = {c: [0, 0] for c in TERRAIN_CATEGORIES}  # largest memory, disk [MB]
    stage_rules = stage_list((job["grid"]["height"], job["grid"]["width"]), size,
                             job["parameters"].get("exchange_group_tiles"))
    stage_rules.reverse()
    while stage_rules:  # each rule freed once rendered: a state-sized job has 10^5 of them
        rule = stage_rules.pop()
        if rule.stage == "grid":
            continue
        inputs = [i for i in rule.inputs if i != "DEM"]
        command = f"$(EEMT) task terrain-stage --job job.json --stage {rule.stage}"
        if rule.group is not None:
            command += f" --group {rule.group.level},{rule.group.gi},{rule.group.gj}"
        if rule.tiles:
            r0, r1, c0, c1 = block_span(rule.tiles)
            command += f" --tiles {r0}:{r1},{c0}:{c1}"
            if rule.reads_dem:
                inputs += [cut[t.ti, t.tj] for t in rule.tiles if (t.ti, t.tj) in cut]
        category = ("terrain" if rule.tiles else "terrain-flats" if rule.stage == "flat_exchange"
                    else "terrain-exchange")
        if not groups or groups[-1]["stage"] != rule.stage:
            groups.append({"stage": rule.stage, "category": category, "rules": []})
        # one string a rule (its line and command), not a dict of three
        groups[-1]["rules"].append(f"{' '.join(rule.outputs)}: {' '.join(['job.json', *inputs])}\n\t{command}")
        most = declared[category]
        most[0] = max(most[0], math.ceil(rule.memory_bytes / mb))
        most[1] = max(most[1], math.ceil(rule.disk_bytes / mb))
    for category in TERRAIN_CATEGORIES:
        first = True
        for g in groups:
            if g["category"] == category:
                g["memory_mb"], g["disk_mb"] = declared[category]
                g["first"], first = first, False  # a category's resources are declared once
    return groups


def render_workflow(spec: JobSpec, job: dict, files: list[dict], n_azimuths: int, path: Path) -> None:
    """Write the job's Makeflow file to ``path``, streamed (a state-sized job's is 64 MB)."""
    from eemt_flow.workflow.reduce import SUMMARY_OUTPUTS, map_groups, pyramid_of, reduce_rules, results_form, summary_inputs

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("eemt_flow.makeflows").joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    months = [{"month": int(m), "days_text": format_days(d)} for m, d in job["months"].items()]
    groups = map_groups(job)
    env.get_template("solar.mf.j2").stream(
        version=__version__,
        dem_shape=(job["grid"]["height"], job["grid"]["width"]),
        tiles=files,
        tile_size_cells=spec.tile_size_cells,
        halo_m=f"{job['halo_m']:g}",
        n_days=len(spec.days),
        step_minutes=f"{spec.step_minutes:g}",
        linke=f"{spec.linke:g}",
        albedo=f"{spec.albedo:g}",
        horizon_step_deg=f"{spec.horizon_step_deg:g}",
        engine=spec.engine,
        keep_daily=spec.keep_daily,
        months=months,
        n_azimuths=n_azimuths,
        threads_per_task=job["threads_per_task"],
        years=(job["eemt"] or {}).get("years", []),
        resources=job_resources(job, n_azimuths, spec.executor, groups),
        reduce_rules=reduce_rules(job, groups),
        results_form=results_form(job)["form"],
        block_cells=results_form(job).get("block_cells"),
        top_level=pyramid_of(job).top if results_form(job)["form"] == "vrt" else None,
        summary_outputs=SUMMARY_OUTPUTS,
        summary_inputs=summary_inputs(job, groups),
        terrain_stages=terrain_rules(job) if job["eemt"] else [],
        terrain_results=terrain_result_files((job["grid"]["height"], job["grid"]["width"]),
                                             spec.tile_size_cells) if job["eemt"] else [],
        climate_files=(job["eemt"] or {}).get("climate_files", {}),
        pyramid_regions=pyramid_rules(job),
        eemt_command="eemt-flow",
    ).dump(str(path), encoding="utf-8")
