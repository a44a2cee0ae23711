"""schemathesis fuzzes the served OpenAPI schema against a real ``eemt-flow serve`` on 127.0.0.1.

The ``schemathesis run`` command drives all its phases: coverage (every operation's edge cases,
invalid values and the methods it does not declare), fuzzing (generated requests, valid and
invalid, with the API token) and stateful (sequences that follow the links schemathesis infers).
Every check it offers runs but one (see CHECKS).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS as SCHEMATHESIS_CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from eemt_flow.web.runner import RASTER_FIELDS
from web_server import API_METHODS, Server

TOKEN = "fuzz-token-0123456789abcdef"
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
#: Generated requests per operation and phase (13 operations; valid and invalid).
EXAMPLES_PER_OPERATION = 100
#: The methods the coverage phase sends to each path that does not declare them.
UNEXPECTED_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE", "QUERY"}
#: Every check of the pinned schemathesis but positive_data_acceptance, which wants every valid
#: request accepted: no schema can say "a GeoTIFF with a CRS", so each generated DEM is refused.
#:
#: - not_a_server_error, status_code_conformance, content_type_conformance and
#:   response_schema_conformance look at every response; negative_data_rejection wants every
#:   invalid request refused with a 4xx.
#: - unsupported_method and allow_header_conformance: the coverage phase sends each path the methods
#:   of UNEXPECTED_METHODS it does not declare, which must answer 405 with an ``Allow`` naming the
#:   declared ones (tests/web/test_web_allow.py does the same on every path, the pages too).
#: - Four have nothing to act on in this API, so they pass without looking: response_headers_conformance
#:   and missing_required_header (the schema declares no response headers and no header
#:   parameters), ignored_auth (the schema declares no security scheme: the token is checked by the
#:   dependency ``eemt_flow.web.context.require_token``, which the schema does not show) and
#:   object_level_authorization (it compares what two identities may read; there is one token).
#: - use_after_free and ensure_resource_availability follow a job created by POST /api/jobs through
#:   its links; for want of a GeoTIFF no generated submission creates one, so they never reach a
#:   job either (the run's "missing test data" warning, asserted below, names the operations that
#:   only ever answered 404).
CHECKS = {"not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "negative_data_rejection", "missing_required_header", "unsupported_method",
          "allow_header_conformance", "use_after_free", "ensure_resource_availability", "ignored_auth",
          "object_level_authorization"}
#: The token comes from the environment, so it is never on a command line.
CONFIG = f"""
headers = {{ Authorization = "Bearer ${{EEMT_FUZZ_TOKEN}}" }}
seed = 1
color = false
workers = 1
[checks]
enabled = true
positive_data_acceptance.enabled = false
[generation]
mode = "all"
max-examples = {EXAMPLES_PER_OPERATION}
database = "none"
[phases.coverage]
unexpected-methods = {json.dumps(sorted(UNEXPECTED_METHODS))}
"""
#: Operations whose path names a job: without a job created, they only ever answer 404.
JOB_OPERATIONS = sorted(["DELETE /api/jobs/{job_id}", "GET /api/jobs/{job_id}", "GET /api/jobs/{job_id}/results.zip",
                         "GET /api/jobs/{job_id}/results/{name}", "GET /api/jobs/{job_id}/stac",
                         "POST /api/jobs/{job_id}/cancel", "GET /api/jobs/{job_id}/maps",
                         "GET /api/jobs/{job_id}/tiles/{z}/{x}/{y}.png", "GET /api/jobs/{job_id}/point"])


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("fuzz") / "data", "--max-upload-mb", "1", env={"EEMT_API_TOKEN": TOKEN})
    srv.start()
    yield srv
    srv.stop()


def template_of(url: str) -> str:
    """The schema path of a request's URL (its path as sent, percent-encoded)."""
    path = urlsplit(url).path
    for template in API_METHODS:
        if re.fullmatch("[^/]*".join(re.escape(part) for part in re.split(r"\{[a-z_]+\}", template)), path):
            return template
    raise AssertionError(f"{url}: not a path of the schema")


