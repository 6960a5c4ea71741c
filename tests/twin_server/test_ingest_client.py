"""FastClient (buffered reads, direct PUBLISH hand-over) against stock paho and a real mosquitto."""

from __future__ import annotations

import socket
import struct
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from services import wait_until

from edge_agent.wire import Reading
from twin_server.ingest import paho_client as ingest_client
from twin_server.ingest.paho_client import FastClient, fast_path_available
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import Ingest
from twin_server.store.journal import Journal

T0 = 1_700_000_000 * 10**9


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (128 if n else 0))
        if not n:
            return bytes(out)


def _publish_packet(topic: str, payload: bytes, mid: int, qos: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _remaining_length(len(body)) + body


def _drain(buffered: bool, stream: bytes, expected: int, chunk: int) -> list[tuple[bytes, bytes, int, int]]:
    """Feed ``stream`` through a socket in ``chunk``-byte writes; collect what the client hands over."""
    got: list[tuple[bytes, bytes, int, int]] = []
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="t",
        protocol=mqtt.MQTTv311,
        manual_ack=True,
        buffered=buffered,
        on_publish_fast=lambda *m: got.append(m),
    )
    client.on_message = lambda c, u, m: got.append((m._topic, m.payload, m.mid, m.qos))
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED

    def feed() -> None:
        for i in range(0, len(stream), chunk):
            theirs.sendall(stream[i : i + chunk])
            time.sleep(0)

    th = threading.Thread(target=feed)
    th.start()
    deadline = time.monotonic() + 20
    while len(got) < expected and time.monotonic() < deadline:
        client._loop(0.05)
    th.join()
    ours.close()
    theirs.close()
    return got


def test_fast_path_is_available_on_the_pinned_paho():
    assert fast_path_available()  # else the ingest silently runs at stock speed


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_buffered_client_hands_over_exactly_what_stock_paho_delivers(chunk):
    """Same messages, same order, across packet/recv boundaries, 64 KiB buffers and a 100 KB payload."""
    packets = []
    for i in range(300):
        payload = (b"x" * 100_000) if i == 150 else f'{{"seq":{i}}}'.encode()
        qos = 0 if i % 50 == 0 else 1
        packets.append((f"twin/v1/s/pi-{i % 3}/light/l{i % 7}", payload, (i % 65535) + 1, qos))
    stream = b"".join(_publish_packet(*p) for p in packets)
    stream += b"\xd0\x00" + _publish_packet("twin/v1/s/last/light/l", b"{}", 9, 1)  # PINGRESP in between
    packets.append(("twin/v1/s/last/light/l", b"{}", 9, 1))
    want = [(t.encode(), p, mid if q else 0, q) for t, p, mid, q in packets]
    fast = _drain(True, stream, len(want), chunk)
    stock = _drain(False, stream, len(want), chunk)
    assert [(t, bytes(p), m, q) for t, p, m, q in stock] == want
    assert fast == want


@pytest.mark.broker
def test_stock_fallback_when_paho_internals_are_missing(tmp_path, mosquitto, monkeypatch):
    """Without the private members the ingest runs on stock paho (on_message) and loses nothing."""
    monkeypatch.setattr(ingest_client, "fast_path_available", lambda: False)
    journal = Journal(tmp_path / "j.sqlite")
    ing = Ingest(journal, mosquitto.host, mosquitto.port, site="fallback-t", client_id="t-fallback")
    assert not ing._client.fast
    ing.start()
    try:
        assert ing.wait_subscribed(10)
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.publish(
            Reading("fallback-t", "pi-m3", "light", "light", T0 + i, i, "M3", 1.0, "raw") for i in range(300)
        )
        pub.close()
        wait_until(lambda: ing.stats.accepted >= 300)
    finally:
        ing.stop()
    assert journal.count("fallback-t") == 300


@pytest.mark.broker
def test_broker_restart_mid_stream_loses_nothing(tmp_path, own_mosquitto):
    """A new connection starts with an empty read buffer: no stale bytes, every reading once."""
    journal = Journal(tmp_path / "j.sqlite")
    ing = Ingest(journal, own_mosquitto.host, own_mosquitto.port, site="restart-t", client_id="t-restart")
    assert ing._client.fast
    ing.start()

    def publish(seqs: range) -> None:
        pub = Publisher(own_mosquitto.host, own_mosquitto.port)
        pub.publish(
            Reading("restart-t", "pi-m3", "light", "light", T0 + i, i, "M3", 1.0, "raw") for i in seqs
        )
        pub.close()

    try:
        assert ing.wait_subscribed(10)
        publish(range(0, 2000))
        wait_until(lambda: ing.stats.accepted >= 2000)
        own_mosquitto.stop()
        wait_until(lambda: not ing.connected, 10)
        own_mosquitto.start()
        # Subscribed again (the test broker keeps no sessions across restarts).
        wait_until(lambda: ing.stats.connects >= 2 and ing.subscribed.is_set(), 20, "reconnect")
        publish(range(2000, 4000))
        wait_until(lambda: ing.stats.accepted >= 4000)
    finally:
        ing.stop()
    assert ing.stats.dead_letters == 0
    assert [r["seq"] for r in journal.rows("restart-t")] == list(range(4000))
