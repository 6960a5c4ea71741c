"""Real mosquitto and influxd for tests, started as subprocesses on free loopback ports.

If a binary is missing the fixture fails with a message naming the package: the suite's
setup script installs them, so a missing one is a broken setup, never a reason to skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], object], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll ``cond`` every 50 ms until it is true; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout_s} s")


def wait_for_port(port: int, timeout_s: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def require_binary(name: str, package: str) -> str:
    """Path of a binary, or fail naming the Debian package that provides it."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: run scripts/setup.sh as root, or apt-get install {package}"
        )
    return path


@dataclass
class Mosquitto:
    """A running mosquitto; ``stop()``/``start()`` simulate a broker outage on the same port."""

    workdir: Path
    port: int
    proc: subprocess.Popen | None = None
    extra_conf: str = ""

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        binary = require_binary("mosquitto", "mosquitto")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_inflight_messages 0\nmax_queued_messages 0\n{self.extra_conf}"
        )
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port, 10.0, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextlib.contextmanager
def run_mosquitto(workdir: Path, extra_conf: str = "") -> Iterator[Mosquitto]:
    """Start mosquitto on a free loopback port for the duration of the block."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(workdir, free_port(), extra_conf=extra_conf)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Influxd:
    """A running InfluxDB 1.x speaking the v1 HTTP API on ``url``."""

    workdir: Path
    http_port: int
    rpc_port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        binary = require_binary("influxd", "influxdb")
        conf = self.workdir / "influxdb.conf"
        d = self.workdir
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.http_port}"\n  log-enabled = false\n'
            f"[monitor]\n  store-enabled = false\n"
        )
        log = open(self.workdir / "influxd.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([binary, "-config", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}; see {d}/influxd.log")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as r:
                    if r.status == 204 and "X-Influxdb-Version" in r.headers:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping within 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, q: str, db: str | None = None) -> dict:
        """Run InfluxQL through ``/query`` and return the decoded JSON."""
        import json
        import urllib.parse

        params = {"q": q}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as r:
            return json.loads(r.read())


@contextlib.contextmanager
def run_influxd(workdir: Path) -> Iterator[Influxd]:
    """Start influxd on free loopback ports for the duration of the block."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = Influxd(workdir, free_port(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
