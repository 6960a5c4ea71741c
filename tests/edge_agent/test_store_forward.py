"""Store-and-forward: a broker outage and a SIGKILL of the agent lose and reorder nothing.

The agent runs as a real process (``python -m edge_agent run``) replaying a fast stream of
readings; a subscriber on a real mosquitto checks that every sequence number the agent
ever assigned arrives, exactly once after dedup, in order per sensor.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edge_helpers import ROOT, Collector, wait_until, write_config

pytestmark = [pytest.mark.broker, pytest.mark.slow]

T0 = 1_700_000_000.0


def fast_stream_csv(path: Path, seconds: float = 20.0) -> None:
    """Light levels at 100 Hz (crossing the lamp thresholds) and presses on three switches."""
    rows = ["time,kind,source,channel,value"]
    n = int(seconds * 100)
    for i in range(n):
        t = T0 + i / 100
        rows.append(f"{t:.3f},light,M3,,{0.9 if (i // 50) % 2 else 0.1}")
        if i % 5 == 0:
            task = ("tool_change", "program_input", "material_setting")[(i // 5) % 3]
            rows.append(f"{t:.3f},switch,M3,{task},{(i // 15) % 2}")
    path.write_text("\n".join(rows) + "\n")


SENSORS = """
[replay]
file = "stream.csv"
restamp = true
loop = true

[[sensors]]
id = "light"
kind = "light"
driver = "replay"
on_above = 0.55
off_below = 0.45
level_period_s = 0.0
""" + "".join(
    f"""
[[sensors]]
id = "{sid}"
kind = "switch"
driver = "replay"
channel = "{task}"
"""
    for sid, task in (
        ("sw-tool", "tool_change"),
        ("sw-program", "program_input"),
        ("sw-material", "material_setting"),
    )
)


def start_agent(cfg: Path, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "-c", str(cfg)], cwd=ROOT, stdout=out, stderr=out
    )


def test_outage_and_sigkill_lose_nothing_and_keep_order(tmp_path: Path, own_mosquitto) -> None:
    fast_stream_csv(tmp_path / "stream.csv")
    cfg = write_config(
        tmp_path,
        SENSORS,
        host=own_mosquitto.host,
        port=own_mosquitto.port,
        mqtt_extra="keepalive_s = 5\nmax_inflight = 50",
        agent_extra="stop_drain_s = 60.0",
    )
    sub = Collector(own_mosquitto.host, own_mosquitto.port, "twin/v1/toyama-pilot/pi-m3/#")
    log = tmp_path / "agent.log"
    agent = start_agent(cfg, log)
    try:
        assert wait_until(lambda: len(sub.readings()) >= 300, 20), log.read_text()[-2000:]
        # Broker outage. The agent is frozen for a moment around the broker's stop and start,
        # so mosquitto (persistence off) has forwarded what it acknowledged, and the test's
        # subscriber is back before the agent is: the test measures the agent, not mosquitto.
        agent.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        own_mosquitto.stop()
        agent.send_signal(signal.SIGCONT)
        time.sleep(2.5)  # the agent keeps sampling into its outbox and retries the broker
        before_outage = len(sub.readings())
        agent.send_signal(signal.SIGSTOP)
        own_mosquitto.start()
        assert sub.wait_subscribed(10)
        agent.send_signal(signal.SIGCONT)
        assert wait_until(lambda: len(sub.readings()) >= before_outage + 600, 20), log.read_text()[-2000:]
        # kill -9 mid-stream, restart on the same data dir.
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        killed_at = len(sub.readings())
        # The kernel closes the dead agent's socket: mosquitto publishes the last will.
        assert wait_until(lambda: any(not s.online for s, _ in sub.statuses()), 10)
        agent = start_agent(cfg, log)
        assert wait_until(lambda: len(sub.readings()) >= killed_at + 300, 20), log.read_text()[-2000:]
        agent.send_signal(signal.SIGTERM)  # clean stop drains the outbox (stop_drain_s)
        assert agent.wait(90) == 0, log.read_text()[-2000:]
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGCONT)
            agent.kill()
            agent.wait()
    db = sqlite3.connect(tmp_path / "data" / "outbox.sqlite")
    assigned = dict(db.execute("SELECT sensor, next FROM seq").fetchall())
    pending = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    db.close()
    time.sleep(0.5)
    sub.close()
    assert pending == 0
    readings = sub.readings()
    assert set(assigned) == {"light", "sw-tool", "sw-program", "sw-material"}
    assert sum(assigned.values()) >= 1000  # a substantial stream went through all of it
    for sensor, n in assigned.items():
        arrived = [r.seq for r in readings if r.sensor == sensor]
        first_seen: list[int] = []
        seen: set[int] = set()
        for s in arrived:
            if s not in seen:
                seen.add(s)
                first_seen.append(s)
        assert first_seen == list(range(n)), f"{sensor}: gaps or reordering"
    # The clean stop leaves a retained offline status too.
    statuses = [s for s, _ in sub.statuses()]
    assert statuses and not statuses[-1].online
