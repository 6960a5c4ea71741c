"""Store-and-forward outbox: SQLite (WAL), per-sensor sequence numbers, bounded, drop-oldest.

Every reading is committed here, with its sequence number, before anything is published.
Rows are published in ``id`` order, which is commit order, so each sensor's readings leave
in ``seq`` order, also after a crash (``kill -9``) or power cut (``synchronous = FULL``).
A row is deleted when the server's acknowledgement covers it (:meth:`Outbox.cover`: every
reading of the sensor up to that ``seq`` is in the server's journal), or, without end-to-end
acknowledgement, on the broker's PUBACK (:meth:`Outbox.ack`).

The outbox is bounded twice: by ``max_rows``, and by the disk. Either way the oldest rows
go first and are counted (``dropped``); a reading that cannot be stored even then (the
disk is full and nothing is left to drop) is counted in :attr:`Outbox.unstored`. Every
SQLite write needs room for its write-ahead log, so the database is not allowed to grow
into the last ``WAL_PAGES`` pages of free space (``max_page_count``, re-derived from the
free space before each write): at that limit it drops its oldest rows and reuses their
pages, and the log, checkpointed every ``WAL_PAGES`` pages, keeps the room it needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from edge_agent.wire import Reading, encode_reading

__all__ = ["Outbox", "is_disk_full"]

log = logging.getLogger("edge_agent.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL, sensor TEXT, seq INTEGER);
CREATE TABLE IF NOT EXISTS seq (sensor TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_INDEX = "CREATE INDEX IF NOT EXISTS outbox_sensor_seq ON outbox (sensor, seq)"
#: Write-ahead log checkpointed every this many pages (1 MiB of 4 KiB pages); the same
#: again is kept free on the disk for it.
WAL_PAGES = 256


def is_disk_full(exc: BaseException) -> bool:
    """Whether an SQLite error means the disk (or the database's page limit) is full."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == 13 or "full" in str(exc).lower()
    )


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite may already have ended the transaction (a full disk at COMMIT).
    if db.in_transaction:
        db.execute("ROLLBACK")


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
    max_bytes : int, optional
        Cap on the database file (SQLite ``max_page_count``), for an SD card shared with
        the system: at the cap the outbox behaves as on a full disk (drops the oldest).
    """

    def __init__(
        self,
        path: str | Path,
        max_rows: int = 500_000,
        synchronous: str = "FULL",
        max_bytes: int | None = None,
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        self._page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._db.execute(f"PRAGMA journal_size_limit={2 * WAL_PAGES * self._page}")
        self.max_bytes = max_bytes
        self._max_pages = -1
        self._warned_at = -1e18
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._db.execute(_INDEX)
        self._rows = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self._seq: dict[str, int] = dict(self._db.execute("SELECT sensor, next FROM seq").fetchall())
        #: Readings that could not be stored at all (disk full, nothing left to drop).
        self.unstored = 0
        #: The last time (epoch s) an append found the disk full, and the error.
        self.disk_full_at: float | None = None
        self.last_error: str | None = None

    def _migrate(self) -> None:
        """Outboxes written before rows kept their sensor and seq: fill them in from the rows."""
        cols = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "sensor" in cols:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("ALTER TABLE outbox ADD COLUMN sensor TEXT")
            self._db.execute("ALTER TABLE outbox ADD COLUMN seq INTEGER")
            rows = self._db.execute("SELECT id, topic, payload FROM outbox").fetchall()
            fixed = []
            for row_id, topic, payload in rows:
                try:
                    fixed.append((topic.rsplit("/", 1)[-1], int(json.loads(payload)["seq"]), row_id))
                except (ValueError, KeyError, TypeError):
                    continue  # unreadable row: left without sensor, published and deleted on PUBACK
            self._db.executemany("UPDATE outbox SET sensor = ?, seq = ? WHERE id = ?", fixed)
            self._db.execute("COMMIT")
        except BaseException:
            _rollback(self._db)
            raise

    # -- writing ---------------------------------------------------------------------
    def append(self, readings: Iterable[Reading]) -> list[Reading]:
        """Assign per-sensor ``seq`` numbers and commit the readings in one transaction.

        Returns the readings as stored (with their seq). Invalid readings raise
        :class:`~edge_agent.wire.WireError` before anything is written. When the disk is
        full, the oldest rows are dropped (counted) to make room; if that cannot free
        enough, the readings are not stored, counted in :attr:`unstored`, and ``[]`` is
        returned (their sequence numbers are not used up).
        """
        with self._lock:
            staged: list[Reading] = []
            rows: list[tuple[str, bytes, str, int]] = []
            nxt = dict(self._seq)
            for r in readings:
                seq = nxt.get(r.sensor, 0)
                r = dataclasses.replace(r, seq=seq)
                topic, payload = encode_reading(r)
                nxt[r.sensor] = seq + 1
                staged.append(r)
                rows.append((topic, payload, r.sensor, seq))
            if not rows:
                return []
            for attempt in range(4):
                try:
                    self._fit_to_disk()
                    self._insert(rows, nxt)
                    break
                except sqlite3.OperationalError as exc:
                    if not is_disk_full(exc):
                        raise
                    self.disk_full_at = time.time()
                    self.last_error = f"{exc}"
                    if attempt == 3 or not self._drop_for_room(max(len(rows), self._rows // 100, 100)):
                        self.unstored += len(rows)
                        log.error(
                            "outbox: disk full and nothing left to drop; %d readings not stored", len(rows)
                        )
                        return []
                    now = time.monotonic()
                    if now - self._warned_at >= 60.0:  # a full SD card must not flood the log too
                        self._warned_at = now
                        log.warning(
                            "outbox: disk full (%s); dropping the oldest rows to make room "
                            "(%d dropped so far)",
                            exc,
                            self.counter_unlocked("dropped"),
                        )
            self._seq = nxt
            return staged

    def _fit_to_disk(self) -> None:
        """Let the database grow only into the free space beyond the log's room."""
        import shutil

        try:
            free = shutil.disk_usage(self.path.parent).free
            wal = self.path.with_name(self.path.name + "-wal")
            wal_bytes = wal.stat().st_size if wal.exists() else 0
        except OSError:
            return
        reserve = max(0, 2 * WAL_PAGES * self._page - wal_bytes) + 16 * self._page
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        limit = pages + max(0, (free - reserve) // self._page)
        if self.max_bytes is not None:
            limit = min(limit, max(8, self.max_bytes // self._page))
        if limit != self._max_pages:
            self._db.execute(f"PRAGMA max_page_count={limit}")
            self._max_pages = limit

    def _insert(self, rows: list[tuple[str, bytes, str, int]], nxt: dict[str, int]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO outbox (topic, payload, sensor, seq) VALUES (?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO seq (sensor, next) VALUES (?, ?) "
                "ON CONFLICT(sensor) DO UPDATE SET next = excluded.next",
                [(s, n) for s, n in nxt.items() if self._seq.get(s) != n],
            )
            excess = self._rows + len(rows) - self.max_rows
            dropped = 0
            if excess > 0:
                dropped = db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                    (excess,),
                ).rowcount
                self._count(db, "dropped", dropped)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._rows += len(rows) - dropped

    def _drop_for_room(self, n: int) -> bool:
        """Delete the ``n`` oldest rows (counted as dropped); False if nothing could be freed."""
        db = self._db
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the log's space, if the disk filled up
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                dropped = db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (n,)
                ).rowcount
                self._count(db, "dropped", dropped)
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            return False
        self._rows -= dropped
        return dropped > 0

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
        """Delete rows the broker acknowledged (unknown ids, e.g. dropped meanwhile, are ignored)."""
        if not ids:
            return
        with self._lock:
            self._delete("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def cover(self, upto: Mapping[str, int]) -> int:
        """Delete every row of each sensor with ``seq <= upto[sensor]``; returns how many.

        ``upto`` comes from the server's acknowledgement: those readings are in its journal.
        """
        params = [(s, int(u)) for s, u in upto.items() if u >= 0]
        if not params:
            return 0
        with self._lock:
            return self._delete("DELETE FROM outbox WHERE sensor = ? AND seq <= ?", params)

    def _delete(self, sql: str, params: list[tuple]) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            n = max(db.executemany(sql, params).rowcount, 0)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._rows -= n
        return n

    def first_uncovered(self, sensor: str, upto: int) -> tuple[int, int] | None:
        """``(id, seq)`` of the sensor's oldest row with ``seq > upto``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, seq FROM outbox WHERE sensor = ? AND seq > ? ORDER BY seq LIMIT 1", (sensor, upto)
            ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def kept_from(self) -> dict[str, int]:
        """Per sensor, the oldest ``seq`` still kept (the next to be assigned if none is).

        Every reading of the sensor below it has left the outbox for good: acknowledged,
        or dropped. A server missing one of those can name it lost.
        """
        with self._lock:
            out = {}
            for sensor, nxt in self._seq.items():
                row = self._db.execute("SELECT min(seq) FROM outbox WHERE sensor = ?", (sensor,)).fetchone()
                out[sensor] = nxt if row[0] is None else int(row[0])
            return out

    def set_counter(self, name: str, value: int) -> None:
        """Set a persistent counter (e.g. a flag) to ``value``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def sensors(self) -> list[str]:
        """Sensors that were ever given a sequence number."""
        return list(self._seq)

    # -- introspection ---------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._rows

    def counter(self, name: str) -> int:
        with self._lock:
            return self.counter_unlocked(name)

    def counter_unlocked(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def next_seq(self, sensor: str) -> int:
        return self._seq.get(sensor, 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()
