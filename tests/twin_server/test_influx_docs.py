"""Runs every InfluxQL example of docs/integrators.md against a real influxd and checks it."""

from __future__ import annotations

import calendar
import random
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from edge_agent.wire import Reading
from twin_server.kpis import compute_kpis
from twin_server.result import BeaconLag, MachineState, Result, Task, WorkerZone
from twin_server.store.influx.writer import InfluxWriter
from twin_server.store.journal import Journal

pytestmark = pytest.mark.influx
DOC = Path(__file__).resolve().parents[2] / "docs" / "integrators.md"
SITE = "toyama-pilot"
SHIFT = "2026-11-24"
START = calendar.timegm((2026, 11, 23, 23, 30, 0))  # 08:30 Asia/Tokyo
TASKS = ("jig_change", "tool_change", "program_input", "material_setting")


def documented_queries() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```influxql\n(.*?)```", text, flags=re.S)
    out = {}
    for b in blocks:
        m = re.match(r"-- id: (\S+)\n", b)
        assert m, f"influxql block without an id line: {b[:60]!r}"
        out[m.group(1)] = b
    return out


def make_shift(rng: random.Random) -> Result:
    states, tasks, zones, lags = [], [], [], []
    for m in ("M3", "M7", "M10"):
        t = float(START)
        while t < START + 8 * 3600:
            run = rng.uniform(600, 3600)
            states.append(MachineState(m, "running", t, t + run))
            t += run
            stop = rng.uniform(600, 2400)
            states.append(MachineState(m, "stopped", t, t + stop))
            # Changeover tasks inside the stop, leaving some idle time.
            u = t + rng.uniform(10, 60)
            for name in rng.sample(TASKS, rng.randint(1, 4)):
                d = rng.uniform(60, 300)
                if u + d > t + stop:
                    break
                tasks.append(Task(m, name, rng.choice(["W1", "W2", None]), u, u + d))
                u += d + rng.uniform(0, 30)
            t += stop
    for w in ("W1", "W2"):
        t = float(START)
        while t < START + 8 * 3600:
            d = rng.uniform(60, 900)
            zones.append(WorkerZone(w, rng.choice(["M3", "M7", "M10", "none"]), t, t + d))
            t += d
        for k in range(8):
            lags.append(BeaconLag(w, rng.uniform(6, 85), START + k * 3600, START + (k + 1) * 3600))
    return Result(SITE, START, START + 8 * 3600, states, zones, tasks, lags)


def raw_readings(rng: random.Random) -> list[tuple[Reading, int]]:
    base = calendar.timegm((2026, 11, 24, 0, 0, 0)) * 10**9
    out = []
    for m in ("M3", "M7"):
        for i in range(120):  # every 5 s for 10 minutes
            t = base + i * 5 * 10**9 + rng.randint(0, 10**8)
            r = Reading(SITE, f"pi-{m.lower()}", "light", "light", t, i, m, rng.uniform(0, 900), "raw")
            out.append((r, t + rng.randint(10**6, 3 * 10**9)))
    for rx in ("R3", "R7"):
        for b in ("b-01", "b-02"):
            for i in range(rng.randint(20, 60)):
                t = base + i * 10**9
                out.append(
                    (
                        Reading(
                            SITE,
                            f"pi-{rx.lower()}",
                            f"{rx}.{b}",
                            "rssi",
                            t,
                            i,
                            rx,
                            float(rng.randint(-95, -40)),
                            "dBm",
                            channel=b,
                        ),
                        t + rng.randint(10**6, 5 * 10**9),
                    )
                )
    return out


def series(doc: dict) -> dict[tuple, dict[str, object]]:
    """{tag values tuple: {column: value}} for single-row series; list rows keep the first."""
    res = doc["results"][0]
    assert "error" not in res, res
    out = {}
    for s in res.get("series", []):
        key = tuple(s.get("tags", {}).values())
        rows = [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]
        out[key] = rows[0] if len(rows) == 1 else rows
    return out


