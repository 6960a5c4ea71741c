"""Server shutdown: the journal is closed only after the worker threads still using it end."""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi.testclient import TestClient

from twin_server.api.app import create_app
from twin_server.settings import Settings


def test_shutdown_waits_for_a_thread_still_reading_the_journal(tmp_path, pilot_site):
    """A cancelled loop leaves its ``to_thread`` read running; closing under it crashed CI (SIGSEGV)."""
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    journal = app.state.twin.journal
    events: list[str] = []
    reading = threading.Event()
    real_close = journal.close

    def slow_read() -> None:
        reading.set()
        time.sleep(0.5)  # the read is still going when shutdown begins
        journal.time_range(pilot_site.site)
        events.append("read done")

    def close() -> None:
        events.append("close")
        real_close()

    journal.close = close
    with TestClient(app) as client:
        client.portal.start_task_soon(asyncio.to_thread, slow_read)
        assert reading.wait(5)
    assert events == ["read done", "close"]
