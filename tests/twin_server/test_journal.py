"""Journal: dedup, atomic batches, readings frame identical to the CSV loader's."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from edge_agent.wire import Reading, Status
from twin_server.readings import parse_readings_text
from twin_server.store.journal import (
    DEAD_KEEP_DAYS,
    DEAD_ROWS_PER_DAY,
    DEAD_ROWS_PER_DEVICE_DAY,
    MAX_DEAD_PAYLOAD_BYTES,
    DeadLetter,
    Journal,
)

T0 = 1_700_000_000 * 10**9


def _r(seq: int, kind: str = "light", value: float | str = 10.0, **kw) -> Reading:
    base = dict(
        site="toyama-pilot",
        device="pi-m3",
        sensor=kind,
        kind=kind,
        t_ns=T0 + seq * 10**9,
        seq=seq,
        source="M3",
        value=value,
        unit={"light": "raw", "zone": "zone"}.get(kind, "raw"),
    )
    base.update(kw)
    return Reading(**base).check()


def test_duplicates_are_dropped_and_counted(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    first = j.write_batch([(_r(0), T0), (_r(1), T0)])
    again = j.write_batch([(_r(1), T0 + 5), (_r(2), T0 + 5), (_r(2), T0 + 6)])
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (again.inserted, again.duplicates) == (1, 2)
    assert j.count() == 3
    # Same seq from another sensor is not a duplicate.
    other = j.write_batch([(_r(0, sensor="light2"), T0)])
    assert other.inserted == 1


def test_survives_reopen_and_keeps_arrival_time(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.write_batch(
        [(_r(0), T0 + 123)],
        [DeadLetter("t", b"\xff", "bad_json", "x", T0)],
        [(Status("toyama-pilot", "pi-m3", True, T0, True, "1.0"), T0)],
    )
    j.close()
    j2 = Journal(tmp_path / "j.sqlite")
    rows = j2.rows("toyama-pilot")
    assert rows[0]["t_ns"] == T0 and rows[0]["received_ns"] == T0 + 123
    assert j2.dead_letter_counts() == {"bad_json": 1}
    assert j2.dead_letters()[0]["payload_bytes"] == 1
    assert j2.device_status()[0]["online"] == 1


def test_readings_frame_matches_csv_loader(tmp_path, pilot_site):
    csv = (
        "time,kind,source,channel,value\n"
        "1700000001.5,light,M3,,812.25\n"
        "1700000002.25,zone,tagsys,b-01,M7\n"
        "1700000003,switch,M7,tool_change,1\n"
        "1700000004,rssi,R3,b-02,-71.5\n"
        "1700000005,light,M99,,3\n"
    )
    expected = parse_readings_text(csv, pilot_site)
    from twin_server.ingest.publish import frame_to_wire

    raw = pd.DataFrame(
        {
            "t": [1700000001.5, 1700000002.25, 1700000003, 1700000004, 1700000005],
            "kind": ["light", "zone", "switch", "rssi", "light"],
            "source": ["M3", "tagsys", "M7", "R3", "M99"],
            "channel": ["", "b-01", "tool_change", "b-02", ""],
            "value": [812.25, np.nan, 1.0, -71.5, 3.0],
            "label": ["", "M7", "", "", ""],
        }
    )
    j = Journal(tmp_path / "j.sqlite")
    j.write_batch([(r, T0) for r in frame_to_wire(raw, pilot_site)])
    got = j.load_readings(pilot_site)
    assert got.rejected == expected.rejected == {"unknown_source": 1}
    pd.testing.assert_frame_equal(got.frame, expected.frame)
    # Time window is half-open [start, end).
    part = j.readings_frame(pilot_site, 1700000002.25, 1700000004)
    assert list(part["kind"]) == ["zone", "switch"]


def test_journal_of_an_older_version_gains_the_status_extras_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE device_status (site TEXT NOT NULL, device TEXT NOT NULL,"
            " online INTEGER NOT NULL, t_ns INTEGER, received_ns INTEGER NOT NULL,"
            " clock_synced INTEGER, agent_version TEXT,"
            " PRIMARY KEY (site, device))"
        )
        conn.execute("INSERT INTO device_status VALUES ('s', 'pi-m3', 1, 1, 2, 1, '0.1')")
    j = Journal(path)
    assert j.device_status() == [
        {
            "site": "s",
            "device": "pi-m3",
            "online": 1,
            "t_ns": 1,
            "received_ns": 2,
            "clock_synced": 1,
            "agent_version": "0.1",
            "extra": {},
        }
    ]
    j.close()


def _dead(device: str, i: int, day: int = 20_000, reason: str = "bad_json", size: int = 600) -> DeadLetter:
    return DeadLetter(
        f"twin/v1/s/{device}/light/x",
        b"%06d" % i + b"y" * (size - 6),
        reason,
        f"letter {i}",
        day * 86_400 * 10**9 + i,
    )


def test_dead_letters_are_all_counted_but_kept_within_caps(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    # 30 devices x 150 letters on one day: 100 per device would be 3,000 rows, the day keeps 2,000.
    letters = [
        _dead(f"pi-{k}", i, reason="bad_json" if i % 3 else "bad_seq") for k in range(30) for i in range(150)
    ]
    for i in range(0, len(letters), 700):
        j.write_batch([], letters[i : i + 700])
    assert j.dead_letter_counts() == {"bad_json": 3_000, "bad_seq": 1_500}
    assert j.dead_letters_kept() == DEAD_ROWS_PER_DAY
    per_device = Counter(r["device"] for r in j.dead_letters(limit=10_000))
    assert max(per_device.values()) == DEAD_ROWS_PER_DEVICE_DAY
    newest = j.dead_letters(limit=1)[0]
    assert newest["payload_bytes"] == 600 and newest["payload_truncated"]
    assert len(newest["payload"]) == MAX_DEAD_PAYLOAD_BYTES
    # The next day has its own caps; days past the keep window are pruned, their counts stay.
    j.write_batch([], [_dead("pi-0", 1, day=20_001)])
    assert j.dead_letters(limit=1)[0]["device"] == "pi-0" and j.dead_letters_kept() == DEAD_ROWS_PER_DAY + 1
    j.write_batch([], [_dead("pi-0", 2, day=20_000 + DEAD_KEEP_DAYS)])
    assert j.dead_letters_kept() == 2
    assert sum(j.dead_letter_counts().values()) == 4_502


def test_a_dead_letter_that_sqlite_cannot_encode_is_still_stored(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    odd = DeadLetter("twin/v1/s/pi-\ud800/light/x", b"{}", "bad_device", "device '\udcff' " * 100, 1)
    j.write_batch([], [odd])
    got = j.dead_letters()[0]
    assert got["device"] == "pi-\\ud800" and len(got["detail"]) == 500
    assert j.dead_letter_counts() == {"bad_device": 1}


def test_dead_letter_pages_stop_at_a_byte_limit(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.write_batch([], [_dead("pi-1", i, size=500) for i in range(100)])
    page = j.dead_letters(limit=100, max_bytes=8192)
    assert 5 <= len(page) < 100
    assert sum(len(json.dumps(r, ensure_ascii=False).encode()) + 1 for r in page) <= 8192
    ids = [r["id"] for r in page]
    while page:
        page = j.dead_letters(limit=100, max_bytes=8192, before_id=ids[-1])
        ids += [r["id"] for r in page]
    assert ids == sorted(ids, reverse=True) and len(ids) == 100
    assert len(j.dead_letters(limit=5, max_bytes=1)) == 1  # at least one row, however small the limit


def test_dead_letters_of_an_older_journal_are_cut_and_counted(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
            " payload BLOB NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,"
            " received_ns INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO dead_letters (topic, payload, reason, detail, received_ns) VALUES (?,?,?,?,?)",
            [("twin/v1/s/pi-m3/light/x", b"z" * 65536, "too_large", "", T0)] * 3,
        )
    j = Journal(path)
    assert j.dead_letter_counts() == {"too_large": 3}
    rows = j.dead_letters()
    assert [(r["payload_bytes"], len(r["payload"]), r["payload_truncated"]) for r in rows] == [
        (65536, MAX_DEAD_PAYLOAD_BYTES, True)
    ] * 3
    j.write_batch([], [_dead("pi-m3", 1, reason="too_large")])
    assert j.dead_letter_counts() == {"too_large": 4}
    j.close()
