"""Upload handling: a job submission's multipart body streamed to disk with per-file size limits.

The parsing is streaming-form-data's (a maintained C parser): each file field is a target
that writes to a server-named ``.part`` file as the bytes arrive, with its own
:class:`~streaming_form_data.validators.MaxSizeValidator`; nothing is held in memory but
the small ``parameters`` field. Starlette's own ``request.form()`` is not used because it
spools every file to a temporary file before the handler can apply a limit.

:func:`job_upload` is the FastAPI dependency the submit route takes; its ``.part`` files are
removed when the request ends, whatever happened (the route moves the ones it keeps).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, AsyncIterator

import anyio
from fastapi import Depends, HTTPException, Request
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.parser import ParseFailedException, UnexpectedPartException, parse_content_boundary
from streaming_form_data.targets import BaseTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

from eemt_flow.web.context import ServicesDep
from eemt_flow.web.runner import RASTER_FIELDS

#: Largest non-file form field (the parameters JSON) [bytes].
MAX_FIELD_BYTES = 64 * 1024
#: Largest station normals CSV (12 rows; the limit only stops abuse) [bytes].
MAX_CLIMATE_CSV_BYTES = 1024 * 1024
#: Bytes of an oversized upload still read (and discarded) so the client gets its 413 instead of a reset.
OVERSIZE_DRAIN_BYTES = 32 * 1024 * 1024
FORM_HELP = ("send 'dem' (file), 'parameters' (JSON) and optionally 'climate_csv' and the rasters "
             + ", ".join(f"'{f}'" for f in RASTER_FIELDS) + " (files)")


def display_name(filename: str) -> str:
    """The client's file name for display only: control characters dropped, 200 characters at most."""
    clean = "".join(c for c in filename if unicodedata.category(c)[0] != "C")
    return clean[:200] or "dem.tif"


def check_filename(filename: str | None, what: str = "DEM", field_name: str = "dem", example: str = "dem.tif") -> None:
    """Refuse names that try to leave their directory (``../x``, ``/etc/x``, ``C:\\x``).

    The name is never used as a path (uploads get server-generated names); a client that
    sends such a name is confused or hostile, so it gets a clear 400 rather than silence.
    """
    if filename is None:
        raise HTTPException(400, f"form field '{field_name}' is not a file; send the {what} as a file upload")
    if not filename.strip():
        raise HTTPException(400, f"the uploaded {what} has no file name; send it as a file in the form field '{field_name}'")
    parts = re.split(r"[\\/]", filename)
    if ".." in parts or filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", filename) or "\0" in filename:
        raise HTTPException(400, f"file name {display_name(filename)!r} is a path that leaves its directory; "
                                 f"send a plain file name such as {example}")


class _RepeatedPart(Exception):
    def __init__(self, field_name: str):
        super().__init__(field_name)
        self.field_name = field_name


class DiskFile(BaseTarget):
    """A file field written to ``dest`` as it arrives, at most ``max_bytes``, at most once."""

    def __init__(self, field_name: str, what: str, dest: Path, max_bytes: int):
        self.limit = MaxSizeValidator(max_bytes)
        super().__init__(validator=self.limit)
        self.field_name, self.what, self.dest, self.max_bytes = field_name, what, Path(dest), max_bytes
        self.size = 0
        self.received = False
        self._fh = None

    @property
    def too_large(self) -> bool:
        return self.limit.so_far > self.max_bytes

    def on_start(self):
        if self.received:
            raise _RepeatedPart(self.field_name)
        self.received = True
        self._fh = open(self.dest, "xb")

    def on_data_received(self, chunk: bytes):
        self._fh.write(chunk)
        self.size += len(chunk)

    def on_finish(self):
        self.close()

    def close(self):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def filename(self) -> str | None:
        return self.multipart_filename


@dataclass
class JobUpload:
    """What a submission sent: its files on disk (``None`` when not sent), its ``parameters`` bytes
    and the user rasters it sent (RASTER_FIELDS -> file; only those sent)."""

    dem: DiskFile | None
    climate_csv: DiskFile | None
    parameters: bytes | None
    rasters: dict[str, DiskFile]


