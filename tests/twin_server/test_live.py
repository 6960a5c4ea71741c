"""The server end to end: a simulated shift through a real mosquitto into the server, with a
``kill -9`` of the server mid-stream and an InfluxDB outage; then every reading is in the
journal and in InfluxDB exactly once, and the live analysis equals the offline one."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from services import free_port

from twin_server.ingest.publish import Publisher, frame_to_wire
from twin_server.readings import load_readings_csv
from twin_server.store.influx.line_protocol import RAW_MEASUREMENTS

pytestmark = [pytest.mark.broker, pytest.mark.influx, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def get(url: str, timeout_s: float = 30.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read())


def wait_for(cond, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def start_server(
    site_path: Path, broker_port: int, influx_url: str, data_dir: Path, port: int, log: Path
) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "twin_server",
            "serve",
            "--site",
            str(site_path),
            "--broker",
            f"127.0.0.1:{broker_port}",
            "--influx",
            influx_url,
            "--influx-db",
            "live",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--analysis-interval",
            "1",
            "--derived-interval",
            "1",
            "--log-level",
            "WARNING",
            "--clock-tolerance",
            "0",
        ],  # a simulated shift of 2023 replayed: simulated time
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: get(f"http://127.0.0.1:{port}/health")["broker"]["connected"], 30, "server up")
    return proc


def journal_count(data_dir: Path) -> tuple[int, int]:
    conn = sqlite3.connect(data_dir / "journal.sqlite", timeout=10)
    try:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT site || '/' || device || '/' || sensor || '/' || seq) "
            "FROM readings"
        ).fetchone()
        return int(total), int(distinct)
    finally:
        conn.close()


def influx_count(influxd) -> int:
    total = 0
    for m in RAW_MEASUREMENTS:
        res = influxd.query(f'SELECT count("seq") FROM "{m}"', "live")["results"][0]
        if "series" in res:
            total += res["series"][0]["values"][0][1]
    return total


def assert_same(a, b, path: str = "") -> None:
    """Equal documents, floats within 1 µs (device time goes through integer ns once)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), path
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-6), (path, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, set(a) ^ set(b))
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, len(a), len(b) if isinstance(b, list) else b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def test_kill_9_and_influx_outage_lose_nothing_and_live_equals_offline(
    tmp_path, own_mosquitto, own_influxd, pilot_site, pilot_site_path
):
    sim = tmp_path / "sim"
    subprocess.run(
        [
            PY,
            "-m",
            "twin_server",
            "simulate",
            "--site",
            str(pilot_site_path),
            "--hours",
            "0.15",
            "--seed",
            "11",
            "--out",
            str(sim),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    loaded = load_readings_csv(sim / "readings.csv", pilot_site)
    wire = frame_to_wire(loaded.frame, pilot_site)
    n = len(wire)
    assert n > 5000

    data_dir = tmp_path / "data"
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(pilot_site_path, own_mosquitto.port, own_influxd.url, data_dir, port, log)
    try:
        pub = Publisher(own_mosquitto.host, own_mosquitto.port)
        first = n // 3
        pub.publish(wire[:first])
        # kill -9 while the server is busy with the stream.
        wait_for(lambda: journal_count(data_dir)[0] >= first // 3, 30, "some readings journaled")
        pub.publish(wire[first : first + 1000])
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        killed_at = journal_count(data_dir)[0]
        pub.publish(wire[first + 1000 :])  # the broker queues them for the persistent session
        pub.close()
        own_influxd.stop()  # and InfluxDB goes away too
        server = start_server(pilot_site_path, own_mosquitto.port, own_influxd.url, data_dir, port, log)
        wait_for(
            lambda: get(f"http://127.0.0.1:{port}/health")["journal"]["readings"] >= n,
            90,
            "every reading journaled after the restart",
        )
        health = get(f"http://127.0.0.1:{port}/health")
        assert health["influx"]["reachable"] is False and health["status"] == "degraded"
        assert health["influx"]["pending"] > 0
        time.sleep(2)
        own_influxd.start()
        wait_for(
            lambda: get(f"http://127.0.0.1:{port}/health")["influx"]["pending"] == 0,
            90,
            "InfluxDB export caught up",
        )
        assert 0 < killed_at < n

        # Exactly once, in the journal and in InfluxDB.
        assert journal_count(data_dir) == (n, n)
        assert influx_count(own_influxd) == n

        # Live = offline: the server's analysis of the shift equals `python -m twin_server analyze`.
        shifts = get(f"http://127.0.0.1:{port}/api/sites/{pilot_site.site}/shifts")
        assert [s["readings"] for s in shifts] == [n]
        live = get(f"http://127.0.0.1:{port}/api/sites/{pilot_site.site}/shifts/{shifts[0]['day']}/analysis")
        subprocess.run(
            [
                PY,
                "-m",
                "twin_server",
                "analyze",
                "--site",
                str(pilot_site_path),
                "--readings",
                str(sim / "readings.csv"),
                "--out",
                str(tmp_path / "offline.json"),
                "--quiet",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        offline = json.loads((tmp_path / "offline.json").read_text())
        kpis = live.pop("kpis")
        live.pop("day")
        assert_same(live, offline)
        assert kpis["totals"]["task_count"] == len(offline["tasks"])

        # The derived series reached InfluxDB too (the export repeats every second).
        def derived_tasks() -> int:
            res = own_influxd.query('SELECT count("duration_s") FROM "task"', "live")["results"][0]
            return res["series"][0]["values"][0][1] if "series" in res else -1

        if offline["tasks"]:
            wait_for(lambda: derived_tasks() == len(offline["tasks"]), 30, "task segments in InfluxDB")
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(30)
    assert rc == 0, log.read_text()[-2000:]
