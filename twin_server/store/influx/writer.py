"""Export the journal to InfluxDB through the v1 HTTP API (``/write``, ``/query``).

Raw readings are exported from a cursor over the journal (the journal *is* the outbox for
them: nothing is copied, and the cursor only moves after InfluxDB answered 204). Derived
series go through the journal's ``outbox`` table. Both survive an InfluxDB outage and a
server crash; a batch re-sent after a crash overwrites identical points (same measurement,
tags and timestamp), so every reading is in InfluxDB exactly once.

Works with InfluxDB 1.x and with the v1-compatible endpoints of 2.x/3.x
(``Authorization: Token ...``; the database name maps to a bucket by DBRP).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from twin_server.result import Result
from twin_server.store.influx.line_protocol import DERIVED_MEASUREMENTS, journal_row_lines, result_lines
from twin_server.store.journal import Journal

__all__ = ["InfluxError", "InfluxWriter"]

log = logging.getLogger("twin_server.store.influx")


class InfluxError(RuntimeError):
    """InfluxDB answered with an error; ``retry`` says whether trying again can help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def _quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxWriter:
    """Background exporter of one journal to one InfluxDB database.

    Parameters
    ----------
    journal : Journal
        Source of readings and of the derived-series outbox.
    url : str
        InfluxDB base URL.
    db : str
        Database (1.x) or DBRP-mapped bucket (2.x/3.x).
    token, user, password : str, optional
        ``Authorization: Token`` (2.x/3.x) or 1.x credentials.
    batch_lines : int
        Readings per POST.
    """

    def __init__(
        self,
        journal: Journal,
        url: str,
        db: str,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        create_db: bool = True,
        batch_lines: int = 5000,
        timeout_s: float = 10.0,
        backoff_max_s: float = 30.0,
        replace_derived: bool = True,
    ) -> None:
        self.journal = journal
        self.url = url.rstrip("/")
        self.db = db
        self.create_db = create_db
        self.batch_lines = batch_lines
        self.backoff_max_s = backoff_max_s
        self.replace_derived = replace_derived
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._auth = {"u": user, "p": password} if user else {}
        self._http = httpx.Client(timeout=timeout_s, headers=headers)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db_ready = not create_db
        self.ok: bool | None = None
        self.last_error: str | None = None
        self.last_success_ns: int | None = None
        self.points_written = 0
        self.rejected_batches = 0
        self.retries = 0

    # -- HTTP -----------------------------------------------------------------------------
    def write_lines(self, lines: list[str]) -> None:
        """POST lines to ``/write`` (gzip). Raises :class:`InfluxError`."""
        if not lines:
            return
        body = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=5)
        try:
            resp = self._http.post(
                f"{self.url}/write",
                params={"db": self.db, "precision": "ns", **self._auth},
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"write: {type(exc).__name__}: {exc}") from None
        if resp.status_code == 204:
            return
        text = resp.text[:300]
        if resp.status_code == 404 and "database not found" in text:
            self._db_ready = not self.create_db
            raise InfluxError(f"write: database {self.db!r} not found")
        # 400 = some points were bad (InfluxDB wrote the others): retrying cannot help.
        raise InfluxError(f"write: HTTP {resp.status_code}: {text}", retry=resp.status_code != 400)

    def query(self, q: str, *, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL through ``/query`` (POST) and return the decoded JSON."""
        params = {"q": q, **self._auth}
        if db or self.db:
            params["db"] = db or self.db
        try:
            resp = self._http.post(f"{self.url}/query", data=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"query: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise InfluxError(
                f"query: HTTP {resp.status_code}: {resp.text[:300]}",
                retry=resp.status_code >= 500 or resp.status_code in (401, 403, 429),
            )
        doc: dict[str, Any] = resp.json()
        errors = [r["error"] for r in doc.get("results", []) if "error" in r]
        if errors:
            raise InfluxError(f"query: {errors[0]}", retry=False)
        return doc

    def ping(self) -> bool:
        """Whether InfluxDB answers ``/ping``."""
        try:
            return self._http.get(f"{self.url}/ping", timeout=2.0).status_code in (200, 204)
        except httpx.HTTPError:
            return False

    # -- derived series -------------------------------------------------------------------
    def export_result(self, result: Result, kpis: Mapping[str, Any] | None, shift: str) -> None:
        """Queue a shift's derived series, replacing what was exported for it before."""
        items: list[tuple[str, str]] = []
        if self.replace_derived:
            where = f'WHERE "site"={_quote_str(result.site)} AND "shift"={_quote_str(shift)}'
            items.append(
                ("query", ";".join(f"DELETE FROM {_quote_ident(m)} {where}" for m in DERIVED_MEASUREMENTS))
            )
        lines = result_lines(result, kpis, shift)
        for i in range(0, len(lines), self.batch_lines):
            items.append(("write", "\n".join(lines[i : i + self.batch_lines])))
        self.journal.outbox_add(items, time.time_ns())
        self._wake.set()

    # -- loop -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start exporting in a background thread."""
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current request."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._http.close()

    def notify(self) -> None:
        """New readings were committed: export soon."""
        self._wake.set()

    def pending(self) -> int:
        """Readings not yet exported plus outbox items."""
        return max(0, self.journal.max_id() - self.journal.export_cursor()) + self.journal.outbox_size()

    def step(self) -> bool:
        """Export one outbox item or one batch of readings; False when there was nothing to do.

        Raises
        ------
        InfluxError
            When InfluxDB is unreachable or refuses the request.
        """
        if not self._db_ready:
            self.query(f"CREATE DATABASE {_quote_ident(self.db)}", db="")
            self._db_ready = True
        head = self.journal.outbox_head()
        if head is not None:
            item_id, op, body = head
            try:
                if op == "query":
                    self.query(body)
                else:
                    lines = body.split("\n")
                    self.write_lines(lines)
                    self.points_written += len(lines)
            except InfluxError as exc:
                if exc.retry:
                    raise
                self.rejected_batches += 1
                self.last_error = str(exc)
                log.error("InfluxDB refused outbox item %s for good: %s", item_id, exc)
            self.journal.outbox_done(item_id)
            return True
        cursor = self.journal.export_cursor()
        rows = self.journal.readings_after(cursor, self.batch_lines)
        if not rows:
            return False
        try:
            self.write_lines(journal_row_lines(rows))
            self.points_written += len(rows)
        except InfluxError as exc:
            if exc.retry:
                raise
            self.rejected_batches += 1
            self.last_error = str(exc)
            log.error("InfluxDB refused readings %s..%s: %s", rows[0][0], rows[-1][0], exc)
        self.journal.set_export_cursor(rows[-1][0])
        return True

    def _run(self) -> None:
        delay_s = 0.5
        while not self._stop.is_set():
            try:
                busy = self.step()
                self.ok = True
                self.last_success_ns = time.time_ns()
                delay_s = 0.5
                if not busy:
                    self._wake.wait(0.5)
                    self._wake.clear()
            except InfluxError as exc:
                self.ok = False
                self.retries += 1
                if self.last_error != str(exc):
                    log.warning("InfluxDB export paused (retrying with backoff): %s", exc)
                self.last_error = str(exc)
                self._stop.wait(delay_s)
                delay_s = min(delay_s * 2, self.backoff_max_s)
            except Exception as exc:  # journal trouble: report it, keep the thread alive
                self.ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("InfluxDB export failed")
                self._stop.wait(delay_s)
                delay_s = min(delay_s * 2, self.backoff_max_s)

    def status(self) -> dict[str, Any]:
        """For ``/health``."""
        try:
            pending = self.pending()
        except Exception:
            pending = None
        return {
            "url": self.url,
            "db": self.db,
            "ok": self.ok,
            "last_error": self.last_error,
            "last_success_ns": self.last_success_ns,
            "points_written": self.points_written,
            "pending": pending,
            "rejected_batches": self.rejected_batches,
            "retries": self.retries,
        }
