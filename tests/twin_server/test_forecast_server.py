"""The forecast through its entry points: the CLI, the API route, the live loop, InfluxDB."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from services import wait_until

from twin_server.api.app import create_app
from twin_server.ingest.publish import frame_to_wire
from twin_server.settings import Settings
from twin_server.simulate import SimParams, simulate
from twin_server.simulate.core import default_start
from twin_server.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
DAYS = (dt.date(2026, 11, 20), dt.date(2026, 11, 23), dt.date(2026, 11, 24))
DOC = ROOT / "docs" / "integrators.md"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, pilot_site):
    """A data dir whose journal holds 1.5 h of three days of the pilot (batches of parts)."""
    d = tmp_path_factory.mktemp("forecast")
    journal = Journal(d / "journal.sqlite")
    params = SimParams(run_model="parts", shop_seed=5, run_median_min=30.0)
    for k, day in enumerate(DAYS):
        sim = simulate(pilot_site, 1.5, 40 + k, start=default_start(pilot_site, day), params=params)
        wire = [
            dataclasses.replace(r, seq=r.seq + k * 10_000_000)
            for r in frame_to_wire(sim.readings, pilot_site)
        ]
        journal.write_batch([(r, 0) for r in wire])
    journal.close()
    return d


def _at(site, day: dt.date, hh: int, mm: int) -> float:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(hh, mm), ZoneInfo(site.timezone)).timestamp()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin_server", "forecast", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_forecast_text_json_and_errors(recorded, pilot_site_path, pilot_site):
    site = str(pilot_site_path)
    got = _cli("--site", site, "--journal", str(recorded), "--at", "2026-11-24T09:45")
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert "forecast of toyama-pilot at 2026-11-24 09:45" in out
    assert "learnt from 2 earlier day(s)" in out
    for m in ("M3", "M7", "M10"):
        assert re.search(rf"^  {m} .*(ends|runs again|state unknown)", out, re.M), out
    assert re.search(r"shift end 17:30: running \d+ min \(\d+-\d+\), changeovers \d+ \(\d+-\d+\)", out)
    assert (recorded / "forecast-history.json").exists()  # earlier days' records kept
    got = _cli(
        "--site",
        site,
        "--journal",
        str(recorded / "journal.sqlite"),
        "--at",
        str(_at(pilot_site, DAYS[2], 9, 45)),
        "--json",
    )
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["at"] == pytest.approx(_at(pilot_site, DAYS[2], 9, 45))
    assert [m["machine"] for m in doc["machines"]] == ["M3", "M7", "M10"]
    assert doc["history_days"] == 2 and not doc["cold"]
    # the first day: cold, said so
    got = _cli("--site", site, "--journal", str(recorded), "--at", "2026-11-20T09:30")
    assert got.returncode == 0, got.stderr
    assert "no earlier day to learn from" in got.stdout
    for bad, msg in (("--at", "tomorrow"), ("--at", "2026-12-01T10:00")):
        got = _cli("--site", site, "--journal", str(recorded), bad, msg)
        assert got.returncode == 2 and got.stdout == ""
        assert got.stderr.startswith("forecast: ") and len(got.stderr.strip().splitlines()) == 1, got.stderr
    got = _cli("--site", site, "--journal", str(recorded / "nope"))
    assert got.returncode == 2 and "no journal" in got.stderr


@pytest.fixture(scope="module")
def client(recorded, pilot_site):
    settings = Settings(
        site=pilot_site, data_dir=recorded, broker_host=None, clock_tolerance_s=None, analysis_interval_s=3600
    )
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_forecast_any_moment(client, pilot_site):
    base = f"/api/sites/{pilot_site.site}/forecast"
    at = _at(pilot_site, DAYS[1], 9, 40)
    r = client.get(base, params={"at": at})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["at"] == pytest.approx(at) and doc["day"] == "2026-11-23" and doc["history_days"] == 1
    for m in doc["machines"]:
        if m["event"] is not None:
            assert m["lane"] and m["lane"][0]["start"] == pytest.approx(at)
            if m["p50"] is not None:
                assert m["p10"] <= m["p50"] <= m["p90"] and m["p10"] >= at
    # the same moment again: the same answer (a replay scrubbing back and forth)
    assert client.get(base, params={"at": at}).json() == doc
    # without a moment: the newest reading of the day being recorded (simulated clock: the last day)
    latest = client.get(base).json()
    assert latest["day"] == "2026-11-24" and latest["history_days"] == 2
    assert client.get("/api/sites/elsewhere/forecast").status_code == 404
    r = client.get(base, params={"at": _at(pilot_site, dt.date(2026, 11, 25), 10, 0)})
    assert r.status_code == 404 and "no readings" in r.json()["detail"]
    r = client.get(base, params={"at": _at(pilot_site, DAYS[2], 3, 0)})
    assert r.status_code == 404 and "recording starts" in r.json()["detail"]
    assert client.get(base, params={"at": "soon"}).status_code == 422
    assert "/api/sites/{site}/forecast" in client.get("/openapi.json").json()["paths"]


def _queries() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    out = {}
    for b in re.findall(r"```influxql\n(.*?)```", text, flags=re.S):
        name = re.match(r"-- id: (\S+)\n", b).group(1)
        if name.startswith("forecast"):
            out[name] = b
    return out


@pytest.mark.influx
def test_live_loop_pushes_and_writes_influx(recorded, pilot_site, influxd):
    """The live server forecasts after its analysis, pushes it on /ws/live, and the documented
    InfluxQL queries answer with that forecast."""
    db = "forecast_live"
    settings = Settings(
        site=pilot_site,
        data_dir=recorded,
        broker_host=None,
        clock_tolerance_s=None,
        analysis_interval_s=0.5,
        influx_url=influxd.url,
        influx_db=db,
        forecast_interval_s=0.5,
    )
    app = create_app(settings)
    with TestClient(app) as c, c.websocket_connect("/ws/live") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        deadline = time.monotonic() + 300
        msg = None
        while time.monotonic() < deadline:
            msg = ws.receive_json()
            if msg["type"] == "forecast":
                break
        assert msg is not None and msg["type"] == "forecast", msg
        fc = msg["forecast"]
        assert msg["day"] == "2026-11-24" and fc["history_days"] == 2
        assert [m["machine"] for m in fc["machines"]] == ["M3", "M7", "M10"]
        last = app.state.forecast.last
        assert last is not None and last.at == pytest.approx(fc["at"])

        def written() -> bool:
            res = influxd.query('SELECT count("running_min_p50") FROM "forecast"', db)["results"][0]
            return bool(res.get("series"))

        wait_until(written, 60, "forecast points in InfluxDB")
    queries = _queries()
    assert set(queries) == {"forecast_latest_per_machine", "forecast_shift_end"}
    res = influxd.query(queries["forecast_latest_per_machine"].replace("2026-11-24", fc["day"]), db)
    rows = {
        (s["tags"]["machine"], s["tags"]["event"]): dict(zip(s["columns"], s["values"][0], strict=True))
        for s in res["results"][0]["series"]
    }
    first = {m["machine"]: m for m in fc["machines"]}
    for (machine, event), row in rows.items():
        assert event == first[machine]["event"]
        assert row["p50_s"] == pytest.approx(first[machine]["p50"]) or first[machine]["p50"] is None
    assert len(rows) == sum(1 for m in fc["machines"] if m["event"])
    res = influxd.query(queries["forecast_shift_end"], db)["results"][0]["series"][0]
    row = dict(zip(res["columns"], res["values"][0], strict=True))
    assert row["running_min_p50"] == pytest.approx(fc["running_min"][1])


def test_guard_learns_from_earlier_days_only(recorded, pilot_site, monkeypatch):
    """What the API shows is the model's forecast corrected by rules learnt from the forecasts of
    earlier days (never the day asked about), with the naive median from the records."""
    import copy

    from twin_server.forecast import guard
    from twin_server.forecast.guard import naive_pools

    # 1.5 h of a 3-machine site a day: fewer forecasts per kind than a real site's day has
    monkeypatch.setattr(guard, "MIN_ROWS", 5)
    from twin_server.forecast.history import truncate_result
    from twin_server.forecast.service import ForecastService, guarded, records_of
    from twin_server.live.hub import AnalysisCache

    journal = Journal(recorded / "journal.sqlite")
    try:
        svc = ForecastService(pilot_site, AnalysisCache(pilot_site, journal, simulated_clock=True))
        first = svc.calibration(DAYS[0].isoformat())
        assert first.days == 0 and first.rules == {}
        day = DAYS[2].isoformat()
        cal = svc.calibration(day)
        assert cal.days == 2 and cal.rules, cal
        assert set(svc._cal_rows) == {DAYS[0].isoformat(), DAYS[1].isoformat()}  # not the day itself
        rows = [r for d in svc._cal_rows.values() for r in d[1]]
        assert rows and all(r["t"] < _at(pilot_site, DAYS[2], 0, 0) for r in rows)
        # (1.5 h recorded a day: the shift end's totals were never seen, so none to learn from)
        assert {r["event"] for r in rows} == {"run_end", "restart"}
        assert all(
            r["observed"] is None or r["observed"] >= r["t"]
            for r in rows
            if r["event"] in ("run_end", "restart")
        )
        at = _at(pilot_site, DAYS[2], 9, 45)
        raw = svc.forecast_at(at, guard=False)
        shown = svc.forecast_at(at)
        result = svc.analysis.get(day)[0]
        pools = naive_pools([*svc.history(day), records_of(pilot_site, truncate_result(result, at), day)])
        want = guarded(copy.deepcopy(raw), cal, pools)
        got = [(m.p10, m.p50, m.p90) for m in shown.machines]
        assert got == [(m.p10, m.p50, m.p90) for m in want.machines]
        assert got != [(m.p10, m.p50, m.p90) for m in raw.machines]  # the guard did something
        assert (shown.running_min, shown.changeovers) == (want.running_min, want.changeovers)
        # live, a minute later the shown end of a run moves no further than the guarded model's
        # (a moment asked for explicitly is not held), and stays within STEADY_BAND of the time
        # left from it
        from twin_server.forecast.service import STEADY_BAND

        first = svc.forecast_live(day, truncate_result(result, at))
        assert [(m.p10, m.p50, m.p90) for m in first.machines] == got  # nothing shown before
        later = svc.forecast_live(day, truncate_result(result, at + 60))
        fresh = svc.forecast_at(at + 60)
        again = svc.forecast_at(at + 60)  # asked twice, one answer
        assert [m.p50 for m in again.machines] == [m.p50 for m in fresh.machines]
        held = 0
        for a, b, f in zip(first.machines, later.machines, fresh.machines, strict=True):
            if a.event == b.event == "run_end" and a.since == b.since and a.p50 > at + 60:
                assert abs(b.p50 - a.p50) <= abs(f.p50 - a.p50) + 1e-6
                assert abs(b.p50 - f.p50) <= STEADY_BAND * (min(b.p50, f.p50) - (at + 60)) + 1e-6
                held += b.p50 != f.p50
        assert held, "no run's end was held steady"
    finally:
        journal.close()
