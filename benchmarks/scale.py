"""Scale: planning a state-sized DEM, Work Queue's dispatch rate, and a 10^8-cell EEMT job.

    .venv/bin/python benchmarks/scale.py plan-vrt            # 200,000 x 200,000 cells (a VRT), plan only
    .venv/bin/python benchmarks/scale.py dispatch            # 10,000 short tasks, 4 local workers
    .venv/bin/python benchmarks/scale.py job                 # 10,000 x 10,000 at 1 m, EEMT-TOPO, a year
    .venv/bin/python benchmarks/scale.py largest-tile        # that job's largest tile: cut and solar-fast
    .venv/bin/python benchmarks/scale.py strips              # one 2,000 x 2,000 tile's solar-fast and EEMT tasks, in strips
    .venv/bin/python benchmarks/scale.py terrain-processes --before /tmp/old   # the terrain's processes, before and after
    .venv/bin/python benchmarks/scale.py cuts --before /tmp/old   # the cuts (and the max pyramid), before and after

``plan-vrt`` builds one 10,000 x 10,000 source tile at 10 m (with overviews; cached under
~/.cache/eemt-flow/benchmarks) and a GDAL VRT that repeats it 20 x 20 times: 4 x 10^10 cells,
the scale of a 10 m DEM of a large US state. It plans an EEMT-TRAD/TOPO job on it (days 1-365,
60-minute steps, station normals, the automatic halo) and prints the planning time, the
planner's peak RSS, the number of tasks, the Makeflow and job.json sizes, the bytes each
task reads and writes, and the CPU-hours and wall time projected from a calibration run of
the fast engine on one core of this machine (horizons for a 500 x 500 core with the job's
halo, and the radiation of 3 days).

``dispatch`` renders 10,000 rules that each write one small file, runs them through one
Work Queue manager (makeflow -T wq) to 4 work_queue_worker processes on this machine, and
prints tasks per second and the overhead per task as a share of a typical tile task.

``largest-tile`` plans that job and runs the cut and the solar-fast task of its largest
tile (the most halo cells), each as its own process, and prints their wall time and peak
RSS (VmHWM), the cut's size on disk and the solar stage projected from it.

``strips`` runs a tile's solar-fast and EEMT tasks (EEMT-TRAD/TOPO, one day a month, 60-minute
steps, tiles of 2,000 x 2,000 at 10 m) twice each, each run its own process: in their default
strips, and in one strip of the whole core (what the tasks did before they worked in strips).
Solar-fast runs on the centre tile of a 6,000 x 6,000 DEM, with the state plan's 10 km halo all
round; EEMT on a one-tile job, run through first. It prints each run's wall time and peak RSS
against the declarations, and whether the two runs' files hold the same values.

``terrain-processes`` plans an EEMT-TOPO job on a 2,000 x 2,000 DEM in tiles of 500 (the 10^8
job's), runs its cuts and then its terrain rules in workflow order, each as its own process
through the CLI as makeflow would, and prints the number of terrain processes and their wall
time; with ``--before DIR`` it does the same first with the code checked out in DIR (on
PYTHONPATH), and prints the start-up a process costs: the time saved over the processes saved.

``cuts`` plans the 10^8 job's kind on a 4,000 x 4,000 DEM (``--cells``) and runs its max-pyramid
tasks, then its cuts, each as its own process, and prints their time and peak RSS against the
declarations; with ``--before DIR`` the same first with the code checked out in DIR.

``job`` plans the full 10^8-cell job and runs it with makeflow, reading every task's peak
RSS (VmHWM) from /proc as it runs, and prints the wall time, the planner's peak RSS and the
peak RSS of the tasks of each kind (``--cells 5000`` runs a quarter of it: the same tiles,
fewer of them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eemt-flow" / "benchmarks"
EEMT = str(Path(sys.executable).parent / "eemt-flow")
STATION = REPO / "examples" / "station_normals.csv"
STATION_ELEVATION_M = "2300"
#: The job the planning and the projection are for (issue 13).
JOB_ARGS = ["--climate", f"station:{STATION}", "--station-elevation", STATION_ELEVATION_M, "--model", "trad,topo",
            "--days", "1-365", "--step-minutes", "60"]


def lidar_job_args(cells: int) -> list[str]:
    """The 10^8-cell job (issue 13): EEMT-TOPO, station normals, a year at 60-minute steps, the automatic halo."""
    return ["--model", "topo", "--climate", f"station:{STATION}", "--station-elevation", STATION_ELEVATION_M,
            "--days", "1-365", "--step-minutes", "60", "--max-cells", str(cells * cells + 1)]


def synthetic_strip(rows: slice, cols: int, cell_m: float, relief_m: float) -> np.ndarray:
    """Ridges and valleys with ``relief_m`` of relief (about half from the long waves), float32 [m]."""
    y, x = np.mgrid[rows, 0:cols].astype(np.float64) * cell_m
    scale = relief_m / 1100.0
    km = 1000.0 * cell_m / 10.0  # wavelengths scale with the cell so the slopes stay realistic
    z = (1500.0 + scale * (400.0 * np.sin(x / (3.0 * km)) * np.cos(y / (2.3 * km))
                           + 150.0 * np.sin((x + 2.0 * y) / (0.9 * km))
                           + 40.0 * np.sin(x / (0.17 * km)) * np.cos(y / (0.23 * km))))
    return z.astype(np.float32)


def write_synthetic(path: Path, n: int, cell_m: float, relief_m: float, *, overviews: bool) -> Path:
    """An n x n synthetic DEM (UTM 13N), written in strips; cached by name."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:32613",
                   transform=from_origin(300000, 4400000, cell_m, cell_m), nodata=float("nan"), tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", predictor=3, BIGTIFF="YES")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r in range(0, n, 1024):
            h = min(1024, n - r)
            dst.write(synthetic_strip(slice(r, r + h), n, cell_m, relief_m)[np.newaxis], window=Window(0, r, n, h))
        if overviews:
            dst.build_overviews([4, 16, 64, 256], Resampling.average)
    tmp.replace(path)
    return path


