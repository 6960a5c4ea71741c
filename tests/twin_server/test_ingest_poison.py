"""No poison message: whatever decodes can be stored, and a message the journal still refuses
is dead-lettered on its own instead of stopping ingest (real mosquitto, real SQLite)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from services import wait_until

from edge_agent.wire import Reading
from twin_server.api.app import create_app
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import Ingest
from twin_server.settings import Settings
from twin_server.store import journal as journal_mod
from twin_server.store.journal import Journal

pytestmark = pytest.mark.broker
T0 = 1_700_000_000 * 10**9
TOPIC = "twin/v1/{site}/pi-m3/light/light"


def _reading(site: str, seq: int) -> Reading:
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


def _body(n: int, **over: object) -> dict:
    return {
        "v": 1,
        "t_ns": T0 + n * 10**8,
        "seq": n,
        "source": "M3",
        "channel": "",
        "value": 1.0,
        "unit": "raw",
    } | over


# Each payload is valid JSON of the contract's shape with one hostile value; before the wire
# contract bounded them, the first four decoded and then failed every commit of their batch.
HOSTILE = [
    ("light", _body(1000, seq=2**63), "bad_seq"),
    ("light", _body(1001, seq=2**64), "bad_seq"),
    ("light", _body(1002, t_ns=2**70), "bad_time"),
    (
        "rssi",
        {
            **_body(1003, source="R3", channel="b-01", value=-60.0, unit="dBm"),
            "count": 2**64,
            "window_ms": 1000,
        },
        "bad_count",
    ),
    (
        "rssi",
        {**_body(1004, source="R3", channel="b-01", value=-60.0, unit="dBm"), "count": 3, "window_ms": 2**63},
        "bad_window_ms",
    ),
    ("light", _body(1005, source="M\ud8003"), "bad_source"),
    ("status", {"v": 1, "state": "online", "agent_version": "0.1\ud800"}, "bad_agent_version"),
    ("status", {"v": 1, "state": "online", "note": "x\udfff"}, "bad_status"),
    ("status", {"v": 1, "state": "online", "t_ns": 2**70}, "bad_time"),
    ("status", {"v": 1, "state": "online", "note": "x" * 100_000}, "too_large"),
]


def _hostile_topic(site: str, kind: str) -> str:
    if kind == "status":
        return f"twin/v1/{site}/pi-m3/status"
    return f"twin/v1/{site}/pi-m3/{kind}/{'rx' if kind == 'rssi' else 'light'}"


def _journalled_seqs(journal: Journal, site: str) -> set[int]:
    return {row["seq"] for row in journal.rows(site)}


def test_hostile_values_between_valid_readings_lose_nothing(tmp_path, mosquitto):
    site = "poison-hostile"
    journal = Journal(tmp_path / "j.sqlite")
    ing = Ingest(journal, mosquitto.host, mosquitto.port, site=site, client_id="t-poison-hostile")
    ing.start()
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        wait_until(lambda: ing.stats.connected)
        assert ing.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        pub.publish([_reading(site, 0)])
        wait_until(lambda: _journalled_seqs(journal, site) == {0})  # subscribed and committing
        seq = 1
        for kind, body, _reason in HOSTILE:
            pub.publish([_reading(site, seq)])
            # ensure_ascii keeps a lone surrogate as a \ud800 escape, as a hostile device would send it
            pub.publish_raw(_hostile_topic(site, kind), json.dumps(body).encode())
            seq += 1
        pub.publish([_reading(site, s) for s in range(seq, seq + 20)])
        seq += 20
        wait_until(lambda: _journalled_seqs(journal, site) == set(range(seq)), timeout_s=15)
        wait_until(lambda: ing.stats.dead_letters >= len(HOSTILE), timeout_s=15)
    finally:
        ing.stop()
    reasons = sorted(d["reason"] for d in journal.dead_letters(limit=100))
    assert reasons == sorted(r for _k, _b, r in HOSTILE)
    assert ing.stats.commit_failures == 0

    # The server restarts on the same session: nothing comes back, and ingest goes on.
    ing = Ingest(journal, mosquitto.host, mosquitto.port, site=site, client_id="t-poison-hostile")
    ing.start()
    try:
        assert ing.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        pub.publish([_reading(site, s) for s in range(seq, seq + 10)])
        wait_until(lambda: _journalled_seqs(journal, site) == set(range(seq + 10)), timeout_s=15)
    finally:
        ing.stop()
        pub.close()
    assert len(journal.dead_letters(limit=100)) == len(HOSTILE)  # no redelivered poison


def test_message_the_journal_refuses_is_dead_lettered_alone(tmp_path, mosquitto):
    """A batch that cannot commit is bisected; the one reading SQLite refuses is dead-lettered
    with the reason and its payload, every other reading is journalled and acknowledged."""
    site = "poison-refused"
    journal = Journal(tmp_path / "j.sqlite")
    with sqlite3.connect(journal.path) as conn:  # SQLite itself refuses seq 13 (a real refusal)
        conn.execute(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON readings WHEN NEW.seq = 13 "
            "BEGIN SELECT RAISE(ABORT, 'seq 13 refused'); END"
        )
    seen: list[int] = []
    ing = Ingest(
        journal,
        mosquitto.host,
        mosquitto.port,
        site=site,
        client_id="t-poison-refused",
        listeners=[lambda rs, _s: seen.extend(r.seq for r, _rx in rs)],
    )
    ing.start()
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        assert ing.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        pub.publish([_reading(site, 0)])
        wait_until(lambda: _journalled_seqs(journal, site) == {0})
        pub.publish([_reading(site, s) for s in range(1, 400)])
        wait_until(lambda: _journalled_seqs(journal, site) == set(range(400)) - {13}, timeout_s=15)
        wait_until(lambda: ing.stats.dead_by_reason["unstorable"] == 1, timeout_s=15)
    finally:
        ing.stop()
    dead = journal.dead_letters(limit=10)
    assert [d["reason"] for d in dead] == ["unstorable"]
    assert "seq 13 refused" in dead[0]["detail"]
    assert json.loads(dead[0]["payload"])["seq"] == 13  # the message as it came, for a later replay
    assert sorted(seen) == sorted(set(range(400)) - {13})
    assert ing.stats.commits_failing is False

    # Acknowledged: a restart on the same session gets no redelivery of seq 13.
    ing = Ingest(journal, mosquitto.host, mosquitto.port, site=site, client_id="t-poison-refused")
    ing.start()
    try:
        assert ing.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        pub.publish([_reading(site, 400)])
        wait_until(lambda: 400 in _journalled_seqs(journal, site))
    finally:
        ing.stop()
        pub.close()
    assert len(journal.dead_letters(limit=10)) == 1


def test_health_degraded_while_commits_fail_and_nothing_dead_lettered(
    tmp_path, mosquitto, pilot_site, monkeypatch
):
    """A journal locked by another process is the environment, not the message: /health says
    degraded and why, nothing is acknowledged or dead-lettered, and the reading lands after."""
    monkeypatch.setattr(journal_mod, "_BUSY_TIMEOUT_S", 0.2)
    site = pilot_site.model_copy(update={"site": "poison-health"})
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id="t-poison-health",
        analysis_interval_s=600,
        device_scope=False,
    )
    app = create_app(settings)
    ctx = app.state.twin
    pub = Publisher(mosquitto.host, mosquitto.port)
    with TestClient(app) as client:
        assert ctx.ingest.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        pub.publish([_reading(site.site, 0)])
        wait_until(lambda: _journalled_seqs(ctx.journal, site.site) == {0})
        assert client.get("/health").json()["status"] == "ok"
        blocker = sqlite3.connect(ctx.journal.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            pub.publish([_reading(site.site, 1)])
            wait_until(lambda: ctx.ingest.stats.commits_failing, timeout_s=10)
            health = client.get("/health").json()
            assert health["status"] == "degraded"
            assert any("journal commits failing" in p and "locked" in p for p in health["problems"])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: _journalled_seqs(ctx.journal, site.site) == {0, 1}, timeout_s=15)
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["problems"] == []
        assert health["ingest"]["commit_failures"] >= 1
        assert ctx.journal.dead_letter_counts() == {}
    pub.close()
