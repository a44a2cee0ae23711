# syntax=docker/dockerfile:1
# Prometheus for eemt-flow's monitoring profile: Debian's own prometheus package (2.42 in
# Debian 12) with eemt-flow's configuration, alerting rules and console templates
# (monitoring/), listening on 9090. No Grafana (not in Debian): the dashboard is the console
# /consoles/eemt.html (docs/monitoring.md says why).
#
#   bash scripts/stack.sh build        (all images, this one included)
#   docker build -f containers/prometheus.Dockerfile -t eemt-flow/prometheus:0.1.0 .
#
# FROM the same Debian 12 base as eemt-flow/base (scripts/stack.sh makes it locally with
# mmdebstrap where no registry is at hand); see base.Dockerfile for pinning it by digest.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Not pinned, like bootstrap.sh's packages: Debian 12 point releases and security updates
# should reach the image. Its dependencies are the classic web UI's JavaScript libraries
# (Rickshaw, d3, jQuery, Bootstrap) that the console templates draw with.
# libjs-moment-timezone's data/ directory holds every tz database release since 2014 as
# JSON (214 MB); nothing served uses it (the pages load moment-timezone-with-data.min.js),
# so dpkg leaves it out, as the base image leaves out manuals and docs.
# hadolint ignore=DL3008
RUN echo 'path-exclude=/usr/share/javascript/moment-timezone/data/*' > /etc/dpkg/dpkg.cfg.d/eemt-no-tz-archive \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
 && { mountpoint -q /var/cache/apt/archives || apt-get clean; } \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin eemt \
 && mkdir -p /prometheus && chown 1000:1000 /prometheus

COPY --chown=root:root monitoring/prometheus.yml monitoring/alerts.yml /etc/prometheus/
COPY --chown=root:root monitoring/consoles/ /etc/prometheus/consoles/
COPY --chown=root:root monitoring/console_libraries/ /etc/prometheus/console_libraries/
RUN promtool check config /etc/prometheus/prometheus.yml

# numeric, so that runtimes enforcing non-root (runAsNonRoot) can check it
USER 1000:1000
EXPOSE 9090
# /prometheus: the time-series database (a volume in Compose)
VOLUME ["/prometheus"]

# promtool asks the server itself; no curl needed
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["promtool", "query", "instant", "http://127.0.0.1:9090", "vector(1)"]

CMD ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--storage.tsdb.retention.time=30d", "--web.listen-address=0.0.0.0:9090", \
     "--web.console.templates=/etc/prometheus/consoles", "--web.console.libraries=/etc/prometheus/console_libraries"]
