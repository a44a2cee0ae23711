"""schemathesis fuzzes the served OpenAPI schema against a real ``eemt-flow serve`` on 127.0.0.1.

Every operation gets generated requests (valid and invalid, with the API token), bounded in
examples and time: no response may be a 5xx, and every response must be one the schema
documents, with the documented content type and body.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from test_web_api import Server

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
