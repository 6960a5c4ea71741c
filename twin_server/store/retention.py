"""Retention: prune old readings from the journal, never before InfluxDB has them.

A reading is pruned when both hold:

- its device time is older than the cutoff: ``max(retention_days, replay_days)`` days
  before now (``replay_days``: how far back the viewer replays shifts, which it analyses
  from the journal's readings);
- it was exported to InfluxDB (its row id is at or below the exporter's cursor). Without
  an InfluxDB export nothing is pruned: the journal would be the only copy.

Rows go in chunks of ``chunk_rows`` per transaction so ingest never waits long. SQLite
keeps the freed pages and reuses them for new readings: the file stops growing once it
holds ``retention`` days, it does not shrink (``VACUUM`` with the server stopped does that).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from twin_server.store.journal import Journal

__all__ = ["Retention", "cutoff_ns", "prune"]

log = logging.getLogger("twin_server.store.retention")

DAY_NS = 86_400 * 10**9


def cutoff_ns(now_ns: int, retention_days: float, replay_days: float) -> int:
    """Device time before which readings may be pruned."""
    return now_ns - round(max(retention_days, replay_days) * DAY_NS)


def prune(
    journal: Journal,
    site: str,
    before_ns: int,
    exported_id: int | None,
    *,
    chunk_rows: int = 10_000,
    stop: threading.Event | None = None,
) -> int:
    """Delete the site's readings with ``t_ns < before_ns`` and ``id <= exported_id``.

    Returns how many were deleted. ``exported_id`` None (no InfluxDB export) deletes nothing.
    """
    if exported_id is None or exported_id <= 0:
        return 0
    total = 0
    while stop is None or not stop.is_set():
        with journal.transaction() as conn:
            n = conn.execute(
                "DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE site = ? AND t_ns < ? "
                "AND id <= ? LIMIT ?)",
                (site, int(before_ns), int(exported_id), int(chunk_rows)),
            ).rowcount
        total += n
        if n < chunk_rows:
            break
        time.sleep(0.01)  # let ingest in between chunks
    return total


@dataclass
class Retention:
    """Prunes the journal every ``period_s`` (a thread), and reports what it did for ``/health``."""

    journal: Journal
    site: str
    retention_days: float
    replay_days: float
    exported_id: Any  # callable -> int | None: the InfluxDB exporter's cursor, None without export
    period_s: float = 3600.0
    pruned: int = 0
    last_run_ns: int | None = None
    last_cutoff_ns: int | None = None
    last_error: str | None = None
    waiting_for: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def step(self, now_ns: int | None = None) -> int:
        """One pruning pass; returns how many readings were deleted."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        before = cutoff_ns(now_ns, self.retention_days, self.replay_days)
        exported = self.exported_id()
        self.waiting_for = None if exported is not None else "an InfluxDB export (--influx): it holds no copy"
        n = prune(self.journal, self.site, before, exported, stop=self._stop)
        self.pruned += n
        self.last_run_ns, self.last_cutoff_ns = now_ns, before
        if n:
            log.info(
                "retention: pruned %d readings older than %.1f days (exported to InfluxDB)",
                n,
                max(self.retention_days, self.replay_days),
            )
        return n

    def status(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "replay_days": self.replay_days,
            "pruned": self.pruned,
            "last_run_ns": self.last_run_ns,
            "cutoff_ns": self.last_cutoff_ns,
            "waiting_for": self.waiting_for,
            "last_error": self.last_error,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        delay_s = 60.0  # a first pass a minute after start, then every period
        while not self._stop.wait(delay_s):
            delay_s = self.period_s
            try:
                self.step()
                self.last_error = None
            except Exception as exc:  # a locked or full journal: report, try again next period
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("retention pass failed (next in %.0f s): %s", self.period_s, self.last_error)
