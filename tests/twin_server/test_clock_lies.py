"""A device clock that lies is flagged, journalled and kept out of the live view; it neither
steers "today" nor slows the day listings (real mosquitto, real server app)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from services import wait_until

from edge_agent.wire import Reading
from twin_server.api.app import create_app
from twin_server.ingest.publish import Publisher
from twin_server.settings import Settings
from twin_server.store.journal import Journal
from twin_server.store.replay_data import local_day

pytestmark = pytest.mark.broker


def _light(site: str, seq: int, t_ns: int, value: float) -> Reading:
    return Reading(
        site=site,
        device="pi-m3",
        sensor="light",
        kind="light",
        t_ns=t_ns,
        seq=seq,
        source="M3",
        value=value,
        unit="raw",
    )


@contextlib.contextmanager
def _server(tmp_path, mosquitto, pilot_site, name: str):
    """The server app (default clock tolerance: one day) on its own site id, started."""
    site = pilot_site.model_copy(update={"site": name})
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id=f"t-{name}",
        analysis_interval_s=600,
    )
    app = create_app(settings)
    ctx = app.state.twin
    pub = Publisher(mosquitto.host, mosquitto.port)
    with TestClient(app) as client:
        assert ctx.ingest.wait_subscribed(10)  # not just connected: a publish before SUBACK is lost
        yield site, ctx, client, pub
    pub.close()


def _epoch_ns(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 3, tzinfo=UTC).timestamp()) * 10**9


def test_readings_stamped_2199_and_2000_are_flagged_not_followed(tmp_path, mosquitto, pilot_site):
    now_ns = time.time_ns()
    with _server(tmp_path, mosquitto, pilot_site, "clock-lies") as (site, ctx, client, pub):
        pub.publish([_light(site.site, 0, now_ns - 10**9, 0.25)])
        wait_until(lambda: ctx.journal.count(site.site) == 1)
        pub.publish(
            [
                _light(site.site, 1, _epoch_ns(2199, 6, 1), 0.99),
                _light(site.site, 2, _epoch_ns(2000, 1, 2), 0.98),
            ]
        )
        wait_until(lambda: ctx.journal.count(site.site) == 3)  # journalled, not dropped

        health = client.get("/health").json()
        suspect = health["clock_suspects"]["clock-lies/pi-m3"]
        assert suspect["readings"] == 2
        assert any("pi-m3" in w and "kept out of the live view" in w for w in health["warnings"])
        assert health["status"] == "ok"  # the server itself is fine

        live = client.get("/api/live").json()  # the live view still shows the plausible value
        assert "0.99" not in str(live) and "0.98" not in str(live)
        assert "0.25" in str(live)
        assert ctx.analysis.current_day() == local_day(time.time(), site.timezone)

        view = client.get(f"/api/commissioning/{site.site}").json()
        m3 = next(m for m in view["machines"] if m["id"] == "M3")
        clock = next(i for i in m3["checklist"] if i["key"] == "clock")
        assert (clock["status"], clock["code"]) == ("fail", "clock_far_off")

        best_s = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            days = client.get(f"/api/sites/{site.site}/shifts").json()
            best_s = min(best_s, time.perf_counter() - t0)
        today = local_day(now_ns / 1e9, site.timezone)
        assert [d["day"] for d in days] == ["2000-01-02", today, "2199-06-01"]
        assert [d["readings"] for d in days] == [1, 1, 1]
        # Walking the calendar from 2000 to 2199 took seconds; the day index takes milliseconds.
        assert best_s < 0.1, f"day listing took {best_s * 1000:.0f} ms"


def test_simulated_clock_follows_the_newest_reading(tmp_path, pilot_site):
    """The demo replays a recorded shift: with simulated time there is no clock check, and the
    live day is the day of the newest reading."""
    from twin_server.live.hub import AnalysisCache

    journal = Journal(tmp_path / "j.sqlite")
    t_ns = _epoch_ns(2023, 2, 7)
    journal.write_batch([(_light(pilot_site.site, 0, t_ns, 0.5), time.time_ns())])
    assert AnalysisCache(pilot_site, journal, simulated_clock=True).current_day() == "2023-02-07"
    assert AnalysisCache(pilot_site, journal).current_day() == local_day(time.time(), pilot_site.timezone)


def test_day_index_of_an_older_journal_is_built_on_open(tmp_path, pilot_site):
    journal = Journal(tmp_path / "j.sqlite")
    base = _epoch_ns(2023, 2, 7)
    journal.write_batch([(_light(pilot_site.site, i, base + i * 3600 * 10**9, 0.5), base) for i in range(30)])
    expected = journal.days(pilot_site.site, pilot_site.timezone)
    journal.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "j.sqlite")) as conn:
        conn.execute("DROP TABLE reading_buckets")  # as a journal written before the index
    reopened = Journal(tmp_path / "j.sqlite")
    assert reopened.days(pilot_site.site, pilot_site.timezone) == expected
    assert [d["readings"] for d in expected] == [12, 18]  # from 12:00 JST, 30 hours


def test_backlog_older_than_the_tolerance_is_not_called_a_wrong_clock(tmp_path, mosquitto, pilot_site):
    """After a two-day outage the agent's outbox drains: old readings stay out of the live view,
    but its live status shows a right clock, so the device is not flagged as lying."""
    from edge_agent.wire import Status, encode_status

    with _server(tmp_path, mosquitto, pilot_site, "clock-backlog") as (site, ctx, client, pub):
        pub.publish_raw(*encode_status(Status(site.site, "pi-m3", True, time.time_ns(), True, "0.1")))
        old_ns = time.time_ns() - 2 * 86_400 * 10**9
        pub.publish([_light(site.site, i, old_ns + i * 10**9, 0.5) for i in range(5)])
        wait_until(lambda: ctx.journal.count(site.site) == 5)
        health = client.get("/health").json()
        suspect = health["clock_suspects"]["clock-backlog/pi-m3"]
        assert (suspect["readings"], suspect["ahead"], suspect["clock_wrong"]) == (5, 0, False)
        assert any("backlog" in w for w in health["warnings"])
        assert client.get("/api/live").json()["sensors"] == {}  # nothing of the backlog shown live
        view = client.get(f"/api/commissioning/{site.site}").json()
        m3 = next(m for m in view["machines"] if m["id"] == "M3")
        clock = next(i for i in m3["checklist"] if i["key"] == "clock")
        assert clock["code"] != "clock_far_off"
