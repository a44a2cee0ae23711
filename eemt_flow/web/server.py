"""``eemt-flow serve``: the web service under uvicorn.

uvicorn turns SIGTERM/SIGINT into a graceful stop: it stops accepting connections,
finishes requests in flight, then the app's lifespan stops the job runner, which sends
each running makeflow SIGINT (it stops cleanly) and leaves the job queued so the next
start resumes it from the Makeflow log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import tempfile
from pathlib import Path

from eemt_flow.errors import UserError
from eemt_flow.web.app import TOKEN_ENV, Settings, create_app
from eemt_flow.web.runner import DataDir, ExecutorSettings
from eemt_flow.workflow.execute import PASSWORD_FILE_ENV

log = logging.getLogger("eemt_flow.web")

#: Seconds uvicorn waits for requests in flight before closing them at shutdown.
GRACEFUL_REQUEST_TIMEOUT_S = 10


def wq_password_file(data: DataDir, given: Path | None) -> Path:
    """The Work Queue password file: the one given, else $EEMT_WQ_PASSWORD_FILE, else one kept in the data dir."""
    if given is None and os.environ.get(PASSWORD_FILE_ENV):
        given = Path(os.environ[PASSWORD_FILE_ENV])
    if given is not None:
        given = Path(given).resolve()
        if not given.is_file() or given.stat().st_size == 0:
            raise UserError(f"--password-file {given} is missing or empty; create one (e.g. openssl rand -hex 32 > FILE)")
        return given
    path = data.root / "wq.password"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path


def lock_data_dir(data: DataDir) -> int:
    """Hold an exclusive lock on the data dir for this process's life: a second server on the
    same data dir would resume (and stop) the first one's jobs. The kernel drops the lock
    when the process dies, even by SIGKILL."""
    fd = os.open(data.root / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"--data-dir {data.root} is in use by another eemt-flow serve; stop it or give another "
                        "--data-dir") from None
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def build_settings(*, data_dir: Path, max_concurrent_jobs: int = 1, executor: str = "local", wq_port: int = 9123,
                   password_file: Path | None = None, max_upload_mb: int = 512, keep_succeeded_days: float = 30.0,
                   keep_failed_days: float = 7.0, api_token: str | None = None,
                   expected_workers: int = 0) -> Settings:
    """Check the options and prepare the data directory; one-line UserError on a mistake."""
    if max_concurrent_jobs < 1:
        raise UserError("--max-concurrent-jobs must be at least 1")
    if expected_workers < 0:
        raise UserError("--expected-workers must be 0 or more")
    if max_upload_mb < 1:
        raise UserError("--max-upload-mb must be at least 1")
    if keep_succeeded_days < 0 or keep_failed_days < 0:
        raise UserError("--keep-succeeded-days and --keep-failed-days must be 0 or more")
    if executor not in ("local", "wq"):
        raise UserError("--executor must be local or wq")
    if Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise UserError(f"--data-dir {data_dir} is a file; give a directory")
    data = DataDir.create(Path(data_dir))
    pw = wq_password_file(data, password_file) if executor == "wq" else None
    if pw is not None and password_file is None and not os.environ.get(PASSWORD_FILE_ENV):
        log.warning("Work Queue password file: %s (give it to workers: eemt-flow worker HOST:%d --password-file FILE)",
                    pw, wq_port)
    return Settings(
        data_dir=data.root,
        executor=ExecutorSettings(executor=executor, wq_port=wq_port, password_file=pw,
                                  max_concurrent_jobs=max_concurrent_jobs, expected_workers=expected_workers),
        max_upload_bytes=max_upload_mb * 1024 * 1024,
        keep_succeeded_days=keep_succeeded_days,
        keep_failed_days=keep_failed_days,
        api_token=api_token or None,
    )


def serve(*, host: str, port: int, data_dir: Path, max_concurrent_jobs: int, executor: str, wq_port: int,
          password_file: Path | None, max_upload_mb: int, keep_succeeded_days: float, keep_failed_days: float,
          expected_workers: int = 0) -> None:
    """Run the web interface and REST API until SIGTERM/SIGINT (API token from $EEMT_API_TOKEN)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = build_settings(data_dir=data_dir, max_concurrent_jobs=max_concurrent_jobs, executor=executor,
                              wq_port=wq_port, password_file=password_file, max_upload_mb=max_upload_mb,
                              keep_succeeded_days=keep_succeeded_days, keep_failed_days=keep_failed_days,
                              api_token=os.environ.get(TOKEN_ENV), expected_workers=expected_workers)
    lock_data_dir(DataDir(settings.data_dir))
    # Scratch space of this server and of the tasks it starts (GRASS, GDAL) stays in the data dir.
    temp = str(DataDir(settings.data_dir).temp)
    os.environ["TMPDIR"] = temp
    tempfile.tempdir = None
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", proxy_headers=False, server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_REQUEST_TIMEOUT_S, log_level="info")
    uvicorn.Server(config).run()
