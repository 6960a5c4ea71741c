"""/ws/live pushes a reading within 1 s of its arrival (real mosquitto, real uvicorn)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import uvicorn
from services import free_port, wait_for_port, wait_until
from websockets.sync.client import connect

from edge_agent.wire import Reading
from twin_server.api.app import create_app
from twin_server.ingest.publish import Publisher
from twin_server.settings import Settings

pytestmark = pytest.mark.broker


@pytest.fixture
def site(pilot_site):
    # A site id of its own: other tests publish the pilot's topics on the shared broker.
    return pilot_site.model_copy(update={"site": "ws-test-site"})


@pytest.fixture
def server(tmp_path, mosquitto, site):
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id="ws-test",
        analysis_interval_s=60,
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for_port(port, 20)
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/health").json()["broker"]["subscribed"],
        20,
        "ingest subscribed",
    )
    yield port
    srv.should_exit = True
    thread.join(20)


def test_ws_pushes_readings_within_a_second(server, mosquitto, site):
    port = server
    with connect(f"ws://127.0.0.1:{port}/ws/live", open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "snapshot" and hello["site"] == site.site
        pub = Publisher(mosquitto.host, mosquitto.port)
        t_ns = time.time_ns()
        sent = [
            Reading(
                site.site, "pi-m7", "sw-tool", "switch", t_ns + i, i, "M7", 1.0, "bool", channel="tool_change"
            )
            for i in range(3)
        ]
        t_pub = time.time_ns()
        pub.publish(sent)
        pub.close()
        got: list[dict] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=10))
            if msg["type"] == "readings":
                got.extend(r for r in msg["readings"] if r["device"] == "pi-m7")
                push_ns = msg["sent_ns"]
    assert [r["seq"] for r in got] == [0, 1, 2]
    assert got[0]["kind"] == "switch" and got[0]["channel"] == "tool_change"
    # Pushed within 1 s of arrival at the server (and of the publish).
    assert push_ns - max(r["received_ns"] for r in got) < 1e9
    assert push_ns - t_pub < 1e9 * 3  # generous: 2 shared cores
