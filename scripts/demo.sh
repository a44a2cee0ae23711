#!/usr/bin/env bash
# One command: set everything up, then run the main job on the built-in example DEM.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
mkdir -p demo-work
.venv/bin/eemt-flow example-dem demo-work/example_dem.tif
.venv/bin/eemt-flow run examples/job.yaml "$@"
