"""End-to-end acknowledgement: per sensor, how far the journal holds every reading.

Every reading carries a per-sensor sequence number (``seq``, from 0, +1 per message). This
module follows, for each ``(site, device, sensor)``:

- ``upto``: the highest seq such that every reading up to it is committed to the journal
  (or was declared lost, below);
- ``max_seq``: the highest seq committed;
- ``missing``: readings between ``upto`` and ``max_seq`` not committed: an open gap, which
  the agent still holds and fills by re-sending;
- ``lost``: readings of gaps that can no longer be filled. The agent's status says, per
  sensor, the oldest seq its outbox still keeps (``seq_kept_from``); whatever below it is
  not in the journal has left the agent for good (its outbox limit passed, or it was
  deleted on a broker's acknowledgement by an agent without end-to-end acknowledgement).
  Such a gap is recorded with its range and size (``seq_lost``), recounted if a late copy
  arrives after all, and ``upto`` moves past it.

The state is read from the journal (rows after a rowid cursor), so it is the same in
every process of a share group and survives restarts (``seq_state``, ``seq_lost`` and the
cursor are committed together). After each refresh the server publishes, per device whose
state changed (and every ``heartbeat_s`` for all, so a fresh broker gets them too), the
retained acknowledgement ``twin/v1/SITE/DEVICE/ack`` (:func:`edge_agent.wire.encode_ack`);
the agent keeps each reading until ``upto`` covers it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_agent.wire import Ack, SensorAck, encode_ack
from twin_server.store.influx.line_protocol import point
from twin_server.store.journal import Journal

__all__ = ["Delivery", "SensorSeq", "delivery_lines"]

log = logging.getLogger("twin_server.ingest.delivery")

CURSOR = "delivery"
#: Lost gaps listed in ``/health`` (newest first); all of them stay in the journal.
MAX_LISTED_GAPS = 20


@dataclass
class SensorSeq:
    """Sequence state of one sensor (see the module docstring)."""

    site: str
    device: str
    sensor: str
    upto: int = -1
    max_seq: int = -1
    above: int = 0  # committed readings with upto < seq <= max_seq
    lost: int = 0
    recount: bool = False  # a reading at or below upto arrived: count exactly

    @property
    def missing(self) -> int:
        """Readings of the open gaps (not committed, still fillable)."""
        return self.max_seq - self.upto - self.above

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "device": self.device,
            "sensor": self.sensor,
            "upto": self.upto,
            "max_seq": self.max_seq,
            "missing": self.missing,
            "lost": self.lost,
        }


def delivery_lines(states: list[SensorSeq], t_ns: int) -> list[str]:
    """InfluxDB line protocol: measurement ``delivery`` per sensor (docs/integrators.md)."""
    return [
        point(
            "delivery",
            {"site": s.site, "device": s.device, "sensor": s.sensor},
            {"upto": s.upto, "max_seq": s.max_seq, "missing": s.missing, "lost": s.lost},
            t_ns,
        )
        for s in states
    ]


class Delivery:
    """Follows every sensor's sequence numbers in the journal and acknowledges them.

    Parameters
    ----------
    journal : Journal
        The server's journal.
    site : str
        The site served.
    publish : callable, optional
        ``publish(topic, payload) -> bool`` sends a retained message (the ingest's MQTT
        connection); None: the state is followed but not published.
    connects : callable
        The number of (re)connections of that MQTT client so far: after each one, every
        device's acknowledgement is published again (a fresh broker holds none).
    export : callable, optional
        ``export(lines)`` queues InfluxDB line protocol (every ``export_s``).
    period_s, heartbeat_s, export_s : float
        Refresh period; republish period of unchanged acknowledgements; InfluxDB period.
    """

    def __init__(
        self,
        journal: Journal,
        site: str,
        *,
        publish: Callable[[str, bytes], bool] | None = None,
        connects: Callable[[], int] = lambda: 0,
        export: Callable[[list[str]], None] | None = None,
        period_s: float = 1.0,
        heartbeat_s: float = 10.0,
        export_s: float = 60.0,
    ) -> None:
        self.journal = journal
        self.site = site
        self.publish = publish
        self.connects = connects
        self.export = export
        self.period_s = period_s
        self.heartbeat_s = heartbeat_s
        self.export_s = export_s
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], SensorSeq] = {}  # (device, sensor) -> state
        self._cursor = 0
        self._unpublished: set[str] = set()  # devices whose acknowledgement changed
        self._last_heartbeat = 0.0
        self._last_export = time.monotonic()
        self._seen_connects = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.acks_published = 0
        self.last_error: str | None = None
        self.refreshes = 0
        self._load()

    # -- persistence ----------------------------------------------------------------------
    def _load(self) -> None:
        for device, sensor, upto, max_seq, above in self.journal.seq_states(self.site):
            self._states[(device, sensor)] = SensorSeq(self.site, device, sensor, upto, max_seq, above)
        for device, sensor, missing in self.journal.seq_lost_totals(self.site):
            st = self._states.get((device, sensor))
            if st is not None:
                st.lost = int(missing)
        self._cursor = self.journal.export_cursor(CURSOR)
        self._unpublished = {d for d, _ in self._states}

    # -- the state ------------------------------------------------------------------------
    def refresh(self) -> set[str]:
        """Fold the readings committed since the last call and the devices' statuses.

        Returns the devices whose acknowledgement changed. Raises on journal errors (the
        state is then left as it was committed; the next call folds the same rows again).
        """
        top = self.journal.max_id()
        with self._lock:
            before = {k: (s.upto, s.max_seq, s.missing, s.lost) for k, s in self._states.items()}
            states = {
                k: SensorSeq(**{f: getattr(s, f) for f in SensorSeq.__dataclass_fields__})
                for k, s in self._states.items()
            }
        new_gaps: list[tuple[Any, ...]] = []
        touched: set[tuple[str, str]] = set()
        if top > self._cursor:
            rows = self.journal.seq_ranges(self.site, self._cursor, top)
            for device, sensor, lo, hi, n in rows:
                st = states.get((device, sensor))
                if st is None:
                    st = states[(device, sensor)] = SensorSeq(self.site, device, sensor)
                if lo <= st.upto:  # a late copy of a reading in a lost gap: count exactly
                    st.recount = True
                elif not st.recount:
                    st.above += n  # all above upto, and new (the unique index saw to that)
                st.max_seq = max(st.max_seq, hi)
                touched.add((device, sensor))
        regaps: set[tuple[str, str]] = set()
        for key in touched:
            st = states[key]
            if st.recount:
                st.above = self._count(st, st.upto + 1, st.max_seq)
                regaps.add(key)
                st.recount = False
            self._advance(st)
        for status in self.journal.device_status():
            if status["site"] != self.site:
                continue
            kept = (status.get("extra") or {}).get("seq_kept_from")
            if not isinstance(kept, dict):
                continue
            for sensor, first_kept in kept.items():
                if type(first_kept) is not int or not isinstance(sensor, str):
                    continue
                key = (status["device"], sensor)
                st = states.get(key)
                if first_kept - 1 <= (st.upto if st is not None else -1):
                    continue
                if st is None:
                    st = states[key] = SensorSeq(self.site, status["device"], sensor)
                new_gaps.extend(self._declare_lost(st, first_kept - 1))
        lost_updates, lost_rows = self._recount_lost(regaps)
        for gap in new_gaps:
            states[(gap[1], gap[2])].lost += gap[5]
        for key, delta in lost_updates.items():
            states[key].lost += delta
        changed = [s for k, s in states.items() if before.get(k) != (s.upto, s.max_seq, s.missing, s.lost)]
        if changed or top > self._cursor:
            self._persist(changed, new_gaps, lost_rows, top)
        with self._lock:
            self._states = states
            self._cursor = max(self._cursor, top)
            devices = {s.device for s in changed}
            self._unpublished |= devices
            self.refreshes += 1
        return devices

    def _count(self, st: SensorSeq, lo: int, hi: int) -> int:
        if hi < lo:
            return 0
        return self.journal.count_seqs(st.site, st.device, st.sensor, lo, hi)

    def _advance(self, st: SensorSeq) -> None:
        """Move ``upto`` over every committed reading that follows it without a gap."""
        if st.above == st.max_seq - st.upto:
            st.upto, st.above = st.max_seq, 0
            return
        chunk = 64
        while True:
            seqs = self.journal.seqs_after(st.site, st.device, st.sensor, st.upto, chunk)
            for seq in seqs:
                if seq != st.upto + 1:
                    return
                st.upto += 1
                st.above -= 1
            if len(seqs) < chunk:
                return
            chunk = min(chunk * 4, 65536)

    def _declare_lost(self, st: SensorSeq, last: int) -> list[tuple[Any, ...]]:
        """The agent no longer holds readings up to ``last``: what is missing is lost."""
        first = st.upto + 1
        committed = self._count(st, first, last)
        missing = last - first + 1 - committed
        # Move upto past the gap; readings above max_seq are neither committed nor "above".
        st.above -= self._count(st, first, min(last, st.max_seq))
        st.upto = last
        st.max_seq = max(st.max_seq, last)
        self._advance(st)
        if missing <= 0:
            return []
        log.warning(
            "readings lost for good: %s/%s sensor %s seq %d..%d (%d readings): the agent "
            "no longer holds them",
            st.site,
            st.device,
            st.sensor,
            first,
            last,
            missing,
        )
        return [(st.site, st.device, st.sensor, first, last, missing, time.time_ns())]

    def _recount_lost(
        self, keys: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], int], list[tuple[int, int]]]:
        """Lost gaps of sensors that received old readings: a late copy may have filled them.

        Returns the change of ``lost`` per sensor and the gaps' new ``(id, missing)``.
        """
        delta: dict[tuple[str, str], int] = {}
        rows: list[tuple[int, int]] = []
        for device, sensor in keys:
            for gap_id, first, last, missing in self.journal.seq_lost_gaps(self.site, device, sensor):
                st = SensorSeq(self.site, device, sensor)
                now_missing = last - first + 1 - self._count(st, first, last)
                if now_missing != missing:
                    delta[(device, sensor)] = delta.get((device, sensor), 0) + now_missing - missing
                    rows.append((gap_id, now_missing))
        return delta, rows

    def _persist(
        self,
        changed: list[SensorSeq],
        new_gaps: list[tuple[Any, ...]],
        lost_rows: list[tuple[int, int]],
        top: int,
    ) -> None:
        rows = [(s.site, s.device, s.sensor, s.upto, s.max_seq, s.above) for s in changed]
        self.journal.save_seq_state(rows, new_gaps, lost_rows, CURSOR, top)

    # -- views ----------------------------------------------------------------------------
    def states(self) -> list[SensorSeq]:
        """Every sensor's state, by device and sensor."""
        with self._lock:
            return [self._states[k] for k in sorted(self._states)]

    def ack(self, device: str, t_ns: int | None = None) -> Ack:
        """The acknowledgement of one device."""
        with self._lock:
            sensors = {
                s: SensorAck(st.upto, st.max_seq, st.missing, st.lost)
                for (d, s), st in self._states.items()
                if d == device
            }
        return Ack(self.site, device, time.time_ns() if t_ns is None else t_ns, sensors)

    def lost_gaps(self, limit: int = MAX_LISTED_GAPS, device: str | None = None) -> list[dict[str, Any]]:
        """The newest lost gaps: ``device, sensor, first_seq, last_seq, missing, declared_ns``."""
        rows = self.journal.newest_lost_gaps(self.site, limit, device)
        keys = ("device", "sensor", "first_seq", "last_seq", "missing", "declared_ns")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def status(self) -> dict[str, Any]:
        """For ``/health``: totals, every sensor, the newest lost gaps."""
        states = self.states()
        return {
            "missing": sum(s.missing for s in states),
            "lost": sum(s.lost for s in states),
            "sensors": [s.to_dict() for s in states],
            "lost_gaps": self.lost_gaps(),
            "acks_published": self.acks_published,
            "last_error": self.last_error,
        }

    def device_summary(self, device: str, since_ns: int = 0) -> dict[str, Any]:
        """One device's gaps for the commissioning page: readings missing now, and lost in
        gaps declared since ``since_ns`` (with the newest such gaps)."""
        states = [s for s in self.states() if s.device == device]
        gaps = [g for g in self.lost_gaps(100, device) if g["declared_ns"] >= since_ns]
        return {
            "missing": sum(s.missing for s in states),
            "lost": sum(g["missing"] for g in gaps),
            "sensors": {s.sensor: s.to_dict() for s in states},
            "lost_gaps": gaps[:5],
        }

    # -- publishing -----------------------------------------------------------------------
    def publish_acks(self, now: float | None = None) -> int:
        """Publish the acknowledgements that changed (all of them after a reconnect or every
        ``heartbeat_s``); returns how many were sent."""
        if self.publish is None:
            return 0
        now = time.monotonic() if now is None else now
        connects = self.connects()
        with self._lock:
            if connects != self._seen_connects or now - self._last_heartbeat >= self.heartbeat_s:
                devices = {d for d, _ in self._states}
                self._seen_connects = connects
                self._last_heartbeat = now
            else:
                devices = set(self._unpublished)
        sent = 0
        for device in sorted(devices):
            topic, payload = encode_ack(self.ack(device))
            if self.publish(topic, payload):
                sent += 1
                with self._lock:
                    self._unpublished.discard(device)
            else:
                with self._lock:  # not connected: all again after the reconnect
                    self._seen_connects = -1
                break
        self.acks_published += sent
        return sent

    def step(self) -> None:
        """One refresh, publish and (now and then) InfluxDB export."""
        self.refresh()
        self.publish_acks()
        if self.export is not None and time.monotonic() - self._last_export >= self.export_s:
            self._last_export = time.monotonic()
            states = self.states()
            if states:
                self.export(delivery_lines(states, time.time_ns()))

    # -- thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.step()
                self.last_error = None
            except Exception as exc:  # a full disk, a locked journal: report, retry next period
                text = f"{type(exc).__name__}: {exc}"
                if text != self.last_error:
                    log.warning("acknowledgement state not updated (retrying): %s", text)
                self.last_error = text