def test_documented_queries_answer_correctly(tmp_path, influxd):
    rng = random.Random(20261124)
    result = make_shift(rng)
    raw = raw_readings(rng)
    journal = Journal(tmp_path / "j.sqlite")
    journal.write_batch(raw)
    db = "docs_check"
    w = InfluxWriter(journal, influxd.url, db)
    # Export twice: the second export must replace the first, not add to it.
    w.export_result(result, compute_kpis(result), SHIFT)
    w.export_result(result, compute_kpis(result), SHIFT)
    while w.step():
        pass
    w.stop()
    queries = documented_queries()
    assert set(queries) >= {
        "changeover_per_machine_per_day",
        "changeover_per_task_and_machine",
        "kpis_per_machine",
        "running_minutes_per_machine",
        "worker_minutes_per_zone",
        "mean_beacon_lag",
        "light_per_minute",
        "rssi_count_per_receiver",
    }
    ans = {name: series(influxd.query(q, db)) for name, q in queries.items()}

    # Independent expectations from the generated segments.
    change = defaultdict(float)
    per_task = defaultdict(lambda: [0.0, 0])
    for t in result.tasks:
        change[t.machine] += (t.end - t.start) / 60
        per_task[(t.machine, t.task)][0] += (t.end - t.start) / 60
        per_task[(t.machine, t.task)][1] += 1
    for m, minutes in change.items():
        rows = ans["changeover_per_machine_per_day"][(m,)]
        rows = rows if isinstance(rows, list) else [rows]
        day = [r for r in rows if r["time"].startswith("2026-11-24T00:00:00+09:00")]
        assert day and day[0]["changeover_min"] == pytest.approx(minutes)
    assert len(ans["changeover_per_task_and_machine"]) == len(per_task)
    for (m, name), (minutes, n) in per_task.items():
        row = ans["changeover_per_task_and_machine"][(m, name)]
        assert row["minutes"] == pytest.approx(minutes) and row["tasks"] == n

    for m in ("M3", "M7", "M10"):
        run = sum(s.end - s.start for s in result.machine_states if s.machine == m and s.state == "running")
        stop = sum(s.end - s.start for s in result.machine_states if s.machine == m and s.state == "stopped")
        row = ans["kpis_per_machine"][(m,)]
        assert row["utilisation"] == pytest.approx(run / (run + stop))
        # Tasks lie inside stops, so idle time = stopped time minus changeover time.
        assert row["idle_min"] == pytest.approx(stop / 60 - change[m])
        assert ans["running_minutes_per_machine"][(m,)]["running_min"] == pytest.approx(run / 60)

    zone_min = defaultdict(float)
    for z in result.worker_zones:
        zone_min[(z.worker, z.zone)] += (z.end - z.start) / 60
    for key, minutes in zone_min.items():
        assert ans["worker_minutes_per_zone"][key]["minutes"] == pytest.approx(minutes)
    for w_id in ("W1", "W2"):
        lags = [lag.lag_s for lag in result.beacon_lag if lag.worker == w_id]
        assert ans["mean_beacon_lag"][(w_id,)]["lag_s"] == pytest.approx(sum(lags) / len(lags))

    minute = defaultdict(list)
    for r, _rx in raw:
        if r.kind == "light":
            minute[(r.source, r.t_ns // 60_000_000_000)].append(r.value)
    for m in ("M3", "M7"):
        rows = ans["light_per_minute"][(m,)]
        assert len(rows) == 10
        for row in rows:
            key = (m, calendar.timegm(time.strptime(row["time"], "%Y-%m-%dT%H:%M:%SZ")) // 60)
            assert row["level"] == pytest.approx(sum(minute[key]) / len(minute[key]))
    for rx in ("R3", "R7"):
        for b in ("b-01", "b-02"):
            mine = [(r, x) for r, x in raw if r.kind == "rssi" and r.source == rx and r.channel == b]
            row = ans["rssi_count_per_receiver"][(b, rx)]
            assert row["readings"] == len(mine)
            assert row["max_delay_s"] == pytest.approx(max((x - r.t_ns) / 1e9 for r, x in mine))