def repeated_vrt(path: Path, source: Path, repeats: int) -> Path:
    """A VRT that lays ``source`` out ``repeats`` x ``repeats`` times (same georeference origin, shifted)."""
    with rasterio.open(source) as src:
        n, t, wkt = src.width, src.transform, src.crs.to_wkt()
    size = n * repeats
    sources = "".join(
        f"<SimpleSource><SourceFilename relativeToVRT=\"0\">{source}</SourceFilename><SourceBand>1</SourceBand>"
        f"<SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{n}\" ySize=\"{n}\"/>"
        f"<DstRect xOff=\"{j * n}\" yOff=\"{i * n}\" xSize=\"{n}\" ySize=\"{n}\"/></SimpleSource>"
        for i in range(repeats) for j in range(repeats))
    path.write_text(
        f"<VRTDataset rasterXSize=\"{size}\" rasterYSize=\"{size}\"><SRS>{wkt.replace('<', '&lt;')}</SRS>"
        f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>"
        f"<VRTRasterBand dataType=\"Float32\" band=\"1\"><NoDataValue>nan</NoDataValue>{sources}</VRTRasterBand>"
        f"</VRTDataset>")
    return path


def peak_rss_mib(pid: int, stop: threading.Event, out: list) -> None:
    """Poll a process's VmHWM until ``stop`` (the last value read)."""
    while not stop.is_set():
        try:
            text = Path(f"/proc/{pid}/status").read_text()
            out.append(int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024)
        except (OSError, AttributeError):
            pass
        time.sleep(0.2)


