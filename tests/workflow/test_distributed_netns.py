"""The distributed topology of compose/docker-compose.yml (profile distributed), without Docker.

A Work Queue manager (``eemt-flow run --executor wq``) and three workers
(``eemt-flow worker ADDR:PORT``), each in its own Linux network namespace, joined by a
bridge in a fifth namespace: four hosts on 10.203.0.0/24 that reach each other only over
the test's own links, as containers on a Compose network do. Where network namespaces
cannot be created (not root, no ``ip``, a sandbox that forbids them) the same processes
run on 127.0.0.1 instead (``EEMT_TEST_LOOPBACK=1`` asks for that); the test prints which
mode ran and records it as the ``topology_mode`` property of its JUnit report.

Both runs compute a real small job on the built-in example DEM; the distributed results
must equal a local run's (``--executor local``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import EEMT, cli_env, free_port, read_raster, require_tools, run_cli

# 4 tiles (120 x 120 cells, 60-cell cores) x 2 months with the grass engine: 4 terrain + 8 solar
# tasks of a few seconds each (enough to give every worker a share) + 1 reducer
JOB = ["--days", "172,355", "--tile-size", "60", "--halo", "300", "--horizon-step", "10", "--engine", "grass"]
MONTHLY = [f"results/solar/monthly/{name}_{month:02d}.tif"
           for name in ("glob_rad", "flat_glob_rad", "insol_time") for month in (6, 12)]
N_WORKERS = 3
SUBNET_PREFIX = "10.203.0"
MANAGER_ADDRESS = f"{SUBNET_PREFIX}.1"
RUN_TIMEOUT_S = 900
#: More than an idle worker's handshake and keep-alives move over its link [bytes].
TASK_TRAFFIC_MIN_BYTES = 100_000


def _env() -> dict:
    env = cli_env()
    env.pop("EEMT_WQ_PASSWORD_FILE", None)  # the test gives its own file explicitly
    return env


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class Loopback:
    """Every host is this machine; the manager is reached on 127.0.0.1."""

    mode = "loopback"
    manager_address = "127.0.0.1"

    def __init__(self, reason: str):
        self.reason = reason

    def on_manager(self, cmd: list[str]) -> list[str]:
        return cmd

    def on_worker(self, index: int, cmd: list[str]) -> list[str]:
        return cmd

    def worker_traffic_bytes(self) -> list[int] | None:
        return None  # every worker shares the loopback interface

    def describe(self) -> str:
        return f"separate processes on 127.0.0.1 ({self.reason})"

    def destroy(self) -> None:
        pass


class Namespaces:
    """One network namespace per host, veth links to a bridge in a namespace of its own.

    Nothing is added to the caller's own network namespace: each veth pair is created
    with one end in the switch namespace and the other in the host's.
    """

    mode = "netns"
    manager_address = MANAGER_ADDRESS

    def __init__(self, n_workers: int):
        token = f"{os.getpid():x}{secrets.token_hex(3)}"
        self.switch = f"eemt-{token}-sw"
        self.manager = f"eemt-{token}-m"
        self.workers = [f"eemt-{token}-w{i}" for i in range(n_workers)]
        self.created: list[str] = []
        try:
            self._add(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            self._host(self.manager, 0, MANAGER_ADDRESS)
            for i, ns in enumerate(self.workers):
                self._host(ns, i + 1, f"{SUBNET_PREFIX}.{11 + i}")
        except BaseException:
            self.destroy()
            raise

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.created.append(ns)

    def _host(self, ns: str, port_index: int, address: str) -> None:
        self._add(ns)
        link = f"p{port_index}"
        _ip("-n", self.switch, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.switch, "link", "set", link, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def on_manager(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.manager, *cmd]

    def on_worker(self, index: int, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.workers[index], *cmd]

    def worker_traffic_bytes(self) -> list[int]:
        """Bytes received plus sent on each worker's eth0."""
        out = []
        for ns in self.workers:
            proc = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", "eth0"], capture_output=True,
                                  text=True, timeout=30, check=True)
            stats = json.loads(proc.stdout)[0]["stats64"]
            out.append(stats["rx"]["bytes"] + stats["tx"]["bytes"])
        return out

    def describe(self) -> str:
        return (f"network namespaces: manager {self.manager} at {MANAGER_ADDRESS}, workers "
                + ", ".join(f"{ns} at {SUBNET_PREFIX}.{11 + i}" for i, ns in enumerate(self.workers))
                + f", bridge br0 in {self.switch}")

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.created.clear()


