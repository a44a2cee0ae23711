"""Running web jobs: a bounded pool of threads, each calling :func:`run_job` on one job.

The queue is the database: a free thread claims the oldest queued job. Cancelling sets
the job's :class:`threading.Event`, which makes :func:`run_workflow` send makeflow SIGINT;
makeflow stops its tasks and closes its log, so the same work directory resumes later.
This module also owns the data-directory layout and the retention cleanup.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from eemt_flow.errors import UserError
from eemt_flow.processes import end_run_processes
from eemt_flow.web.store import CANCELLED, FAILED, SUCCEEDED, JobRecord, JobStore
from eemt_flow.workflow.eemt_inputs import USER_RASTERS
from eemt_flow.workflow.execute import MAKEFLOW_LOG, MAKEFLOW_OUTPUT, Progress, run_job
from eemt_flow.workflow.plan import Plan
from eemt_flow.workflow.spec import YAML_ALIASES, JobSpec, build_spec
from eemt_flow.workflow.tasklog import task_attempts

log = logging.getLogger("eemt_flow.web")

#: Job parameters the client may set; everything else (paths, executor) is the server's.
SOLAR_PARAMETERS = ("days", "step_minutes", "linke", "albedo", "tile_size_cells", "halo_m", "horizon_step_deg",
                    "horizon_method", "keep_daily", "reproject")
#: EEMT parameters the client may set; they apply only with a climate source.
EEMT_PARAMETERS = ("models", "years", "station_elevation_m", "lapse_tmin_c_per_km", "lapse_tmax_c_per_km",
                   "climate_resampling", "model_parameters", "radiation")
#: Optional raster uploads (form field = job-file key = CLI option with _ for -) -> what they are.
RASTER_FIELDS = {field: what for field, what, _, _ in USER_RASTERS.values()}
#: Climate sources a web job may use: ``station`` (normals CSV uploaded with the job) or ``daymet``
#: (fetched with the server's own Earthdata credentials into the data dir's ``cache/``).
WEB_CLIMATES = ("station", "daymet")
#: Seconds makeflow gets to stop after SIGINT before its process group is killed.
MAKEFLOW_STOP_TIMEOUT_S = 60.0
#: Bytes of the makeflow output shown as the log tail.
LOG_TAIL_BYTES = 8192
#: Seconds between two readings of a running job's Makeflow log for the metrics: the whole
#: log is parsed each time, and a large workflow's log grows at every poll.
ATTEMPTS_INTERVAL_S = 5.0


@dataclass(frozen=True)
class DataDir:
    """The service's data directory: ``jobs.sqlite3``, ``uploads/``, ``jobs/<id>/``, ``temp/``, ``cache/``."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> "DataDir":
        d = cls(Path(root).resolve())
        for sub in (d.uploads, d.jobs, d.temp, d.cache):
            sub.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite3"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def temp(self) -> Path:
        return self.root / "temp"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def upload_of(self, job_id: str) -> Path:
        return self.uploads / f"{job_id}.tif"

    def climate_csv_of(self, job_id: str) -> Path:
        """The station normals CSV uploaded with a job (server-generated name)."""
        return self.uploads / f"{job_id}.station.csv"

    def raster_of(self, job_id: str, field: str) -> Path:
        """A raster uploaded with a job in the form field ``field`` (one of RASTER_FIELDS; server-generated name)."""
        if field not in RASTER_FIELDS:
            raise ValueError(f"{field!r} is not a raster field")
        return self.uploads / f"{job_id}.{field}.tif"

    def workdir_of(self, job_id: str) -> Path:
        return self.jobs / job_id

    def inside(self, path: Path, parent: Path) -> Path | None:
        """``path`` resolved, when it lies strictly below ``parent`` (inside this data dir); else None."""
        parent = parent.resolve()
        if parent != self.root and self.root not in parent.parents:
            return None
        resolved = Path(path).resolve()
        return resolved if parent in resolved.parents else None

    def remove_job_files(self, job_id: str) -> None:
        """Delete a job's work directory and upload; never anything outside the data dir.

        A symbolic link is removed itself, never followed.
        """
        files = [(self.workdir_of(job_id), self.jobs), (self.upload_of(job_id), self.uploads),
                 (self.climate_csv_of(job_id), self.uploads)]
        files += [(self.raster_of(job_id, field), self.uploads) for field in RASTER_FIELDS]
        for path, parent in files:
            if path.parent.resolve() != parent.resolve():
                continue  # the id was not a plain name
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir() and self.inside(path, parent) is not None:
                shutil.rmtree(path)


