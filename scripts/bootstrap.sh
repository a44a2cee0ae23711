#!/usr/bin/env bash
# Set up everything eemt-flow needs on Debian 12 (or Ubuntu 24.04): the system packages
# and the Python environment in .venv. Idempotent: a second run installs nothing new.
# Used by scripts/demo.sh, scripts/test.sh, CI and the container images.
#
#   scripts/bootstrap.sh            runtime + test dependencies
#   EEMT_NO_TEST_DEPS=1 scripts/bootstrap.sh   runtime only (container images)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# grass-core: r.slope.aspect, r.horizon, r.sun (not the 'grass' metapackage, which pulls a GUI)
# coop-computing-tools: makeflow, work_queue_worker; it aborts in MPI_Init without openmpi-bin
# python3-venv: the interpreter for .venv; rasterio wheels bring their own GDAL, gdal-bin is for users
APT_PACKAGES=(
  grass-core gdal-bin coop-computing-tools openmpi-bin python3-workqueue
  python3 python3-venv python3-dev ca-certificates procps iproute2
)
# Not inside the images (EEMT_NO_TEST_DEPS=1): chromium for the browser tests; the container
# tools that scripts/stack.sh and the container tests run: Podman with runc
# (containers/podman/containers.conf), mmdebstrap for a base image without a registry,
# catatonit for Compose's `init: true`, the dnsname CNI plugin for service names between
# containers; a one-node Slurm (munge, slurmctld, slurmd, slurm-client) that
# tests/slurm_cluster.py starts with its own configuration, munge key and ports;
# prometheus for promtool (checks and unit tests of monitoring/alerts.yml) and the console
# templates (tests/web/test_monitoring.py). Where systemd runs, Debian also starts it as a
# service on 9090 that eemt-flow does not need: systemctl disable --now prometheus.
if [ -z "${EEMT_NO_TEST_DEPS:-}" ]; then
  APT_PACKAGES+=(chromium podman runc mmdebstrap catatonit golang-github-containernetworking-plugin-dnsname
                 munge slurmctld slurmd slurm-client prometheus)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Debian interpreter, explicitly: GRASS's own scripts run on it too.
PYTHON=/usr/bin/python3
extras="[test]"
[ -z "${EEMT_NO_TEST_DEPS:-}" ] || extras=""
stamp=".venv/.eemt-bootstrap-$(sha256sum pyproject.toml | cut -c1-16)${extras}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing the Python environment into .venv"
  log=$(mktemp)
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".${extras}"; } >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; echo "bootstrap: pip install failed" >&2; exit 1
  fi
  rm -f "$log"
  rm -f .venv/.eemt-bootstrap-*
  touch "$stamp"
fi
# The job page's browser libraries (Leaflet), from the npm registry with the hashes of
# package-lock.json, copied to eemt_flow/web/static/vendor/ (git-ignored) which the app
# serves under /static/vendor/: never a CDN. A runtime step (the images need it too), done by
# scripts/vendor_js.py with the standard library: no Node.js needed.
vstamp="eemt_flow/web/static/vendor/.stamp-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$vstamp" ]; then
  echo "bootstrap: installing the browser libraries from the npm registry into eemt_flow/web/static/vendor"
  "$PYTHON" scripts/vendor_js.py
  touch "$vstamp"
fi
echo "bootstrap: ready ($(.venv/bin/eemt-flow --version))"
