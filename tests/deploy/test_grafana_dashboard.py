"""The provisioned Grafana dashboard follows docs/integrators.md and its queries run.

Every measurement, tag and field a panel names must be documented on the integrators page,
and every panel's InfluxQL (Grafana's macros filled in) must run on a real influxd over points
shaped exactly as that page describes, and return data.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
INTEGRATORS = ROOT / "docs" / "integrators.md"

# Tags or fields the page documents for all (raw) measurements, outside the tables.
COMMON = {"site", "device", "sensor", "shift", "seq", "delay_s", "unit", "time"}
SITE = "toyama-pilot"
T0_S = int(datetime(2026, 11, 24, 0, 0, tzinfo=UTC).timestamp())
MACROS = {
    "$timeFilter": "time >= '2026-11-23T15:00:00Z' AND time < '2026-11-24T15:00:00Z'",
    "$__interval": "1m",
    "$site": SITE,
    "$machine": "(M3|M7)",  # Grafana's regex form of a multi-value selection
    "$tz": "Asia/Tokyo",
}


def documented_schema() -> dict[str, set[str]]:
    """measurement -> the tags and fields its row of the integrators page names."""
    schema: dict[str, set[str]] = {}
    for line in INTEGRATORS.read_text().splitlines():
        m = re.match(r"^\|\s*`(\w+)`\s*\|", line)
        if m:
            schema[m.group(1)] = set(re.findall(r"`(\w+)`", line)) - {m.group(1)}
    return schema


def panel_queries(doc: dict) -> list[tuple[str, str]]:
    """(panel title, InfluxQL) of every target, and of the template variables."""
    out = [(p["title"], t["query"]) for p in doc["panels"] for t in p["targets"]]
    out += [(f"variable {v['name']}", v["query"]) for v in doc["templating"]["list"] if v["type"] == "query"]
    return out


def fill_macros(query: str) -> str:
    for macro, value in sorted(MACROS.items(), key=lambda kv: -len(kv[0])):
        query = query.replace(macro, value)
    assert not re.search(r"\$\w", query), f"unknown macro in {query}"  # a bare $ is a regex anchor
    return query


def test_integrators_page_lists_the_schema() -> None:
    schema = documented_schema()
    wanted = {"light", "rssi", "zone", "machine_state", "worker_zone", "task", "beacon_lag", "kpi"}
    assert wanted <= set(schema)
    assert {"running", "machine", "state", "duration_s"} <= schema["machine_state"]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_names_only_documented_measurements_tags_and_fields(dashboard: Path) -> None:
    schema = documented_schema()
    doc = json.loads(dashboard.read_text())
    assert doc["uid"] and doc["panels"]
    for title, query in panel_queries(doc):
        measurements = re.findall(r'"(\w+)"', re.search(r"FROM (.+?)(?: WHERE| WITH|$)", query).group(1))
        assert measurements, title
        names = set(re.findall(r'"(\w+)"', query)) - set(measurements)
        # AS "alias" names the output column; it need not be in the schema.
        names -= set(re.findall(r'AS "(\w+)"', query))
        for m in measurements:
            assert m in schema, f"{title}: measurement {m!r} is not on the integrators page"
            unknown = names - schema[m] - COMMON
            assert not unknown, f"{title}: {sorted(unknown)} not documented for {m!r}"


def _points() -> str:
    """Line protocol for every measurement, shaped as the integrators page documents it."""
    tags = f"site={SITE},shift=2026-11-24"
    raw = f"site={SITE},device=pi-m3"
    lines = []
    for i, (machine, state, running) in enumerate(
        [("M3", "running", 1), ("M3", "stopped", 0), ("M7", "running", 1)]
    ):
        t = T0_S + 600 * i
        lines.append(
            f"machine_state,{tags},machine={machine},state={state} "
            f"running={running}i,duration_s=600,end_s={t + 600} {t}"
        )
    lines += [
        f"task,{tags},machine=M3,task=tool_change,worker=W1 duration_s=300,end_s={T0_S + 400} {T0_S + 100}",
        f"task,{tags},machine=M7,task=jig_change,worker=unknown duration_s=120,end_s={T0_S + 320} "
        f"{T0_S + 200}",
        f'worker_zone,{tags},worker=W1,zone=M3 zone="M3",duration_s=500,end_s={T0_S + 500} {T0_S}',
        f"beacon_lag,{tags},worker=W1 lag_s=21.5,duration_s=900,end_s={T0_S + 900} {T0_S}",
        f"kpi,{tags},machine=M3 utilisation=0.5,running_min=10,stopped_min=10,unknown_min=0,changeover_min=5,"
        f"idle_min=5,task_count=1i {T0_S}",
        f'light,{raw},sensor=light,machine=M3 value=0.81,seq=1i,delay_s=0.04,unit="raw" {T0_S + 5}',
        f'pressure,{raw},sensor=pressure,machine=M3 value=0.3,seq=1i,delay_s=0.05,unit="raw" {T0_S + 6}',
        f'switch,{raw},sensor=sw-tool,machine=M3,task=tool_change value=1,seq=1i,delay_s=0.02,unit="bool" '
        f"{T0_S + 7}",
        f'rssi,{raw},sensor=ble,receiver=R3,beacon=b-01 value=-61,seq=1i,delay_s=0.3,unit="dBm",count=4i '
        f"{T0_S + 8}",
        f'zone,site={SITE},device=tagsys,sensor=zone,locator=tagsys,beacon=b-01 zone="M3",seq=1i,'
        f'delay_s=31.0,unit="zone" {T0_S + 9}',
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.influx
@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_run_on_real_influxd(dashboard: Path, influxd) -> None:
    db = f"grafana_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{db}"')
    url = f"{influxd.url}/write?db={db}&precision=s"
    req = urllib.request.Request(url, data=_points().encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 204
    doc = json.loads(dashboard.read_text())
    for title, query in panel_queries(doc):
        answer = influxd.query(fill_macros(query), db)
        (result,) = answer["results"]
        assert "error" not in result, f"{title}: {result.get('error')}\n{query}"
        series = result.get("series", [])
        values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
        assert values, f"{title}: no data from {fill_macros(query)}"


def test_fill_macros_leaves_nothing_unfilled() -> None:
    assert fill_macros('WHERE "site" =~ /^$site$/ AND $timeFilter GROUP BY time($__interval)') == (
        f'WHERE "site" =~ /^{SITE}$/ AND {MACROS["$timeFilter"]} GROUP BY time(1m)'
    )
    with pytest.raises(AssertionError):
        fill_macros("$__unknown")
