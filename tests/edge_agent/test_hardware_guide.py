"""The hardware guide agrees with the sample config, and its non-hardware commands run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from edge_helpers import ROOT

from edge_agent.__main__ import build_parser
from edge_agent.config import parse_config, sample_config_text

HW = ROOT / "hardware"
CFG = parse_config(sample_config_text())


def header_pin(gpio: int) -> int:
    """Physical J8 header pin of a BCM GPIO, from gpiozero's board data (a Pi 4 B)."""
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory(revision="c03111")
    try:
        (_, info), *_ = factory.board_info.find_pin(f"GPIO{gpio}")
        return int(info.number)
    finally:
        factory.close()


def table_rows(md: str, first_header: str) -> list[list[str]]:
    """Rows of the markdown table whose header row starts with ``| first_header |``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_button_pin_table_matches_sample_config() -> None:
    rows = table_rows((HW / "wiring.md").read_text(), "sensor id | task")
    switches = {s["id"]: s for s in CFG.sensors if s["kind"] == "switch"}
    assert {r[0] for r in rows} == set(switches)
    for sid, task, gpio, pin, _ in rows:
        s = switches[sid]
        assert task == s["channel"]
        assert gpio == f"GPIO{s['gpio']}"
        assert int(pin) == header_pin(s["gpio"])


def test_adc_tables_match_sample_config() -> None:
    md = (HW / "wiring.md").read_text()
    rows = table_rows(md, "sensor id | kind")
    levels = {s["id"]: s for s in CFG.sensors if s["kind"] in ("light", "pressure")}
    assert {r[0] for r in rows} == set(levels)
    for sid, kind, adc_input, _circuit, config in rows:
        s = levels[sid]
        assert kind == s["kind"] and adc_input == f"CH{s['adc_channel']}"
        assert f"adc_channel = {s['adc_channel']}" in config and f'driver = "{s["driver"]}"' in config
    # SPI0 with chip select CE0 is what gpiozero's MCP3008(port=0, device=0) uses.
    assert all(s.get("spi_port", 0) == 0 and s.get("spi_device", 0) == 0 for s in levels.values())
    spi = {r[3]: r[2] for r in table_rows(md, "MCP3008 pin | signal")}
    for name, gpio in (("GPIO11 (SCLK)", 11), ("GPIO9 (MISO)", 9), ("GPIO10 (MOSI)", 10), ("GPIO8 (CE0)", 8)):
        assert int(spi[name]) == header_pin(gpio)


@pytest.mark.parametrize("svg", sorted((HW / "diagrams").glob("*.svg")), ids=lambda p: p.name)
def test_diagrams_use_the_config_pins(svg: Path) -> None:
    root = ET.parse(svg).getroot()  # well-formed SVG
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    used = {int(g) for g in re.findall(r"GPIO(\d+)", text)}
    allowed = {s["gpio"] for s in CFG.sensors if "gpio" in s} | {8, 9, 10, 11}  # + SPI0
    assert used and used <= allowed
    for pin, gpio in re.findall(r"pin (\d+) GPIO(\d+)", text):
        assert int(pin) == header_pin(int(gpio))
    for sid, key in re.findall(r"(sw-\w+) gpio (\d+)", text):
        assert CFG.sensor(sid)["gpio"] == int(key)


def test_readme_site_entries_match_the_pilot_site(pilot_site_path: Path) -> None:
    readme = (HW / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    guide = yaml.safe_load(block)
    site = yaml.safe_load(pilot_site_path.read_text())
    m3 = next(m for m in site["machines"] if m["id"] == CFG.agent.machine)
    assert guide["machines"][0]["sensors"] == m3["sensors"]
    assert guide["machines"][0]["device"] == CFG.agent.device
    assert guide["receivers"][0] == next(r for r in site["receivers"] if r["id"] == CFG.agent.receiver)


def test_readme_non_hardware_commands_run(tmp_path: Path) -> None:
    readme = (HW / "README.md").read_text()
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", readme, re.S)
        for line in block.splitlines()
        if re.match(r"\s*python -m edge_agent (sample-config|check-config)", line)
    ]
    assert len(commands) >= 2
    for cmd in commands:
        args = cmd.split()[3:]
        stdout = None
        if ">" in args:
            stdout = open(tmp_path / args[-1], "w")  # noqa: SIM115 - closed below
            args = args[: args.index(">")]
        res = subprocess.run(
            [sys.executable, "-m", "edge_agent", *args],
            cwd=tmp_path,
            stdout=stdout or subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if stdout:
            stdout.close()
        assert res.returncode == 0, (cmd, res.stderr)
    assert (tmp_path / "agent.toml").read_text() == sample_config_text()
    # Commands that need the Pi are at least valid command lines for the CLI.
    for line in re.findall(r"python -m edge_agent ([^`\n]+)", readme):
        build_parser().parse_args(line.split(">")[0].split())
    assert subprocess.run(["bash", "-n", str(HW / "install.sh")], timeout=30).returncode == 0


def test_systemd_unit_runs_the_agent_cli() -> None:
    unit = (HW / "edge-agent.service").read_text()
    for key in ("ExecStart", "ExecStartPre"):
        line = re.search(rf"^{key}=(.*)$", unit, re.M).group(1).split()
        assert line[1:3] == ["-m", "edge_agent"]
        build_parser().parse_args(line[3:])
    assert re.search(r"^Restart=always$", unit, re.M) and "StateDirectory=edge-agent" in unit
    assert f'data_dir = "{"/var/lib/edge-agent"}"' in sample_config_text()
