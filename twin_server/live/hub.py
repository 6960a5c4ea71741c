"""Live side of the server: latest sensor state, WebSocket fan-out, incremental analysis.

Correctness first: the live analysis is :func:`twin_server.analysis.analyze` re-run on the
current shift's readings frame from the journal (the same frame ``journal.readings_frame``
gives for any past shift), so a shift recorded live has exactly the result of
``python -m twin_server analyze`` on the same readings. It re-runs when new readings were
committed, at most every ``analysis_interval_s`` and never more often than twice its own
run time, so a long shift cannot starve ingest of CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge_agent.wire import Reading, Status
from twin_server.kpis import compute_kpis
from twin_server.result import Result
from twin_server.site import Site
from twin_server.store.journal import Journal
from twin_server.store.replay_data import local_day

__all__ = ["AnalysisCache", "LiveHub", "LiveState", "day_bounds", "local_day"]

log = logging.getLogger("twin_server.live.hub")

# A WebSocket push carries every reading up to this many; beyond, only the newest per sensor.
MAX_READINGS_PER_PUSH = 500


def day_bounds(day: str, timezone: str) -> tuple[float, float]:
    """Epoch seconds ``[start, end)`` of a local day: the readings window of that day's shift.

    A small shop runs one shift a day; every reading of the local day belongs to it
    (including overtime), so the shift window is the local day, not the shift calendar.
    """
    d = date.fromisoformat(day)
    tz = ZoneInfo(timezone)
    lo = datetime(d.year, d.month, d.day, tzinfo=tz)
    nxt = d + timedelta(days=1)
    hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return lo.timestamp(), hi.timestamp()


def reading_json(r: Reading, received_ns: int) -> dict[str, Any]:
    """Compact JSON of a reading for the WebSocket."""
    return {
        "device": r.device,
        "sensor": r.sensor,
        "seq": r.seq,
        "kind": r.kind,
        "t": r.t_ns / 1e9,
        "source": r.source,
        "channel": r.channel,
        "value": r.value,
        "received_ns": received_ns,
    }


class LiveState:
    """Latest value of every sensor, and each beacon's latest zone report (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sensors: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}

    def update(self, readings: Sequence[tuple[Reading, int]], statuses: Sequence[tuple[Status, int]]) -> None:
        with self._lock:
            for r, rx in readings:
                key = f"{r.kind}/{r.source}/{r.channel}"
                old = self.sensors.get(key)
                # Device time decides: a late (store-and-forward) reading does not win.
                if old is None or old["t"] <= r.t_ns / 1e9:
                    self.sensors[key] = reading_json(r, rx)
            for s, rx in statuses:
                self.devices[f"{s.site}/{s.device}"] = {
                    "online": s.online,
                    "t_ns": s.t_ns,
                    "received_ns": rx,
                    "clock_synced": s.clock_synced,
                }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"sensors": dict(self.sensors), "devices": dict(self.devices)}


