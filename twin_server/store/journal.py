"""Durable journal of every accepted reading (SQLite in WAL mode).

The journal is the server's source of truth: ingest commits a batch of readings here and
only then acknowledges the MQTT messages, so a ``kill -9`` loses nothing (the broker
redelivers what was not acknowledged, and the unique index drops what was already in).
Any shift can be re-analysed from it: :meth:`Journal.readings_frame` returns the contract's
readings frame for :func:`twin_server.analysis.analyze`.

It also holds the dead-letter table (messages that broke the wire contract), the latest
status of each device, and the InfluxDB export state (a cursor over the readings plus an
outbox of derived-series writes), so an InfluxDB outage loses nothing either.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from edge_agent.wire import Reading, Status
from twin_server.readings import LoadedReadings, empty_readings, validate_readings
from twin_server.site import Site

__all__ = ["DeadLetter", "InsertStats", "Journal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, t_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL,
    source TEXT NOT NULL, channel TEXT NOT NULL, value REAL, label TEXT NOT NULL, unit TEXT NOT NULL,
    count INTEGER, rssi_max_dbm REAL, window_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS readings_key ON readings (site, device, sensor, seq);
CREATE INDEX IF NOT EXISTS readings_time ON readings (site, t_ns);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, received_ns INTEGER NOT NULL,
    device TEXT NOT NULL DEFAULT '', day INTEGER NOT NULL DEFAULT 0, payload_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason);
CREATE TABLE IF NOT EXISTS device_status (
    site TEXT NOT NULL, device TEXT NOT NULL, online INTEGER NOT NULL, t_ns INTEGER,
    received_ns INTEGER NOT NULL, clock_synced INTEGER, agent_version TEXT, extra TEXT,
    PRIMARY KEY (site, device)
);
-- Which 15-minute buckets of device time hold readings (every real time zone's offset is a
-- multiple of 15 min, so a bucket never straddles a local midnight): day listings read this
-- index instead of walking every calendar day between the oldest and newest reading.
CREATE TABLE IF NOT EXISTS reading_buckets (
    site TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
    t_min_ns INTEGER NOT NULL, t_max_ns INTEGER NOT NULL,
    PRIMARY KEY (site, bucket)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS reading_buckets_insert AFTER INSERT ON readings BEGIN
    INSERT INTO reading_buckets VALUES (NEW.site, NEW.t_ns / 900000000000, 1, NEW.t_ns, NEW.t_ns)
    ON CONFLICT (site, bucket) DO UPDATE SET n = n + 1, t_min_ns = min(t_min_ns, excluded.t_min_ns),
        t_max_ns = max(t_max_ns, excluded.t_max_ns);
END;
CREATE TRIGGER IF NOT EXISTS reading_buckets_delete AFTER DELETE ON readings BEGIN
    UPDATE reading_buckets SET n = n - 1 WHERE site = OLD.site AND bucket = OLD.t_ns / 900000000000;
    DELETE FROM reading_buckets WHERE site = OLD.site AND bucket = OLD.t_ns / 900000000000 AND n <= 0;
END;
CREATE TABLE IF NOT EXISTS export_cursor (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, op TEXT NOT NULL, body TEXT NOT NULL, created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seq_state (
    site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL, upto INTEGER NOT NULL,
    max_seq INTEGER NOT NULL, above INTEGER NOT NULL, PRIMARY KEY (site, device, sensor)
);
CREATE TABLE IF NOT EXISTS seq_lost (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL, sensor TEXT NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, missing INTEGER NOT NULL,
    declared_ns INTEGER NOT NULL
);
"""

_READING_COLUMNS = (
    "site, device, sensor, seq, kind, t_ns, received_ns, source, channel, value, label, unit, "
    "count, rssi_max_dbm, window_ms"
)
_ROWS_PER_INSERT = 500  # x 15 columns = 7,500 parameters, under SQLite's 32,766 limit


@functools.lru_cache(maxsize=64)
def _insert_sql(n_rows: int) -> str:
    one = "(" + ",".join("?" * 15) + ")"
    return f"INSERT OR IGNORE INTO readings ({_READING_COLUMNS}) VALUES " + ",".join([one] * n_rows)


