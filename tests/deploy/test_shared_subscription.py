"""Scale-out, broker side: MQTT 5 shared subscriptions split the stream between ingest processes.

Two clients logged in as the twin server subscribe to ``$share/twin/twin/v1/#`` on a mosquitto
running the generated password + ACL files (the production configuration); every message a
device publishes reaches exactly one of them: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import queue
import time
import uuid

import paho.mqtt.client as mqtt
from deploy_broker import Client, connect, subscribe

SHARED = "$share/twin/twin/v1/#"
N_MESSAGES = 3000  # QoS 1, well under paho's 65,535 in-flight message ids


def _login(dep, user: str) -> Client:
    c = connect(dep.broker, f"{user}-{uuid.uuid4().hex[:6]}", user, dep.passwords[user], mqtt.MQTTv5)
    assert c.connect_rc == 0, (user, c.connect_rc)
    return c


def _collect(
    inboxes: list[queue.Queue], n: int, timeout_s: float = 60.0, quiet_s: float = 0.5
) -> list[list[int]]:
    """Sequence numbers received by each client, until ``n`` arrived and then ``quiet_s`` of silence."""
    got: list[list[int]] = [[] for _ in inboxes]
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() < deadline:
        moved = False
        for i, inbox in enumerate(inboxes):
            try:
                while True:
                    _topic, payload = inbox.get_nowait()
                    got[i].append(int(payload))
                    moved = True
            except queue.Empty:
                pass
        now = time.monotonic()
        if moved:
            last = now
        elif sum(map(len, got)) >= n and now - last >= quiet_s:
            break
        time.sleep(0.01)
    return got


def test_shared_subscription_splits_the_stream_without_loss_or_duplicates(secured) -> None:
    workers = [_login(secured, "twin-server") for _ in range(2)]
    sim = _login(secured, "edge-sim")
    try:
        for w in workers:
            # The server's ACL (`topic read twin/v1/#`) is enough for the shared form.
            assert subscribe(w, SHARED) == [1]
        topic = "twin/v1/toyama-pilot/pi-m3/light/light"
        acks = sim.publish_all([(topic, str(i).encode()) for i in range(N_MESSAGES)], timeout_s=60)
        assert set(acks) == {0}
        got = _collect([w.inbox for w in workers], N_MESSAGES)
    finally:
        for c in (sim, *workers):
            c.close()
    everything = got[0] + got[1]
    assert len(everything) == N_MESSAGES  # nothing duplicated ...
    assert set(everything) == set(range(N_MESSAGES))  # ... and nothing lost
    # mosquitto hands shared messages out round-robin; allow for the CPU being contended.
    assert min(len(g) for g in got) >= N_MESSAGES // 4, [len(g) for g in got]
    # Each process still sees its share of one device's stream in publish order.
    assert all(g == sorted(g) for g in got)