def make_topology():
    """Namespaces where this machine allows them (tried, not guessed), else loopback.

    ``EEMT_TEST_LOOPBACK=1`` asks for loopback even where namespaces would work.
    """
    if os.environ.get("EEMT_TEST_LOOPBACK") == "1":
        return Loopback("asked for by EEMT_TEST_LOOPBACK=1")
    if shutil.which("ip") is None:
        return Loopback("no network namespaces: the ip command (iproute2) is not installed")
    try:
        return Namespaces(N_WORKERS)
    except OSError as exc:
        return Loopback(f"no network namespaces: {exc}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started, and its process group (start_new_session=True).

    SIGTERM first: ``eemt-flow run`` passes it on to its makeflow, which runs in a session
    of its own; SIGKILL if that is not enough.
    """
    for sig, wait_s in ((signal.SIGTERM, 60), (signal.SIGKILL, 30)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


def tail(path: Path, n_chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-n_chars:] if path.exists() else f"({path} does not exist)"


@pytest.fixture(scope="module")
def local_reference(example_dem, tmp_path_factory) -> Path:
    require_tools()
    work = tmp_path_factory.mktemp("netns-local") / "work"
    run_cli("run", "--dem", example_dem, "--workdir", work, "--executor", "local", "--quiet", *JOB,
            timeout=RUN_TIMEOUT_S)
    return work


def test_manager_and_three_workers_in_separate_hosts_equal_local(example_dem, local_reference, tmp_path,
                                                                 capsys, record_property):
    password = tmp_path / "wq.password"
    password.write_text(secrets.token_hex(32) + "\n")
    password.chmod(0o600)
    work = tmp_path / "work"
    port = free_port()

    topology = make_topology()
    with capsys.disabled():
        print(f"\n[distributed topology] mode={topology.mode}: {topology.describe()}")
    record_property("topology_mode", topology.mode)

    manager_log = tmp_path / "manager.log"
    procs: list[subprocess.Popen] = []
    try:
        with open(manager_log, "w") as log:
            manager = subprocess.Popen(
                topology.on_manager([EEMT, "run", "--dem", str(example_dem), "--workdir", str(work),
                                     "--executor", "wq", "--port", str(port), "--password-file", str(password),
                                     "--quiet", *JOB]),
                stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        procs.append(manager)
        workers = []
        for i in range(N_WORKERS):
            scratch = tmp_path / f"worker-{i}"
            scratch.mkdir()
            worker_log = open(tmp_path / f"worker-{i}.log", "w")
            workers.append(subprocess.Popen(
                topology.on_worker(i, [EEMT, "worker", f"{topology.manager_address}:{port}", "--password-file",
                                       str(password), "--cores", "1", "--idle-timeout", "300",
                                       "--workdir", str(scratch)]),
                stdout=worker_log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True))
            worker_log.close()
        procs.extend(workers)

        try:
            manager.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the Work Queue run did not finish in {RUN_TIMEOUT_S} s ({topology.mode});\n"
                        f"{tail(work / 'logs' / 'makeflow.out')}")
        exited_early = [i for i, w in enumerate(workers) if w.poll() is not None]
        assert manager.returncode == 0, (
            f"eemt-flow run --executor wq exited {manager.returncode} ({topology.mode}):\n{tail(manager_log)}\n"
            f"makeflow:\n{tail(work / 'logs' / 'makeflow.out')}\n"
            + "\n".join(f"worker {i}:\n{tail(tmp_path / f'worker-{i}.log', 1000)}" for i in range(N_WORKERS)))
        assert not exited_early, f"worker(s) {exited_early} exited before the job finished ({topology.mode})"
        traffic = topology.worker_traffic_bytes()
    finally:
        for proc in procs:
            stop(proc)
        topology.destroy()

    if topology.mode == "netns":
        leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert topology.manager not in leftover, "network namespaces were not removed"
        # Work Queue sends each task its input files (a tile's DEM, terrain and horizon
        # maps) and brings its outputs back, all over the worker's link: a worker that ran
        # tasks moved far more than the handshake and keep-alives of an idle one.
        busy = [i for i, n in enumerate(traffic) if n > TASK_TRAFFIC_MIN_BYTES]
        with capsys.disabled():
            print(f"[distributed topology] bytes over each worker's link: {traffic}; workers that ran tasks: {busy}")
        assert len(busy) >= 2, f"tasks did not spread over the workers (bytes per worker link: {traffic})"
    else:
        with capsys.disabled():
            print("[distributed topology] loopback: which worker ran which task is not measured")

    # every task ran on a worker (only the cuts and the summary run on the manager), so results that
    # equal the local run's crossed the links between the hosts
    for rel in MONTHLY:
        got, want = read_raster(work / rel), read_raster(local_reference / rel)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want), err_msg=f"nodata differs: {rel}")
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=rel)
    assert np.nanmax(read_raster(work / "results/solar/monthly/glob_rad_06.tif")) > 0
