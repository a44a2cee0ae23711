"""schemathesis fuzzes the served OpenAPI schema against a real ``eemt-flow serve`` on 127.0.0.1.

Every operation gets generated requests (valid and invalid, with the API token), bounded in
examples and time: no response may be a 5xx, and every response must be one the schema
documents, with the documented content type and body.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from eemt_flow.web.runner import RASTER_FIELDS
from web_server import Server

TOKEN = "fuzz-token-0123456789abcdef"
#: Generated requests per operation (9 operations, valid and invalid).
EXAMPLES_PER_OPERATION = 100
#: Operations that take no input at all (no invalid request exists for them).
NO_INPUT = {"GET /health", "GET /metrics"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("fuzz") / "data", "--max-upload-mb", "1", env={"EEMT_API_TOKEN": TOKEN})
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_conforms_to_its_schema(fuzz_server, mode):
    """schemathesis' own pytest plugin does not load under this pytest, so hypothesis drives its strategies."""
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9  # submit, list, read, cancel, delete jobs; result file, zip; health, metrics
    tried = {}
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.label in NO_INPUT:
            continue  # nothing to make invalid
        count = [0]

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def call(case):
            count[0] += 1
            response = case.call_and_validate(base_url=fuzz_server.url,
                                              headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS, timeout=30)
            assert response.status_code < 500

        call()
        tried[operation.label] = count[0]
    print(tried)
    assert len(tried) == len(operations) - (len(NO_INPUT) if mode == GenerationMode.NEGATIVE else 0)
    assert all(n >= 1 for n in tried.values()), tried


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
