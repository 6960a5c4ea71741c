"""``python -m twin_server analyze`` through the real entry point, on files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from twin_server.__main__ import main
from twin_server.analysis import AnalysisParams

T0 = 1_675_639_800.0


def _shift_csv(path: Path, *, hours: float = 0.5, extra_lines: list[str] | None = None) -> None:
    """A small but realistic recording: M3 stops, W1 walks over (locator lags 20 s), presses."""
    rng = np.random.default_rng(7)
    n = int(hours * 3600)
    lines = ["time,kind,source,channel,value"]
    for m, base in (("M3", 60.0), ("M7", 80.0), ("M10", 50.0)):
        for k in range(n):
            running = not (m == "M3" and 600 <= k < 1200)
            lux = base + (300.0 if running else 0.0) + rng.normal(0, 5)
            lines.append(f"{T0 + k:.3f},light,{m},,{lux:.2f}")
            lines.append(f"{T0 + k + 0.1:.3f},pressure,{m},,{500 + rng.normal(0, 3):.2f}")
    lines.append(f"{T0 + 632:.3f},switch,M3,tool_change,1")
    lines.append(f"{T0 + 632.3:.3f},switch,M3,tool_change,0")
    lines.append(f"{T0 + 900:.3f},switch,M3,material_setting,1")
    lines.append(f"{T0 + 900.3:.3f},switch,M3,material_setting,0")
    lines.append(f"{T0:.3f},zone,tagsys,b-01,none")
    lines.append(f"{T0:.3f},zone,tagsys,b-02,M10")
    lines.append(f"{T0 + 630 + 20:.3f},zone,tagsys,b-01,M3")
    lines.append(f"{T0 + 1230 + 20:.3f},zone,tagsys,b-01,none")
    lines += extra_lines or []
    path.write_text("\n".join(lines) + "\n")


def _run(tmp_path: Path, site: Path, readings: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = tmp_path / "result.json"
    code = main(["analyze", "--site", str(site), "--readings", str(readings), "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err


def _covers(rows: list[dict], key: str, ids: list[str], start: float, end: float) -> None:
    for i in ids:
        mine = sorted((r for r in rows if r[key] == i), key=lambda r: r["start"])
        assert mine, f"no intervals for {i}"
        assert mine[0]["start"] == pytest.approx(start)
        assert mine[-1]["end"] == pytest.approx(end)
        for a, b in itertools.pairwise(mine):
            assert a["end"] == pytest.approx(b["start"]), f"gap or overlap for {i}"


def test_analyze_writes_contract_result(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    readings = tmp_path / "readings.csv"
    _shift_csv(readings)
    code, err = _run(tmp_path, pilot_site_path, readings, capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "result.json").read_text())
    start, end = doc["window"]["start"], doc["window"]["end"]
    assert start == pytest.approx(T0)
    _covers(doc["machine_states"], "machine", ["M3", "M7", "M10"], start, end)
    _covers(doc["worker_zones"], "worker", ["W1", "W2"], start, end)
    _covers(doc["beacon_lag"], "worker", ["W1", "W2"], start, end)
    # M3 stopped from 600 s to 1200 s, the others ran throughout.
    m3 = [r for r in doc["machine_states"] if r["machine"] == "M3" and r["state"] == "stopped"]
    assert len(m3) == 1
    assert m3[0]["start"] - T0 == pytest.approx(600, abs=2)
    assert m3[0]["end"] - T0 == pytest.approx(1200, abs=2)
    assert all(r["state"] == "running" for r in doc["machine_states"] if r["machine"] != "M3")
    # Two tasks on M3 by W1, in order, not overlapping, ending when the machine restarts.
    tasks = [r for r in doc["tasks"] if r["machine"] == "M3"]
    assert [t["task"] for t in tasks] == ["tool_change", "material_setting"]
    assert all(t["worker"] == "W1" for t in tasks)
    assert tasks[0]["end"] <= tasks[1]["start"]
    # ... and the last one ends the typical restart pause before the machine starts.
    assert tasks[1]["end"] - T0 == pytest.approx(1200 - AnalysisParams().restart_gap_s, abs=3)
    # The locator reported 20 s late; zones are in true time.
    w1_m3 = [r for r in doc["worker_zones"] if r["worker"] == "W1" and r["zone"] == "M3"]
    assert len(w1_m3) == 1
    assert w1_m3[0]["start"] - T0 == pytest.approx(630, abs=8)
    assert doc["rejected_rows"] == 0


def test_bad_rows_are_counted_not_fatal(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    bad = [
        "not-a-time,light,M3,,100",  # bad time
        f"{T0 + 5},light,M99,,100",  # unknown machine
        f"{T0 + 5},smell,M3,,1",  # unknown kind
        f"{T0 + 5},light,M3,,nan",  # non-finite value
        f"{T0 + 5},zone,tagsys,b-01,M42",  # unknown zone
        f"{T0 + 5},switch,M3,coffee,1",  # unknown switch channel
        "1,2",  # wrong number of fields
    ]
    readings = tmp_path / "readings.csv"
    _shift_csv(readings, hours=0.3, extra_lines=bad)
    code, err = _run(tmp_path, pilot_site_path, readings, capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["rejected_rows"] == len(bad)
    assert sum(doc["rejected_by_reason"].values()) == len(bad)
    assert doc["rejected_by_reason"]["bad_time"] == 1
    assert doc["machine_states"], "the good rows were still analysed"


def test_not_a_csv_exits_nonzero_with_one_line(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    readings = tmp_path / "photo.png"
    readings.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    code, err = _run(tmp_path, pilot_site_path, readings, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "not a readings CSV" in lines[0]
    assert not (tmp_path / "result.json").exists()


def test_wrong_header_exits_nonzero(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    readings = tmp_path / "other.csv"
    readings.write_text("a,b,c\n1,2,3\n")
    code, err = _run(tmp_path, pilot_site_path, readings, capsys)
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert "header" in err


def test_missing_readings_file(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    code, err = _run(tmp_path, pilot_site_path, tmp_path / "nope.csv", capsys)
    assert code != 0
    assert len(err.strip().splitlines()) == 1
    assert "nope.csv" in err


def test_invalid_site_exits_nonzero_naming_the_key(tmp_path: Path, capsys) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s\nmachines:\n  - id: M1\n    zone: [[0, 0], [1, 0]]\n")
    readings = tmp_path / "readings.csv"
    readings.write_text("time,kind,source,channel,value\n")
    code, err = _run(tmp_path, site, readings, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "machines[0].zone" in lines[0]


def test_jsonl_readings(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    csv_path = tmp_path / "readings.csv"
    _shift_csv(csv_path, hours=0.3)
    header, *rows = csv_path.read_text().splitlines()
    keys = header.split(",")
    jsonl = tmp_path / "readings.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps(dict(zip(keys, r.split(","), strict=True))) for r in rows) + "\n{broken\n"
    )
    code, err = _run(tmp_path, pilot_site_path, jsonl, capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["rejected_rows"] == 1
    assert {r["machine"] for r in doc["machine_states"]} == {"M3", "M7", "M10"}


def test_switch_free_flag_ignores_switch_rows(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    readings = tmp_path / "readings.csv"
    _shift_csv(readings)
    out = tmp_path / "result.json"
    code = main(
        [
            "analyze",
            "--site",
            str(pilot_site_path),
            "--readings",
            str(readings),
            "--out",
            str(out),
            "--quiet",
            "--switch-free",
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    # The M3 stop is a 10-minute visit by W1: filled from priors, not from the two presses.
    tasks = [t for t in doc["tasks"] if t["machine"] == "M3"]
    assert tasks, "switch-free mode found no task in a 10-minute changeover"
    assert [t["start"] for t in tasks] != [T0 + 632, T0 + 900]


def test_bad_clock_offset_is_one_clear_line(tmp_path: Path, pilot_site_path: Path, capsys) -> None:
    readings = tmp_path / "readings.csv"
    _shift_csv(readings, hours=0.1)
    code = main(
        [
            "analyze",
            "--site",
            str(pilot_site_path),
            "--readings",
            str(readings),
            "--out",
            str(tmp_path / "r.json"),
            "--clock-offset",
            "M3=soon",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--clock-offset" in err
