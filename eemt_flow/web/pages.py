"""HTML pages: the submission form, the job list and a job's page (Jinja2 templates, escaped)."""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from eemt_flow.web.context import Job, ServicesDep, summary
from eemt_flow.web.models import JobParameters
from eemt_flow.web.store import ACTIVE_STATES

HERE = Path(__file__).resolve().parent
#: Our pages load nothing but their own script, style and images (defence in depth against markup in names).
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: The job page's optional OpenStreetMap base layer (off by default): its tiles are the only outside images.
OSM_TILE_ORIGIN = "https://tile.openstreetmap.org"
#: Leaflet, vendored from npm by scripts/bootstrap.sh (package.json); served under /static/vendor/.
LEAFLET_JS = HERE / "static" / "vendor" / "leaflet" / "leaflet.js"
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True))
router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def page(request: Request, svc, name: str, **context) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {"token_required": bool(svc.settings.api_token), **context})
    response.headers.update(PAGE_SECURITY_HEADERS)
    return response


@router.get("/")
def index(request: Request, svc: ServicesDep):
    return page(request, svc, "index.html", max_upload_mb=svc.settings.max_upload_bytes / 2**20,
                defaults=JobParameters(), recent=[summary(r) for r in svc.store.list(limit=10)])


@router.get("/jobs")
def jobs_page(request: Request, svc: ServicesDep):
    return page(request, svc, "jobs.html", jobs=[summary(r) for r in svc.store.list(limit=1000)])


@router.get("/jobs/{job_id}")
def job_page(request: Request, rec: Job, svc: ServicesDep):
    response = page(request, svc, "job.html", job=svc.detail(rec), active=rec.state in ACTIVE_STATES,
                    leaflet_vendored=LEAFLET_JS.is_file(), osm_tile_origin=OSM_TILE_ORIGIN)
    response.headers["Content-Security-Policy"] = (PAGE_SECURITY_HEADERS["Content-Security-Policy"]
                                                   + f"; img-src 'self' data: {OSM_TILE_ORIGIN}")
    return response
