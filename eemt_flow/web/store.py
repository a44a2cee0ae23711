"""The web service's job store: one SQLite database (WAL mode); all SQL lives here.

A job moves ``queued → running → succeeded | failed | cancelled``. A running job that a
stopped server left behind goes back to ``queued`` at start-up and resumes from its
Makeflow log. Times are Unix seconds (UTC) in the database.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE_STATES = (QUEUED, RUNNING)
FINISHED_STATES = (SUCCEEDED, FAILED, CANCELLED)
#: Seconds a connection waits for another writer before giving up.
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    filename         TEXT NOT NULL,
    parameters       TEXT NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    updated_at       REAL NOT NULL,
    tasks_done       INTEGER NOT NULL DEFAULT 0,
    tasks_total      INTEGER NOT NULL DEFAULT 0,
    results          TEXT NOT NULL DEFAULT '[]',
    error            TEXT,
    note             TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    delete_requested INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    purged_at        REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
-- Kept when a job is deleted or purged: the service's metrics count what happened, and a
-- counter must never go down (docs/monitoring.md).
-- Every start of a job: queued_at is when it entered the queue (created, or put back).
CREATE TABLE IF NOT EXISTS job_starts (
    job_id     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    queued_at  REAL NOT NULL,
    started_at REAL NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
-- Every attempt of a Makeflow rule, read from the job's Makeflow log (eemt_flow.workflow.tasklog).
CREATE TABLE IF NOT EXISTS task_attempts (
    job_id      TEXT NOT NULL,
    node_id     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    category    TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('done', 'failed', 'aborted', 'running')),
    started_at  REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (job_id, node_id, attempt)
);
"""


@dataclass
class JobRecord:
    """One row of the jobs table."""

    id: str
    state: str
    filename: str
    parameters: dict
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    tasks_done: int = 0
    tasks_total: int = 0
    results: list[str] = field(default_factory=list)
    error: str | None = None
    note: str | None = None
    cancel_requested: bool = False
    delete_requested: bool = False
    attempts: int = 0
    purged_at: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobRecord":
        d = dict(row)
        d["parameters"] = json.loads(d["parameters"])
        d["results"] = json.loads(d["results"])
        d["cancel_requested"] = bool(d["cancel_requested"])
        d["delete_requested"] = bool(d["delete_requested"])
        return cls(**d)


