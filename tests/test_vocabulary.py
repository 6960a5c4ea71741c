"""One vocabulary: every example site gets the same devices from the demo, the broker ACL and
the server's device scope, and the names live in twin_contract/vocabulary.py only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.wire import Reading
from twin_contract import vocabulary as vocab
from twin_server.auth.device_scope import DeviceScope
from twin_server.cli.demo import agent_configs
from twin_server.cli.deploy_acl import plan_users
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parent.parent
SITES = sorted((ROOT / "examples").glob("*_site.yaml"))
T_NS = 1_700_000_000 * 10**9
# What each agent sensor publishes: (reading kind, source) given the agent's config.
PUBLISHES = {
    "light": ("light", "light_state"),
    "pressure": ("pressure", "pressure_state"),
    "switch": ("switch",),
    "ble": ("rssi",),
    "zone": ("zone",),
}


def _readings_of(site_id: str, cfg) -> list[Reading]:
    out = []
    for sensor in cfg.sensors:
        for kind in PUBLISHES[sensor["kind"]]:
            source = {"rssi": cfg.agent.receiver, "zone": sensor.get("locator")}.get(kind, cfg.agent.machine)
            channel = {"switch": sensor.get("channel"), "rssi": "b-01", "zone": "b-01"}.get(kind, "")
            value: float | str = "none" if kind == "zone" else (-60.0 if kind == "rssi" else 1.0)
            unit = {"rssi": "dBm", "zone": "zone", "light": "raw", "pressure": "raw"}.get(kind, "bool")
            out.append(
                Reading(site_id, cfg.agent.device, sensor["id"], kind, T_NS, 0, source, value, unit, channel)
            )
    return out


@pytest.mark.parametrize("path", SITES, ids=[p.stem for p in SITES])
def test_demo_acl_and_device_scope_agree(path: Path, tmp_path: Path) -> None:
    site = load_site(path)
    configs = [
        parse_config(text)
        for text in agent_configs(site, tmp_path / "r.csv", "127.0.0.1", 1883, tmp_path, 60.0)
    ]
    demo_devices = [c.agent.device for c in configs]
    assert demo_devices == site.publishing_devices()
    # Users that may publish readings (the server may publish only acknowledgements).
    acl_devices = [u.name for u in plan_users(site) if any(not w.endswith("/ack") for w in u.write)]
    assert acl_devices == demo_devices
    scope = DeviceScope.of(site)
    readings = [r for c in configs for r in _readings_of(site.site, c)]
    assert [(r.device, r.kind, r.source, scope.check(r)) for r in readings if scope.check(r)] == []
    # Every receiver's RSSI has a publisher, and every machine's sensors do.
    published = {(r.kind, r.source) for r in readings}
    assert {("rssi", rx.id) for rx in site.receivers} <= published
    assert {("light", m.id) for m in site.machines} <= published


def test_contract_site_machine_device_follows_the_one_rule() -> None:
    site = load_site(ROOT / "examples" / "contract_site.yaml")
    assert site.publishing_devices() == ["pi-m3", "rx-r3"]
    assert (
        DeviceScope.of(site).check(Reading("demo", "pi-m3", "light", "light", T_NS, 0, "M3", 1.0, "raw"))
        is None
    )


def test_names_are_written_down_once() -> None:
    """No module but the vocabulary spells out the task list, the kind set or the id pattern."""
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    spelled = {
        "task list": re.compile(r"""["']jig_change["'],\s*["']tool_change["'],\s*["']program_input["']"""),
        "switch tasks": re.compile(
            r"""["']tool_change["'],\s*["']program_input["'],\s*["']material_setting["']"""
        ),
        "kind set": re.compile(r"""["']light["'],\s*["']pressure["'],\s*["']switch["'],\s*["']rssi["']"""),
        "id pattern": re.compile(re.escape("A-Za-z0-9_.\\-]{1,64}")),
        "device rule": re.compile(r"""f["']pi-\{"""),
    }
    where = [
        f"{name}: {f}"
        for f in files
        if not f.startswith(("tests/", "twin_contract/"))
        for name, rx in spelled.items()
        if rx.search((ROOT / f).read_text()) and not (name == "device rule" and f.startswith("bench/"))
    ]  # synthetic load devices
    assert where == []
    assert vocab.default_machine_device("M10") == "pi-m10"


def test_an_id_is_the_whole_string() -> None:
    assert vocab.is_id("M3") and vocab.is_id("a" * 64)
    for bad in ("M3\n", "", "a" * 65, "M 3", "../x", None, 3):
        assert not vocab.is_id(bad), repr(bad)
