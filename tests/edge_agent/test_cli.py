"""probe and calibrate, through the CLI where no hardware is needed and MockFactory where it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from edge_helpers import ROOT, mock_mcp3008, write_config

from edge_agent.calibrate import (
    CalibrationError,
    calibrate_sensor,
    light_thresholds,
    pressure_band,
    set_sensor_keys,
    write_calibration,
)
from edge_agent.config import load_config, parse_config, sample_config_text

REPLAY = """
[replay]
file = "r.csv"

[[sensors]]
id = "light"
kind = "light"
driver = "replay"

[[sensors]]
id = "ble"
kind = "ble"
driver = "replay"
"""


def test_probe_reads_one_sensor_once(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text(
        "time,kind,source,channel,value\n1700000000,rssi,R3,b-01,-71\n1700000000.5,light,M3,,0.83\n"
    )
    cfg = write_config(tmp_path, REPLAY)
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent", "probe", "light", "-c", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("light: value=0.83 ")
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent", "probe", "nosuch", "-c", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2 and "known: light, ble" in out.stderr


def test_thresholds_split_the_gap_and_refuse_overlap() -> None:
    on_above, off_below = light_thresholds([0.10, 0.12, 0.11], [0.80, 0.85, 0.82])
    assert 0.12 < off_below < on_above < 0.80
    with pytest.raises(CalibrationError, match="overlap"):
        light_thresholds([0.1, 0.5], [0.4, 0.9])
    normal, band = pressure_band([0.60, 0.62, 0.61])
    assert normal == 0.61 and band == pytest.approx(0.12)


def test_set_sensor_keys_keeps_comments_and_other_sensors() -> None:
    text = sample_config_text()
    new = set_sensor_keys(text, "light", {"on_above": 0.7, "off_below": 0.2})
    new = set_sensor_keys(new, "pressure", {"normal": 0.5, "hysteresis": 0.3, "scale": 2.0})
    cfg = parse_config(new)
    assert (cfg.sensor("light")["on_above"], cfg.sensor("light")["off_below"]) == (0.7, 0.2)
    assert (cfg.sensor("pressure")["normal"], cfg.sensor("pressure")["hysteresis"]) == (0.5, 0.3)
    assert cfg.sensor("pressure")["scale"] == 2.0
    assert cfg.sensor("pressure")["band"] == 0.15
    old_lines = [line for line in text.splitlines() if line.strip().startswith("##")]
    new_lines = [line for line in new.splitlines() if line.strip().startswith("##")]
    assert old_lines == new_lines
    assert len(new.splitlines()) == len(text.splitlines()) + 1  # scale added, the others replaced
    with pytest.raises(KeyError):
        set_sensor_keys(text, "nosuch", {"on_above": 1.0})


def test_calibrate_light_on_mock_adc_writes_thresholds(tmp_path: Path, mock_factory) -> None:
    levels = [0.0] * 8
    mock_mcp3008(levels)
    path = write_config(
        tmp_path,
        """
[[sensors]]
## the stack light
id = "light"
kind = "light"
driver = "mcp3008"
adc_channel = 0
""",
    )
    cfg = load_config(path)
    prompts = []

    def ask(prompt: str) -> None:  # the engineer switches the lamp when asked
        prompts.append(prompt)
        levels[0] = 2.9 if "ON" in prompt else 0.4

    values = calibrate_sensor(cfg, "light", seconds=0.3, ask=ask)
    assert len(prompts) == 2
    assert 0.4 / 3.3 < values["off_below"] < values["on_above"] < 2.9 / 3.3
    write_calibration(path, "light", values)
    again = load_config(path)
    assert again.sensor("light")["on_above"] == values["on_above"]
    assert "## the stack light" in path.read_text()
