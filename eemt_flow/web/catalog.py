"""STAC API: a job's results/stac/item.json with asset hrefs that download (absolute URLs of /results/<path>)."""

from __future__ import annotations

import json
import posixpath

from fastapi import APIRouter, HTTPException, Request

from eemt_flow.web.context import Job, JobId, ServicesDep
from eemt_flow.web.models import ERRORS

router = APIRouter(prefix="/api/jobs/{job_id}", tags=["results"])
ITEM = "stac/item.json"


@router.get("/stac", responses=ERRORS, summary="The job's results as a STAC Item (asset hrefs download)")
def stac_item(job_id: JobId, rec: Job, svc: ServicesDep, request: Request) -> dict:
    path = svc.result_path(rec, ITEM)
    if path is None:
        raise HTTPException(404 if rec.purged_at is None else 410, f"job {job_id} has no results"
                            + (" (its files were removed by the retention policy)" if rec.purged_at else ""))
    item = json.loads(path.read_text())
    base = str(request.base_url).rstrip("/") + f"/api/jobs/{job_id}"
    for asset in item["assets"].values():
        asset["href"] = f"{base}/results/{posixpath.normpath(posixpath.join('stac', asset['href']))}"
    item["links"] = [link for link in item.get("links", []) if link.get("rel") != "self"]
    item["links"].append({"rel": "self", "href": f"{base}/stac", "type": "application/geo+json"})
    return item
