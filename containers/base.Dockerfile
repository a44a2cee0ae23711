# syntax=docker/dockerfile:1
# eemt-flow base image: GRASS GIS, CCTools (makeflow, work_queue_worker) and the eemt-flow
# Python environment, installed by scripts/bootstrap.sh, the same script CI runs
# (.ci/run -> scripts/test.sh -> scripts/bootstrap.sh), with the test-only packages left out.
#
#   docker build -f containers/base.Dockerfile -t eemt-flow/base:0.1.0 .
#
# Runs as the unprivileged user eemt (UID 1000). Used as is by Work Queue workers
# (eemt-flow worker HOST:PORT) and as the base of containers/web.Dockerfile.
#
# The source tree stays root-owned and read-only to eemt; its bytecode is compiled here,
# since every Makeflow task starts a new eemt-flow process.
#
# One stage on purpose: everything bootstrap.sh installs (GRASS, makeflow, the venv) is
# needed at run time, so a build stage would only move the same files; the pip cache and
# the apt lists, the only leftovers, are kept out below instead.
#
# The default base is Debian 12, the platform scripts/bootstrap.sh and the tests run on.
# Without a registry, scripts/stack.sh makes it locally (mmdebstrap + import); with one,
# the official debian:bookworm-slim is pulled. Pin it by digest for reproducible builds:
#   docker buildx imagetools inspect debian:bookworm-slim -> --build-arg BASE_IMAGE=debian:bookworm-slim@sha256:<digest>
# --build-arg BASE_IMAGE=ubuntu:24.04 is possible but UNTESTED (bootstrap.sh names the same
# packages; nothing here builds or runs it).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# eemt takes UID 1000 so that files in volumes and bind mounts belong to the first user of
# a typical host (ubuntu:24.04 ships a user 'ubuntu' with that UID: removed first).
RUN userdel --remove ubuntu 2>/dev/null || true \
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash eemt

WORKDIR /opt/eemt-flow

# Only what the install needs, so that editing docs or tests does not rebuild this layer.
COPY pyproject.toml README.md package.json package-lock.json ./
# eemt_flow/ brings the host's static/vendor/ (Leaflet) where bootstrap.sh made it; else
# bootstrap.sh fetches it from the npm registry (scripts/vendor_js.py).
COPY scripts/bootstrap.sh scripts/vendor_js.py scripts/
COPY makeflows/ makeflows/
COPY eemt_flow/ eemt_flow/

# Caches that scripts/stack.sh mounts into Podman builds from ~/.cache/eemt-flow/containers:
# the apt archives, and a directory of every wheel the install needs (downloaded on the host),
# so that a rebuild from an empty image store downloads nothing and pip needs no index.
# Mounted caches are not part of the image; without them (a plain docker build) apt's
# archives are removed from the layer and pip uses PyPI.
RUN if [ -n "$(ls -A /var/cache/eemt-wheels 2>/dev/null)" ]; then \
      export PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/eemt-wheels; \
    fi \
 && PIP_NO_CACHE_DIR=1 EEMT_NO_TEST_DEPS=1 bash scripts/bootstrap.sh \
 && { mountpoint -q /var/cache/apt/archives || apt-get clean; } \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache \
 && .venv/bin/python -m compileall -q eemt_flow \
 && .venv/bin/eemt-flow --version

COPY examples/ examples/

# /data: the web service's data dir (volumes are mounted on its subdirectories);
# /scratch: worker sandboxes; /shared: inputs shared with the host.
# /data/temp is a tmpfs in Compose; runc gives a tmpfs the mode of the directory it covers,
# hence the sticky, world-writable mode of /tmp here.
RUN mkdir -p /data/uploads /data/jobs /data/temp /data/cache /scratch /shared \
 && chown -R eemt:eemt /data /scratch /shared \
 && chmod 1777 /data/temp

ENV PATH=/opt/eemt-flow/.venv/bin:$PATH \
    NUMBA_CACHE_DIR=/home/eemt/.cache/numba

# numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it
USER 1000:1000
WORKDIR /home/eemt

CMD ["eemt-flow", "--help"]
