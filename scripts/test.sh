#!/usr/bin/env bash
# One command: set everything up, then run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
# two test processes, a test file each at a time (a file's module fixtures, such as the Slurm
# cluster, are made once): the suite waits on Slurm, containers and HTTP half of its time
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