# Dead letters are bounded: a device with a bug, or anyone allowed to publish, must not fill
# the disk or the server's memory with them. Every one is counted per reason
# (``dead_letter_totals``); a row keeps a prefix of the payload, and rows are kept up to a
# cap per device and UTC day, a cap per day, and for a number of days.
MAX_DEAD_PAYLOAD_BYTES = 512
MAX_DEAD_TOPIC_CHARS = 256
MAX_DEAD_DETAIL_CHARS = 500
DEAD_ROWS_PER_DEVICE_DAY = 100
DEAD_ROWS_PER_DAY = 2_000
DEAD_KEEP_DAYS = 14
_NS_PER_DAY = 86_400 * 10**9

_DEAD_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letter_totals (reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_day_device ON dead_letters (day, device);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that broke the wire contract, kept for inspection."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_ns: int


@dataclass(frozen=True, slots=True)
class InsertStats:
    """What one committed batch did."""

    inserted: int
    duplicates: int
    inserted_ids: tuple[int, int] | None  # first..last rowid written by this batch, if any


_BUSY_TIMEOUT_S = 30.0


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock in 0.2-2 ms steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries; with
    several ingest processes on one journal (``--share-group``) a writer would often sleep
    far longer than the other's transaction lasts. Here the connection's busy timeout is off
    for the attempt only, and the wait is a short poll, still bounded by 30 s.
    """
    conn.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        pause_s = 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
            time.sleep(pause_s)
            pause_s = min(pause_s * 1.5, 0.002)
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any: SQLite ends it by itself on some errors (a full
    disk at COMMIT), and a ROLLBACK then would raise and hide the error that matters."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _set_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, retried: switching a new file to WAL answers "database is
    locked" at once (without the busy handler) while another process does the same, as
    several ingest processes of one share group do when they start together."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _reading_row(r: Reading, received_ns: int) -> tuple[Any, ...]:
    is_zone = r.kind == "zone"
    return (
        r.site,
        r.device,
        r.sensor,
        r.seq,
        r.kind,
        r.t_ns,
        received_ns,
        r.source,
        r.channel,
        None if is_zone else float(r.value),
        str(r.value) if is_zone else "",
        r.unit,
        r.count,
        r.rssi_max_dbm,
        r.window_ms,
    )


def _migrate_dead_letters(conn: sqlite3.Connection) -> None:
    """Bring a journal's dead letters to the bounded form (new columns, totals, short payloads)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(dead_letters)")}
    for name, decl in (
        ("device", "TEXT NOT NULL DEFAULT ''"),
        ("day", "INTEGER NOT NULL DEFAULT 0"),
        ("payload_bytes", "INTEGER NOT NULL DEFAULT 0"),
    ):
        if name not in columns:
            conn.execute(f"ALTER TABLE dead_letters ADD COLUMN {name} {decl}")
    had_totals = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='dead_letter_totals'"
    ).fetchone()
    conn.executescript(_DEAD_SCHEMA)
    if not had_totals:  # a journal of an older version: its rows are what it counted
        conn.execute(
            "INSERT INTO dead_letter_totals (reason, n) SELECT reason, count(*) FROM dead_letters "
            "GROUP BY reason"
        )
    if "payload_bytes" not in columns:
        conn.execute(
            "UPDATE dead_letters SET payload_bytes = length(payload), "
            f"payload = substr(payload, 1, {MAX_DEAD_PAYLOAD_BYTES}), "
            f"day = received_ns / {_NS_PER_DAY}"
        )


def _text(value: str, max_chars: int) -> str:
    """At most ``max_chars`` of ``value``, storable as SQLite text (lone surrogates escaped)."""
    return value[:max_chars].encode("utf-8", "backslashreplace").decode("utf-8")[:max_chars]


def _dead_device(topic: str) -> str:
    """The device a dead letter's topic names (``twin/v1/site/DEVICE/...``), else ``""``."""
    parts = topic.split("/", 4)
    return _text(parts[3], 64) if len(parts) > 3 else ""


#: Reason of a message that decoded but that the journal refused (see the ingest's bisection).
UNSTORABLE = "unstorable"


