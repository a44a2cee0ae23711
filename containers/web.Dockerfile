# syntax=docker/dockerfile:1
# eemt-flow web service (FastAPI, REST API, Work Queue manager when --executor wq).
#
#   bash scripts/stack.sh build        (base, then this, with the engine's own build)
#   docker build -f containers/base.Dockerfile -t eemt-flow/base:0.1.0 .
#   docker build --build-arg BASE_IMAGE=eemt-flow/base:0.1.0 -f containers/web.Dockerfile -t eemt-flow/web:0.1.0 .
ARG BASE_IMAGE=eemt-flow/base:0.1.0
FROM ${BASE_IMAGE}

# The base image's user, stated again so that this image does not depend on how it ends.
USER 1000:1000

# 5000: web interface and REST API; 9123: Work Queue manager (--executor wq).
EXPOSE 5000 9123

# /health answers 503 when the database or the executor (makeflow, the Work Queue password
# file) is not usable; urlopen raises on any non-2xx, so the check fails then. No curl needed.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=8)"]

# Inside a container the service must listen on every interface; publish the port on the
# host's loopback (as compose/docker-compose.yml does) unless it is meant to be public.
CMD ["eemt-flow", "serve", "--host", "0.0.0.0", "--port", "5000", "--data-dir", "/data", "--max-concurrent-jobs", "1"]
