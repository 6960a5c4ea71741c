"""doctor: the right checks pass and fail, on MockFactory pins, a pty scanner and a real mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tty
from pathlib import Path

import pytest
from edge_helpers import ROOT, mock_mcp3008, write_config

from edge_agent.clock import ntp_synchronized
from edge_agent.config import load_config
from edge_agent.doctor import run_doctor

pytestmark = pytest.mark.broker

GPIO = {"tool_change": 17, "program_input": 27, "material_setting": 22}


def sensors(port: str) -> str:
    text = """
[[sensors]]
id = "light"
kind = "light"
driver = "mcp3008"
adc_channel = 0
on_above = 0.55
off_below = 0.45

[[sensors]]
id = "pressure"
kind = "pressure"
driver = "mcp3008"
adc_channel = 1
"""
    for sid, (task, gpio) in zip(("sw-tool", "sw-program", "sw-material"), GPIO.items(), strict=True):
        text += f'\n[[sensors]]\nid = "{sid}"\nkind = "switch"\ndriver = "button"\n'
        text += f'channel = "{task}"\ngpio = {gpio}\n'
    text += f"""
[[sensors]]
id = "ble"
kind = "ble"
driver = "serial_ble"
port = "{port}"
[sensors.beacons]
b-01 = "C3:00:00:0A:12:01"
b-02 = "C3:00:00:0A:12:02"
"""
    return text


class Scanner:
    """A USB scanner on a pty printing one beacon's adverts every 50 ms (or nothing)."""

    def __init__(self, beacons: list[str]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.beacons = beacons
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        i = 0
        while not self.stop.wait(0.05):
            if self.beacons:
                os.write(self.master, f"{self.beacons[i % len(self.beacons)]},{-60 - i % 9}\n".encode())
                i += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


def engineer(factory, levels, skip_task: str | None = None, lamp_switched: bool = True):
    """The person at the machine: answers doctor's prompts by acting on the mock hardware."""

    def ask(prompt: str) -> None:
        if "stack light" in prompt and lamp_switched:
            levels[0] = 3.3 * (0.9 if "ON" in prompt else 0.1)
        for task, gpio in GPIO.items():
            if f"the {task} button" in prompt and task != skip_task:
                pin = factory.pin(gpio)
                pin.drive_low()
                pin.drive_high()

    return ask


def by_name(checks) -> dict[str, str]:
    return {c.name.split(" (")[0]: c.status for c in checks}


def test_doctor_all_pass_on_a_good_install(tmp_path: Path, own_mosquitto, mock_factory) -> None:
    levels = [3.3 * 0.1, 3.3 * 0.6] + [0.0] * 6
    mock_mcp3008(levels)
    scanner = Scanner(["C3:00:00:0A:12:01", "C3:00:00:0A:12:02"])
    try:
        cfg = load_config(write_config(tmp_path, sensors(scanner.port), port=own_mosquitto.port))
        lines: list[str] = []
        checks = run_doctor(cfg, seconds=0.6, ask=engineer(mock_factory, levels), say=lines.append)
    finally:
        scanner.close()
    status = by_name(checks)
    expected_clock = {True: "PASS", False: "FAIL", None: "SKIP"}[ntp_synchronized()]
    assert status == {
        "config": "PASS",
        "clock": expected_clock,
        "outbox storage": "PASS",
        "broker": "PASS",
        "sensor light": "PASS",
        "light levels light": "PASS",
        "sensor pressure": "PASS",
        "button sw-tool": "PASS",
        "button sw-program": "PASS",
        "button sw-material": "PASS",
        "BLE ble at receiver": "PASS",
    }
    assert lines == [c.line() for c in checks]
    ble = next(c for c in checks if c.name.startswith("BLE"))
    assert "b-01:" in ble.detail and "b-02:" in ble.detail and "not heard" not in ble.detail


def test_doctor_fails_the_right_checks(tmp_path: Path, own_mosquitto, mock_factory, monkeypatch) -> None:
    levels = [3.3 * 0.5, 3.3 * 0.6] + [0.0] * 6
    mock_mcp3008(levels)
    # program_input switch stuck closed: the pin stays low whatever pull-up is set.
    stuck = mock_factory.pin(27)
    stuck.drive_low()
    monkeypatch.setattr(stuck, "_set_pull", lambda value: setattr(stuck, "_pull", value))
    own_mosquitto.stop()  # broker down
    scanner = Scanner([])  # no beacon around
    try:
        cfg = load_config(write_config(tmp_path, sensors(scanner.port), port=own_mosquitto.port))
        ask = engineer(mock_factory, levels, skip_task="material_setting", lamp_switched=False)
        checks = run_doctor(cfg, seconds=0.5, ask=ask, say=lambda _: None)
    finally:
        scanner.close()
    status = by_name(checks)
    assert status["broker"] == "FAIL"
    assert status["sensor light"] == "PASS" and status["sensor pressure"] == "PASS"
    assert status["light levels light"] == "FAIL"  # lamp never switched: levels overlap
    assert status["button sw-tool"] == "PASS"
    assert status["button sw-program"] == "FAIL"  # stuck pressed
    assert status["button sw-material"] == "FAIL"  # nobody pressed it
    assert status["BLE ble at receiver"] == "FAIL"
    details = {c.name.split(" (")[0]: c.detail for c in checks}
    assert "reads pressed" in details["button sw-program"]
    assert "no press seen" in details["button sw-material"]
    assert "refused" in details["broker"] or "cannot reach" in details["broker"]


def test_doctor_cli_non_interactive_exit_code(tmp_path: Path, own_mosquitto) -> None:
    (tmp_path / "r.csv").write_text("time,kind,source,channel,value\n1700000000,light,M3,,0.8\n")
    body = '[replay]\nfile = "r.csv"\n[[sensors]]\nid = "light"\nkind = "light"\ndriver = "replay"\n'
    cfg = write_config(tmp_path, body, port=own_mosquitto.port)
    cmd = [
        sys.executable,
        "-m",
        "edge_agent",
        "doctor",
        "--no-interactive",
        "--seconds",
        "0.2",
        "-c",
        str(cfg),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "[PASS] broker:" in out.stdout and "[PASS] sensor light: live light level 0.8" in out.stdout
    assert "[SKIP] light levels light" in out.stdout
    assert out.returncode == (1 if ntp_synchronized() is False else 0)
    own_mosquitto.stop()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1 and "[FAIL] broker:" in out.stdout
