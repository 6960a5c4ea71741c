"""Config: the documented sample matches the pilot site; errors name the bad key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from edge_helpers import ROOT

from edge_agent.config import ConfigError, parse_config, sample_config_text

SAMPLE = sample_config_text()


def test_sample_matches_pilot_site_machine_m3(pilot_site_path: Path) -> None:
    site = yaml.safe_load(pilot_site_path.read_text())
    cfg = parse_config(SAMPLE)
    m3 = next(m for m in site["machines"] if m["id"] == cfg.agent.machine)
    assert cfg.agent.site == site["site"] and cfg.agent.device == m3["device"]
    receiver = next(r for r in site["receivers"] if r["id"] == cfg.agent.receiver)
    assert receiver["machine"] == m3["id"]
    ours = {s["id"]: s for s in cfg.sensors}
    for s in m3["sensors"]:
        mine = ours[s["id"]]
        assert mine["kind"] == s["kind"]
        for key in ("adc_channel", "gpio", "channel"):
            if key in s:
                assert mine[key] == s[key], (s["id"], key)
        if "adc" in s:
            assert mine["driver"] == s["adc"]
    ble = next(s for s in cfg.sensors if s["kind"] == "ble")
    assert set(ble["beacons"].values()) == {w["beacon"] for w in site["workers"]}


def test_sample_is_documented_telegraf_style() -> None:
    # Every setting line is preceded (within its block) by a "##" comment.
    lines = SAMPLE.splitlines()
    assert sum(line.strip().startswith("##") for line in lines) > 40
    assert not any(line.strip().startswith("# ") for line in lines)


def mutate(old: str, new: str) -> str:
    assert old in SAMPLE, old
    return SAMPLE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (mutate("gpio = 17", "gpio = 40"), "sensors[2].gpio: must be 0..27, got 40"),
        (mutate("gpio = 27", "gpio = 17"), "sensors[3].gpio: already used by sensors[2]"),
        (mutate("adc_channel = 1", "adc_channel = 8"), "sensors[1].adc_channel: must be 0..7, got 8"),
        (mutate("adc_channel = 1", "adc_channel = 0"), "sensors[1].adc_channel: already used by sensors[0]"),
        (mutate('host = "192.168.10.2"', 'host = ""'), "mqtt.host: must not be empty"),
        (mutate("port = 1883", 'port = "1883"'), "mqtt.port: must be an integer"),
        (mutate("  site =", "  sight ="), "agent.site: missing"),
        (mutate("keepalive_s = 30", "keep_alive = 30"), "mqtt.keep_alive: unknown key"),
        (mutate("off_below = 0.45", "off_below = 0.65"), "sensors[0].off_below: must be below on_above"),
        (mutate("  on_above = 0.55\n", ""), "sensors[0].on_above: on_above and off_below go together"),
        (mutate('channel = "tool_change"', 'channel = "coffee"'), "sensors[2].channel: must be one of"),
        (mutate('driver = "bleak"', 'driver = "bluetooth"'), "sensors[5].driver: must be one of"),
        (mutate('driver = "button"', 'driver = "mcp3008"'), "sensors[2].kind: driver 'mcp3008' cannot read"),
        (
            mutate('b-02 = "C3:00:00:0A:12:02"', 'b-02 = "C3:00:00:0A:12"'),
            "sensors[5].beacons.b-02: must be a MAC",
        ),
        (mutate('driver = "bleak"', 'driver = "serial_ble"'), "sensors[5].port: missing"),
        (
            mutate('driver = "button"', 'driver = "replay"'),
            "sensors[2].driver: driver 'replay' needs a [replay]",
        ),
        (
            mutate('synchronous = "FULL"', 'synchronous = "OFF"'),
            "outbox.synchronous: must be one of FULL, NORMAL",
        ),
        (mutate("[mqtt]", "[mqtt"), "(file): not valid TOML"),
    ],
)
def test_errors_name_the_bad_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).startswith(message)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        timeout=60,
    )


def test_cli_sample_config_then_check_config(tmp_path: Path) -> None:
    out = run_cli("sample-config")
    assert out.returncode == 0 and out.stdout == SAMPLE
    good = tmp_path / "agent.toml"
    good.write_text(out.stdout)
    ok = run_cli("check-config", str(good))
    assert ok.returncode == 0 and "ok" in ok.stdout and "sw-material (button)" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(mutate("gpio = 22", "gpio = 99"))
    res = run_cli("check-config", str(bad))
    assert res.returncode == 2
    assert res.stderr.strip() == f"{bad}: sensors[4].gpio: must be 0..27, got 99"
    missing = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
