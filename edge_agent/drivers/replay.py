"""Replay a readings CSV (``time,kind,source,channel,value``) in accelerated time.

For demos and tests: simulated agents replay a recorded or simulated shift through the
real processing, outbox and publishing code. One :class:`ReplaySource` reads the file and
paces it; each configured sensor with ``driver = "replay"`` takes the rows that it would
have measured:

========  ============================================================
kind      rows taken
========  ============================================================
light     ``light`` rows whose source is the agent's machine
pressure  ``pressure`` rows whose source is the agent's machine
switch    ``switch`` rows of the machine with the sensor's task channel
ble       ``rssi`` rows whose source is the agent's receiver (one advert
          each), for the sensor's beacons (all beacons if none listed)
zone      ``zone`` rows whose source is the sensor's ``locator``
========  ============================================================

Rows that cannot be parsed are counted in ``ReplaySource.rejected`` and skipped.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edge_agent.clock import Clock
from edge_agent.config import ConfigError, get_value
from edge_agent.drivers import Driver, Emit, Sample

__all__ = ["ReplayDriver", "ReplayRow", "ReplaySource", "read_replay_rows"]

ReplayRow = tuple[int, str, str, str, str]  # t_ns, kind, source, channel, value text
_HEADER = ("time", "kind", "source", "channel", "value")


def read_replay_rows(path: str | Path) -> tuple[list[ReplayRow], int]:
    """Read a readings CSV; return rows sorted by time and the number of rejected rows."""
    rows: list[ReplayRow] = []
    rejected = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:5]] != list(_HEADER):
            raise ValueError(f"{path}: not a readings CSV (header must be time,kind,source,channel,value)")
        for rec in reader:
            try:
                t_s = float(rec[0])
                if not math.isfinite(t_s):
                    raise ValueError("time")
                kind, source, channel, value = (f.strip() for f in rec[1:5])
                if not value:
                    raise ValueError("value")
                rows.append((round(t_s * 1e9), kind, source, channel, value))
            except (ValueError, IndexError):
                rejected += 1
    rows.sort(key=lambda r: r[0])
    return rows, rejected


class ReplaySource:
    """Reads the file once and paces it for all replay sensors of one agent.

    Parameters
    ----------
    rows : list of ReplayRow
        Sorted by time.
    clock : Clock
        A :class:`~edge_agent.clock.ReplayClock` starting at the first row (recorded times
        kept) or the agent's live clock (``restamp``: rows are stamped at emission).
    speed : float
        Replay speed factor (10 = ten times faster than recorded).
    """

    def __init__(
        self, rows: list[ReplayRow], clock: Clock, speed: float, restamp: bool, loop: bool, rejected: int = 0
    ) -> None:
        self.rows = rows
        self.clock = clock
        self.speed = speed
        self.restamp = restamp
        self.loop = loop
        self.rejected = rejected
        self.done = threading.Event()
        self._subs: list[tuple[Callable[[ReplayRow], bool], Callable[[ReplayRow, int], None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(
        self, accepts: Callable[[ReplayRow], bool], deliver: Callable[[ReplayRow, int], None]
    ) -> None:
        self._subs.append((accepts, deliver))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if not self.rows:
            self.done.set()
            return
        import time

        t_first = self.rows[0][0]
        span_ns = self.rows[-1][0] - t_first + 10**9
        mono0 = time.monotonic_ns()
        lap = 0
        while not self._stop.is_set():
            for row in self.rows:
                shift = lap * span_ns
                # Pace on the monotonic clock: row due at (t - t_first) / speed after start.
                due = mono0 + int((row[0] + shift - t_first) / self.speed)
                wait_ns = due - time.monotonic_ns()
                if wait_ns > 0 and self._stop.wait(wait_ns / 1e9):
                    return
                t_ns = self.clock.now_ns() if self.restamp else row[0] + shift
                for accepts, deliver in self._subs:
                    if accepts(row):
                        deliver(row, t_ns)
            if not self.loop:
                break
            lap += 1
        self.done.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


class ReplayDriver(Driver):
    """One configured sensor fed from a :class:`ReplaySource` (see module docstring)."""

    name: ClassVar[str] = "replay"
    kinds: ClassVar[frozenset[str]] = frozenset({"light", "pressure", "switch", "ble", "zone"})

    def __init__(
        self,
        sensor: dict[str, Any],
        clock: Clock,
        source: ReplaySource | None = None,
        machine: str = "",
        receiver: str = "",
    ) -> None:
        super().__init__(sensor, clock)
        if source is None:
            raise ValueError("a replay sensor needs the agent's ReplaySource")
        self.source = source
        self.machine = machine
        self.receiver = receiver
        self.rejected = 0
        self._emit: Emit | None = None
        kind = sensor["kind"]
        beacons = set(sensor.get("beacons", {}).values())
        if kind in ("light", "pressure"):
            self._accepts = lambda r: r[1] == kind and r[2] == machine
        elif kind == "switch":
            ch = sensor["channel"]
            self._accepts = lambda r: r[1] == "switch" and r[2] == machine and r[3] == ch
        elif kind == "ble":
            self._accepts = lambda r: r[1] == "rssi" and r[2] == receiver and (not beacons or r[3] in beacons)
        else:
            loc = sensor["locator"]
            self._accepts = lambda r: r[1] == "zone" and r[2] == loc
        source.subscribe(self._accepts, self._deliver)

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        if sensor["kind"] == "zone" and not get_value(sensor, "locator", str, where):
            raise ConfigError(f"{where}.locator", "must name the locator system id (e.g. tagsys)")

    def _deliver(self, row: ReplayRow, t_ns: int) -> None:
        if self._emit is None:
            return
        kind = self.sensor["kind"]
        if kind == "zone":
            value: float | str = row[4]
        else:
            try:
                value = float(row[4])
            except ValueError:
                self.rejected += 1
                return
            if not math.isfinite(value):
                self.rejected += 1
                return
        self._emit(Sample(self.sensor_id, t_ns, value, row[3] if kind in ("ble", "zone") else ""))

    def start(self, emit: Emit) -> None:
        self._emit = emit

    def probe(self, timeout_s: float = 2.0) -> list[Sample]:
        for row in self.source.rows:
            if self._accepts(row):
                got: list[Sample] = []
                self._emit = got.append
                self._deliver(row, row[0])
                self._emit = None
                return got
        return []

    def close(self) -> None:
        self._emit = None
