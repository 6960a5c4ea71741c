"""Drivers against gpiozero MockFactory pins, a pty serial pair and recorded BLE adverts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
from edge_helpers import DATA, ROOT, mock_mcp3008, wait_until

from edge_agent.clock import Clock
from edge_agent.config import parse_config
from edge_agent.drivers import DRIVERS, Sample
from edge_agent.drivers.adc import MCP3008Driver, ads1115_config_word, ads1115_fraction
from edge_agent.drivers.ble import BleakDriver, SerialScannerDriver, parse_scanner_line
from edge_agent.drivers.button import ButtonDriver
from edge_agent.drivers.replay import ReplayDriver, ReplaySource, read_replay_rows


def test_registry_is_a_plain_dict_of_all_drivers() -> None:
    assert isinstance(DRIVERS, dict)
    assert set(DRIVERS) == {"mcp3008", "ads1115", "button", "bleak", "serial_ble", "replay"}


def test_agent_imports_no_hardware_or_heavy_library() -> None:
    # The agent must start on a machine without GPIO and stay light on a Pi.
    code = (
        "import sys, edge_agent.agent, edge_agent.__main__, edge_agent.tools, edge_agent.doctor,"
        " edge_agent.calibrate;"
        "bad = [m for m in ('gpiozero','serial','bleak','pandas','numpy','open3d','fastapi','pydantic',"
        "'twin_server') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_button_press_and_release_on_mock_pin(mock_factory) -> None:
    clock = Clock()
    drv = ButtonDriver({"id": "sw-tool", "gpio": 17, "bounce_ms": 0}, clock)
    got: list[Sample] = []
    drv.start(got.append)
    pin = mock_factory.pin(17)
    assert drv.probe()[0].value == 0.0  # pulled up, not pressed
    t0 = clock.now_ns()
    pin.drive_low()  # switch closes to GND
    assert wait_until(lambda: len(got) == 1)
    assert drv.probe()[0].value == 1.0
    pin.drive_high()
    assert wait_until(lambda: len(got) == 2)
    drv.close()
    assert [s.value for s in got] == [1.0, 0.0]
    assert all(s.sensor == "sw-tool" for s in got)
    assert t0 <= got[0].t_ns <= got[1].t_ns <= clock.now_ns()


def test_button_debounce_swallows_contact_bounce(mock_factory) -> None:
    drv = ButtonDriver({"id": "sw-tool", "gpio": 27, "bounce_ms": 200}, Clock())
    got: list[Sample] = []
    drv.start(got.append)
    pin = mock_factory.pin(27)
    pin.drive_low()
    for _ in range(5):  # contact chatter right after the press
        pin.drive_high()
        pin.drive_low()
    time.sleep(0.3)
    pin.drive_high()
    assert wait_until(lambda: len(got) >= 2)
    time.sleep(0.1)
    drv.close()
    assert [s.value for s in got] == [1.0, 0.0]


def test_mcp3008_reads_mock_spi_levels(mock_factory) -> None:
    levels = [3.3 * 0.8, 3.3 * 0.25] + [0.0] * 6
    dev = mock_mcp3008(levels)
    light = MCP3008Driver({"id": "light", "adc_channel": 0, "sample_hz": 50}, Clock())
    pressure = MCP3008Driver({"id": "pressure", "adc_channel": 1, "scale": 100.0}, Clock())
    assert light.probe()[0].value == pytest.approx(0.8, abs=0.002)
    assert pressure.probe()[0].value == pytest.approx(25.0, abs=0.2)
    levels[0] = 3.3 * 0.1
    assert light.probe()[0].value == pytest.approx(0.1, abs=0.002)
    # Polling thread: samples keep coming at sample_hz with increasing timestamps.
    got: list[Sample] = []
    light.start(got.append)
    assert wait_until(lambda: len(got) >= 5)
    light.close()
    pressure.close()
    ts = [s.t_ns for s in got]
    assert ts == sorted(ts) and dev.reads >= 8


def test_ads1115_register_words() -> None:
    # Datasheet: OS=1, MUX=100 (AIN0/GND), PGA=001 (4.096 V), MODE=1, DR=100, COMP_QUE=11.
    assert ads1115_config_word(0) == 0b1_100_001_1_100_0_0_0_11
    assert ads1115_config_word(3, 2.048) >> 12 & 0b111 == 0b111
    assert ads1115_fraction(0x7F, 0xFF) == 1.0
    assert ads1115_fraction(0x40, 0x00) == pytest.approx(0.5, abs=1e-4)
    assert ads1115_fraction(0xFF, 0xF0) == 0.0  # small negative single-ended noise clamps
    with pytest.raises(ValueError, match=r"0\.\.3"):
        ads1115_config_word(4)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("C3:00:00:0A:12:01,-67", ("C3:00:00:0A:12:01", -67.0)),
        (b"c3:00:00:0a:12:02,-80.5,Beacon,0201\r\n", ("C3:00:00:0A:12:02", -80.5)),
        ("   ", None),
        ("# scanner v1.2", None),
    ],
)
def test_scanner_line_format(line, expected) -> None:
    assert parse_scanner_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "C3:00:00:0A:12,-67",
        "C3:00:00:0A:12:01",
        "C3:00:00:0A:12:01,loud",
        "C3:00:00:0A:12:01,nan",
        "C3:00:00:0A:12:01,-300",
        b"\xff\xfe,1",
    ],
)
def test_scanner_bad_lines_raise_value_error(line) -> None:
    with pytest.raises(ValueError):
        parse_scanner_line(line)


def test_serial_scanner_over_pty_pair() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # a USB CDC scanner port is raw: no echo, no line editing
    port = os.ttyname(slave)
    beacons = {"C3:00:00:0A:12:01": "b-01", "C3:00:00:0A:12:02": "b-02"}
    drv = SerialScannerDriver({"id": "ble", "port": port, "beacons": beacons}, Clock())
    got: list[Sample] = []
    drv.start(got.append)
    try:
        os.write(master, b"# hello\r\nC3:00:00:0A:12:01,-61\r\nAA:BB:CC:DD:EE:FF,-40\r\n")
        os.write(master, b"garbage line\nC3:00:00:0A:12:02,-7")  # second line split across writes
        os.write(master, b"9,extra\n")
        assert wait_until(lambda: len(got) == 2)
    finally:
        drv.close()
        os.close(master)
        os.close(slave)
    assert [(s.channel, s.value) for s in got] == [("b-01", -61.0), ("b-02", -79.0)]
    assert drv.bad_lines == 1 and drv.unknown == 1


def recorded_adverts() -> list[dict]:
    return [json.loads(line) for line in (DATA / "ble_adverts.jsonl").read_text().splitlines() if line]


def test_bleak_detection_callback_with_recorded_adverts() -> None:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    beacons = {"C3:00:00:0A:12:01": "b-01", "C3:00:00:0A:12:02": "b-02"}
    drv = BleakDriver({"id": "ble", "beacons": beacons}, Clock())
    got: list[Sample] = []
    drv._emit = got.append  # what start() installs, without starting a BlueZ scan
    recs = recorded_adverts()
    for rec in recs:
        device = BLEDevice(rec["address"], rec.get("name"), details={"path": "/org/bluez/hci0"})
        adv = AdvertisementData(
            local_name=rec.get("name"),
            manufacturer_data={int(k): bytes.fromhex(v) for k, v in rec.get("manufacturer_data", {}).items()},
            service_data={},
            service_uuids=rec.get("service_uuids", []),
            tx_power=rec.get("tx_power"),
            rssi=rec["rssi"],
            platform_data=(),
        )
        drv.detection_callback(device, adv)
    ours = [r for r in recs if r["address"].upper() in beacons]
    assert len(got) == len(ours) and drv.unknown == len(recs) - len(ours)
    assert [(s.channel, s.value) for s in got] == [(beacons[r["address"].upper()], r["rssi"]) for r in ours]


def test_replay_source_routes_rows_to_sensors(tmp_path: Path) -> None:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(
        "time,kind,source,channel,value\n"
        "1700000000.0,light,M3,,0.9\n"
        "1700000000.1,switch,M3,tool_change,1\n"
        "1700000000.1,switch,M7,tool_change,1\n"
        "1700000000.2,rssi,R3,b-01,-70\n"
        "not-a-time,light,M3,,1\n"
        "1700000000.3,zone,tagsys,b-01,M3\n"
        "1700000000.4,light,M3,,0.1\n"
    )
    rows, rejected = read_replay_rows(csv_path)
    assert rejected == 1
    clock = Clock()
    src = ReplaySource(rows, clock, speed=100.0, restamp=False, loop=False)
    sensors = [
        {"id": "light", "kind": "light"},
        {"id": "sw-tool", "kind": "switch", "channel": "tool_change"},
        {"id": "ble", "kind": "ble", "beacons": {}},
        {"id": "zone", "kind": "zone", "locator": "tagsys"},
    ]
    got: list[Sample] = []
    drivers = [ReplayDriver(s, clock, source=src, machine="M3", receiver="R3") for s in sensors]
    for d in drivers:
        d.start(got.append)
    t0 = time.monotonic()
    src.start()
    assert src.done.wait(5)
    elapsed = time.monotonic() - t0
    assert [(s.sensor, s.value, s.channel) for s in got] == [
        ("light", 0.9, ""),
        ("sw-tool", 1.0, ""),
        ("ble", -70.0, "b-01"),
        ("zone", "M3", "b-01"),
        ("light", 0.1, ""),
    ]
    assert got[0].t_ns == 1_700_000_000_000_000_000  # recorded time kept
    assert elapsed < 2.0  # 0.4 s of recording at 100x


def test_sample_config_drivers_validate() -> None:
    from edge_agent.config import sample_config_text

    cfg = parse_config(sample_config_text())
    assert [s["driver"] for s in cfg.sensors] == ["mcp3008", "mcp3008", "button", "button", "button", "bleak"]
