"""Turn a readings frame into wire-contract messages and publish them (tests, bench, demo).

The edge agents are the real publishers; this module maps a recorded or simulated shift
onto the devices and sensors an installation of the site would have, so the server can be
fed a known shift through a real broker and compared with the offline analysis.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import paho.mqtt.client as mqtt
import pandas as pd

from edge_agent.wire import Reading, encode_reading
from twin_contract import vocabulary as vocab
from twin_server.site import Site

__all__ = ["Publisher", "device_of", "frame_to_wire"]

_UNITS = {
    "light": "raw",
    "pressure": "raw",
    "switch": "bool",
    "rssi": "dBm",
    "zone": "zone",
    "light_state": "bool",
    "pressure_state": "bool",
}


def device_of(site: Site, kind: str, source: str, channel: str) -> tuple[str, str]:
    """The ``(device, sensor)`` that would publish a reading of the site.

    Machine sensors belong to the machine's Pi (``machine.device`` or ``pi-<id>``) and are
    named as wired in the site file; RSSI comes from the receiver's Pi with the beacon as the
    sensor; zone reports come from the locator system with the beacon as the sensor.
    """
    if kind in ("rssi", "zone"):
        if kind == "rssi":
            rx = next((r for r in site.receivers if r.id == source), None)
            at_machine = rx is not None and rx.machine is not None
            return site.receiver_device(source), f"{source}.{channel}" if at_machine else channel
        return source, channel
    try:
        m = site.machine(source)
    except KeyError:
        return vocab.default_machine_device(source), kind if kind != "switch" else f"sw-{channel}"
    device = m.device_id
    for s in m.sensors:
        if s.kind == kind and (kind != "switch" or s.channel == channel):
            return device, s.id
    return device, kind if kind != "switch" else f"sw-{channel}"


def frame_to_wire(frame: pd.DataFrame, site: Site) -> list[Reading]:
    """Wire readings for every row of a readings frame, in time order, seq per sensor.

    Parameters
    ----------
    frame : DataFrame
        Contract readings frame (``t, kind, source, channel, value, label``).
    site : Site
        Gives the devices and sensor ids.
    """
    seq: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    ordered = frame.sort_values("t", kind="stable")
    for t, kind, source, channel, value, label in ordered[
        ["t", "kind", "source", "channel", "value", "label"]
    ].itertuples(index=False, name=None):
        device, sensor = device_of(site, kind, source, channel)
        key = (device, sensor)
        v: float | str = str(label) if kind == "zone" else float(value)
        out.append(
            Reading(
                site=site.site,
                device=device,
                sensor=sensor,
                kind=kind,
                t_ns=round(t * 1e9),
                seq=seq[key],
                source=source,
                value=v,
                unit=_UNITS[kind],
                channel=channel if kind in ("switch", "rssi", "zone") else "",
            )
        )
        seq[key] += 1
    return out


class Publisher:
    """A paho QoS 1 publisher that keeps at most ``max_inflight`` messages unacknowledged.

    Bounded because paho wraps message ids past 65,535 in flight and then silently refuses
    to queue (``MQTT_ERR_QUEUE_SIZE``).
    """

    def __init__(
        self, host: str, port: int, *, client_id: str = "", qos: int = 1, max_inflight: int = 1000
    ) -> None:
        self.qos = qos
        self._sem = threading.BoundedSemaphore(max_inflight)
        self._pending = 0  # QoS 1 messages handed to paho and not acknowledged yet
        self._settled = threading.Condition()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._client.on_connect = lambda *a: self._connected.set()
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"could not connect to the broker at {host}:{port}")
        self.sent = 0

    def _on_publish(self, *args: object) -> None:
        if not self.qos:
            return  # QoS 0: nothing was counted
        self._sem.release()
        with self._settled:
            self._pending -= 1
            if self._pending <= 0:
                self._settled.notify_all()

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish one message (blocks while ``max_inflight`` are unacknowledged)."""
        if self.qos == 0:
            self._client.publish(topic, payload, qos=0)
        else:
            self._sem.acquire()
            with self._settled:
                self._pending += 1
            info = self._client.publish(topic, payload, qos=self.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                self._sem.release()
                with self._settled:
                    self._pending -= 1
                raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
        self.sent += 1

    def publish(self, readings: Iterable[Reading], rate_per_s: float | None = None) -> int:
        """Publish readings in order, optionally paced to ``rate_per_s``; returns the count."""
        n = 0
        t0 = time.monotonic()
        for r in readings:
            topic, payload = encode_reading(r)
            self.publish_raw(topic, payload)
            n += 1
            if rate_per_s:
                ahead = t0 + n / rate_per_s - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        return n

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every QoS 1 message was acknowledged by the broker (``on_publish`` events)."""
        with self._settled:
            if not self._settled.wait_for(lambda: self._pending <= 0, timeout_s):
                raise TimeoutError(f"{self._pending} messages still unacknowledged")

    def close(self) -> None:
        """Flush and disconnect."""
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()


def publish_all(host: str, port: int, readings: Sequence[Reading], **kwargs: object) -> int:
    """Publish readings with a fresh :class:`Publisher` and wait for every PUBACK."""
    pub = Publisher(host, port, **kwargs)  # type: ignore[arg-type]
    try:
        return pub.publish(readings)
    finally:
        pub.close()
