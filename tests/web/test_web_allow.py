"""405 Method Not Allowed over real HTTP: every path of a real ``eemt-flow serve`` lists in ``Allow``
exactly the methods it serves (RFC 9110 section 15.5.6), and every method it lists is served.

The methods each path serves are written out (``web_server.API_METHODS`` for the schema's paths,
OTHER for the rest); the served OpenAPI schema must say the same for its paths. FastAPI's routes
serve only the methods they declare (a GET route answers HEAD with 405); Starlette's own routes
(the API docs) and the static files also serve HEAD.
"""

from __future__ import annotations

import re

import httpx
import pytest

from web_server import API_METHODS, Server

JOB_ID = "0123456789abcdef"
#: Every method sent to every path (CONNECT aside: it names a host, not a path).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
#: Paths outside the schema: the HTML pages, the API docs and a static file.
OTHER = {
    "/": {"GET"},
    "/jobs": {"GET"},
    f"/jobs/{JOB_ID}": {"GET"},
    "/docs": {"GET", "HEAD"},
    "/docs/oauth2-redirect": {"GET", "HEAD"},
    "/redoc": {"GET", "HEAD"},
    "/openapi.json": {"GET", "HEAD"},
    "/static/app.js": {"GET", "HEAD"},
}


def concrete(path: str) -> str:
    return path.replace("{job_id}", JOB_ID).replace("{name}", "solar/monthly/glob_rad_06.tif")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("allow") / "data").start()
    yield srv
    srv.stop()


def test_schema_lists_the_methods_served(server):
    schema = httpx.get(server.url + "/openapi.json", timeout=30).json()
    assert {path: {m.upper() for m in ops} for path, ops in schema["paths"].items()} == API_METHODS


@pytest.mark.parametrize("path", [*API_METHODS, *OTHER])
def test_405_allow_lists_every_method_served(server, path):
    served = API_METHODS.get(path) or OTHER[path]
    statuses = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method in METHODS:
            r = client.request(method, concrete(path))
            statuses[method] = r.status_code
            if r.status_code != 405:
                continue
            allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
            assert allow == served, (method, r.headers.get("allow"))
            assert re.fullmatch(r"[A-Z]+(, [A-Z]+)*", r.headers["allow"])
            if method != "HEAD":  # a HEAD response has no body
                listed = ", ".join(m for m in METHODS if m in served)
                assert r.json() == {"detail": f"{method} is not allowed here; this path serves {listed}"}
    # Every method listed is answered (404 for the job that does not exist, 415 for an empty submission, ...).
    assert {m for m, status in statuses.items() if status != 405} == served, statuses


def test_options_on_the_jobs_collection(server):
    """The case of issue 26: OPTIONS /api/jobs said ``Allow: POST``, though GET lists the jobs."""
    r = httpx.options(server.url + "/api/jobs", timeout=30)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "OPTIONS is not allowed here; this path serves GET, POST"}
    r = httpx.request("PUT", server.url + f"/api/jobs/{JOB_ID}", timeout=30)
    assert (r.status_code, r.headers["allow"]) == (405, "GET, DELETE")
    r = httpx.head(server.url + "/api/jobs", timeout=30)
    assert (r.status_code, r.headers["allow"]) == (405, "GET, POST")