def run_measured(cmd: list[str], **kw) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak RSS [MiB] of the process itself, result)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    stop, samples = threading.Event(), []
    watcher = threading.Thread(target=peak_rss_mib, args=(proc.pid, stop, samples), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    watcher.join()
    return time.perf_counter() - start, max(samples, default=float("nan")), subprocess.CompletedProcess(
        cmd, proc.returncode, out, err)


def run_task_rules(work: Path, task: str, env: dict | None = None) -> tuple[int, float, float]:
    """Run a planned job's ``eemt-flow task TASK`` rules in workflow order, each its own process
    as makeflow would: (tasks, seconds, largest peak RSS [MiB])."""
    commands = [line.strip().removeprefix("LOCAL ").replace("$(EEMT)", EEMT)
                for line in (work / "workflow.mf").read_text().splitlines()
                if line.startswith("\t") and f" task {task} " in line]
    seconds, peak = 0.0, 0.0
    for command in commands:
        s, m, proc = run_measured(command.split(), cwd=work, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{command}: {proc.stderr}")
        seconds, peak = seconds + s, max(peak, m)
    return len(commands), seconds, peak


def run_pyramid(work: Path, env: dict | None = None) -> tuple[int, float, float]:
    """Run a planned job's max-pyramid rules (the cuts of a reduced halo read them)."""
    return run_task_rules(work, "max-pyramid", env)


def plan_measured(cmd: list[str], work: Path) -> tuple[float, float, dict]:
    """Run an ``eemt-flow plan`` command: (seconds, planner peak RSS [MiB], job.json)."""
    print(f"$ {' '.join(cmd)}")
    seconds, peak, proc = run_measured(cmd)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return seconds, peak, json.loads((work / "job.json").read_text())


def calibrate(halo_cells: int, cell_m: float, relief_m: float, days: int = 30) -> dict:
    """Seconds per core cell on this machine (all its threads), each measured on its own: the
    horizons of a 500 x 500 core with ``halo_cells`` of search distance (bytes, as the tasks
    store them), and the radiation of one day at 60-minute steps (from ``days`` days)."""
    from eemt_flow.dem.geography import cell_latitudes_deg
    from eemt_flow.solar import fast
    from eemt_flow.solar.fast_tile import SunReference, tile_horizons
    from eemt_flow.terrain.slope import slope_aspect

    core = 500
    n = core + 2 * halo_cells
    dem = synthetic_strip(slice(0, n), n, cell_m, relief_m).astype("float64")
    transform = from_origin(300000, 4400000, cell_m, cell_m)
    reference = SunReference.of_dem(dem, transform, "EPSG:32613")
    window = (slice(halo_cells, halo_cells + core), slice(halo_cells, halo_cells + core))
    common = dict(n_azimuths=360, resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD)
    # compile (or load the compiled kernels) before timing
    tile_horizons(dem[:120, :120], transform, reference, max_distance_m=20 * cell_m,
                  core=(slice(20, 100), slice(20, 100)), **common)
    t0 = time.perf_counter()
    horizons = tile_horizons(dem, transform, reference, max_distance_m=halo_cells * cell_m, core=window, **common)
    t1 = time.perf_counter()
    z = dem[window]
    slope, aspect = slope_aspect(z, (cell_m, cell_m))
    lat = cell_latitudes_deg("EPSG:32613", transform @ rasterio.Affine.translation(halo_cells, halo_cells), z.shape)
    run = dict(step_minutes=60.0, linke=3.0, albedo=0.2, horizon_resolution_rad=fast.R_SUN_HORIZON_RESOLUTION_RAD,
               reference_lat_deg=reference.lat_deg)
    list(fast.daily_radiation(z[:50, :50], slope[:50, :50], aspect[:50, :50], lat[:50, :50], horizons[:, :50, :50],
                              [1], **run))
    t2 = time.perf_counter()
    for _ in fast.daily_radiation(z, slope, aspect, lat, horizons, np.linspace(1, 365, days).round().astype(int), **run):
        pass
    t3 = time.perf_counter()
    cells = core * core
    return {"horizons_s_per_cell": (t1 - t0) / cells, "day_s_per_cell": (t3 - t2) / days / cells,
            "threads": os.cpu_count()}


def plan_vrt(args) -> None:
    source = write_synthetic(CACHE / f"tile_{args.source_cells}_10m.tif", args.source_cells, 10.0, args.relief_m,
                             overviews=True)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="eemt-scale-plan-"))
    workdir.mkdir(parents=True, exist_ok=True)
    vrt = repeated_vrt(workdir / "state.vrt", source, args.repeats)
    size = args.source_cells * args.repeats
    work = workdir / "work"
    cmd = [EEMT, "plan", "--dem", str(vrt), "--workdir", str(work), "--max-cells", str(size * size + 1),
           "--tile-size", str(args.tile_size), "--executor", args.executor, *JOB_ARGS,
           *(["--exchange-group", str(args.exchange_group)] if args.exchange_group else [])]
    seconds, peak, job = plan_measured(cmd, work)
    tiles = job["tiles"]
    halo_cells = round(job["halo_m"] / 10.0)
    halo = max(t["halo_height"] * t["halo_width"] for t in tiles)
    core = max(t["height"] * t["width"] for t in tiles)
    months = len(job["months"])
    print(f"DEM {size:,} x {size:,} = {size * size:.2e} cells (VRT of {args.repeats}x{args.repeats} copies of "
          f"{source.name}); scanned from {job['grid']['scanned']}")
    print(f"planning: {seconds:.1f} s, planner peak RSS {peak:.0f} MiB")
    print(f"tiles {len(tiles):,} of {args.tile_size} cells, halo {job['halo_m']:g} m ({halo_cells} cells); "
          f"rules {job['n_rules']:,}; largest declared task memory {job['largest_task_memory_mb']:,} MB")
    print(f"results: {job.get('results_form')}")
    declared = re.findall(r"^\.MAKEFLOW CATEGORY (\S+)\n(?:\.MAKEFLOW CORES \d+\n)?\.MAKEFLOW MEMORY (\d+)\n"
                          r"\.MAKEFLOW DISK (\d+)$", (work / "workflow.mf").read_text(), re.M)
    largest: dict[str, tuple[int, int]] = {}
    for category, memory, disk in declared:
        m, d = largest.get(category, (0, 0))
        largest[category] = (max(m, int(memory)), max(d, int(disk)))
    print("declared (memory MB, disk MB) by category: "
          + ", ".join(f"{c} {m:,}/{d:,}" for c, (m, d) in sorted(largest.items())))
    counts: dict[str, int] = {}
    category = None
    for line in (work / "workflow.mf").read_text().splitlines():
        if line.startswith(".MAKEFLOW CATEGORY "):
            category = line.split()[2]
        elif line.startswith("\t"):
            counts[category] = counts.get(category, 0) + 1
    print("rules by category: " + ", ".join(f"{c} {n:,}" for c, n in sorted(counts.items())))
    print(f"workflow.mf {(work / 'workflow.mf').stat().st_size / 1e6:.1f} MB, job.json "
          f"{(work / 'job.json').stat().st_size / 1e6:.1f} MB")
    # bytes per task, uncompressed float32 upper bounds
    print(f"per tile: cut reads {halo * 4 / 1e6:.0f} MB of the DEM and writes the same; solar-fast reads it and "
          f"writes {months * 3 * core * 4 / 1e6:.0f} MB (12 months x 3 bands of the core); each EEMT task reads "
          f"{(halo + months * 3 * core + core) * 4 / 1e6:.0f} MB and writes {2 * 30 * core * 4 / 1e6:.0f} MB")
    cal = calibrate(halo_cells, 10.0, args.relief_m)
    cells = sum(t["height"] * t["width"] for t in tiles)
    solar_cpu_h = cells * (cal["horizons_s_per_cell"] + 365 * cal["day_s_per_cell"]) * cal["threads"] / 3600
    print(f"calibration on this machine ({cal['threads']} threads): horizons {cal['horizons_s_per_cell'] * 1e6:.2f} "
          f"us/cell at {halo_cells} cells of search, radiation {cal['day_s_per_cell'] * 1e9:.1f} ns/cell-day")
    task_h = solar_cpu_h / len(tiles)
    wall = {w: max(solar_cpu_h / (16 * w), task_h) for w in (100, 1000)}
    print(f"projected solar stage: {solar_cpu_h:,.0f} CPU-hours, {task_h * 60:.1f} CPU-minutes a tile task; wall on "
          f"100 x 16-core workers {wall[100]:.2f} h, on 1,000 {wall[1000]:.2f} h (perfect packing; never less than one "
          f"task: {len(tiles):,} tasks)")
    if not args.workdir:
        shutil.rmtree(workdir)