@dataclass(frozen=True)
class ExecutorSettings:
    """How jobs run: ``local`` makeflow, or Work Queue on ``wq_port`` (+ slot) with a password file."""

    executor: str = "local"
    wq_port: int = 9123
    password_file: Path | None = None
    max_concurrent_jobs: int = 1
    #: Workers the operator runs for this service (a gauge for the fewer-workers alert); 0: unknown.
    expected_workers: int = 0

    def ports(self) -> list[int]:
        """Work Queue ports in use: one per concurrent job, so each makeflow has its own manager."""
        return [self.wq_port + slot for slot in range(self.max_concurrent_jobs)] if self.executor == "wq" else []


def _api_name(flag: str) -> str:
    name = flag.replace("-", "_")
    return YAML_ALIASES.get(name, name)


def api_field(message: str) -> str:
    """Turn build_spec's ``--tile-size: ...`` into the API's ``tile_size_cells: ...`` (flags named inside too)."""
    if message.startswith("--") and ":" in message:
        flag, rest = message.split(":", 1)
        message = _api_name(flag[2:]) + ":" + rest
    return re.sub(r"(?<![\w-])--([a-z][a-z-]*)", lambda m: _api_name(m.group(1)), message)


def job_spec(parameters: dict, *, dem: Path, workdir: Path, executor: ExecutorSettings, slot: int = 0,
             climate_csv: Path | None = None, cache_dir: Path | None = None,
             rasters: dict[str, Path] | None = None) -> JobSpec:
    """The JobSpec of a web job: the client's parameters plus the server's paths and executor.

    ``parameters["climate"]`` is ``"none"`` (or absent, as in rows of older versions: solar
    radiation only), ``"station"`` (the normals CSV is ``climate_csv``, a server path) or
    ``"daymet"`` (DAYMET responses are cached in ``cache_dir``; credentials come from the
    server's environment). ``rasters``: the uploaded user rasters, RASTER_FIELDS -> server
    path; they become the job's ``ndvi``, ``canopy_height``, ``wind_speed`` and ``npp``, as
    the same options of the command line and keys of a job file.
    """
    values = {k: parameters[k] for k in SOLAR_PARAMETERS if parameters.get(k) is not None}
    climate = parameters.get("climate") or "none"
    rasters = rasters or {}
    if rasters and climate not in WEB_CLIMATES:
        raise UserError(f"{', '.join(sorted(rasters))}: the rasters are used only by EEMT; choose climate "
                        f"{' or '.join(WEB_CLIMATES)}")
    if climate in WEB_CLIMATES:
        values.update({k: parameters[k] for k in EEMT_PARAMETERS if parameters.get(k) is not None})
        values.update({field: str(path) for field, path in rasters.items()})
        if climate == "station":
            if climate_csv is None:
                raise UserError("climate 'station' needs the station normals CSV")
            values["climate"] = f"station:{climate_csv}"
        else:
            values["climate"] = "daymet"
            if cache_dir is not None:
                values["cache_dir"] = str(cache_dir)
    elif climate != "none":
        raise UserError(f"climate: '{climate}' is not one of none, {', '.join(WEB_CLIMATES)}")
    values.update(dem=str(dem), workdir=str(workdir), executor=executor.executor)
    if executor.executor == "wq":
        values.update(port=executor.wq_port + slot, password_file=str(executor.password_file))
    else:
        values["jobs"] = max(1, (os.cpu_count() or 1) // executor.max_concurrent_jobs)
    try:
        return build_spec(values)
    except UserError as exc:
        raise UserError(api_field(str(exc))) from None


def uploaded_rasters(parameters: dict) -> list[str]:
    """The raster fields a job was submitted with (its row's ``rasters``: field -> the client's file name)."""
    return [f for f in (parameters.get("rasters") or {}) if f in RASTER_FIELDS]


def log_tail(workdir: Path, max_bytes: int = LOG_TAIL_BYTES) -> str:
    """The end of the job's makeflow output (whole lines)."""
    path = Path(workdir) / MAKEFLOW_OUTPUT
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if len(text.encode()) >= max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]
    return text


