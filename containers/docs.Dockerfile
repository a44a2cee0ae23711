# syntax=docker/dockerfile:1
# The eemt-flow user guide (MkDocs Material), built at image build time and served as
# static files on port 8000.
#
#   docker build -f containers/docs.Dockerfile -t eemt-flow/docs:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 eemt-flow/docs:0.1.0
#
# Two stages: the build stage needs MkDocs and eemt-flow itself (mkdocs-click reads the
# command line from eemt_flow.cli); the served image needs only the HTML.

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN pip install mkdocs==1.6.1 mkdocs-material==9.8.2 mkdocs-click==0.9.0 pymdown-extensions==12.3

COPY pyproject.toml README.md mkdocs.yml ./
COPY makeflows/ makeflows/
COPY eemt_flow/ eemt_flow/
RUN pip install .

COPY docs/ docs/
RUN mkdocs build --strict --site-dir /site


FROM python:3.11-slim-bookworm

RUN useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin eemt
COPY --from=build --chown=root:root /site /srv/site

# numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it
USER 1000:1000
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=4)"]

CMD ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", "--directory", "/srv/site"]
