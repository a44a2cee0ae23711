# syntax=docker/dockerfile:1
# The eemt-flow user guide (MkDocs Material), built at image build time and served as
# static files on port 8000.
#
#   bash scripts/stack.sh build        (builds eemt-flow/base first, then this)
#   docker build --build-arg BASE_IMAGE=eemt-flow/base:0.1.0 -f containers/docs.Dockerfile -t eemt-flow/docs:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 eemt-flow/docs:0.1.0
#
# Two stages: building needs MkDocs and eemt-flow itself (mkdocs-click reads the command
# line from eemt_flow.cli), which the base image already holds; the served image needs
# only the HTML and an interpreter for http.server.
ARG BASE_IMAGE=eemt-flow/base:0.1.0
ARG SERVE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build

# root only to add MkDocs to the base image's root-owned environment
USER 0
WORKDIR /opt/eemt-flow
COPY mkdocs.yml ./
COPY docs/ docs/
# The MkDocs pins are those of pyproject.toml's test extra (the suite builds the same site).
# /var/cache/eemt-wheels: the wheel cache scripts/stack.sh mounts into Podman builds.
RUN if [ -n "$(ls -A /var/cache/eemt-wheels 2>/dev/null)" ]; then \
      export PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/eemt-wheels; \
    fi \
 && .venv/bin/python -c 'import tomllib; print(*(r for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"] if r.startswith(("mkdocs", "pymdown"))), sep="\n")' > /tmp/docs-requirements.txt \
 && PIP_NO_CACHE_DIR=1 .venv/bin/python -m pip install -q -r /tmp/docs-requirements.txt \
 && NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --quiet --strict --site-dir /site
USER 1000:1000


FROM ${SERVE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# python3 only for http.server and the health check. Not pinned, like bootstrap.sh's
# packages: Debian 12 point releases and security updates should reach the image.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null \
 && { mountpoint -q /var/cache/apt/archives || apt-get clean; } \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin eemt
COPY --from=build --chown=root:root /site /srv/site

# numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it
USER 1000:1000
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=4)"]

CMD ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", "/srv/site"]