def dispatch(args) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="eemt-scale-wq-"))
    # flat names: a Work Queue task's sandbox holds no directories it did not bring
    rules = "".join(f"o{i}.txt: \n\techo {i} > o{i}.txt\n\n" for i in range(args.tasks))
    (workdir / "flow.mf").write_text(rules)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workers = [subprocess.Popen(["work_queue_worker", "--single-shot", "-t", "60", "127.0.0.1", str(port)],
                                cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(args.workers)]
    start = time.perf_counter()
    proc = subprocess.run(["makeflow", "-T", "wq", "-p", str(port), "flow.mf"], cwd=workdir, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    for w in workers:
        w.terminate()
        w.wait()
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    done = len(list(workdir.glob("o*.txt")))
    rate = done / seconds
    print(f"{done:,} tasks through one Work Queue manager to {args.workers} local workers: {seconds:.1f} s, "
          f"{rate:.0f} tasks/s, {1000 / rate:.1f} ms per task")
    print(f"overhead against a tile task of {args.tile_task_s:g} s: {1 / rate / args.tile_task_s:.2e} of it")
    shutil.rmtree(workdir)


def job(args) -> None:
    name = f"lidar_{args.cells}_1m.tif" if args.cell_m == 1.0 else f"dem_{args.cells}_{args.cell_m:g}m_{args.relief_m:g}.tif"
    dem = write_synthetic(CACHE / name, args.cells, args.cell_m, args.relief_m, overviews=False)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="eemt-scale-job-")) / "work"
    seconds_plan, peak, job_json = plan_measured(
        [EEMT, "plan", "--dem", str(dem), "--workdir", str(work), *lidar_job_args(args.cells),
         *(["--threads-per-task", str(args.threads_per_task)] if args.threads_per_task else []),
         *(["--results", args.results] if args.results else []),
         *(["--tile-size", str(args.tile_size)] if args.tile_size else []),
         *(["--halo", str(args.halo_m)] if args.halo_m else []),
         *(["--model", args.model] if args.model else []),
         *(["--results-block", str(args.results_block)] if args.results_block else [])], work)
    print(f"planning: {seconds_plan:.1f} s, planner peak RSS {peak:.0f} MiB; {len(job_json['tiles'])} tiles, halo "
          f"{job_json['halo_m']:g} m, {job_json['n_rules']:,} rules; largest declared task memory "
          f"{job_json['largest_task_memory_mb']:,} MB", flush=True)
    # every task's peak RSS, read from /proc while makeflow runs them (each task is one process)
    cmd = [shutil.which("makeflow"), "-T", "local", "-j", str(os.cpu_count()), "--log-verbose", "workflow.mf"]
    print(f"$ (cd {work} && {' '.join(cmd)})", flush=True)
    peaks: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=task_peaks_mib, args=(stop, peaks), daemon=True)
    watcher.start()
    start = time.perf_counter()
    env = dict(os.environ, PATH=f"{Path(EEMT).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # the rules' $(EEMT)
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    failed = sorted(work.glob("makeflow.failed.*"))
    if proc.returncode != 0 or failed:
        raise SystemExit(f"makeflow failed ({len(failed)} failed rules): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    by_category: dict[str, list[float]] = {}
    for task, peak in peaks.items():
        by_category.setdefault(task.split()[0], []).append(peak)
    print(f"wall time: plan {seconds_plan / 60:.1f} min + makeflow {seconds / 60:.1f} min")
    for category, values in sorted(by_category.items()):
        print(f"  {category:15s} {len(values):5d} tasks, peak RSS max {max(values):7.0f} MiB, median "
              f"{sorted(values)[len(values) // 2]:7.0f} MiB")
    print(f"largest task peak RSS: {max(peaks.values()):.0f} MiB ({max(peaks, key=peaks.get)})")
    print("task time by category (from makeflow's log; -j tasks at a time):")
    for category, seconds in sorted(category_seconds(work / "workflow.mf.makeflowlog").items()):
        print(f"  {category:17s} {len(seconds):5d} tasks, {sum(seconds) / 60:7.1f} task-min, mean {np.mean(seconds):6.1f} s, "
              f"max {max(seconds):6.1f} s")


def category_seconds(log: Path) -> dict[str, list[float]]:
    """The run time [s] of every rule of a makeflow log, by category (RUNNING to COMPLETE)."""
    category, started, seconds = {}, {}, {}
    for line in log.read_text().splitlines():
        if line.startswith("# CATEGORY"):
            _, node, name = line.split("\t")[:3]
            category[int(node.split()[-1])] = name
        elif line[:1].isdigit():
            stamp_us, node, state = (int(v) for v in line.split()[:3])
            if state == 1:  # RUNNING
                started[node] = stamp_us / 1e6
            elif state == 2 and node in started:  # COMPLETE
                seconds.setdefault(category.get(node, "?"), []).append(stamp_us / 1e6 - started[node])
    return seconds


def task_peaks_mib(stop: threading.Event, peaks: dict) -> None:
    """Until ``stop``: the largest VmHWM [MiB] of every running ``eemt-flow task`` process, by
    "TASK TILE [STAGE]" (its arguments after ``task``)."""
    while not stop.is_set():
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc_dir / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if "task" not in argv or not any(a.endswith("eemt-flow") for a in argv):
                    continue
                rest = argv[argv.index("task") + 1:]
                key = " ".join([rest[0]] + [v for k, v in zip(rest, rest[1:]) if k in ("--tile", "--stage", "--year",
                                                                                         "--tiles", "--group")])
                hwm = int(re.search(r"VmHWM:\s+(\d+)", (proc_dir / "status").read_text()).group(1)) / 1024
            except (OSError, AttributeError, IndexError, ValueError):
                continue
            peaks[key] = max(peaks.get(key, 0.0), hwm)
        time.sleep(0.2)


def largest_tile(args) -> None:
    dem = write_synthetic(CACHE / f"lidar_{args.cells}_1m.tif", args.cells, 1.0, args.relief_m, overviews=False)
    workdir = Path(tempfile.mkdtemp(prefix="eemt-scale-tile-"))
    work = workdir / "work"
    cmd = [EEMT, "plan", "--dem", str(dem), "--workdir", str(work), *lidar_job_args(args.cells)]
    seconds, peak, job = plan_measured(cmd, work)
    tiles = job["tiles"]
    tile = max(tiles, key=lambda t: (t["halo_height"] * t["halo_width"], t["height"] * t["width"]))
    from eemt_flow.workflow.makeflow import job_resources

    n_az = round(360 / job["parameters"]["horizon_step_deg"])
    declared = {category: r["memory_mb"] for category, r in job_resources(job, n_az).items()}
    print(f"planning: {seconds:.1f} s, planner peak RSS {peak:.0f} MiB; {len(tiles)} tiles, halo {job['halo_m']:g} m, "
          f"rules {job['n_rules']:,}; largest declared task memory {job['largest_task_memory_mb']:,} MB")
    print(f"largest tile {tile['name']}: core {tile['height']} x {tile['width']}, halo window "
          f"{tile['halo_height']} x {tile['halo_width']} cells")
    results = {}
    n, seconds, peak = run_pyramid(work)
    if n:
        print(f"max pyramid of the DEM: {n} region tasks, {seconds:.1f} s, peak RSS {peak:.0f} MiB", flush=True)
    for task in ("cut-dem", "solar-fast"):
        seconds, peak, proc = run_measured([EEMT, "task", task, "--job", "job.json", "--tile", tile["name"]], cwd=work)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        results[task] = (seconds, peak)
        print(f"task {task}: {seconds:.1f} s, peak RSS {peak:.0f} MiB", flush=True)
    cut = [Path(tile["files"][k]) for k in ("dem", "halo") if tile["files"].get(k)]
    cut_mb = sum((p if p.is_absolute() else work / p).stat().st_size for p in cut) / 1e6
    print(f"the tile's cut ({', '.join(p.name for p in cut)}): {cut_mb:.1f} MB on disk; all {len(tiles)} tiles' "
          f"cuts about {cut_mb * len(tiles) / 1e3:.1f} GB")
    print(f"declared MEMORY by category [MB]: {declared}")
    fast_s = results["solar-fast"][0]
    print(f"projected solar stage of the whole job on this machine, one 2-thread task at a time: "
          f"{len(tiles)} x {fast_s:.0f} s = {len(tiles) * fast_s / 60:.0f} min")
    shutil.rmtree(workdir)


def _declared_memory(workflow: Path) -> dict[str, int]:
    """MAKEFLOW MEMORY by category [MB] of a rendered workflow."""
    declared: dict[str, int] = {}
    for block in workflow.read_text().split(".MAKEFLOW CATEGORY ")[1:]:
        memory = re.search(r"^\.MAKEFLOW MEMORY (\d+)", block, re.M)
        if memory:
            declared[block.split()[0]] = int(memory.group(1))
    return declared


def _strips_against_one(work: Path, name: str, function: str, call: str, rows: int, height: int, outputs: list[str],
                        declared_mb: int) -> None:
    """Run a tile task in its default strips of ``rows`` rows, then in one strip of the whole core,
    each as its own process; print wall time, peak RSS and whether the outputs are the same."""
    values = {}
    for form, strip_rows in (("strips", rows), ("one strip", height)):
        code = (f"from pathlib import Path; from eemt_flow.workflow.tasks import {function}; "
                f"{function}({call}, strip_rows={strip_rows})")
        seconds, peak, proc = run_measured([sys.executable, "-c", code], cwd=work,
                                           env=dict(os.environ, GDAL_CACHEMAX="64"))
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        values[form] = []
        for path in outputs:
            with rasterio.open(work / path) as src:
                values[form].append(src.read())
        print(f"{name} task, {form} of {strip_rows} rows: {seconds:.1f} s, peak RSS {peak:.0f} MiB "
              f"(declared for the strips: {declared_mb} MB)", flush=True)
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(values["strips"], values["one strip"]))
    print(f"{name}: the strips' files hold the same values as one strip's: {same}", flush=True)


def _solar_strips(args, common: list[str], work: Path) -> None:
    """solar-fast on the centre tile of 3 x 3, with its full halo (the state plan's) all round."""
    from eemt_flow.workflow.makeflow import fast_strip_rows

    n, big = args.cells, 3 * args.cells
    dem = write_synthetic(CACHE / f"dem_{big}_10m_{args.relief_m:g}.tif", big, 10.0, args.relief_m, overviews=False)
    _, _, job = plan_measured([EEMT, "plan", "--dem", str(dem), "--workdir", str(work), *common,
                               "--halo", str(args.halo_m), "--max-cells", str(big * big + 1)], work)
    tile = next(t for t in job["tiles"] if (t["row"], t["col"]) == (n, n))
    print(f"tile {tile['name']}: core {tile['height']} x {tile['width']}, halo window "
          f"{tile['halo_height']} x {tile['halo_width']}", flush=True)
    run_pyramid(work)
    seconds, peak, proc = run_measured([EEMT, "task", "cut-dem", "--job", "job.json", "--tile", tile["name"]], cwd=work)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    n_az = round(360 / job["parameters"]["horizon_step_deg"])
    files = tile["files"]
    _strips_against_one(work, "solar-fast", "solar_fast_task", f"Path('job.json'), {tile['name']!r}",
                        fast_strip_rows(tile["width"], n_az, False, 1), tile["height"],
                        [files["sky_view"], *files["solar"].values()], _declared_memory(work / "workflow.mf")["solar-fast"])


def _eemt_strips(args, common: list[str], work: Path) -> None:
    """EEMT on a one-tile job, run through first (it needs the tile's terrain and monthly sums), a short halo."""
    from eemt_flow.workflow.makeflow import eemt_strip_rows

    n = args.cells
    dem = write_synthetic(CACHE / f"dem_{n}_10m_{args.relief_m:g}.tif", n, 10.0, args.relief_m, overviews=False)
    _, _, job = plan_measured([EEMT, "plan", "--dem", str(dem), "--workdir", str(work), *common, "--halo", "300",
                               "--max-cells", str(n * n + 1)], work)
    env = dict(os.environ, PATH=f"{Path(EEMT).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([shutil.which("makeflow"), "-T", "local", "-j", "1", "workflow.mf"], cwd=work,
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0 or sorted(work.glob("makeflow.failed.*")):
        raise SystemExit(f"makeflow failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    (tile,) = job["tiles"]
    _strips_against_one(work, "eemt", "eemt_task", f"Path('job.json'), {tile['name']!r}, 'normals'",
                        eemt_strip_rows(tile["width"], 2), tile["height"], [tile["files"]["eemt"]["normals"]],
                        _declared_memory(work / "workflow.mf")["eemt"])


def strips(args) -> None:
    days = "15,46,74,105,135,166,196,227,258,288,319,349"
    common = ["--climate", f"station:{STATION}", "--station-elevation", STATION_ELEVATION_M, "--model", "trad,topo",
              "--days", days, "--step-minutes", "60", "--tile-size", str(args.cells)]
    workdir = Path(tempfile.mkdtemp(prefix="eemt-scale-strips-"))
    runs = {"solar-fast": _solar_strips, "eemt": _eemt_strips}
    for task in args.tasks.split(","):
        runs[task](args, common, workdir / task)
    shutil.rmtree(workdir)


def _terrain_processes(dem: Path, work: Path, tile_size: int, env: dict) -> tuple[int, float]:
    """Plan a job, run its cuts and its terrain rules in order, each its own process: (terrain processes, seconds)."""
    days = "15,46,74,105,135,166,196,227,258,288,319,349"
    proc = subprocess.run([EEMT, "plan", "--dem", str(dem), "--workdir", str(work), "--climate", f"station:{STATION}",
                           "--station-elevation", STATION_ELEVATION_M, "--model", "topo", "--days", days,
                           "--halo", "300", "--tile-size", str(tile_size), "--quiet"], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    commands = [line.strip().removeprefix("LOCAL ").replace("$(EEMT)", EEMT)
                for line in (work / "workflow.mf").read_text().splitlines()
                if line.startswith("\t") and any(f" task {t} " in line for t in ("max-pyramid", "cut-dem", "terrain-stage"))]
    n, seconds = 0, 0.0
    for command in commands:
        start = time.perf_counter()
        proc = subprocess.run(command.split(), cwd=work, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{command}: {proc.stderr}")
        if " terrain-stage " in command:
            n, seconds = n + 1, seconds + time.perf_counter() - start
    return n, seconds


def cuts(args) -> None:
    """The job's cuts (and, after, the max-pyramid tasks they read), each its own process, with the
    code of ``--before`` and of this checkout, one after the other on the same DEM."""
    dem = write_synthetic(CACHE / f"lidar_{args.cells}_1m.tif", args.cells, 1.0, args.relief_m, overviews=False)
    workdir = Path(tempfile.mkdtemp(prefix="eemt-scale-cuts-"))
    totals = {}
    for label, path in (("before", args.before), ("after", REPO)):
        if not path:
            continue
        env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
        work = workdir / label
        proc = subprocess.run([EEMT, "plan", "--dem", str(dem), "--workdir", str(work), *lidar_job_args(args.cells),
                               "--quiet"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        job = json.loads((work / "job.json").read_text())
        n_pyramid, pyramid_s, pyramid_peak = run_pyramid(work, env)
        n_cuts, cut_s, cut_peak = run_task_rules(work, "cut-dem", env)
        declared = _declared_memory(work / "workflow.mf")
        totals[label] = pyramid_s + cut_s
        window = max(t["halo_height"] * t["halo_width"] for t in job["tiles"])
        print(f"{label}: {len(job['tiles'])} tiles (halo {job['halo_m']:g} m, windows of up to {window:,} cells); "
              f"{n_pyramid} max-pyramid tasks {pyramid_s:.1f} s, peak {pyramid_peak:.0f} MiB (declared "
              f"{declared.get('pyramid', 0)} MB); {n_cuts} cuts {cut_s:.1f} s ({cut_s / n_cuts:.2f} s a "
              f"cut), peak {cut_peak:.0f} MiB (declared {declared['cut']} MB); in all {totals[label]:.1f} s", flush=True)
    if len(totals) == 2:
        print(f"before / after: {totals['before'] / totals['after']:.2f}")
    shutil.rmtree(workdir)


def terrain_processes(args) -> None:
    dem = write_synthetic(CACHE / f"dem_{args.cells}_10m_{args.relief_m:g}.tif", args.cells, 10.0, args.relief_m,
                          overviews=False)
    workdir = Path(tempfile.mkdtemp(prefix="eemt-scale-terrain-"))
    runs = {}
    for label, path in (("before", args.before), ("after", REPO)):  # after: this checkout's code
        if not path:
            continue
        env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
        runs[label] = _terrain_processes(dem, workdir / label, args.tile_size, env)
        n, seconds = runs[label]
        print(f"{label}: {n} terrain processes, {seconds:.1f} s ({seconds / n:.2f} s a process)", flush=True)
    if len(runs) == 2:
        (n0, t0), (n1, t1) = runs["before"], runs["after"]
        startup = (t0 - t1) / (n0 - n1)
        print(f"start-up: ({t0:.1f} - {t1:.1f}) s / ({n0} - {n1}) processes = {startup:.2f} s a process; "
              f"{n1} x {startup:.2f} s = {100 * n1 * startup / t1:.1f} % of the terrain's {t1:.1f} s after, "
              f"{100 * n0 * startup / t0:.1f} % before")
    shutil.rmtree(workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("plan-vrt")
    p.add_argument("--source-cells", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--tile-size", type=int, default=2000)
    p.add_argument("--relief-m", type=float, default=1100.0)
    p.add_argument("--executor", default="wq", help="passed to plan: where the tasks would run (default wq)")
    p.add_argument("--workdir", help="keep the plan here (for benchmarks/makespan.py); default a temporary one")
    p.add_argument("--exchange-group", type=int, help="passed to plan: tiles per side of a terrain exchange group")
    p.set_defaults(func=plan_vrt)
    d = sub.add_parser("dispatch")
    d.add_argument("--tasks", type=int, default=10_000)
    d.add_argument("--workers", type=int, default=4)
    d.add_argument("--tile-task-s", type=float, default=60.0, help="a typical tile task [s], for the ratio")
    d.set_defaults(func=dispatch)
    j = sub.add_parser("job")
    j.add_argument("--cells", type=int, default=10_000)
    j.add_argument("--relief-m", type=float, default=300.0)
    j.add_argument("--workdir")
    j.add_argument("--threads-per-task", type=int, help="passed to plan (default: the planner's)")
    j.add_argument("--results", choices=["cog", "vrt", "auto"], help="passed to plan (default: auto)")
    j.add_argument("--cell-m", type=float, default=1.0, help="cell size of the synthetic DEM [m] (default 1: LiDAR)")
    j.add_argument("--tile-size", type=int, help="passed to plan")
    j.add_argument("--model", help="passed to plan after the job's own --model topo (e.g. trad,topo, the state plan's)")
    j.add_argument("--halo-m", type=float, help="passed to plan (default: the automatic halo)")
    j.add_argument("--results-block", type=int, help="passed to plan: the VRT form's block edge")
    j.set_defaults(func=job)
    t = sub.add_parser("largest-tile")
    t.add_argument("--cells", type=int, default=10_000)
    t.add_argument("--relief-m", type=float, default=300.0)
    t.set_defaults(func=largest_tile)
    e = sub.add_parser("strips")
    e.add_argument("--cells", type=int, default=2000)
    e.add_argument("--relief-m", type=float, default=1100.0)
    e.add_argument("--halo-m", type=float, default=10_000.0, help="the halo (default the state plan's)")
    e.add_argument("--tasks", default="solar-fast,eemt", help="which tasks (default solar-fast,eemt)")
    e.set_defaults(func=strips)
    c = sub.add_parser("cuts")
    c.add_argument("--cells", type=int, default=4000)
    c.add_argument("--relief-m", type=float, default=300.0)
    c.add_argument("--before", help="a checkout of the code to compare with (put on PYTHONPATH)")
    c.set_defaults(func=cuts)
    tp = sub.add_parser("terrain-processes")
    tp.add_argument("--cells", type=int, default=2000)
    tp.add_argument("--tile-size", type=int, default=500)
    tp.add_argument("--relief-m", type=float, default=1100.0)
    tp.add_argument("--before", help="a checkout of the code to compare with (put on PYTHONPATH)")
    tp.set_defaults(func=terrain_processes)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
