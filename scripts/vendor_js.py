"""Fetch the job page's browser libraries from the npm registry into eemt_flow/web/static/vendor/.

Reads package-lock.json (the versions and their sha512 integrity), downloads each package's
tarball from the registry (``$NPM_CONFIG_REGISTRY``, default https://registry.npmjs.org),
refuses one whose hash differs, and copies the files the page serves (VENDOR_FILES). Standard
library only, so that it needs neither Node.js nor the project's environment; run by
scripts/bootstrap.sh.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "eemt_flow" / "web" / "static" / "vendor"
#: What the page serves of each package: paths inside its tarball's package/ folder.
VENDOR_FILES = {"leaflet": ["dist/leaflet.js", "dist/leaflet.css", "dist/images", "LICENSE"]}


def tarball_url(registry: str, name: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def main() -> int:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org")
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=VENDOR.parent))
    try:
        for key, entry in lock["packages"].items():
            if not key.startswith("node_modules/"):
                continue
            name = key.removeprefix("node_modules/")
            algorithm, _, expected = entry["integrity"].partition("-")
            with urllib.request.urlopen(tarball_url(registry, name, entry["version"]), timeout=120) as resp:
                data = resp.read()
            if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
                print(f"vendor_js: {name} {entry['version']} does not match package-lock.json's {algorithm}; "
                      "not installed", file=sys.stderr)
                return 1
            out = staging / name
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                # only the regular files under the listed paths, written by name: nothing else leaves the tarball
                for member in tar.getmembers():
                    rel = member.name.removeprefix("package/")
                    wanted = [w for w in VENDOR_FILES.get(name, []) if rel == w or rel.startswith(w + "/")]
                    if not member.isfile() or not wanted or ".." in Path(rel).parts:
                        continue
                    dst = out / Path(wanted[0]).name / Path(rel).relative_to(wanted[0])
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.write_bytes(tar.extractfile(member).read())
        shutil.rmtree(VENDOR, ignore_errors=True)
        staging.replace(VENDOR)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
