"""Ingest against a real mosquitto: validation, dead letters, dedup, clock offsets."""

from __future__ import annotations

import json
import time

import pytest
from services import wait_until

from edge_agent.wire import Reading, Status, encode_status
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import ClockOffsets, Ingest, RateLimitedLog, classify
from twin_server.store.journal import DeadLetter, Journal

pytestmark = pytest.mark.broker
T0 = 1_700_000_000 * 10**9


def _reading(seq: int, site: str = "ingest-t") -> Reading:
    return Reading(
        site=site,
        device="pi-m3",
        sensor="light",
        kind="light",
        t_ns=T0 + seq * 10**8,
        seq=seq,
        source="M3",
        value=float(seq),
        unit="raw",
    )


def test_classify_never_raises_and_names_reason():
    assert isinstance(classify("twin/v1/s/d/light/x", b'{"v":1}', 1), DeadLetter)
    bad = [
        (b"twin/v1/s/d/light/x", b"\xff\xfe", "bad_json"),
        (b"\xff/v1", b"{}", "bad_topic"),
        ("twin/v1/s/d/light/x", b"[1]", "bad_json"),
        (
            "twin/v1/s/d/nope/x",
            json.dumps({"v": 1, "t_ns": T0, "seq": 0, "source": "M3", "value": 1, "unit": "raw"}).encode(),
            "bad_kind",
        ),
        ("other/topic", b"{}", "bad_topic"),
    ]
    for topic, payload, reason in bad:
        got = classify(topic, payload, 5)
        assert isinstance(got, DeadLetter) and got.reason == reason, (topic, got)
    ok = classify(*encode_status(Status("s", "d", True, T0)), 5)
    assert isinstance(ok, Status) and ok.online


def test_clock_offset_low_quantile_ignores_backlog():
    c = ClockOffsets(window=200)
    for i in range(200):
        delay_ns = 5_000_000 + (i % 7) * 1_000_000 + (60 * 10**9 if i % 10 == 0 else 0)  # some backlog
        c.add("s", "d", T0 + i * 10**9, T0 + i * 10**9 + 2 * 10**9 + delay_ns)  # clock 2 s behind
    est = c.estimates()["s/d"]
    assert 2.004 < est["offset_s"] < 2.008
    assert est["samples"] == 200


def test_rate_limited_log(caplog):
    import logging

    rl = RateLimitedLog(logging.getLogger("t"), interval_s=10)
    with caplog.at_level(logging.WARNING):
        logged = [rl.warn("bad_json", "x", now_s=t) for t in (0, 1, 2, 11)]
    assert logged == [True, False, False, True]
    assert "2 more like it" in caplog.records[-1].getMessage()


def test_ingest_end_to_end(tmp_path, mosquitto):
    journal = Journal(tmp_path / "j.sqlite")
    seen = []
    ing = Ingest(
        journal,
        mosquitto.host,
        mosquitto.port,
        site="ingest-t",
        client_id="t-ingest-e2e",
        listeners=[lambda r, s: seen.extend(r)],
    )
    ing.start()
    try:
        assert ing.wait_subscribed(10)
        pub = Publisher(mosquitto.host, mosquitto.port)
        good = [_reading(i) for i in range(500)]
        pub.publish(good)
        pub.publish(good[100:150])  # redelivered / republished: duplicates
        pub.publish_raw("twin/v1/ingest-t/pi-m3/light/light", b"not json")
        pub.publish_raw(
            "twin/v1/ingest-t/pi-m3/light/light",
            json.dumps({"v": 1, "t_ns": T0, "seq": -1, "source": "M3", "value": 1.0, "unit": "raw"}).encode(),
        )
        pub.publish_raw(
            "twin/v1/ingest-t/pi-m3/light/light",
            json.dumps(
                {"v": 1, "t_ns": T0, "seq": 9999, "source": "M3", "value": 1.0, "unit": "furlong"}
            ).encode(),
        )
        pub.publish_raw(*encode_status(Status("ingest-t", "pi-m3", True, T0, True, "0.1")))
        pub.publish([_reading(i) for i in range(500, 600)])  # ingest keeps going after bad input
        pub.close()
        wait_until(lambda: ing.stats.received >= 654)
    finally:
        ing.stop()
    assert journal.count("ingest-t") == 600
    assert ing.stats.accepted == 600 and ing.stats.duplicates == 50
    assert dict(ing.stats.dead_by_reason) == {"bad_json": 1, "bad_seq": 1, "bad_unit": 1}
    assert journal.dead_letter_counts() == {"bad_json": 1, "bad_seq": 1, "bad_unit": 1}
    assert journal.dead_letters(reason="bad_json")[0]["payload"] == "not json"
    assert journal.device_status()[0]["agent_version"] == "0.1"
    rows = journal.rows("ingest-t")
    assert [r["seq"] for r in rows] == list(range(600))
    assert all(r["received_ns"] > r["t_ns"] for r in rows)  # device time kept, arrival separate
    offsets = ing.clock.estimates()
    assert offsets["ingest-t/pi-m3"]["samples"] == 650
    assert {r.seq for r, _ in seen} == set(range(600))
    # Every PUBACK reached the broker: the resumed session has nothing to redeliver.
    again = Ingest(journal, mosquitto.host, mosquitto.port, site="ingest-t", client_id="t-ingest-e2e")
    again.start()
    try:
        wait_until(lambda: again.stats.connected)
        time.sleep(1.0)
    finally:
        again.stop()
    assert again.stats.received == 0
