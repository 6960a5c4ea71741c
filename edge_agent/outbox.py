"""Store-and-forward outbox: SQLite (WAL), per-sensor sequence numbers, bounded, drop-oldest.

Every reading is committed here, with its sequence number, before anything is published;
a row is deleted only after the broker acknowledged it (QoS 1 PUBACK). Rows are published
in ``id`` order, which is commit order, so each sensor's readings leave in ``seq`` order,
also after a crash (``kill -9``) or power cut (``synchronous = FULL``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from edge_agent.wire import Reading, encode_reading

__all__ = ["Outbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seq (sensor TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    """A thread-safe SQLite outbox.

    Parameters
    ----------
    path : Path
        Database file (created with its folder).
    max_rows : int
        Bound; beyond it the oldest rows are deleted and counted in ``dropped``.
    synchronous : {"FULL", "NORMAL"}
        SQLite durability: FULL fsyncs every commit (power cuts), NORMAL survives crashes.
    """

    def __init__(self, path: str | Path, max_rows: int = 500_000, synchronous: str = "FULL") -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._rows = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self._seq: dict[str, int] = dict(self._db.execute("SELECT sensor, next FROM seq").fetchall())

    # -- writing ---------------------------------------------------------------------
    def append(self, readings: Iterable[Reading]) -> list[Reading]:
        """Assign per-sensor ``seq`` numbers and commit the readings in one transaction.

        Returns the readings as stored (with their seq). Invalid readings raise
        :class:`~edge_agent.wire.WireError` before anything is written.
        """
        with self._lock:
            staged: list[Reading] = []
            rows: list[tuple[str, bytes]] = []
            nxt = dict(self._seq)
            for r in readings:
                seq = nxt.get(r.sensor, 0)
                r = dataclasses.replace(r, seq=seq)
                topic, payload = encode_reading(r)
                nxt[r.sensor] = seq + 1
                staged.append(r)
                rows.append((topic, payload))
            if not rows:
                return []
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO outbox (topic, payload) VALUES (?, ?)", rows)
                db.executemany(
                    "INSERT INTO seq (sensor, next) VALUES (?, ?) "
                    "ON CONFLICT(sensor) DO UPDATE SET next = excluded.next",
                    [(s, n) for s, n in nxt.items() if self._seq.get(s) != n],
                )
                self._rows += len(rows)
                excess = self._rows - self.max_rows
                if excess > 0:
                    cur = db.execute(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                        (excess,),
                    )
                    self._rows -= cur.rowcount
                    self._count(db, "dropped", cur.rowcount)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._rows = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                raise
            self._seq = nxt
            return staged

    @staticmethod
    def _count(db: sqlite3.Connection, name: str, n: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )

    # -- publishing ------------------------------------------------------------------
    def after(self, last_id: int, limit: int) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` rows with ``id > last_id``, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
            ).fetchall()

    def ack(self, ids: list[int]) -> None:
        """Delete acknowledged rows (unknown ids, e.g. dropped meanwhile, are ignored)."""
        if not ids:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            cur = db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            self._rows -= max(cur.rowcount, 0)
            db.execute("COMMIT")

    # -- introspection ---------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._rows

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def next_seq(self, sensor: str) -> int:
        return self._seq.get(sensor, 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()
