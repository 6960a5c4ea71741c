"""End-to-end acknowledgement: a broker that loses its queue loses nothing.

A real edge agent (``python -m edge_agent run``, replaying a fast stream) publishes through a
real mosquitto to the real server (``python -m twin_server serve``). Mid-stream the broker
is killed (``kill -9``) and replaced by a fresh one without persistence, twice: the first
time while the server is down (killed, restarted after the new broker is up), the second
while the server is stalled (SIGSTOP) with a queue at the broker. Everything the broker
held for the server is gone each time.

With the agent keeping each reading until the server's acknowledgement covers it
(``keep_until = "server"``) the journal ends with every sequence number the agent ever
assigned, once. Without it (``keep_until = "broker"``: delete on the broker's PUBACK, the
hop-by-hop guarantee of every other stack) the same faults lose readings, and the server
names them lost in ``/health`` with the exact count: so the test can fail.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from services import Mosquitto, free_port, run_mosquitto, wait_for_port, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SITE_YAML = ROOT / "examples" / "pilot_site.yaml"
T0 = 1_700_000_000.0
SENSORS = ("light", "sw-tool", "sw-program", "sw-material")


def _stream_csv(path: Path, seconds: float) -> None:
    """Light levels at 100 Hz and presses on three switches (about 120 readings/s)."""
    rows = ["time,kind,source,channel,value"]
    for i in range(int(seconds * 100)):
        t = T0 + i / 100
        rows.append(f"{t:.3f},light,M3,,{0.9 if (i // 50) % 2 else 0.1}")
        if i % 5 == 0:
            task = ("tool_change", "program_input", "material_setting")[(i // 5) % 3]
            rows.append(f"{t:.3f},switch,M3,{task},{(i // 15) % 2}")
    path.write_text("\n".join(rows) + "\n")


def _agent_config(tmp_path: Path, port: int, keep_until: str) -> Path:
    _stream_csv(tmp_path / "stream.csv", 40.0)
    switches = "".join(
        f'\n[[sensors]]\nid = "{sid}"\nkind = "switch"\ndriver = "replay"\nchannel = "{task}"\n'
        for sid, task in (
            ("sw-tool", "tool_change"),
            ("sw-program", "program_input"),
            ("sw-material", "material_setting"),
        )
    )
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f"""
[agent]
site = "toyama-pilot"
device = "pi-m3"
machine = "M3"
receiver = "R3"
data_dir = "{tmp_path / "agent-data"}"
status_period_s = 2.0
stop_drain_s = 60.0