def test_api_conforms_to_its_schema(fuzz_server, tmp_path, monkeypatch):
    monkeypatch.setenv("EEMT_FUZZ_TOKEN", TOKEN)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    load_all_checks()
    enabled = SchemathesisConfig.from_path(str(config)).projects.get_default().checks_config_for()
    assert {name for name in SCHEMATHESIS_CHECKS.get_all_names() if enabled.get_by_name(name=name).enabled} == CHECKS
    assert set(SCHEMATHESIS_CHECKS.get_all_names()) == CHECKS | {"positive_data_acceptance"}

    report, har = tmp_path / "report.json", tmp_path / "requests.har"
    proc = subprocess.run([SCHEMATHESIS, "--config-file", str(config), "run", fuzz_server.url + "/openapi.json",
                           "--report", "json,har", "--report-json-path", str(report), "--report-har-path", str(har)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert TOKEN not in proc.stdout + proc.stderr + har.read_text()  # schemathesis filters the Authorization header
    run = json.loads(report.read_text())
    assert run["complete"] and run["stop_reason"] == "completed" and run["exit_code"] == 0
    assert run["operations"] == {"total": 13, "selected": 13, "tested": 13, "errored": 0, "skipped": 0, "skip_reasons": []}
    # The schema has no examples, so that phase is skipped.
    assert {phase: p["status"] for phase, p in run["phases"].items()} == {
        "examples": "skip", "coverage": "success", "fuzzing": "success", "stateful": "success"}
    assert run["failures"] == [] and run["errors"] == []
    assert run["test_cases"]["with_failures"] == 0 and run["test_cases"]["errored"] == 0
    assert run["test_cases"]["generated"] >= 5 * EXAMPLES_PER_OPERATION, run["test_cases"]
    warnings = run["warnings"]
    assert warnings["method_not_allowed"] == []  # no declared method answered 405
    assert sorted(warnings["missing_test_data"]) == JOB_OPERATIONS
    assert warnings["validation_mismatch"] == ["POST /api/jobs"]  # no generated DEM is a GeoTIFF with a CRS

    # What unsupported_method and allow_header_conformance saw: every undeclared method, on every path.
    undeclared: dict[str, set[str]] = {template: set() for template in API_METHODS}
    entries = json.loads(har.read_text())["log"]["entries"]
    for entry in entries:
        request, response = entry["request"], entry["response"]
        template = template_of(request["url"])
        if request["method"] in API_METHODS[template]:
            continue
        undeclared[template].add(request["method"])
        allow = {h["name"].lower(): h["value"] for h in response["headers"]}.get("allow", "")
        assert response["status"] == 405 and set(allow.split(", ")) == API_METHODS[template], (request, response)
    assert undeclared == {template: UNEXPECTED_METHODS - methods for template, methods in API_METHODS.items()}


# -- the multipart upload, property-tested over real HTTP ------------------------------------

BOUNDARY = "eemtFuzzBoundary7MA4YWxk"
part_name = st.one_of(st.sampled_from(["dem", "parameters", "climate_csv", *RASTER_FIELDS]), st.text(max_size=8))
file_name = st.one_of(st.none(), st.sampled_from(["dem.tif", "../../etc/passwd", "C:\\x.tif", "", "a/b.tif"]),
                      st.text(max_size=12))
part = st.tuples(part_name, file_name, st.binary(max_size=300))


def multipart_body(parts, cut: int | None, closed: bool) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode("utf-8", "surrogateescape")
        out += content + b"\r\n"
    if closed:
        out += f"--{BOUNDARY}--\r\n".encode()
    return out[:cut] if cut is not None else out


json_text = st.one_of(st.text(max_size=40), st.dictionaries(st.text(max_size=8), st.one_of(
    st.none(), st.integers(), st.floats(), st.text(max_size=8)), max_size=3).map(json.dumps))
well_formed = st.builds(lambda dem, params: [("dem", dem[0], dem[1])] + ([("parameters", None, params.encode())]
                                                                        if params is not None else []),
                        st.tuples(file_name, st.binary(max_size=300)), st.one_of(st.none(), json_text))
bodies = st.one_of(st.binary(max_size=400),
                   st.builds(multipart_body, st.lists(part, max_size=4), st.one_of(st.none(), st.integers(0, 600)),
                             st.booleans()),
                   st.builds(multipart_body, well_formed, st.none(), st.just(True)))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_multipart_upload_any_body_gets_one_line(fuzz_server, body):
    """Any multipart body: a 4xx whose detail is one line (random bytes are never a DEM), no .part file left."""
    r = httpx.post(fuzz_server.url + "/api/jobs", content=body, timeout=30,
                   headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                            "Authorization": f"Bearer {TOKEN}"})
    event(f"{r.status_code} {r.text[11:30]}")
    assert r.status_code in (400, 413, 415, 422), (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.strip() and "\n" not in detail and "Traceback" not in detail, detail
    assert not list((fuzz_server.data_dir / "uploads").glob(".*part")), "a refused upload left its file"
