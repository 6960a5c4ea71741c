"""MQTT publishing from the outbox: QoS 1, bounded in-flight, delete on PUBACK, status + will.

One thread moves rows from the outbox into paho (never more than ``max_inflight`` handed
over and unacknowledged, well below paho's 65,535 message-id space) and deletes the rows
whose PUBACK arrived, in batches. paho keeps unacknowledged messages across reconnects
and resends them in order; after an agent restart the remaining rows are sent again from
the oldest (duplicates are possible, losses are not: the server dedups on ``seq``).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from edge_agent.config import MqttSection
from edge_agent.outbox import Outbox
from edge_agent.wire import Status, encode_status

__all__ = ["Publisher"]

log = logging.getLogger("edge_agent.publisher")

#: Longest time an acknowledged row waits before its batch is deleted, seconds.
ACK_FLUSH_S = 0.05


class Publisher:
    """Drains an :class:`Outbox` into an MQTT broker.

    Parameters
    ----------
    status : callable
        Returns the current online :class:`~edge_agent.wire.Status` (published retained on
        every connect and by :meth:`publish_status`).
    """

    def __init__(
        self, cfg: MqttSection, site: str, device: str, outbox: Outbox, status: Callable[[], Status]
    ) -> None:
        import paho.mqtt.client as mqtt

        self.cfg = cfg
        self.outbox = outbox
        self.site = site
        self.device = device
        self._status = status
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Touched by the publisher thread only. paho calls on_publish while holding its own
        # message lock, so the callback must not take a lock that is held around publish():
        # it only appends the mid to a deque (thread-safe), resolved in step().
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._acked_mids: deque[int] = deque()
        # Acknowledged rows are deleted in batches (one SQLite transaction, one fsync each),
        # and paho is refilled only once a quarter of the window is free: per-message
        # round trips through SQLite would halve the drain rate after an outage.
        self._unflushed: list[int] = []
        self._last_ack_flush = time.monotonic()
        self._refill_at = max(1, cfg.max_inflight // 4)
        self._step_lock = threading.Lock()
        self._last_id = 0
        self.connected = threading.Event()
        self.published = 0
        self.acked_total = 0
        self.connects = 0
        client_id = cfg.client_id or f"edge-{site}-{device}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password or None)
        if cfg.tls:
            ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
            self.client.tls_set_context(ctx)
        will_topic, will_payload = encode_status(Status(site, device, online=False))
        self.client.will_set(will_topic, will_payload, qos=1, retain=True)
        self.client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        # paho's own window: what it puts on the wire unacknowledged at once.
        self.client.max_inflight_messages_set(min(cfg.max_inflight, 100))
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._thread: threading.Thread | None = None

    # -- paho callbacks (network thread) -----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused connection: %s", reason_code)
            return
        self.connects += 1
        topic, payload = encode_status(self._status())
        client.publish(topic, payload, qos=1, retain=True)
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); retrying with back-off", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked_mids.append(mid)
        if len(self._acked_mids) >= self._refill_at:
            self._wake.set()

    # -- control ---------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def publish_status(self) -> None:
        if self.connected.is_set():
            topic, payload = encode_status(self._status())
            self.client.publish(topic, payload, qos=1, retain=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(ACK_FLUSH_S if (self._inflight or self._unflushed) else 0.5)
            self._wake.clear()
            self.step()

    def kick(self) -> None:
        """Publish new rows now from the caller's thread if the publisher is idle, else wake it.

        Saves a thread hand-off for state events (lower latency on a busy CPU); the step
        lock keeps one thread at a time on the in-flight table, so order is unchanged.
        """
        if self._step_lock.acquire(blocking=False):
            try:
                self._step()
            finally:
                self._step_lock.release()
        else:
            self._wake.set()

    def step(self) -> int:
        """Delete acknowledged rows, hand new rows to paho; return how many were handed."""
        with self._step_lock:
            return self._step()

    def _step(self) -> int:
        while self._acked_mids:
            row_id = self._inflight.pop(self._acked_mids.popleft(), None)
            if row_id is not None:  # None: the status message, not an outbox row
                self._unflushed.append(row_id)
        now = time.monotonic()
        # At most one delete transaction (one fsync with synchronous=FULL) per ACK_FLUSH_S
        # while messages are in flight: on an SD card the fsyncs, not paho, would cap the drain.
        if self._unflushed and (not self._inflight or now - self._last_ack_flush >= ACK_FLUSH_S):
            self.outbox.ack(self._unflushed)
            self.acked_total += len(self._unflushed)
            self._unflushed = []
            self._last_ack_flush = now
        room = self.cfg.max_inflight - len(self._inflight)
        if not self.connected.is_set() or room <= 0:
            return 0
        if self._inflight and room < self._refill_at:
            return 0  # wait for a bigger batch of room
        rows = self.outbox.after(self._last_id, room)
        for row_id, topic, payload in rows:
            info = self.client.publish(topic, payload, qos=1)
            if info.rc not in (0, 4):  # 4 = NO_CONN: paho keeps it queued for reconnect
                log.warning("paho refused a message (rc=%s); will retry", info.rc)
                break
            self._inflight[info.mid] = row_id
            self._last_id = row_id
            self.published += 1
        if rows and len(rows) == room:
            self._wake.set()  # more waiting; loop again once acks free room
        return len(rows)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def flush(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._wake.set()
            if self.outbox.pending == 0:
                return True
            time.sleep(0.02)
        return self.outbox.pending == 0

    def stop(self, send_offline: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._step_lock:
            self._step()
            if self._unflushed:  # delete what was acknowledged meanwhile
                self.outbox.ack(self._unflushed)
                self.acked_total += len(self._unflushed)
                self._unflushed = []
        if send_offline and self.connected.is_set():
            topic, payload = encode_status(Status(self.site, self.device, online=False, t_ns=time.time_ns()))
            info = self.client.publish(topic, payload, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
