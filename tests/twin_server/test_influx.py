"""Line protocol (pure) and the InfluxDB writer against a real influxd, outage included."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from services import wait_until

from edge_agent.wire import Reading
from twin_server.store.influx.line_protocol import escape_tag, field_value, point
from twin_server.store.influx.writer import InfluxWriter
from twin_server.store.journal import Journal

T0 = 1_795_996_800 * 10**9  # 2026-11-30T00:00:00Z


def test_point_format_and_escaping():
    line = point(
        "task",
        {"site": "a b", "machine": "M,3", "empty": ""},
        {"duration_s": 1.5, "n": 3, "ok": True, "s": 'x"y'},
        123,
    )
    assert line == 'task,machine=M\\,3,site=a\\ b duration_s=1.5,n=3i,ok=true,s="x\\"y" 123'
    with pytest.raises(ValueError, match="no fields"):
        point("m", {}, {"a": None}, 1)
    with pytest.raises(ValueError, match="finite"):
        field_value(float("nan"))


@given(st.text(min_size=1, max_size=20))
def test_escaped_tags_have_no_bare_separators(text):
    esc = escape_tag(text)
    # Every space, comma or equals sign is escaped by a backslash.
    i = 0
    while i < len(esc):
        if esc[i] == "\\":
            i += 2
            continue
        assert esc[i] not in " ,=\n"
        i += 1


def _readings(n: int, start: int = 0) -> list[tuple[Reading, int]]:
    out = []
    for i in range(start, start + n):
        r = Reading(
            site="flux",
            device="pi-m3",
            sensor="light",
            kind="light",
            t_ns=T0 + i * 10**9,
            seq=i,
            source="M3",
            value=float(i % 97),
            unit="raw",
        )
        out.append((r, T0 + i * 10**9 + 5_000_000))
    return out


def _count(server, db: str) -> int:
    res = server.query('SELECT count("value") FROM "light"', db)["results"][0]
    return res["series"][0]["values"][0][1] if "series" in res else 0


@pytest.mark.influx
def test_outage_loses_nothing_and_resend_is_exactly_once(tmp_path, own_influxd):
    journal = Journal(tmp_path / "j.sqlite")
    w = InfluxWriter(journal, own_influxd.url, "outage", batch_lines=700, backoff_max_s=1.0)
    w.start()
    try:
        journal.write_batch(_readings(3000))
        w.notify()
        wait_until(lambda: w.pending() == 0, 40, "export backlog drained")
        own_influxd.stop()
        journal.write_batch(_readings(4000, start=3000))
        w.notify()
        wait_until(lambda: w.ok is False, 40, "outage noticed")  # noticed the outage, keeps the backlog
        assert w.pending() > 0
        time.sleep(1.5)
        own_influxd.start()
        wait_until(lambda: w.pending() == 0, 40, "export backlog drained")
        assert w.ok is True
    finally:
        w.stop()
    assert _count(own_influxd, "outage") == 7000
    # A crash after the write but before the cursor moved re-sends a batch: same points.
    journal.set_export_cursor(1000)
    w2 = InfluxWriter(journal, own_influxd.url, "outage", create_db=False)
    while w2.step():
        pass
    w2.stop()
    assert _count(own_influxd, "outage") == 7000
    res = own_influxd.query('SELECT "value", "seq", "delay_s" FROM "light" WHERE "seq" = 4321', "outage")
    _t, value, seq, delay_s = res["results"][0]["series"][0]["values"][0]
    assert (value, seq) == (4321 % 97, 4321) and delay_s == pytest.approx(0.005)


@pytest.mark.influx
def test_token_header_and_gzip_are_sent(tmp_path, influxd):
    # influxd 1.x without auth ignores the token; the write still has to succeed gzip'ed.
    journal = Journal(tmp_path / "j.sqlite")
    journal.write_batch(_readings(10))
    w = InfluxWriter(journal, influxd.url, "tokendb", token="secret")
    assert w._http.headers["Authorization"] == "Token secret"
    while w.step():
        pass
    w.stop()
    assert _count(influxd, "tokendb") == 10
