"""A full disk under the server's data directory: nothing acknowledged, nothing lost, journal intact.

The real server (``python -m twin_server serve``) journals onto a small ext4 filesystem
(a loop-mounted image file) with a ballast file that leaves about 1.5 MiB free. A stream
of 20,000 readings fills it: the server stops acknowledging (the broker keeps the
messages), ``/health`` says why, the journal passes ``PRAGMA integrity_check``. The server
is then killed (whatever it held in memory is gone with it), the ballast deleted, the
server started again: every reading arrives, once. Where mounting is impossible the same
is done with the journal capped by ``--journal-max-mb`` (SQLite's ``max_page_count``: the
same "database or disk is full" error), and "freeing space" is restarting without the cap.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from services import free_port, run_mosquitto, wait_for_port, wait_until
from small_fs import fill, small_filesystem

from edge_agent.wire import Reading
from twin_server.ingest.publish import Publisher

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
N = 20_000
T0 = 1_764_000_000 * 10**9


def _serve(data: Path, broker_port: int, http_port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin_server",
            "serve",
            "--site",
            str(ROOT / "examples" / "pilot_site.yaml"),
            "--broker",
            f"127.0.0.1:{broker_port}",
            "--data-dir",
            str(data),
            "--port",
            str(http_port),
            "--analysis-interval",
            "3600",
            "--log-level",
            "WARNING",
            "--client-id",
            "disk-full-test",
            *extra,
        ],
        cwd=ROOT,
        stdout=out,
        stderr=out,
    )
    wait_for_port(http_port, 60, proc)
    return proc


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        return json.loads(r.read())


def _journal(data: Path, sql: str) -> list:
    with sqlite3.connect(f"file:{data / 'journal.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchall()


def test_full_disk_stops_acknowledging_and_loses_nothing(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 24) as mnt, run_mosquitto(tmp_path / "mq") as broker:
        data = (mnt or tmp_path) / "data"
        data.mkdir()
        cap = [] if mnt is not None else ["--journal-max-mb", "1.5"]
        http = free_port()
        server = _serve(data, broker.port, http, tmp_path / "server.log", cap)
        try:
            ballast = fill(mnt, int(1.5 * 2**20)) if mnt is not None else None
            pub = Publisher(broker.host, broker.port)
            pub.publish(
                [
                    Reading(
                        "toyama-pilot",
                        "pi-m3",
                        "light",
                        "light",
                        T0 + i * 10**7,
                        i,
                        "M3",
                        float(i % 7),
                        "raw",
                    )
                    for i in range(N)
                ],
                rate_per_s=4000,
            )
            pub.close()  # every reading is with the broker now
            wait_until(
                lambda: "full" in str((_health(http)["ingest"] or {}).get("last_error")),
                60,
                "the server reporting a full disk",
            )
            counts: list[int] = []

            def stalled() -> bool:
                counts.append(_journal(data, "SELECT count(*) FROM readings")[0][0])
                return len(counts) > 20 and counts[-1] == counts[-20]

            wait_until(stalled, 30, "ingest to stop")
            stored_while_full = counts[-1]
            health = _health(http)
            assert 0 < stored_while_full < N
            # /health says why: degraded, the last journal error, and the space left.
            assert health["status"] == "degraded", health
            assert "database or disk is full" in health["ingest"]["last_error"], health["ingest"]
            if mnt is not None:
                assert health["journal"]["free_bytes"] < 2**20, health["journal"]
            else:
                assert health["journal"]["max_bytes"] == int(1.5 * 2**20)
            assert health["ingest"]["accepted"] == stored_while_full
            assert _journal(data, "PRAGMA integrity_check") == [("ok",)]
            # Nothing it did not journal was acknowledged: kill it, make room, start it again.
            server.kill()
            server.wait(10)
            if ballast is not None:
                ballast.unlink()
            server = _serve(data, broker.port, http, tmp_path / "server.log", [])
            wait_until(
                lambda: _journal(data, "SELECT count(*) FROM readings")[0][0] >= N,
                120,
                "every reading after space was freed",
            )
            time.sleep(1.0)
        finally:
            server.terminate()
            server.wait(30)
        assert _journal(data, "PRAGMA integrity_check") == [("ok",)]
        # A full disk is the environment, not the message: nothing was dead-lettered as poison.
        assert _journal(data, "SELECT count(*) FROM dead_letters") == [(0,)]
        seqs = [s for (s,) in _journal(data, "SELECT seq FROM readings WHERE sensor = 'light' ORDER BY seq")]
        assert seqs == list(range(N))