class LiveHub:
    """Fans new readings and analysis updates out to WebSocket clients.

    ``publish_readings`` may be called from any thread; pushes are flushed every
    ``flush_s`` seconds on the event loop (well within the 1 s promise).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, flush_s: float = 0.2) -> None:
        self._loop = loop
        self._flush_s = flush_s
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.pushed = 0

    def start(self) -> None:
        self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._clients.discard(q)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish_readings(self, readings: Sequence[tuple[Reading, int]]) -> None:
        """Queue readings for the next push (any thread)."""
        if not self._clients or not readings:
            return
        items = [reading_json(r, rx) for r, rx in readings]
        with self._lock:
            self._pending.extend(items)

    def publish(self, message: dict[str, Any]) -> None:
        """Send one message to every client now (event-loop thread only)."""
        for q in list(self._clients):
            if q.full():  # a slow client loses old messages rather than stalling the others
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(message)
        self.pushed += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            with self._lock:
                items, self._pending = self._pending, []
            if not items:
                continue
            dropped = 0
            if len(items) > MAX_READINGS_PER_PUSH:
                newest: dict[tuple[str, str], dict[str, Any]] = {}
                for it in items:
                    newest[(it["device"], it["sensor"])] = it
                dropped = len(items) - len(newest)
                items = list(newest.values())
            self.publish(
                {"type": "readings", "readings": items, "coalesced": dropped, "sent_ns": time.time_ns()}
            )


class AnalysisCache:
    """Analysis results per shift (local day), recomputed when the day's readings changed.

    With ``isolated`` each analysis runs in a short-lived child process
    (:mod:`twin_server.live.analysis_worker`), so its working set, which grows with the day,
    never stays in the server.
    """

    def __init__(
        self,
        site: Site,
        journal: Journal,
        params: Any = None,
        *,
        isolated: bool = False,
        simulated_clock: bool = False,
    ) -> None:
        self.site = site
        self.journal = journal
        self.simulated_clock = simulated_clock
        self.params = params  # AnalysisParams (e.g. with the site survey's map); None = defaults
        self.isolated = isolated
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Result, dict[str, Any]]] = {}
        self.last_run_s: float | None = None
        self.last_error: str | None = None
        self.runs = 0

    def _marker(self, day: str) -> tuple[int, int]:
        lo, hi = day_bounds(day, self.site.timezone)
        return self.journal.change_marker(self.site.site, lo, hi)

    def days(self) -> list[dict[str, Any]]:
        """Days with readings, oldest first: ``{"day", "start", "end", "readings"}``."""
        return self.journal.days(self.site.site, self.site.timezone)

    def cached(self, day: str) -> tuple[Result, dict[str, Any]] | None:
        """The last result computed for the day, fresh or not."""
        with self._lock:
            hit = self._cache.get(day)
        return None if hit is None else (hit[1], hit[2])

    def get(self, day: str) -> tuple[Result, dict[str, Any]] | None:
        """The day's analysis and KPIs (None if the day has no readings). Blocking."""
        marker = self._marker(day)
        if marker[1] == 0:
            return None
        with self._lock:
            hit = self._cache.get(day)
        if hit is not None and hit[0] == marker:
            return hit[1], hit[2]
        from twin_server.live import analysis_worker

        lo, hi = day_bounds(day, self.site.timezone)
        t0 = time.monotonic()
        try:
            if self.isolated and analysis_worker.isolation_safe():
                result = analysis_worker.analyze_isolated(
                    self.journal.path, self.journal.synchronous, self.site, self.params, lo, hi
                )
            else:
                result = analysis_worker.analyze_journal(self.journal, self.site, self.params, lo, hi)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        kpis = compute_kpis(result, self.site.machine_ids)
        self.last_run_s = time.monotonic() - t0
        self.runs += 1
        with self._lock:
            self._cache[day] = (marker, result, kpis)
        return result, kpis

    def current_day(self, now_s: float | None = None) -> str | None:
        """The shift being recorded: the server's today in the site's time zone.

        A device clock that lies (one reading stamped 2199) cannot move it. With a
        ``simulated_clock`` (a recorded shift replayed, e.g. the demo) it is the local day of
        the newest reading instead.
        """
        if not self.simulated_clock:
            return local_day(time.time() if now_s is None else now_s, self.site.timezone)
        span = self.journal.time_range(self.site.site)
        return None if span is None else local_day(span[1], self.site.timezone)


async def analysis_loop(
    cache: AnalysisCache, hub: LiveHub | None, interval_s: float, on_result: Any = None
) -> None:
    """Re-analyse the current shift whenever new readings were committed."""
    last_marker = -1
    last_error: str | None = None
    while True:
        await asyncio.sleep(interval_s)
        try:
            marker = await asyncio.to_thread(cache.journal.max_id)
            if marker == last_marker:
                continue
            day = await asyncio.to_thread(cache.current_day)
            if day is None:
                continue
            last_marker = marker  # a failing analysis is retried when new readings arrive
            got = await asyncio.to_thread(cache.get, day)
            last_error = None
            if got is None:
                continue
            result, kpis = got
            if hub is not None:
                hub.publish(
                    {
                        "type": "analysis",
                        "day": day,
                        "window": [result.window_start, result.window_end],
                        "kpis": kpis,
                        "machine_states": _current(result, "machine_states", "machine"),
                        "worker_zones": _current(result, "worker_zones", "worker"),
                    }
                )
            if on_result is not None:
                on_result(day, result, kpis)
            # Never spend more than about a third of the time analysing.
            extra = max(0.0, 2 * (cache.last_run_s or 0.0) - interval_s)
            if extra:
                await asyncio.sleep(extra)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # One line per new error (the traceback at DEBUG); /health shows the last one.
            text = f"{type(exc).__name__}: {exc}"
            cache.last_error = text
            if text != last_error:
                log.warning("live analysis failed (retrying when new readings arrive): %s", text)
                last_error = text
            log.debug("live analysis failure", exc_info=True)


def _current(result: Result, attr: str, key: str) -> dict[str, Any]:
    """The last segment per machine or worker: what the twin shows now."""
    out: dict[str, Any] = {}
    for seg in getattr(result, attr):
        k = getattr(seg, key)
        if k not in out or seg.start >= out[k]["start"]:
            d = {"start": seg.start, "end": seg.end}
            d.update({"state": seg.state} if hasattr(seg, "state") else {"zone": seg.zone})
            out[k] = d
    return out
