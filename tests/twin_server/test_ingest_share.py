"""Scale-out: ingest instances on one MQTT shared subscription, one journal."""

from __future__ import annotations

import argparse
import sqlite3
import time

import pytest
from services import wait_until

from edge_agent.wire import Reading, Status, encode_status
from twin_server.cli.serve import add_arguments, settings_from_args
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import Ingest, check_share_group
from twin_server.store.journal import Journal

T0 = 1_700_000_000 * 10**9
SITE = "share-t"


def _readings(seqs: range) -> list[Reading]:
    return [
        Reading(SITE, f"pi-{d}", f"s{k}", "light", T0 + i * 10**6, i, f"M{d}", float(i), "raw")
        for i in seqs
        for d in range(3)
        for k in range(2)
    ]


def _distinct(path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT count(*) FROM readings").fetchone()[0]
        distinct = db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT device, sensor, seq FROM readings)"
        ).fetchone()[0]
    return rows, distinct


def _member(path, mosquitto, n: int) -> Ingest:
    # Each member has a Journal of its own on the same file, as separate processes would.
    return Ingest(
        Journal(path),
        mosquitto.host,
        mosquitto.port,
        site=SITE,
        client_id=f"t-share-{n}",
        share_group="twin-share-t",
    )


@pytest.mark.broker
def test_two_members_share_the_stream_each_reading_once(tmp_path, mosquitto):
    path = tmp_path / "journal.sqlite"
    a, b = _member(path, mosquitto, 1), _member(path, mosquitto, 2)
    assert a.topics() == [f"$share/twin-share-t/twin/v1/{SITE}/+/+/+", f"twin/v1/{SITE}/+/status"]
    a.start()
    b.start()
    try:
        assert a.wait_subscribed(10) and b.wait_subscribed(10)
        pub = Publisher(mosquitto.host, mosquitto.port)
        first = _readings(range(0, 250))
        pub.publish(first)
        pub.publish_raw(*encode_status(Status(SITE, "pi-0", True, T0)))
        wait_until(lambda: a.stats.accepted + b.stats.accepted >= len(first))
        # One member goes away: its share is queued in its persistent session meanwhile.
        b.stop()
        second = _readings(range(250, 500))
        pub.publish(second)
        pub.close()
        wait_until(lambda: a.stats.accepted >= len(first) // 2 + len(second) // 2 - 100)
        b = _member(path, mosquitto, 2)
        b.start()
        total = len(first) + len(second)
        wait_until(lambda: _distinct(path)[1] >= total, 30, "every reading in the journal")
        time.sleep(0.3)  # anything extra (a duplicate) would arrive now
    finally:
        a.stop()
        b.stop()
    assert _distinct(path) == (total, total)
    assert a.stats.duplicates == b.stats.duplicates == 0
    assert a.stats.accepted > 0.3 * total and b.stats.accepted > 0.1 * total  # both took a share
    assert a.stats.statuses == 1  # statuses are not shared: every member gets them
    assert Journal(path).device_status()[0]["device"] == "pi-0"


def test_share_group_options(pilot_site_path):
    assert check_share_group("twin-toyama") == "twin-toyama"
    for bad in ("", "a/b", "a+", "#", "a:b", "x" * 65):
        with pytest.raises(ValueError, match="share group"):
            check_share_group(bad)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    site = str(pilot_site_path)
    with pytest.raises(ValueError, match="--client-id of its own"):
        settings_from_args(parser.parse_args(["--site", site, "--share-group", "g"]))
    s = settings_from_args(parser.parse_args(["--site", site, "--share-group", "g", "--client-id", "c-1"]))
    assert (s.share_group, s.mqtt_client_id) == ("g", "c-1")


def test_a_writer_waits_for_the_other_process_lock_and_gets_it_at_once(tmp_path):
    """Another connection holds the write lock: write_batch waits, then commits within ms of its release."""
    import threading

    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    done: list[float] = []

    def write() -> None:
        journal.write_batch([(r, T0) for r in _readings(range(0, 10))])
        done.append(time.monotonic())

    th = threading.Thread(target=write)
    th.start()
    time.sleep(0.3)
    assert not done  # still waiting for the lock
    released = time.monotonic()
    other.execute("COMMIT")
    th.join(5)
    assert done and done[0] - released < 0.05  # SQLite's own busy handler may sleep 100 ms
    assert journal.count(SITE) == 60


_MEMBER = """
import sys, time
sys.path.insert(0, {root!r})
from twin_server.ingest.subscriber import Ingest
from twin_server.store.journal import Journal
ing = Ingest(Journal({path!r}), {host!r}, {port}, site={site!r}, client_id={cid!r}, share_group="twin-kill-t")
ing.start()
ing.wait_subscribed(30)
while True:
    print(ing.stats.accepted, flush=True)
    time.sleep(0.05)
"""


@pytest.mark.broker
def test_kill_9_of_one_member_loses_nothing(tmp_path, mosquitto):
    """Two member processes; one is killed mid-stream and restarted: every reading once."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    path = str(tmp_path / "journal.sqlite")

    def member(cid: str, *, fresh: bool = True) -> subprocess.Popen:
        code = _MEMBER.format(
            root=root, path=path, host=mosquitto.host, port=mosquitto.port, site=SITE + "-k", cid=cid
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        accepted = proc.stdout.readline().strip()  # printed once subscribed
        # A restarted member's session may deliver its queue before the SUBACK arrives.
        assert accepted == "0" if fresh else accepted.isdigit(), accepted
        return proc

    a, b = member("t-kill-1"), member("t-kill-2")
    readings = [
        Reading(SITE + "-k", f"pi-{d}", "light", "light", T0 + i, i, f"M{d}", 1.0, "raw")
        for i in range(3000)
        for d in range(3)
    ]
    try:
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.publish(readings[:4000])
        os.kill(b.pid, signal.SIGKILL)  # mid-stream: some of its share committed, some not acknowledged
        b.wait(10)
        pub.publish(readings[4000:])  # b's share queues in its session meanwhile
        pub.close()
        b = member("t-kill-2", fresh=False)
        wait_until(lambda: _distinct(path)[1] >= len(readings), 60, "every reading in the journal")
        time.sleep(0.5)
    finally:
        for p in (a, b):
            p.kill()
            p.wait(10)
    assert _distinct(path) == (len(readings), len(readings))
