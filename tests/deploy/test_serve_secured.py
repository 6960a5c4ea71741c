"""The production server path: ``serve --auth`` with the broker login from the environment.

As docker-compose runs it: the locked-down mosquitto of the generated ACL, the server's
login in ``TWIN_MQTT_USERNAME`` / ``TWIN_MQTT_PASSWORD``, sign-in required. A device
publishes under its own topics; a signed-in supervisor reads the reading back; an
anonymous caller gets 401.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from deploy_broker import Deployment, connect
from services import free_port

from edge_agent.wire import Reading, encode_reading

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long pass phrase for the test"


def _wait_health(base: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "serve exited"
        try:
            health = httpx.get(f"{base}/health", timeout=5).json()
            if health["broker"]["connected"]:
                return health
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not connected to the broker within {timeout_s} s")


@pytest.mark.broker
def test_serve_with_auth_and_broker_login_from_env(secured: Deployment, tmp_path: Path, pilot_site) -> None:
    site = pilot_site.site
    data_dir = tmp_path / "data"
    add = subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_server.auth",
            "add-user",
            "--data-dir",
            str(data_dir),
            "--site",
            site,
            "--role",
            "supervisor",
            "--name",
            "sato",
            "--password-stdin",
        ],
        input=PASSWORD,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert add.returncode == 0, add.stderr
    port = free_port()
    env = {
        **os.environ,
        "TWIN_MQTT_USERNAME": "twin-server",
        "TWIN_MQTT_PASSWORD": secured.passwords["twin-server"],
        "TWIN_AUTH": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin_server",
            "serve",
            "--site",
            str(ROOT / "examples" / "pilot_site.yaml"),
            "--broker",
            f"{secured.broker.host}:{secured.broker.port}",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--client-id",
            f"twin-{uuid.uuid4().hex[:6]}",
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_health(base, proc)
        t_ns = time.time_ns()
        reading = Reading(
            site=site,
            device="pi-m3",
            kind="switch",
            sensor="sw-tool",
            t_ns=t_ns,
            seq=1,
            source="M3",
            channel="tool_change",
            value=1.0,
            unit="bool",
        )
        device = connect(secured.broker, f"pi-m3-{uuid.uuid4().hex[:6]}", "pi-m3", secured.passwords["pi-m3"])
        assert device.connect_rc == 0
        topic, payload = encode_reading(reading)
        assert device.publish_all([(topic, payload)]) == [0]
        device.close()

        with httpx.Client(base_url=base, timeout=10) as c:
            params = {"start": (t_ns - 10**9) / 1e9, "end": (t_ns + 10**9) / 1e9}
            assert c.get(f"/api/sites/{site}/readings", params=params).status_code == 401
            login = c.post("/api/auth/login", json={"name": "sato", "password": PASSWORD})
            assert login.status_code == 200, login.text
            deadline = time.monotonic() + 20
            rows: list = []
            while time.monotonic() < deadline and not rows:
                r = c.get(f"/api/sites/{site}/readings", params=params)
                assert r.status_code == 200, r.text
                rows = [row for row in r.json()["readings"] if row["sensor"] == "sw-tool"]
                time.sleep(0.2)
            assert rows and rows[0]["device"] == "pi-m3", json.dumps(r.json())[:500]
            audit = c.get("/api/audit").json()
            assert any(e.get("action") == "login" for e in audit["entries"]), audit
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