def _insert_dead(conn: sqlite3.Connection, dead: Sequence[DeadLetter]) -> int:
    """Count every dead letter per reason and keep rows within the caps; returns rows kept.

    Runs inside the caller's transaction.
    """
    conn.executemany(
        "INSERT INTO dead_letter_totals (reason, n) VALUES (?, ?) "
        "ON CONFLICT(reason) DO UPDATE SET n = n + excluded.n",
        list(Counter(_text(d.reason, 64) for d in dead).items()),
    )
    per_day: dict[int, int] = {}
    per_device: dict[tuple[int, str], int] = {}
    rows = []
    for d in dead:
        day = d.received_ns // _NS_PER_DAY
        device = _dead_device(d.topic)
        if day not in per_day:
            per_day[day] = conn.execute("SELECT count(*) FROM dead_letters WHERE day = ?", (day,)).fetchone()[
                0
            ]
        # A message refused only by the journal passed decoding (<= 4 KiB): it is data, kept
        # whole and beyond the caps, so it can be ingested again once the cause is fixed.
        whole = d.reason == UNSTORABLE
        if per_day[day] >= DEAD_ROWS_PER_DAY and not whole:
            continue
        key = (day, device)
        if key not in per_device:
            per_device[key] = conn.execute(
                "SELECT count(*) FROM dead_letters WHERE day = ? AND device = ?", key
            ).fetchone()[0]
        if per_device[key] >= DEAD_ROWS_PER_DEVICE_DAY and not whole:
            continue
        per_day[day] += 1
        per_device[key] += 1
        payload = bytes(d.payload) if whole else bytes(d.payload[:MAX_DEAD_PAYLOAD_BYTES])
        rows.append(
            (
                _text(d.topic, MAX_DEAD_TOPIC_CHARS),
                payload,
                _text(d.reason, 64),
                _text(d.detail, MAX_DEAD_DETAIL_CHARS),
                d.received_ns,
                device,
                day,
                len(d.payload),
            )
        )
    if rows:
        conn.executemany(
            "INSERT INTO dead_letters (topic, payload, reason, detail, received_ns, device, day, "
            "payload_bytes) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
    if per_day:  # rows of days past the keep window go (their counts stay in the totals)
        conn.execute("DELETE FROM dead_letters WHERE day < ?", (max(per_day) - DEAD_KEEP_DAYS + 1,))
    return len(rows)


class Journal:
    """The SQLite journal; safe to use from several threads (one connection per thread).

    Parameters
    ----------
    path : str or Path
        Database file; its folder is created.
    synchronous : str
        SQLite ``synchronous`` pragma. ``NORMAL`` in WAL mode keeps every committed
        transaction across a killed process; ``FULL`` also across power loss.
    max_bytes : int, optional
        Cap on the database file (SQLite ``max_page_count``): beyond it writes fail as on a
        full disk, so the journal cannot fill a disk the rest of the machine needs.
    """

    def __init__(
        self, path: str | Path, *, synchronous: str = "NORMAL", max_bytes: int | None = None
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous.upper()
        self.synchronous = self._synchronous
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        conn = self._conn()
        new_index = not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='reading_buckets'"
        ).fetchone()
        conn.executescript(_SCHEMA)
        if new_index:  # a journal written before the day index: build it once
            conn.execute(
                "INSERT OR REPLACE INTO reading_buckets SELECT site, t_ns / 900000000000, count(*), "
                "min(t_ns), max(t_ns) FROM readings GROUP BY site, t_ns / 900000000000"
            )
        # Journals written before device_status kept the status extras (driver_errors, ...).
        if "extra" not in {row[1] for row in conn.execute("PRAGMA table_info(device_status)")}:
            conn.execute("ALTER TABLE device_status ADD COLUMN extra TEXT")
        _migrate_dead_letters(conn)
        conn.commit()

    # -- connections ----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            _set_wal(conn)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            if self.max_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, int(self.max_bytes) // int(page))}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this journal opened."""
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- writes ---------------------------------------------------------------------------
    def write_batch(
        self,
        readings: Sequence[tuple[Reading, int]],
        dead: Sequence[DeadLetter] = (),
        statuses: Sequence[tuple[Status, int]] = (),
    ) -> InsertStats:
        """Commit readings (with their arrival time), dead letters and statuses atomically.

        Duplicates of ``(site, device, sensor, seq)`` are dropped by the unique index.
        When this returns, everything is on disk (committed): only then may the caller
        acknowledge the messages.
        """
        conn = self._conn()
        with self._write_lock:
            _begin_immediate(conn)
            try:
                first = 0
                inserted = 0
                if readings:
                    first = conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
                    rows = [_reading_row(r, rx) for r, rx in readings]
                    # Multi-row INSERTs: one statement step per chunk instead of per row.
                    # sqlite3 releases the GIL around every step, and with the MQTT thread
                    # busy, re-acquiring it per row was the ingest's largest cost.
                    for i in range(0, len(rows), _ROWS_PER_INSERT):
                        chunk = rows[i : i + _ROWS_PER_INSERT]
                        # rowcount counts the rows this INSERT wrote, not the day index's
                        # trigger updates (total_changes would).
                        cur = conn.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
                        inserted += cur.rowcount
                if dead:
                    _insert_dead(conn, dead)
                if statuses:
                    conn.executemany(
                        "INSERT OR REPLACE INTO device_status "
                        "(site, device, online, t_ns, received_ns, clock_synced, agent_version, extra) "
                        "VALUES (?,?,?,?,?,?,?,?)",
                        [
                            (
                                s.site,
                                s.device,
                                int(s.online),
                                s.t_ns,
                                rx,
                                None if s.clock_synced is None else int(s.clock_synced),
                                s.agent_version,
                                json.dumps(s.extra) if s.extra else None,
                            )
                            for s, rx in statuses
                        ],
                    )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        ids = (first + 1, first + inserted) if readings and inserted else None
        return InsertStats(inserted=inserted, duplicates=len(readings) - inserted, inserted_ids=ids)

    # -- reads ----------------------------------------------------------------------------
    def count(self, site: str | None = None) -> int:
        """Number of readings (of one site, or all), from the bucket index: ``/health`` asks for
        it on every call, and ``count(*)`` over a month of readings reads the whole table."""
        if site is None:
            row = self._conn().execute("SELECT coalesce(sum(n), 0) FROM reading_buckets").fetchone()
        else:
            row = (
                self._conn()
                .execute("SELECT coalesce(sum(n), 0) FROM reading_buckets WHERE site=?", (site,))
                .fetchone()
            )
        return int(row[0])

    def max_id(self) -> int:
        """Rowid of the newest reading (0 if none): a cheap change marker."""
        return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0])

    def days(self, site: str, timezone: str) -> list[dict[str, Any]]:
        """Local days that hold readings, oldest first: ``{"day", "start", "end", "readings"}``.

        Read from the 15-minute bucket index, so the cost grows with the buckets that hold data,
        not with the calendar span (one reading stamped 2000 beside today's costs nothing).
        ``start``/``end`` are the first and last device times (epoch s) of the day.
        """
        tz = ZoneInfo(timezone)
        out: dict[str, dict[str, Any]] = {}
        for n, lo, hi in self._conn().execute(
            "SELECT n, t_min_ns, t_max_ns FROM reading_buckets WHERE site=? ORDER BY bucket", (site,)
        ):
            day = datetime.fromtimestamp(lo / 1e9, tz).date().isoformat()
            got = out.get(day)
            if got is None:
                out[day] = {"day": day, "start": lo / 1e9, "end": hi / 1e9, "readings": int(n)}
            else:
                got["end"] = max(got["end"], hi / 1e9)
                got["readings"] += int(n)
        return list(out.values())

    def change_marker(self, site: str, start: float, end: float) -> tuple[int, int]:
        """``(newest rowid, count)`` of a site's readings in ``[start, end)``: changes when they do."""
        row = (
            self._conn()
            .execute(
                "SELECT coalesce(max(id), 0), count(*) FROM readings WHERE site=? AND t_ns >= ? AND t_ns < ?",
                (site, round(start * 1e9), round(end * 1e9)),
            )
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def time_range(self, site: str) -> tuple[float, float] | None:
        """Device-time span ``(first, last)`` of a site's readings in epoch seconds."""
        lo, hi = (
            self._conn().execute("SELECT min(t_ns), max(t_ns) FROM readings WHERE site=?", (site,)).fetchone()
        )
        return None if lo is None else (lo / 1e9, hi / 1e9)

    def rows(
        self,
        site: str,
        start: float | None = None,
        end: float | None = None,
        *,
        kind: str | None = None,
        source: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Raw journal rows (device time order) as dicts, for the API."""
        where, params = self._where(site, start, end)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        sql = f"SELECT id, {_READING_COLUMNS} FROM readings WHERE {' AND '.join(where)} ORDER BY t_ns, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cur = self._conn().execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @staticmethod
    def _where(site: str, start: float | None, end: float | None) -> tuple[list[str], list[Any]]:
        where = ["site = ?"]
        params: list[Any] = [site]
        if start is not None:
            where.append("t_ns >= ?")
            params.append(round(start * 1e9))
        if end is not None:
            where.append("t_ns < ?")
            params.append(round(end * 1e9))
        return where, params

    def load_readings(
        self, site: Site, start: float | None = None, end: float | None = None
    ) -> LoadedReadings:
        """The site's readings in ``[start, end)`` (device time, epoch s), validated.

        Returns
        -------
        LoadedReadings
            The contract's readings frame (``t = t_ns / 1e9``, kind, source, channel,
            value, label) sorted by time, and the rows the site does not know, counted.
        """
        where, params = self._where(site.site, start, end)
        cur = self._conn().execute(
            f"SELECT t_ns, kind, source, channel, value, label FROM readings WHERE {' AND '.join(where)} "
            "ORDER BY t_ns, id",
            params,
        )
        rows = cur.fetchall()
        if not rows:
            return LoadedReadings(frame=empty_readings(), rejected=Counter())
        t_ns, kind, source, channel, value, label = zip(*rows, strict=True)
        is_zone = np.asarray(kind, dtype=object) == "zone"
        values = np.asarray([np.nan if v is None else v for v in value], dtype="float64")
        frame = pd.DataFrame(
            {
                "t": np.asarray(t_ns, dtype="int64") / 1e9,
                "kind": np.asarray(kind, dtype=object),
                "source": np.asarray(source, dtype=object),
                "channel": np.asarray(channel, dtype=object),
                # validate_readings takes zone labels from ``value``; numbers stay numbers.
                "value": np.where(is_zone, np.asarray(label, dtype=object), values.astype(object)),
            }
        )
        return validate_readings(frame, site)

    def readings_frame(
        self, site: Site, start: float | None = None, end: float | None = None
    ) -> pd.DataFrame:
        """The readings frame of ``[start, end)`` for :func:`twin_server.analysis.analyze`."""
        return self.load_readings(site, start, end).frame

    # -- dead letters and statuses ------------------------------------------------------
    def dead_letters(
        self,
        limit: int = 100,
        reason: str | None = None,
        *,
        before_id: int | None = None,
        max_bytes: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest dead letters first (ids below ``before_id``); the payload prefix as text.

        Stops after ``limit`` rows or before the rows as JSON pass ``max_bytes`` (at least
        one row is returned), so one answer stays small whatever the payloads hold.
        """
        where: list[str] = []
        params: list[Any] = []
        if reason is not None:
            where.append("reason = ?")
            params.append(reason)
        if before_id is not None:
            where.append("id < ?")
            params.append(int(before_id))
        sql = (
            "SELECT id, topic, payload, reason, detail, received_ns, device, payload_bytes "
            "FROM dead_letters"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY id DESC LIMIT {int(limit)}"
        )
        out: list[dict[str, Any]] = []
        size = 0
        for id_, topic, payload, why, detail, rx, device, n_bytes in self._conn().execute(sql, params):
            payload = bytes(payload)
            total = max(int(n_bytes), len(payload))
            row = {
                "id": id_,
                "topic": topic,
                "device": device,
                "payload": payload.decode("utf-8", "replace"),
                "payload_bytes": total,
                "payload_truncated": total > len(payload),
                "reason": why,
                "detail": detail,
                "received_ns": rx,
            }
            if max_bytes is not None:
                size += len(json.dumps(row, ensure_ascii=False).encode()) + 1
                if out and size > max_bytes:
                    break
            out.append(row)
        return out

    def dead_letter_counts(self) -> dict[str, int]:
        """Dead letters per reason: every one received, kept as a row or not."""
        cur = self._conn().execute("SELECT reason, n FROM dead_letter_totals ORDER BY reason")
        return {reason: int(n) for reason, n in cur.fetchall()}

    def dead_letters_kept(self) -> int:
        """Dead-letter rows in the journal (within the caps)."""
        return int(self._conn().execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def device_status(self) -> list[dict[str, Any]]:
        """The latest status message of each device."""
        cur = self._conn().execute(
            "SELECT site, device, online, t_ns, received_ns, clock_synced, agent_version, extra "
            "FROM device_status"
        )
        names = [d[0] for d in cur.description]
        out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in out:  # the status's other fields (e.g. driver_errors), as the device sent them
            row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        return out

    def max_dead_letter_id(self) -> int:
        """Id of the newest dead-letter row (0: none)."""
        return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()[0])

    def dead_letter_reasons_after(self, after_id: int) -> list[tuple[int, str, str]]:
        """``(id, topic, reason)`` of every dead-letter row after ``after_id``, oldest first."""
        return [
            (int(i), str(t), str(r))
            for i, t, r in self._conn().execute(
                "SELECT id, topic, reason FROM dead_letters WHERE id > ? ORDER BY id", (int(after_id),)
            )
        ]

    def newest_dead_letter_payloads(self, limit: int) -> list[tuple[str, bytes, int]]:
        """``(topic, payload prefix, received_ns)`` of the newest ``limit`` dead letters, newest first."""
        return (
            self._conn()
            .execute(
                "SELECT topic, payload, received_ns FROM dead_letters ORDER BY id DESC LIMIT ?", (int(limit),)
            )
            .fetchall()
        )

    # -- what other parts of the server read --------------------------------------------
    def newest_reading_times(self, site: str) -> tuple[int, int] | None:
        """``(t_ns, received_ns)`` of the site's last journalled reading; None if it has none."""
        row = (
            self._conn()
            .execute(
                "SELECT t_ns, received_ns FROM readings "
                "WHERE id = (SELECT max(id) FROM readings WHERE site=?)",
                (site,),
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), int(row[1]))

    def sensors_heard(self, site: str, after_id: int) -> list[tuple[str, str, str, str, str, int, int]]:
        """Per ``(device, kind, sensor, source, channel)`` of ``site`` in readings after ``after_id``:
        the key, how many readings and the newest ``received_ns``."""
        return (
            self._conn()
            .execute(
                "SELECT device, kind, sensor, source, channel, count(*), max(received_ns) FROM readings "
                "WHERE id > ? AND site = ? GROUP BY device, kind, sensor, source, channel",
                (int(after_id), site),
            )
            .fetchall()
        )

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and truncate it."""
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- per-sensor sequence state (end-to-end acknowledgement, ingest/delivery.py) ---------
    def seq_states(self, site: str) -> list[tuple[str, str, int, int, int]]:
        """``(device, sensor, upto, max_seq, above)`` of each sensor of ``site``."""
        return (
            self._conn()
            .execute("SELECT device, sensor, upto, max_seq, above FROM seq_state WHERE site = ?", (site,))
            .fetchall()
        )

    def seq_lost_totals(self, site: str) -> list[tuple[str, str, int]]:
        """``(device, sensor, readings lost)`` per sensor of ``site``."""
        return (
            self._conn()
            .execute(
                "SELECT device, sensor, sum(missing) FROM seq_lost WHERE site = ? GROUP BY device, sensor",
                (site,),
            )
            .fetchall()
        )

    def seq_ranges(self, site: str, after_id: int, upto_id: int) -> list[tuple[str, str, int, int, int]]:
        """``(device, sensor, min seq, max seq, count)`` of the readings with ``after_id < id <= upto_id``."""
        return (
            self._conn()
            .execute(
                "SELECT device, sensor, min(seq), max(seq), count(*) FROM readings "
                "WHERE id > ? AND id <= ? AND site = ? GROUP BY device, sensor",
                (after_id, upto_id, site),
            )
            .fetchall()
        )

    def count_seqs(self, site: str, device: str, sensor: str, lo: int, hi: int) -> int:
        """Readings of one sensor with ``lo <= seq <= hi``."""
        return int(
            self._conn()
            .execute(
                "SELECT count(*) FROM readings WHERE site = ? AND device = ? AND sensor = ? "
                "AND seq BETWEEN ? AND ?",
                (site, device, sensor, lo, hi),
            )
            .fetchone()[0]
        )

    def seqs_after(self, site: str, device: str, sensor: str, after_seq: int, limit: int) -> list[int]:
        """The next ``limit`` seq numbers of one sensor above ``after_seq``, in order."""
        return [
            int(seq)
            for (seq,) in self._conn()
            .execute(
                "SELECT seq FROM readings WHERE site = ? AND device = ? AND sensor = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (site, device, sensor, after_seq, limit),
            )
            .fetchall()
        ]

    def seq_lost_gaps(self, site: str, device: str, sensor: str) -> list[tuple[int, int, int, int]]:
        """``(gap id, first_seq, last_seq, missing)`` of one sensor's lost gaps."""
        return (
            self._conn()
            .execute(
                "SELECT id, first_seq, last_seq, missing FROM seq_lost WHERE site = ? AND device = ? "
                "AND sensor = ?",
                (site, device, sensor),
            )
            .fetchall()
        )

    def newest_lost_gaps(self, site: str, limit: int, device: str | None = None) -> list[tuple[Any, ...]]:
        """``(device, sensor, first_seq, last_seq, missing, declared_ns)``, newest first."""
        sql = "SELECT device, sensor, first_seq, last_seq, missing, declared_ns FROM seq_lost WHERE site = ?"
        params: list[Any] = [site]
        if device is not None:
            sql += " AND device = ?"
            params.append(device)
        return self._conn().execute(sql + f" ORDER BY id DESC LIMIT {int(limit)}", params).fetchall()

    def save_seq_state(
        self,
        states: Sequence[tuple[str, str, str, int, int, int]],
        new_gaps: Sequence[tuple[Any, ...]],
        lost_rows: Sequence[tuple[int, int]],
        cursor_name: str,
        cursor_id: int,
    ) -> None:
        """In one transaction: upsert ``(site, device, sensor, upto, max_seq, above)`` rows, add
        lost gaps ``(site, device, sensor, first_seq, last_seq, missing, declared_ns)``, set
        gaps' ``missing`` from ``(gap id, missing)`` (dropping filled ones) and the cursor."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO seq_state (site, device, sensor, upto, max_seq, above) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(site, device, sensor) DO UPDATE SET upto = excluded.upto, "
                "max_seq = excluded.max_seq, above = excluded.above",
                states,
            )
            conn.executemany(
                "INSERT INTO seq_lost (site, device, sensor, first_seq, last_seq, missing, declared_ns) "
                "VALUES (?,?,?,?,?,?,?)",
                new_gaps,
            )
            if lost_rows:
                conn.executemany(
                    "UPDATE seq_lost SET missing = ? WHERE id = ?", [(m, i) for i, m in lost_rows]
                )
                conn.execute("DELETE FROM seq_lost WHERE missing <= 0")
            conn.execute(
                "INSERT INTO export_cursor (name, last_id) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id",
                (cursor_name, cursor_id),
            )

    # -- InfluxDB export state ------------------------------------------------------------
    def export_cursor(self, name: str = "influx") -> int:
        """Rowid of the last reading exported by ``name`` (0 if none)."""
        row = self._conn().execute("SELECT last_id FROM export_cursor WHERE name=?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_export_cursor(self, last_id: int, name: str = "influx") -> None:
        """Record that every reading up to ``last_id`` was exported."""
        with self._write_lock:
            self._conn().execute(
                "INSERT INTO export_cursor (name, last_id) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_id=excluded.last_id",
                (name, int(last_id)),
            )

    def readings_after(self, after_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Readings with rowid > ``after_id`` in rowid order (for the exporter)."""
        return (
            self._conn()
            .execute(
                f"SELECT id, {_READING_COLUMNS} FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                (int(after_id), int(limit)),
            )
            .fetchall()
        )

    def outbox_add(self, items: Iterable[tuple[str, str]], now_ns: int) -> None:
        """Queue ``(op, body)`` items (``op`` is ``write`` or ``query``) in one transaction."""
        items = list(items)
        if not items:
            return
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO outbox (op, body, created_ns) VALUES (?,?,?)",
                    [(op, body, now_ns) for op, body in items],
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def outbox_head(self) -> tuple[int, str, str] | None:
        """The oldest queued item ``(id, op, body)``, or None."""
        row = self._conn().execute("SELECT id, op, body FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), row[1], row[2])

    def outbox_done(self, item_id: int) -> None:
        """Remove a delivered outbox item."""
        with self._write_lock:
            self._conn().execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def outbox_size(self) -> int:
        """Items waiting in the outbox."""
        return int(self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0])

    def disk(self) -> dict[str, Any]:
        """Size of the journal (with its WAL), free space on its disk, the cap if any."""
        import shutil

        size = sum(
            p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()
        )
        return {
            "size_bytes": size,
            "free_bytes": shutil.disk_usage(self.path.parent).free,
            "max_bytes": self.max_bytes,
        }

    # -- other writers --------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection: committed at the end of the
        block, rolled back if it raises (serialised with the ingest's writes)."""
        conn = self._conn()
        with self._write_lock:
            _begin_immediate(conn)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