def makeflow_processes_in(workdir: Path) -> list[int]:
    """PIDs of makeflow processes whose working directory is ``workdir`` (Linux /proc)."""
    target = str(Path(workdir).resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != target:
                continue
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if os.path.basename(argv0.decode(errors="replace")) == "makeflow":
            pids.append(int(entry.name))
    return pids


def stop_orphan_makeflow(workdir: Path, timeout_s: float = MAKEFLOW_STOP_TIMEOUT_S) -> None:
    """Stop a makeflow left running in ``workdir`` by a killed server, so a resume does not race it.

    makeflow runs in its own session (it outlives a SIGKILLed server); SIGINT makes it stop its
    tasks and close its log, like a cancel.
    """
    for pid in makeflow_processes_in(workdir):
        log.warning("stopping makeflow %d left running in %s by a previous server", pid, workdir)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Its tasks, GRASS modules and orted, wherever they were re-parented.
    end_run_processes(workdir)


class TaskAttemptRecorder:
    """Copies a job's rule attempts from its Makeflow log into the store (for the metrics)
    whenever the log has grown; a failure here is logged and never stops the job."""

    def __init__(self, store: JobStore, job_id: str, log_path: Path):
        self.store, self.job_id, self.log_path = store, job_id, Path(log_path)
        self._size = -1
        self._read_at: float | None = None

    def update(self, *, now: bool = False) -> None:
        """Record what the log holds, at most every ATTEMPTS_INTERVAL_S unless ``now``."""
        if not now and self._read_at is not None and time.monotonic() - self._read_at < ATTEMPTS_INTERVAL_S:
            return
        try:
            size = self.log_path.stat().st_size
            if size != self._size:
                self._size = size
                self._read_at = time.monotonic()
                self.store.record_task_attempts(self.job_id, task_attempts(self.log_path))
        except FileNotFoundError:
            pass
        except Exception:
            log.exception("job %s: cannot record its task attempts for the metrics", self.job_id)


class Runner:
    """At most ``max_concurrent_jobs`` jobs run at once; the rest wait in the queue."""

    def __init__(self, store: JobStore, data: DataDir, executor: ExecutorSettings, *,
                 keep_succeeded_days: float, keep_failed_days: float, retention_interval_s: float = 3600.0):
        self.store = store
        self.data = data
        self.executor = executor
        self.keep_succeeded_days = keep_succeeded_days
        self.keep_failed_days = keep_failed_days
        self.retention_interval_s = retention_interval_s
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._cancel_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Recover what a stopped server left, clean up, then start the job threads."""
        self.recover()
        self.remove_expired()
        for slot in range(self.executor.max_concurrent_jobs):
            t = threading.Thread(target=self._work, args=(slot,), name=f"eemt-job-{slot}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._retention_loop, name="eemt-retention", daemon=True)
        t.start()
        self._threads.append(t)

    def shutdown(self, timeout_s: float = 150.0) -> None:
        """Stop taking jobs, stop running makeflows cleanly and leave their jobs queued to resume."""
        self._stopping.set()
        with self._lock:
            events = list(self._cancel_events.values())
        for event in events:
            event.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def recover(self) -> None:
        """Jobs a stopped server left queued or running are resumed, or failed with a reason."""
        for rec in self.store.active():
            workdir = self.data.workdir_of(rec.id)
            if rec.state == "running":
                stop_orphan_makeflow(workdir)
            if rec.delete_requested:
                self.data.remove_job_files(rec.id)
                self.store.delete(rec.id)
            elif rec.cancel_requested:
                self.store.finish(rec.id, CANCELLED, note="cancelled; the server stopped before makeflow did")
            elif not self.data.upload_of(rec.id).is_file():
                self.store.finish(rec.id, FAILED, error="the server stopped and the uploaded DEM is gone; submit the job again")
            elif rec.parameters.get("climate") == "station" and not self.data.climate_csv_of(rec.id).is_file():
                self.store.finish(rec.id, FAILED, error="the server stopped and the uploaded station CSV is gone; "
                                                        "submit the job again")
            elif (gone := [f for f in uploaded_rasters(rec.parameters)
                           if not self.data.raster_of(rec.id, f).is_file()]):
                self.store.finish(rec.id, FAILED, error=f"the server stopped and the uploaded raster(s) "
                                                        f"{', '.join(gone)} are gone; submit the job again")
            elif rec.state == "running":
                self.store.requeue(rec.id, "the server stopped while this job ran; resuming from the Makeflow log")
                log.info("job %s will resume from its Makeflow log", rec.id)

    # -- queue -----------------------------------------------------------------------------

    def wake(self) -> None:
        """A job was queued: let an idle thread pick it up."""
        with self._wake:
            self._wake.notify()

    def cancel(self, job_id: str, *, delete: bool = False) -> bool:
        """Ask a running job to stop; False if it is not running."""
        if not self.store.request_cancel(job_id, delete=delete):
            return False
        with self._lock:
            event = self._cancel_events.get(job_id)
        if event is not None:
            event.set()
        return True

    def _work(self, slot: int) -> None:
        while not self._stopping.is_set():
            try:
                rec = self.store.claim_next()
            except Exception:
                log.exception("cannot read the job queue")
                rec = None
            if rec is None:
                with self._wake:
                    self._wake.wait(timeout=2.0)
                continue
            self._run(rec, slot)

    def _run(self, rec: JobRecord, slot: int) -> None:
        if self._stopping.is_set():
            self.store.requeue(rec.id, "the server stopped before this job started")
            return
        event = threading.Event()
        with self._lock:
            self._cancel_events[rec.id] = event
        # A cancel may have landed between claiming the job and registering its event.
        fresh = self.store.get(rec.id)
        if fresh is None or fresh.cancel_requested or self._stopping.is_set():
            event.set()
        workdir = self.data.workdir_of(rec.id)
        last = [None]
        attempts = TaskAttemptRecorder(self.store, rec.id, workdir / MAKEFLOW_LOG)

        def planned(p: Plan) -> None:
            self.store.set_results(rec.id, [r.removeprefix("results/") for r in p.job["results"]])

        def progressed(pr: Progress) -> None:
            attempts.update()
            if (pr.done, pr.total) != last[0]:
                last[0] = (pr.done, pr.total)
                self.store.set_progress(rec.id, pr.done, pr.total)

        progress = None
        try:
            rasters = {f: self.data.raster_of(rec.id, f) for f in uploaded_rasters(rec.parameters)}
            spec = job_spec(rec.parameters, dem=self.data.upload_of(rec.id), workdir=workdir,
                            executor=self.executor, slot=slot, climate_csv=self.data.climate_csv_of(rec.id),
                            cache_dir=self.data.cache, rasters=rasters)
            log.info("job %s: running in %s", rec.id, workdir)
            _plan, progress = run_job(spec, on_planned=planned, on_progress=progressed, cancel=event)
            attempts.update(now=True)  # before the job is seen to end: its metrics are complete then
        except UserError as exc:
            self._end(rec.id, FAILED, error=self._public(rec.id, str(exc)))
        except Exception as exc:  # never leave a job "running" behind
            log.error("job %s failed:\n%s", rec.id, traceback.format_exc())
            self._end(rec.id, FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            if progress.state == "complete":
                self._end(rec.id, SUCCEEDED)
            elif progress.state == "cancelled" or event.is_set():
                self._cancelled(rec.id, progress)
            else:
                self._end(rec.id, FAILED, error=f"workflow {progress.state} ({progress.done}/{progress.total} tasks "
                                                f"done); see the makeflow log below")
        finally:
            attempts.update(now=True)  # after an error too (nothing new: nothing written)
            with self._lock:
                self._cancel_events.pop(rec.id, None)

    def _public(self, job_id: str, message: str) -> str:
        """A message for clients: the job's server paths replaced by what the client knows them as."""
        names = [(self.data.climate_csv_of(job_id), "the station CSV"), (self.data.upload_of(job_id), "the DEM")]
        names += [(self.data.raster_of(job_id, f), f"the {f} raster") for f in RASTER_FIELDS]
        for path, name in names + [(self.data.root, "<data dir>")]:
            message = message.replace(str(path), name)
        return message

    def _cancelled(self, job_id: str, progress: Progress) -> None:
        rec = self.store.get(job_id)
        if rec is None:
            return
        if rec.cancel_requested:
            self._end(job_id, CANCELLED, note=f"cancelled after {progress.done}/{progress.total} tasks")
        else:  # stopped by server shutdown, not by the user
            self.store.requeue(job_id, f"interrupted by server shutdown after {progress.done}/{progress.total} tasks; "
                                       "resumes from the Makeflow log at the next start")
            log.info("job %s interrupted by shutdown; it resumes at the next start", job_id)

    def _end(self, job_id: str, state: str, *, error: str | None = None, note: str | None = None) -> None:
        rec = self.store.get(job_id)
        if rec is not None and rec.delete_requested:
            self.data.remove_job_files(job_id)
            self.store.delete(job_id)
            return
        self.store.finish(job_id, state, error=error, note=note)
        log.info("job %s %s%s", job_id, state, f": {error}" if error else "")

    # -- retention -------------------------------------------------------------------------

    def _retention_loop(self) -> None:
        while not self._stopping.wait(self.retention_interval_s):
            try:
                self.remove_expired()
            except Exception:
                log.exception("retention cleanup failed")

    def remove_expired(self) -> list[str]:
        """Remove files of finished jobs older than the configured ages; the rows stay, marked purged."""
        now = time.time()
        removed = []
        for states, days in (((SUCCEEDED,), self.keep_succeeded_days), ((FAILED, CANCELLED), self.keep_failed_days)):
            for rec in self.store.finished_before(states, now - days * 86400.0):
                self.data.remove_job_files(rec.id)
                self.store.mark_purged(rec.id)
                removed.append(rec.id)
                log.info("retention: removed the files of %s job %s", rec.state, rec.id)
        self._remove_stale_staging()
        return removed

    def _remove_stale_staging(self) -> None:
        """plan() builds work dirs under ``jobs/.<id>.planning-*``; a killed server may leave one."""
        busy = set()
        with self._lock:
            busy.update(self._cancel_events)
        for path in self.data.jobs.glob(".*.planning-*"):
            job_id = path.name[1:].split(".planning-", 1)[0]
            target = self.data.inside(path, self.data.jobs)
            if job_id not in busy and target is not None and target.is_dir() and not path.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