class JobStore:
    """Repository of jobs over one SQLite file; safe to share between threads.

    Every call opens its own short-lived connection, so request handlers and runner
    threads never share a connection; WAL lets readers go on while one thread writes.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._init_lock = threading.Lock()

    @contextlib.contextmanager
    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    def init(self) -> None:
        """Create the database (WAL mode) and its table if they do not exist."""
        with self._init_lock, self._connect() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode}); put the data dir on a local disk")
            conn.executescript(SCHEMA)

    def ping(self) -> None:
        """Raise if the database cannot be queried."""
        with self._connect() as conn:
            conn.execute("SELECT count(*) FROM jobs").fetchone()

    # -- creating and reading ------------------------------------------------------------

    def create(self, job_id: str, filename: str, parameters: dict, *, max_active: int | None = None) -> JobRecord | None:
        """Insert a queued job; ``None`` when ``max_active`` jobs are already queued or running."""
        now = time.time()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if max_active is not None:
                    (active,) = conn.execute(
                        "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()
                    if active >= max_active:
                        conn.execute("ROLLBACK")
                        return None
                conn.execute(
                    "INSERT INTO jobs (id, state, filename, parameters, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, QUEUED, filename, json.dumps(parameters), now, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRecord.from_row(row) if row else None

    def list(self, *, limit: int = 1000, state: str | None = None) -> list[JobRecord]:
        """Jobs, newest first."""
        with self._connect() as conn:
            if state is None:
                rows = conn.execute("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))
            else:
                rows = conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                    (state, limit))
            return [JobRecord.from_row(r) for r in rows.fetchall()]

    def active(self) -> list[JobRecord]:
        """Queued and running jobs, oldest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, rowid")
            return [JobRecord.from_row(r) for r in rows.fetchall()]

    def counts_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        with self._connect() as conn:
            for state, n in conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"):
                counts[state] = n
        return counts

    def running_task_totals(self) -> tuple[int, int]:
        """(tasks done, tasks in all) summed over running jobs."""
        with self._connect() as conn:
            done, total = conn.execute(
                "SELECT coalesce(sum(tasks_done), 0), coalesce(sum(tasks_total), 0) FROM jobs WHERE state = 'running'"
            ).fetchone()
        return int(done), int(total)

    def finished_before(self, states: tuple[str, ...], cutoff: float) -> list[JobRecord]:
        """Finished jobs in ``states`` whose files are still there and that ended before ``cutoff``."""
        marks = ",".join("?" * len(states))
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE state IN ({marks}) AND purged_at IS NULL AND finished_at < ?",
                (*states, cutoff),
            )
            return [JobRecord.from_row(r) for r in rows.fetchall()]

    # -- state changes -------------------------------------------------------------------

    def claim_next(self) -> JobRecord | None:
        """Atomically move the oldest queued job to running and return it.

        The start is recorded in ``job_starts``, with the time the job entered the queue: a
        queued job's ``updated_at`` (set when it was created or put back).
        """
        now = time.time()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = None
                oldest = conn.execute("SELECT id, updated_at FROM jobs WHERE state = 'queued' "
                                      "ORDER BY created_at, rowid LIMIT 1").fetchone()
                if oldest is not None:
                    row = conn.execute(
                        "UPDATE jobs SET state = 'running', started_at = coalesce(started_at, ?), updated_at = ?, "
                        "attempts = attempts + 1 WHERE id = ? RETURNING *", (now, now, oldest["id"])).fetchone()
                    conn.execute("INSERT OR IGNORE INTO job_starts (job_id, attempt, queued_at, started_at) "
                                 "VALUES (?, ?, ?, ?)", (row["id"], row["attempts"], oldest["updated_at"], now))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return JobRecord.from_row(row) if row else None

    def set_progress(self, job_id: str, done: int, total: int) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET tasks_done = ?, tasks_total = ?, updated_at = ? WHERE id = ?",
                         (done, total, time.time(), job_id))

    def set_results(self, job_id: str, results: list[str]) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET results = ?, updated_at = ? WHERE id = ?",
                         (json.dumps(results), time.time(), job_id))

    def finish(self, job_id: str, state: str, *, error: str | None = None, note: str | None = None) -> None:
        """Move a job to a finished state (succeeded, failed or cancelled)."""
        if state not in FINISHED_STATES:
            raise ValueError(f"{state} is not a finished state")
        now = time.time()
        with self._connect() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, error = ?, note = coalesce(?, note), finished_at = ?, updated_at = ? "
                "WHERE id = ?",
                (state, error, note, now, now, job_id),
            )

    def requeue(self, job_id: str, note: str) -> None:
        """Put a running job back in the queue (it resumes from its Makeflow log)."""
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET state = 'queued', note = ?, updated_at = ? WHERE id = ? AND state = 'running'",
                         (note, time.time(), job_id))

    def cancel_if_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when it is not queued (any more)."""
        now = time.time()
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, note = 'cancelled before it started', "
                "finished_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                (now, now, job_id),
            )
            return cur.rowcount == 1

    def request_cancel(self, job_id: str, *, delete: bool = False) -> bool:
        """Flag a running job for cancellation (and deletion); False when it is not running."""
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE jobs SET cancel_requested = 1, delete_requested = max(delete_requested, ?), updated_at = ? "
                "WHERE id = ? AND state = 'running'",
                (int(delete), time.time(), job_id),
            )
            return cur.rowcount == 1

    def delete_if_not_running(self, job_id: str) -> bool:
        """Remove the row unless the job is running; False when it is running or gone."""
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM jobs WHERE id = ? AND state != 'running'", (job_id,))
            return cur.rowcount == 1

    def delete(self, job_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def mark_purged(self, job_id: str) -> None:
        now = time.time()
        with self._connect() as conn:
            conn.execute("UPDATE jobs SET purged_at = ?, results = '[]', updated_at = ? WHERE id = ?", (now, now, job_id))

    # -- what the metrics count ------------------------------------------------------------

    def record_task_attempts(self, job_id: str, attempts) -> None:
        """Add or complete a job's rule attempts (:class:`eemt_flow.workflow.tasklog.TaskAttempt`).

        An attempt is written once when it starts and once more when it ends; an ended
        attempt never changes again, so reading the same log twice counts nothing twice.
        """
        rows = [(job_id, a.node_id, a.attempt, a.category, a.outcome, a.started_s, a.finished_s) for a in attempts]
        if not rows:
            return
        with self._connect() as conn:
            conn.executemany(
                "INSERT INTO task_attempts (job_id, node_id, attempt, category, outcome, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, node_id, attempt) DO UPDATE SET "
                "outcome = excluded.outcome, finished_at = excluded.finished_at WHERE task_attempts.outcome = 'running'",
                rows)

    def task_attempt_counts(self) -> list[tuple[str, str, int, int]]:
        """(category, outcome, attempts, of which retries) over every job ever run."""
        with self._connect() as conn:
            return [tuple(r) for r in conn.execute(
                "SELECT category, outcome, count(*), sum(attempt > 1) FROM task_attempts GROUP BY category, outcome")]

    def task_duration_buckets(self, bounds_s: tuple[float, ...]) -> list[tuple[str, int, float, list[int]]]:
        """(category, count, sum [s], attempts lasting <= each bound) of the rules' done attempts."""
        return self._buckets("SELECT category AS label, finished_at - started_at AS value FROM task_attempts "
                             "WHERE outcome = 'done'", bounds_s)

    def queue_wait_buckets(self, bounds_s: tuple[float, ...]) -> list[tuple[str, int, float, list[int]]]:
        """('', count, sum [s], starts that waited <= each bound) of every job start."""
        return self._buckets("SELECT '' AS label, started_at - queued_at AS value FROM job_starts", bounds_s)

    def _buckets(self, values_sql: str, bounds: tuple[float, ...]) -> list[tuple[str, int, float, list[int]]]:
        le = ", ".join("sum(value <= ?)" for _ in bounds)
        with self._connect() as conn:
            rows = conn.execute(f"SELECT label, count(*), total(value){', ' + le if bounds else ''} "
                                f"FROM ({values_sql}) GROUP BY label", bounds).fetchall()
        return [(r[0], int(r[1]), float(r[2]), [int(n) for n in r[3:]]) for r in rows]

    def running_last_progress(self) -> dict[str, float]:
        """Running jobs and when each last moved: its latest start or its latest finished rule [Unix s]."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT j.id, max(coalesce((SELECT max(started_at) FROM job_starts s WHERE s.job_id = j.id), "
                "j.started_at, j.created_at), "
                "coalesce((SELECT max(finished_at) FROM task_attempts t WHERE t.job_id = j.id AND t.outcome = 'done'), 0)) "
                "FROM jobs j WHERE j.state = 'running'").fetchall()
        return {job_id: float(t) for job_id, t in rows}