[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
reconnect_min_s = 1
reconnect_max_s = 1
max_inflight = 100

[outbox]
synchronous = "NORMAL"
keep_until = "{keep_until}"
resend_after_s = 3.0

[replay]
file = "stream.csv"
restamp = true

[[sensors]]
id = "light"
kind = "light"
driver = "replay"
on_above = 0.55
off_below = 0.45
level_period_s = 0.0
{switches}""")
    return cfg


class Server:
    """``python -m twin_server serve`` on a fixed data dir and port, restartable."""

    def __init__(self, tmp_path: Path, broker_port: int) -> None:
        self.data = tmp_path / "server-data"
        self.port = free_port()
        self.broker_port = broker_port
        self.log = tmp_path / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twin_server",
                "serve",
                "--site",
                str(SITE_YAML),
                "--broker",
                f"127.0.0.1:{self.broker_port}",
                "--data-dir",
                str(self.data),
                "--port",
                str(self.port),
                "--analysis-interval",
                "3600",
                "--log-level",
                "WARNING",
                "--client-id",
                "ack-test-server",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
        wait_for_port(self.port, 60, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=30) as r:
            return json.loads(r.read())

    def count(self) -> int:
        with sqlite3.connect(self.data / "journal.sqlite", timeout=30) as db:
            return db.execute("SELECT count(*) FROM readings").fetchone()[0]

    def seqs(self) -> dict[str, list[int]]:
        with sqlite3.connect(self.data / "journal.sqlite", timeout=30) as db:
            rows = db.execute("SELECT sensor, seq FROM readings WHERE device = 'pi-m3' ORDER BY sensor, seq")
            out: dict[str, list[int]] = {}
            for sensor, seq in rows:
                out.setdefault(sensor, []).append(seq)
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _replace_broker(broker: Mosquitto) -> None:
    """kill -9 the broker and start a fresh one (no persistence) on the same port."""
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait(10)
    broker.proc = None
    broker.start()


def _assigned(tmp_path: Path) -> dict[str, int]:
    with sqlite3.connect(tmp_path / "agent-data" / "outbox.sqlite", timeout=30) as db:
        return dict(db.execute("SELECT sensor, next FROM seq").fetchall())


@pytest.mark.parametrize("keep_until", ["server", "broker"])
def test_broker_replaced_twice_and_server_restarted(tmp_path: Path, keep_until: str) -> None:
    with run_mosquitto(tmp_path / "mosquitto") as broker:
        server = Server(tmp_path, broker.port)
        server.start()
        log = open(tmp_path / "agent.log", "ab")  # noqa: SIM115 - closed below
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_agent",
                "run",
                "-c",
                str(_agent_config(tmp_path, broker.port, keep_until)),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        try:
            wait_until(lambda: server.count() >= 400, 30, "the first readings in the journal")
            # 1. The server dies; the broker queues its readings; the broker dies with them.
            server.kill()
            time.sleep(2.0)
            _replace_broker(broker)
            server.start()
            n = server.count()
            wait_until(lambda: server.count() >= n + 400, 30, "readings after the first fault")
            # 2. The server stalls with a queue at the broker; the broker dies with it.
            os.kill(server.proc.pid, signal.SIGSTOP)
            time.sleep(2.0)
            _replace_broker(broker)
            os.kill(server.proc.pid, signal.SIGCONT)
            # The replay ends after 40 s of readings; a clean stop waits for the outbox to drain.
            wait_until(_replay_done(tmp_path), 60, "the end of the replay")
            expected = sum(_assigned(tmp_path).values())
            if keep_until == "server":
                wait_until(lambda: server.count() >= expected, 60, "every assigned reading in the journal")
            agent.send_signal(signal.SIGTERM)
            agent.wait(90)
            assigned = _assigned(tmp_path)
            with sqlite3.connect(tmp_path / "agent-data" / "outbox.sqlite") as db:
                pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            # Let the server fold the agent's last status (its oldest kept seq per sensor).
            time.sleep(3.0)
            health = server.health()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            log.close()
            server.stop()
    seqs = server.seqs()
    assert set(assigned) == set(SENSORS) and sum(assigned.values()) >= 4000, assigned
    for sensor, seq_list in seqs.items():
        assert len(seq_list) == len(set(seq_list)), f"{sensor}: duplicates stored"
    lost = {s: n - len(set(seqs.get(s, [])) & set(range(n))) for s, n in assigned.items()}
    delivery = {row["sensor"]: row for row in health["delivery"]["sensors"] if row["device"] == "pi-m3"}
    if keep_until == "server":
        assert lost == dict.fromkeys(SENSORS, 0), lost
        assert pending == 0
        assert all(
            delivery[s]["upto"] == n - 1 and delivery[s]["missing"] == 0 and delivery[s]["lost"] == 0
            for s, n in assigned.items()
        ), delivery
        agent_log = (tmp_path / "agent.log").read_text()
        assert "sending again from outbox row" in agent_log  # the broker did lose readings
    else:
        # The broker's acknowledgement alone: both faults lost what the broker held.
        assert sum(lost.values()) >= 100, lost
        # ... and the server says so, per sensor, with the exact count.
        assert {s: delivery[s]["lost"] for s in assigned} == lost, (delivery, lost)
        assert health["delivery"]["lost"] == sum(lost.values())


def _replay_done(tmp_path: Path):
    """A condition: the agent has assigned no new sequence number for 2 s."""
    last = {"n": -1, "since": time.monotonic()}

    def done() -> bool:
        n = sum(_assigned(tmp_path).values())
        if n != last["n"]:
            last["n"], last["since"] = n, time.monotonic()
        return time.monotonic() - last["since"] >= 2.0

    return done
