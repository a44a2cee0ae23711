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
# Pin the base by digest for reproducible builds, e.g.
#   docker buildx imagetools inspect ubuntu:24.04   ->   FROM ubuntu:24.04@sha256:<digest>
FROM ubuntu:24.04

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# ubuntu:24.04 ships a user 'ubuntu' with UID 1000; eemt takes that UID so that files in
# volumes and bind mounts belong to the first user of a typical host.
RUN userdel --remove ubuntu 2>/dev/null || true \
 && useradd --uid 1000 --user-group --create-home --shell /bin/bash eemt

WORKDIR /opt/eemt-flow

# Only what the install needs, so that editing docs or tests does not rebuild this layer.
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY makeflows/ makeflows/
COPY eemt_flow/ eemt_flow/

RUN EEMT_NO_TEST_DEPS=1 bash scripts/bootstrap.sh \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /root/.cache \
 && .venv/bin/python -m compileall -q eemt_flow \
 && .venv/bin/eemt-flow --version

COPY examples/ examples/

# /data: the web service's data dir (volumes are mounted on its subdirectories);
# /scratch: worker sandboxes; /shared: inputs shared with the host.
RUN mkdir -p /data/uploads /data/jobs /data/temp /data/cache /scratch /shared \
 && chown -R eemt:eemt /data /scratch /shared

ENV PATH=/opt/eemt-flow/.venv/bin:$PATH \
    NUMBA_CACHE_DIR=/home/eemt/.cache/numba

# numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it
USER 1000:1000
WORKDIR /home/eemt

CMD ["eemt-flow", "--help"]
