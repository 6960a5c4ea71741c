"""The SQLite outbox: seq numbers that survive reopening, ack deletes, counted drop-oldest."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.outbox import Outbox
from edge_agent.wire import Reading, WireError, decode

T0 = 1_700_000_000 * 10**9


def reading(sensor: str, i: int, kind: str = "light") -> Reading:
    return Reading("site", "pi-m3", sensor, kind, T0 + i, 0, "M3", float(i), "raw")


def test_seq_per_sensor_persists_across_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", synchronous="NORMAL")
    stored = box.append([reading("light", 0), reading("pressure", 1, "pressure"), reading("light", 2)])
    assert [(r.sensor, r.seq) for r in stored] == [("light", 0), ("pressure", 0), ("light", 1)]
    box.close()
    box = Outbox(tmp_path / "o.sqlite", synchronous="NORMAL")
    assert box.pending == 3
    assert box.append([reading("light", 3)])[0].seq == 2
    rows = box.after(0, 10)
    decoded = [decode(topic, payload) for _, topic, payload in rows]
    assert [(r.sensor, r.seq) for r in decoded] == [("light", 0), ("pressure", 0), ("light", 1), ("light", 2)]
    box.ack([rows[0][0], rows[2][0], 999_999])
    assert box.pending == 2
    assert [i for i, _, _ in box.after(0, 10)] == [rows[1][0], rows[3][0]]
    box.close()


def test_light_and_light_state_share_the_sensor_counter(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    r1 = Reading("site", "pi-m3", "light", "light_state", T0, 0, "M3", 1.0, "bool")
    stored = box.append([r1, reading("light", 1)])
    assert [r.seq for r in stored] == [0, 1]


def test_bounded_drop_oldest_is_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_rows=100, synchronous="NORMAL")
    for i in range(250):
        box.append([reading("light", i)])
    assert box.pending == 100 and box.counter("dropped") == 150
    first = decode(*box.after(0, 1)[0][1:])
    assert first.seq == 150  # the newest 100 kept, in order
    assert box.next_seq("light") == 250


def test_invalid_reading_writes_nothing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    bad = Reading("site", "pi-m3", "light", "light", T0, 0, "M3", float("nan"), "raw")
    with pytest.raises(WireError):
        box.append([reading("light", 0), bad])
    assert box.pending == 0 and box.next_seq("light") == 0
