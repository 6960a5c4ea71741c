"""`python -m twin_server demo`: embedded amqtt broker, simulated edge agents, server; Ctrl-C stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from services import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_demo_ingests_through_real_agents_and_stops_on_sigint(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin_server",
            "demo",
            "--hours",
            "0.1",
            "--speed",
            "30",
            "--seed",
            "2",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        readings = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                got = get(f"http://127.0.0.1:{port}/api/sites/toyama-pilot/readings?limit=100000")
                readings = got["readings"]
                # Every kind, and every agent process heard (they start a moment apart).
                if {"light", "pressure", "rssi", "zone"} <= {r["kind"] for r in readings} and {
                    r["device"] for r in readings
                } >= {"pi-m3", "pi-m7", "pi-m10", "tagsys"}:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert readings, log.read_text()[-3000:]
        kinds = {r["kind"] for r in readings}
        assert {"light", "pressure", "rssi", "zone"} <= kinds, kinds
        # Published by the real edge agents: aggregated BLE windows, devices from the site file.
        assert {r["device"] for r in readings} >= {"pi-m3", "pi-m7", "pi-m10", "tagsys"}
        assert any(r["kind"] == "rssi" and r["window_ms"] == 1000 and r["count"] >= 1 for r in readings)
        health = get(f"http://127.0.0.1:{port}/health")
        assert health["broker"]["connected"] and health["ingest"]["dead_letters"] == 0
        assert len(health["journal"]["devices"]) == 4  # retained online statuses of the agents
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    out = log.read_text()
    assert rc == 0, out[-3000:]
    assert f"http://127.0.0.1:{port}/" in out and "demo: stopped" in out
    assert "Traceback" not in out, out[-3000:]
