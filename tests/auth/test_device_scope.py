"""MQTT side: readings from a device outside its own site and station are rejected with a reason."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edge_agent.wire import Reading
from twin_server.auth import DeviceScope, check_device_scope
from twin_server.ingest.publish import frame_to_wire
from twin_server.readings import load_readings_csv
from twin_server.site import parse_site

ROOT = Path(__file__).resolve().parents[2]


def _r(
    kind: str,
    device: str,
    source: str,
    channel: str = "",
    site: str = "toyama-pilot",
    value: float | str = 1.0,
) -> Reading:
    units = {"light": "raw", "pressure": "raw", "switch": "bool", "rssi": "dBm", "zone": "zone"}
    return Reading(
        site=site,
        device=device,
        sensor="s",
        kind=kind,
        t_ns=1_800_000_000 * 10**9,
        seq=0,
        source=source,
        value=value,
        unit=units[kind],
        channel=channel,
    )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, pilot_site, pilot_site_path):
    d = tmp_path_factory.mktemp("scope")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_server",
            "simulate",
            "--site",
            str(pilot_site_path),
            "--hours",
            "0.05",
            "--seed",
            "3",
            "--out",
            str(d),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return frame_to_wire(load_readings_csv(d / "readings.csv", pilot_site).frame, pilot_site)


def test_every_reading_of_a_simulated_install_is_in_scope(pilot_site, simulated):
    """What each device of the site publishes in a simulated shift passes (all kinds)."""
    scope = DeviceScope.of(pilot_site)
    assert {r.kind for r in simulated} >= {"light", "pressure", "switch", "rssi", "zone"}
    assert Counter(scope.check(r) for r in simulated) == Counter({None: len(simulated)})


def test_a_device_speaking_for_another_station_is_rejected(pilot_site, simulated):
    """Each reading re-published by every other device: all rejected, each with a reason."""
    scope = DeviceScope.of(pilot_site)
    devices = sorted({r.device for r in simulated})
    assert devices == ["pi-m10", "pi-m3", "pi-m7", "tagsys"]
    one_per_kind = {(r.device, r.kind): r for r in simulated}.values()
    for r in one_per_kind:
        for dev in devices:
            if dev != r.device:
                assert scope.check(dataclasses.replace(r, device=dev)) is not None, (r, dev)


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (_r("light", "pi-m3", "M3", site="other-site"), "foreign_site"),
        (_r("light", "pi-m99", "M3"), "unknown_device"),
        (_r("light", "twin-server-toyama-pilot", "M3"), "unknown_device"),
        (_r("light", "pi-m3", "M7"), "foreign_machine"),
        (_r("switch", "pi-m7", "M10", channel="tool_change"), "foreign_machine"),
        (_r("rssi", "pi-m3", "R7", channel="b-01", value=-60.0), "foreign_receiver"),
        (_r("zone", "tagsys", "other-locator", channel="b-01", value="M3"), "foreign_locator"),
        (_r("zone", "pi-m3", "pi-m3", channel="b-01", value="M3"), "kind_not_allowed"),
        (_r("light", "tagsys", "M3"), "kind_not_allowed"),
        (_r("rssi", "tagsys", "R3", channel="b-01", value=-60.0), "kind_not_allowed"),
        (_r("light", "pi-m3", "M3"), None),
        (_r("rssi", "pi-m10", "R10", channel="b-02", value=-71.0), None),
        (_r("zone", "tagsys", "tagsys", channel="b-02", value="M7"), None),
    ],
)
def test_reasons(pilot_site, reading, reason):
    assert check_device_scope(pilot_site, reading) == reason


def test_machine_without_device_and_a_bridged_receiver():
    """``pi-<machine>`` (lower case) is a machine's default device; a lone receiver's is ``rx-<id>``."""
    site = parse_site(
        {
            "site": "s1",
            "machines": [{"id": "A", "zone": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
            "workers": [{"id": "W1", "beacon": "b1"}],
            "receivers": [
                {"id": "RA", "position": [0, 0, 1], "machine": "A"},
                {"id": "RX", "position": [5, 5, 1]},
            ],
        }
    )
    assert check_device_scope(site, _r("light", "pi-a", "A", site="s1")) is None
    assert check_device_scope(site, _r("rssi", "pi-a", "RA", channel="b1", site="s1")) is None
    assert check_device_scope(site, _r("rssi", "rx-rx", "RX", channel="b1", site="s1")) is None
    assert check_device_scope(site, _r("rssi", "rx-rx", "RA", channel="b1", site="s1")) == "foreign_receiver"
    assert check_device_scope(site, _r("light", "rx-rx", "A", site="s1")) == "kind_not_allowed"
    assert check_device_scope(site, _r("light", "pi-A", "A", site="s1")) == "unknown_device"  # one rule
