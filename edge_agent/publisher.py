"""MQTT publishing from the outbox: QoS 1, bounded in-flight, end-to-end acknowledgement.

One thread moves rows from the outbox into paho (never more than ``max_inflight`` handed
over and unacknowledged, well below paho's 65,535 message-id space). paho keeps
unacknowledged messages across reconnects and resends them in order; after an agent
restart the remaining rows are sent again from the oldest (duplicates are possible, losses
are not: the server dedups on ``seq``).

When a row leaves the outbox depends on ``outbox.keep_until``:

- ``server``: when the server's retained acknowledgement (``twin/v1/SITE/DEVICE/ack``,
  :class:`edge_agent.wire.Ack`) covers its sequence number, i.e. it is in the server's
  journal. A broker that loses its queue (a fresh broker without persistence, a lost
  volume) then loses nothing: a reading the broker acknowledged but the server has not
  committed ``resend_after_s`` later, while the server keeps acknowledging (a live, not
  retained, acknowledgement arrived), is sent again, oldest first, at most
  ``resend_rate_per_s`` a second.
- ``broker``: on the broker's PUBACK (hop by hop; deleted in batches).
- ``auto``: ``broker`` until the first acknowledgement from the server, then ``server``
  (remembered in the outbox).
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from edge_agent.config import MqttSection, OutboxSection
from edge_agent.outbox import Outbox, is_disk_full
from edge_agent.wire import Ack, Status, WireError, ack_topic, decode_ack, encode_status

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
        self,
        cfg: MqttSection,
        site: str,
        device: str,
        outbox: Outbox,
        status: Callable[[], Status],
        box: OutboxSection | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.cfg = cfg
        self.box = box or OutboxSection()
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
        # End-to-end acknowledgement: the server's messages (payload, retained?), newest last.
        self.ack_topic = ack_topic(site, device)
        self._acks: deque[tuple[bytes, bool]] = deque(maxlen=64)
        self.server_acks = self.box.keep_until == "server" or (
            self.box.keep_until == "auto" and outbox.counter("server_acks") > 0
        )
        self.last_ack: Ack | None = None
        self.acks_received = 0
        self.bad_acks = 0
        self._stuck: dict[str, tuple[int, float]] = {}  # sensor -> (first uncovered row, since)
        self._resend_until = 0  # rows up to this id are being sent again (rate limited)
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self.resent = 0
        self.last_error: str | None = None
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
        self.client.on_message = self._on_message
        self._thread: threading.Thread | None = None

    # -- paho callbacks (network thread) -----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused connection: %s", reason_code)
            return
        self.connects += 1
        if self.box.keep_until != "broker":
            client.subscribe(self.ack_topic, qos=1)
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

    def _on_message(self, client, userdata, msg) -> None:
        # The server's acknowledgement. A retained copy (sent on subscribing) may be old;
        # only a live one proves that the server is committing right now.
        if msg.topic == self.ack_topic:
            self._acks.append((bytes(msg.payload), bool(msg.retain)))
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
            busy = self._inflight or self._unflushed or self._last_id < self._resend_until
            self._wake.wait(ACK_FLUSH_S if busy else 0.5)
            self._wake.clear()
            try:
                self.step()
            except sqlite3.OperationalError as exc:  # e.g. a full SD card: report, keep going
                self.last_error = f"outbox: {exc}"
                if not is_disk_full(exc):
                    log.exception("outbox step failed")
                time.sleep(0.5)

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
        self._take_acks()
        while self._acked_mids:
            row_id = self._inflight.pop(self._acked_mids.popleft(), None)
            # None: the status message, not an outbox row. With the server's acknowledgement
            # the row stays until the server has it; the broker's PUBACK only frees the slot.
            if row_id is not None and not self.server_acks:
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
        if self._last_id < self._resend_until:  # re-sending: paced
            self._tokens = min(
                self.box.resend_rate_per_s,
                self._tokens + (now - self._tokens_at) * self.box.resend_rate_per_s,
            )
            self._tokens_at = now
            room = min(room, int(self._tokens))
            if room <= 0:
                return 0
        rows = self.outbox.after(self._last_id, room)
        for row_id, topic, payload in rows:
            info = self.client.publish(topic, payload, qos=1)
            if info.rc not in (0, 4):  # 4 = NO_CONN: paho keeps it queued for reconnect
                log.warning("paho refused a message (rc=%s); will retry", info.rc)
                break
            self._inflight[info.mid] = row_id
            if row_id <= self._resend_until:
                self.resent += 1
                self._tokens -= 1
            self._last_id = row_id
            self.published += 1
        if rows and len(rows) == room:
            self._wake.set()  # more waiting; loop again once acks free room
        return len(rows)

    # -- end-to-end acknowledgement ---------------------------------------------------
    def _take_acks(self) -> None:
        """Apply the newest acknowledgement: delete covered rows, re-send what is stuck."""
        if not self._acks:
            return
        live = False
        payload = b""
        while self._acks:
            payload, retained = self._acks.popleft()
            live = live or not retained
        try:
            ack = decode_ack(self.ack_topic, payload)
        except WireError as exc:
            self.bad_acks += 1
            log.warning("ignoring a bad acknowledgement from the server: %s", exc)
            return
        self.acks_received += 1
        self.last_ack = ack
        if not self.server_acks and self.box.keep_until == "auto":
            self.server_acks = True
            self.outbox.set_counter("server_acks", 1)
            log.info("the server acknowledges readings: keeping each until it is in the server's journal")
        if not self.server_acks:
            return
        upto = {s: a.upto for s, a in ack.sensors.items()}
        self.outbox.cover(upto)
        if live:
            self._check_stuck(upto, time.monotonic())

    def _check_stuck(self, upto: dict[str, int], now: float) -> None:
        """Rewind to the oldest reading the server has not committed for ``resend_after_s``.

        Only readings the broker already acknowledged count (handed over, no longer in
        flight): the server is alive (this acknowledgement is live) yet did not commit
        them, so the broker lost them (a fresh broker without the server's session, a lost
        queue).
        """
        oldest_inflight = min(self._inflight.values(), default=None)
        rewind_to: int | None = None
        for sensor in self.outbox.sensors():
            first = self.outbox.first_uncovered(sensor, upto.get(sensor, -1))
            if (
                first is None
                or first[0] > self._last_id
                or (oldest_inflight is not None and first[0] >= oldest_inflight)
            ):
                self._stuck.pop(sensor, None)
                continue
            prev = self._stuck.get(sensor)
            if prev is None or prev[0] != first[0]:
                self._stuck[sensor] = (first[0], now)
            elif now - prev[1] >= self.box.resend_after_s:
                rewind_to = first[0] if rewind_to is None else min(rewind_to, first[0])
        if rewind_to is not None:
            log.warning(
                "the server has not committed readings the broker took %.0f s ago (broker lost "
                "its queue?); sending again from outbox row %d",
                self.box.resend_after_s,
                rewind_to,
            )
            self._resend_until = max(self._resend_until, self._last_id)
            self._last_id = rewind_to - 1
            self._stuck.clear()

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