def _content_type(request: Request) -> dict[str, str]:
    return {"Content-Type": request.headers.get("content-type", "")}


async def receive_upload(request: Request, files: list[DiskFile]) -> tuple[dict[str, DiskFile], bytes | None]:
    """Stream the body's files to disk; 415 for a body that is not multipart, 413 past a file's limit,
    400 for a malformed body, an unknown field or a field sent twice."""
    try:
        parser = StreamingFormDataParser(_content_type(request), strict=True)
    except ParseFailedException:
        raise HTTPException(415, "send multipart/form-data with a file field 'dem' and a JSON field 'parameters'") from None
    max_total = sum(f.max_bytes for f in files)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_total + MAX_FIELD_BYTES + OVERSIZE_DRAIN_BYTES:
        raise HTTPException(413, f"the upload is over the limit of {files[0].max_bytes / 2**20:g} MiB")
    for f in files:
        parser.register(f.field_name, f)
    parameters = ValueTarget(validator=MaxSizeValidator(MAX_FIELD_BYTES))
    parser.register("parameters", parameters)
    # The closing delimiter must arrive: a body cut short is malformed, not a smaller upload.
    ender = b"\r\n--" + parse_content_boundary(_content_type(request)) + b"--"
    tail = b""
    ended = False
    received = 0
    error: HTTPException | None = None
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if error is None:
                window = tail + chunk
                ended = ended or ender in window
                tail = window[-len(ender):]
                try:
                    await anyio.to_thread.run_sync(parser.data_received, chunk)
                except ValidationError:
                    big = next((f for f in files if f.too_large), None)
                    if big is None:
                        error = HTTPException(400, f"form field 'parameters' is over {MAX_FIELD_BYTES // 1024} KiB")
                        break
                    what = "the upload" if big.field_name == "dem" else f"the {big.what} ('{big.field_name}')"
                    error = HTTPException(413, f"{what} is over the limit of {big.max_bytes / 2**20:g} MiB")
                except _RepeatedPart as exc:
                    error = HTTPException(400, f"file field '{exc.field_name}' sent twice; send each file once: one "
                                               "DEM in the form field 'dem' (and, for climate 'station', one CSV in "
                                               "'climate_csv')")
                    break
                except UnexpectedPartException as exc:
                    error = HTTPException(400, f"unknown form field '{display_name(str(exc.part_name))}'; {FORM_HELP}")
                    break
                except ParseFailedException:
                    error = HTTPException(400, f"malformed multipart body; {FORM_HELP}")
                    break
            elif received > max_total + OVERSIZE_DRAIN_BYTES:
                break
    finally:
        for f in files:
            f.close()
    if error is not None:
        raise error
    if not ended:
        raise HTTPException(400, f"malformed multipart body (it ends before its closing boundary); {FORM_HELP}")
    got = {f.field_name: f for f in files if f.received}
    return got, parameters.value or None


async def job_upload(request: Request, svc: ServicesDep) -> AsyncIterator[JobUpload]:
    """Dependency: the submission's DEM, station CSV and user rasters streamed to ``.part`` files,
    removed afterwards. A raster has the DEM's size limit."""
    token = secrets.token_hex(8)
    dem = DiskFile("dem", "DEM", svc.data.uploads / f".{token}.part", svc.settings.max_upload_bytes)
    csv = DiskFile("climate_csv", "station CSV", svc.data.uploads / f".{token}.csv.part", MAX_CLIMATE_CSV_BYTES)
    rasters = [DiskFile(field, f"{what} raster", svc.data.uploads / f".{token}.{field}.part",
                        svc.settings.max_upload_bytes) for field, what in RASTER_FIELDS.items()]
    files = [dem, csv, *rasters]
    try:
        got, parameters = await receive_upload(request, files)
        yield JobUpload(got.get("dem"), got.get("climate_csv"), parameters,
                        {f.field_name: f for f in rasters if f.received})
    finally:
        for f in files:
            f.dest.unlink(missing_ok=True)


Upload = Annotated[JobUpload, Depends(job_upload)]
