"""Delivery: per-sensor watermark, open gaps, lost gaps named with their size, persisted state."""

from __future__ import annotations

from pathlib import Path

from edge_agent.wire import Reading, Status, decode_ack
from twin_server.ingest.delivery import Delivery, delivery_lines
from twin_server.store.journal import Journal

T0 = 1_700_000_000 * 10**9
SITE = "toyama-pilot"


def _r(seq: int, sensor: str = "light", device: str = "pi-m3") -> tuple[Reading, int]:
    r = Reading(
        site=SITE,
        device=device,
        sensor=sensor,
        kind="light",
        t_ns=T0 + seq * 10**6,
        seq=seq,
        source="M3",
        value=1.0,
        unit="raw",
    ).check()
    return r, T0


def _write(j: Journal, seqs, **kw) -> None:
    j.write_batch([_r(s, **kw) for s in seqs])


def _status(j: Journal, kept: dict[str, int], device: str = "pi-m3") -> None:
    j.write_batch([], statuses=[(Status(SITE, device, True, T0, True, "1", {"seq_kept_from": kept}), T0)])


def _state(d: Delivery, sensor: str = "light", device: str = "pi-m3") -> dict:
    return next(s.to_dict() for s in d.states() if s.sensor == sensor and s.device == device)


def test_watermark_follows_contiguous_commits_and_gaps(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    d = Delivery(j, SITE)
    _write(j, range(0, 100))
    d.refresh()
    assert _state(d) == {
        "site": SITE,
        "device": "pi-m3",
        "sensor": "light",
        "upto": 99,
        "max_seq": 99,
        "missing": 0,
        "lost": 0,
    }
    _write(j, range(150, 200))  # 100..149 lost on the way: an open gap of 50
    d.refresh()
    assert (_state(d)["upto"], _state(d)["max_seq"], _state(d)["missing"]) == (99, 199, 50)
    _write(j, range(100, 120))  # the agent re-sends the oldest first
    d.refresh()
    assert (_state(d)["upto"], _state(d)["max_seq"], _state(d)["missing"]) == (119, 199, 30)
    _write(j, range(120, 150))
    d.refresh()
    assert (_state(d)["upto"], _state(d)["missing"], _state(d)["lost"]) == (199, 0, 0)


def test_gap_below_the_agents_oldest_kept_seq_is_lost_with_its_size(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    d = Delivery(j, SITE)
    _write(j, [*range(0, 10), *range(40, 60)])
    _status(j, {"light": 35, "pressure": 7})  # the agent dropped light 10..34 and all of pressure 0..6
    d.refresh()
    light = _state(d)
    # 10..34 are lost (25); 35..39 the agent still holds: an open gap of 5.
    assert (light["upto"], light["missing"], light["lost"]) == (34, 5, 25)
    assert _state(d, "pressure") == {
        "site": SITE,
        "device": "pi-m3",
        "sensor": "pressure",
        "upto": 6,
        "max_seq": 6,
        "missing": 0,
        "lost": 7,
    }
    gaps = {(g["sensor"], g["first_seq"], g["last_seq"], g["missing"]) for g in d.status()["lost_gaps"]}
    assert gaps == {("light", 10, 34, 25), ("pressure", 0, 6, 7)}
    _write(j, range(35, 40))
    d.refresh()
    assert (_state(d)["upto"], _state(d)["missing"], _state(d)["lost"]) == (59, 0, 25)
    # A late copy of a reading declared lost (it was in a broker queue) is counted back.
    _write(j, [12, 13])
    d.refresh()
    assert (_state(d)["upto"], _state(d)["lost"]) == (59, 23)
    assert d.status()["lost"] == 23 + 7


def test_state_survives_a_restart_and_a_failed_persist_refolds(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    d = Delivery(j, SITE)
    _write(j, [*range(0, 5), *range(8, 12)])
    _status(j, {"light": 6})
    d.refresh()
    before = _state(d)
    assert (before["upto"], before["missing"], before["lost"]) == (5, 2, 1)
    d2 = Delivery(Journal(tmp_path / "j.sqlite"), SITE)
    assert _state(d2) == before
    _write(j, [6, 7])
    d2.refresh()
    assert (_state(d2)["upto"], _state(d2)["missing"]) == (11, 0)


def test_ack_messages_carry_every_sensor_and_republish_on_reconnect(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    sent: list[tuple[str, bytes]] = []
    connects = [1]
    d = Delivery(
        j,
        SITE,
        publish=lambda t, p: sent.append((t, p)) or True,
        connects=lambda: connects[0],
        heartbeat_s=3600,
    )
    _write(j, range(0, 3))
    _write(j, range(0, 2), sensor="sw-tool")
    _write(j, range(0, 4), device="pi-m7")
    d.step()
    acks = {a.device: a for a in (decode_ack(t, p) for t, p in sent)}
    assert set(acks) == {"pi-m3", "pi-m7"}
    assert {s: a.upto for s, a in acks["pi-m3"].sensors.items()} == {"light": 2, "sw-tool": 1}
    sent.clear()
    d.step()
    assert sent == []  # nothing changed, no heartbeat due
    _write(j, [3])
    d.step()
    assert [decode_ack(t, p).device for t, p in sent] == ["pi-m3"]
    sent.clear()
    connects[0] += 1  # a reconnect (maybe to a fresh broker): everything again
    d.step()
    assert sorted(decode_ack(t, p).device for t, p in sent) == ["pi-m3", "pi-m7"]


def test_influx_lines_name_device_sensor_and_counts() -> None:
    from twin_server.ingest.delivery import SensorSeq

    (line,) = delivery_lines([SensorSeq(SITE, "pi-m3", "light", 5, 9, 2, 3)], T0)
    assert line == (
        f"delivery,device=pi-m3,sensor=light,site={SITE} upto=5i,max_seq=9i,missing=2i,lost=3i {T0}"
    )


def test_gap_counts_reach_influxdb(tmp_path: Path, influxd) -> None:
    import time
    import uuid

    from twin_server.store.influx.writer import InfluxWriter

    j = Journal(tmp_path / "j.sqlite")
    db = f"delivery_{uuid.uuid4().hex[:8]}"
    writer = InfluxWriter(j, influxd.url, db)
    d = Delivery(
        j,
        SITE,
        export=lambda lines: j.outbox_add([("write", "\n".join(lines))], time.time_ns()),
        export_s=0.0,
    )
    _write(j, [*range(0, 10), *range(40, 60)])
    _write(j, range(0, 5), sensor="sw-tool")
    _status(j, {"light": 35, "sw-tool": 5})
    d.step()
    while writer.step():
        pass
    res = influxd.query(
        'SELECT last("missing"), last("lost"), last("upto") FROM "delivery" GROUP BY "sensor"', db
    )
    got = {s["tags"]["sensor"]: s["values"][0][1:] for s in res["results"][0]["series"]}
    assert got == {"light": [5, 25, 34], "sw-tool": [0, 0, 4]}
