"""The agent end to end against a real mosquitto, with MockFactory pins for the hardware."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from edge_helpers import Collector, mock_mcp3008, wait_until, write_config

from edge_agent.agent import Agent
from edge_agent.clock import ntp_synchronized
from edge_agent.config import load_config

pytestmark = pytest.mark.broker

SENSORS = """
[[sensors]]
id = "light"
kind = "light"
driver = "mcp3008"
adc_channel = 0
on_above = 0.55
off_below = 0.45
sample_hz = 50
level_period_s = 0.5

[[sensors]]
id = "pressure"
kind = "pressure"
driver = "mcp3008"
adc_channel = 1
normal = 0.62
band = 0.15
sample_hz = 50

[[sensors]]
id = "sw-tool"
kind = "switch"
driver = "button"
channel = "tool_change"
gpio = 17
bounce_ms = 0
"""


def test_agent_publishes_states_levels_switches_and_status(
    tmp_path: Path, own_mosquitto, mock_factory
) -> None:
    levels = [3.3 * 0.2, 3.3 * 0.62] + [0.0] * 6
    mock_mcp3008(levels)
    cfg = load_config(write_config(tmp_path, SENSORS, host=own_mosquitto.host, port=own_mosquitto.port))
    sub = Collector(own_mosquitto.host, own_mosquitto.port)
    agent = Agent(cfg)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: any(r.kind == "light_state" for r in sub.readings()), 10)
        levels[0] = 3.3 * 0.9  # lamp on
        assert wait_until(
            lambda: [r.value for r in sub.readings() if r.kind == "light_state"] == [0.0, 1.0], 10
        ), [(r.kind, r.value) for r in sub.readings()]
        levels[1] = 3.3 * 0.2  # jig unclamped: pressure leaves its normal level
        pin = mock_factory.pin(17)
        pin.drive_low()
        pin.drive_high()
        assert wait_until(
            lambda: [r.value for r in sub.readings() if r.kind == "switch"] == [1.0, 0.0], 10
        ), [(r.kind, r.value) for r in sub.readings()][-8:]
        assert wait_until(
            lambda: any(r.kind == "pressure_state" and r.value == 1.0 for r in sub.readings()), 10
        )
        assert wait_until(lambda: sum(r.kind == "light" for r in sub.readings()) >= 3, 10)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert wait_until(lambda: any(not s.online for s, _ in sub.statuses()), 10)
    sub.close()
    readings = sub.readings()
    assert sub.errors == []
    for r in readings:
        assert (r.site, r.device) == ("toyama-pilot", "pi-m3")
        assert r.source == "M3"
    switch = [r for r in readings if r.kind == "switch"]
    assert all(r.channel == "tool_change" and r.unit == "bool" for r in switch)
    assert switch[0].t_ns <= switch[1].t_ns
    # Per sensor, seq counts every message of that sensor (levels and state events) from 0.
    for sensor in ("light", "pressure", "sw-tool"):
        seqs = [r.seq for r in readings if r.sensor == sensor]
        assert seqs == list(range(len(seqs))), sensor
    # Levels after the first sit on the 0.5 s grid, one per slot (sampling at 50 Hz).
    levels_t = [r.t_ns for r in readings if r.kind == "light"][1:]
    slots = [t // 500_000_000 for t in levels_t]
    assert slots == sorted(set(slots))
    online = [s for s, _ in sub.statuses() if s.online]
    assert online and online[0].agent_version and "outbox_pending" in online[0].extra
    assert online[0].clock_synced == ntp_synchronized()
    # Retained: a late subscriber sees the last status (offline after a clean stop).
    late = Collector(own_mosquitto.host, own_mosquitto.port, "twin/v1/+/+/status")
    assert wait_until(lambda: late.statuses() != [], 5)
    status, retained = late.statuses()[-1]
    late.close()
    assert retained and not status.online


def test_a_missing_sensor_does_not_stop_the_others(tmp_path: Path, own_mosquitto) -> None:
    (tmp_path / "r.csv").write_text(
        "time,kind,source,channel,value\n" + "".join(f"{1_700_000_000 + i},light,M3,,0.5\n" for i in range(5))
    )
    body = """
[replay]
file = "r.csv"
speed = 20.0

[[sensors]]
id = "light"
kind = "light"
driver = "replay"

[[sensors]]
id = "ble"
kind = "ble"
driver = "serial_ble"
port = "/dev/no-such-scanner"
"""
    cfg = load_config(write_config(tmp_path, body, host=own_mosquitto.host, port=own_mosquitto.port))
    sub = Collector(own_mosquitto.host, own_mosquitto.port)
    agent = Agent(cfg)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: sum(r.kind == "light" for r in sub.readings()) == 5, 15)
        online = [s for s, _ in sub.statuses() if s.online]
    finally:
        stop.set()
        runner.join(10)
        sub.close()
    assert set(agent.drivers) == {"light"}
    assert "ble" in online[0].extra["driver_errors"]
    assert "no-such-scanner" in online[0].extra["driver_errors"]["ble"]
