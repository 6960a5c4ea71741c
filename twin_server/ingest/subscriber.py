"""MQTT ingest: wire-contract messages from the broker into the journal, nothing lost.

paho-mqtt runs the network loop in its own thread (measured ~2x faster than aiomqtt for a
subscriber on this class of machine). Each message is queued with its arrival time; a writer
thread drains the queue in batches, decodes every message with :func:`edge_agent.wire.decode`,
commits readings, dead letters and statuses in one SQLite transaction, and only then sends
the PUBACKs (``manual_ack``). The session is persistent (fixed client id,
``clean_session=False``, QoS 1 subscriptions), so after a crash or a ``kill -9`` the broker
redelivers every message that was not acknowledged, and the journal's unique index drops the
ones that had already been committed.

The paho client is :class:`twin_server.ingest.paho_client.FastClient` (buffered reads, PUBLISH
handed over without ``MQTTMessage``). With ``share_group``, several processes share a
site's readings through an MQTT shared subscription and one journal (``docs/scale-out.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import sqlite3
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import paho.mqtt.client as mqtt

from edge_agent.wire import Reading, Status, WireError, decode, subscription_topics
from twin_server.ingest.paho_client import FastClient, topic_bytes
from twin_server.store.journal import UNSTORABLE, DeadLetter, Journal

if TYPE_CHECKING:  # importing twin_server.auth at run time would pull in FastAPI
    from twin_server.auth.device_scope import DeviceScope

__all__ = [
    "ClockOffsets",
    "ClockSuspects",
    "Ingest",
    "IngestStats",
    "RateLimitedLog",
    "ScopeFilter",
    "check_share_group",
    "classify",
]

log = logging.getLogger("twin_server.ingest.subscriber")

Listener = Callable[[Sequence[tuple[Reading, int]], Sequence[tuple[Status, int]]], None]


class ScopeFilter:
    """Device scope check on the ingest's hot path.

    Every ``(site, device, kind, source)`` a device of the site may publish is precomputed
    into one set, so an in-scope reading costs one tuple lookup; only a reading outside it
    goes through :meth:`DeviceScope.check` for the reason.

    Parameters
    ----------
    scope : DeviceScope
        The site's publishing devices (``DeviceScope.of(site)``).
    """

    def __init__(self, scope: DeviceScope) -> None:
        from twin_server.auth.device_scope import MACHINE_KINDS

        self.scope = scope
        site = scope.site_id
        allowed: set[tuple[str, str, str, str]] = set()
        for dev, machine in scope.machine_of_device.items():
            allowed.update((site, dev, kind, machine) for kind in MACHINE_KINDS)
        for dev, receivers in scope.receivers_of_device.items():
            allowed.update((site, dev, "rssi", rx) for rx in receivers)
        allowed.update((site, loc, "zone", loc) for loc in scope.locators)
        self._allowed = frozenset(allowed)
        self._devices = frozenset({*scope.machine_of_device, *scope.receivers_of_device, *scope.locators})

    def reading(self, r: Reading) -> str | None:
        """Why ``r`` is outside its device's site and station (None: in scope)."""
        if (r.site, r.device, r.kind, r.source) in self._allowed:
            return None
        return self.scope.check(r)  # the authority; the set only short-cuts the common case

    def status(self, s: Status) -> str | None:
        """A status is in scope when its site is ours and its device one of the site's."""
        if s.site != self.scope.site_id:
            return "foreign_site"
        return None if s.device in self._devices else "unknown_device"


def _scope_detail(item: Reading | Status, reason: str) -> str:
    if isinstance(item, Reading):
        return (
            f"{reason}: device {item.device!r} of site {item.site!r} may not publish "
            f"{item.kind} for source {item.source!r}"
        )
    return f"{reason}: status of device {item.device!r} of site {item.site!r}"


def classify(
    topic: bytes | str, payload: bytes, received_ns: int, scope: ScopeFilter | None = None
) -> Reading | Status | DeadLetter:
    """Decode one message; anything that breaks the contract becomes a :class:`DeadLetter`.

    Never raises: a bad topic encoding, bad JSON or an out-of-contract field all end up as
    a dead letter whose ``reason`` is the :class:`WireError` reason. With a ``scope``, a
    valid reading or status from outside its device's site and station is a dead letter
    too, with the :meth:`DeviceScope.check` reason (``foreign_machine``, ``unknown_device``...).
    """
    if isinstance(topic, bytes | bytearray):
        try:
            topic_text = bytes(topic).decode("utf-8")
        except UnicodeDecodeError:
            return DeadLetter(
                bytes(topic).decode("utf-8", "replace"),
                bytes(payload),
                "bad_topic",
                "topic is not UTF-8",
                received_ns,
            )
    else:
        topic_text = topic
    try:
        item = decode(topic_text, payload)
    except WireError as exc:
        return DeadLetter(topic_text, bytes(payload), exc.reason, exc.detail, received_ns)
    if scope is not None:
        reason = scope.reading(item) if isinstance(item, Reading) else scope.status(item)
        if reason is not None:
            return DeadLetter(topic_text, bytes(payload), reason, _scope_detail(item, reason), received_ns)
    return item


def check_share_group(name: str) -> str:
    """Return ``name`` if it can be an MQTT shared-subscription group, else raise ValueError."""
    # ':' is refused by HiveMQ; '/', '+', '#' by MQTT itself.
    if not name or any(c in name for c in "/+#:") or len(name) > 64 or not name.isprintable():
        raise ValueError(f"share group {name!r}: 1-64 printable characters without '/', '+', '#' or ':'")
    return name


class RateLimitedLog:
    """Logs at most one warning per reason per ``interval_s``, saying how many were suppressed."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warn(self, reason: str, message: str, now_s: float | None = None) -> bool:
        """Log ``message`` unless ``reason`` was logged less than ``interval_s`` ago."""
        now_s = time.monotonic() if now_s is None else now_s
        last = self._last.get(reason)
        if last is not None and now_s - last < self._interval_s:
            self._suppressed[reason] += 1
            return False
        more = self._suppressed.pop(reason, 0)
        suffix = f" ({more} more like it since the last warning)" if more else ""
        self._log.warning("dead letter [%s] %s%s", reason, message, suffix)
        self._last[reason] = now_s
        return True


class ClockOffsets:
    """Per-device clock offset estimate from arrival time minus device time.

    Network and broker delay are >= 0, so ``arrival - device_time = offset + delay`` and a
    low quantile over a window of recent messages approaches the offset from above; a
    store-and-forward backlog only adds large delays, which the quantile ignores.

    Parameters
    ----------
    window : int
        Messages kept per device.
    quantile : float
        The low quantile taken (0.05 by default).
    """

    def __init__(self, window: int = 1000, quantile: float = 0.05) -> None:
        self._window = window
        self._quantile = quantile
        self._samples: dict[tuple[str, str], deque[int]] = {}
        self._lock = threading.Lock()

    def add(self, site: str, device: str, t_ns: int, received_ns: int) -> None:
        """Record one message's arrival."""
        key = (site, device)
        with self._lock:
            d = self._samples.get(key)
            if d is None:
                d = self._samples[key] = deque(maxlen=self._window)
            d.append(received_ns - t_ns)

    def estimates(self) -> dict[str, dict[str, Any]]:
        """``{"site/device": {"offset_s", "samples", "min_delay_s"}}``; positive = device clock behind."""
        with self._lock:
            items = [(k, np.fromiter(v, dtype="int64", count=len(v))) for k, v in self._samples.items()]
        out = {}
        for (site, device), arr in items:
            out[f"{site}/{device}"] = {
                "site": site,
                "device": device,
                "offset_s": float(np.quantile(arr, self._quantile)) / 1e9,
                "min_s": float(arr.min()) / 1e9,
                "samples": int(arr.size),
            }
        return out


class ClockSuspects:
    """Devices whose messages carry a device time far from their arrival.

    A reading stamped later than its arrival (beyond the tolerance) proves a clock ahead. One
    stamped earlier may be a clock behind or a store-and-forward backlog from an outage; the
    device's live status message (sent on connect, stamped when sent) tells which. Both kinds of
    reading are journalled and kept out of the live view; ``clock_wrong`` flags the device.
    """

    MAX_DEVICES = 1000  # bounded: hostile device ids must not grow it forever

    def __init__(self, tolerance_ns: int) -> None:
        self.tolerance_ns = tolerance_ns
        self._by_device: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _entry(self, site: str, device: str) -> dict[str, Any] | None:
        key = f"{site}/{device}"
        got = self._by_device.get(key)
        if got is None and len(self._by_device) < self.MAX_DEVICES:
            got = self._by_device[key] = {
                "site": site,
                "device": device,
                "readings": 0,
                "ahead": 0,
                "offset_s": None,
                "status_offset_s": None,
            }
        return got

    def add_reading(self, r: Reading, received_ns: int) -> None:
        """Count one reading outside the tolerance (offset ``received_ns - r.t_ns``)."""
        with self._lock:
            got = self._entry(r.site, r.device)
            if got is None:
                return
            got["readings"] += 1
            got["ahead"] += r.t_ns > received_ns
            got["offset_s"] = (received_ns - r.t_ns) / 1e9  # + = device time behind arrival
            got["last_received_ns"] = received_ns

    def add_status(self, s: Status, received_ns: int) -> None:
        """Note the clock a live status shows (kept for devices already counted, or off itself)."""
        if s.t_ns is None:
            return
        offset_ns = received_ns - s.t_ns
        with self._lock:
            key = f"{s.site}/{s.device}"
            if key not in self._by_device and abs(offset_ns) <= self.tolerance_ns:
                return
            got = self._entry(s.site, s.device)
            if got is not None:
                got["status_offset_s"] = offset_ns / 1e9

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{"site/device": {"readings", "ahead", "offset_s", "status_offset_s", "clock_wrong"}}``."""
        tol_s = self.tolerance_ns / 1e9
        with self._lock:
            out = {k: dict(v) for k, v in self._by_device.items()}
        for v in out.values():
            status_off = v["status_offset_s"]
            v["clock_wrong"] = v["ahead"] > 0 or (status_off is not None and abs(status_off) > tol_s)
        return out


@dataclass
class IngestStats:
    """Counters reported by ``/health``."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    statuses: int = 0
    dead_letters: int = 0
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    connects: int = 0
    connected: bool = False
    last_error: str | None = None
    last_received_ns: int | None = None
    last_commit_ns: int | None = None
    commit_failures: int = 0
    failing_since_ns: int | None = None  # set while journal commits fail (nothing is acknowledged)

    @property
    def commits_failing(self) -> bool:
        """Whether the journal is refusing commits right now."""
        return self.failing_since_ns is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "statuses": self.statuses,
            "dead_letters": self.dead_letters,
            "dead_by_reason": dict(self.dead_by_reason),
            "batches": self.batches,
            "connects": self.connects,
            "connected": self.connected,
            "last_error": self.last_error,
            "last_received_ns": self.last_received_ns,
            "last_commit_ns": self.last_commit_ns,
            "commit_failures": self.commit_failures,
            "commits_failing": self.commits_failing,
            "failing_since_ns": self.failing_since_ns,
        }


_STOP = object()


class Ingest:
    """Subscribes to the wire contract's topics and journals every message.

    Parameters
    ----------
    journal : Journal
        Where readings, dead letters and statuses are committed.
    host, port : str, int
        The broker.
    site : str
        Site id to subscribe to (``+`` for every site).
    client_id : str
        Fixed id of the persistent session.
    max_batch : int
        Messages per transaction at most.
    linger_s : float
        Under load (8+ messages waiting), wait this long once for more before committing.
    scope : DeviceScope, optional
        The site's publishing devices: readings and statuses from outside a device's own
        site and station become dead letters (counted per reason). None: no check.
    share_group : str, optional
        Scale-out: take the readings through the MQTT shared subscription
        ``$share/GROUP/twin/v1/SITE/+/+/+``, so that each reading goes to one of the group's
        processes (each with its own ``client_id`` and persistent session, all writing one
        journal). Statuses keep a normal subscription (retained messages are not delivered
        through shared subscriptions), so every process sees them.
    clock_tolerance_s : float or None
        A reading whose device time is further than this from its arrival is journalled as
        usual but counted per device (:class:`ClockSuspects`, on ``/health`` and the
        commissioning page) and not passed to the listeners (the live view), so a device
        clock that lies cannot steer what is shown as now. None (the default here; the
        server's settings default to one day): no check, as for simulated time.
    fast_mqtt : bool
        Buffered socket reads and a direct PUBLISH hand-over
        (:class:`twin_server.ingest.paho_client.FastClient`); False: stock paho.
    listeners : list
        Called from the writer thread after each commit with the batch's valid readings
        and statuses (a redelivered duplicate may be among them: live views must be
        idempotent per sensor and seq). Keep them quick.
    """

    def __init__(
        self,
        journal: Journal,
        host: str,
        port: int,
        *,
        site: str = "+",
        client_id: str = "twin-server",
        keepalive_s: int = 30,
        max_batch: int = 2000,
        linger_s: float = 0.005,
        listeners: Sequence[Listener] = (),
        username: str | None = None,
        password: str | None = None,
        scope: DeviceScope | None = None,
        share_group: str | None = None,
        clock_tolerance_s: float | None = None,
        fast_mqtt: bool = True,
    ) -> None:
        if share_group is not None:
            check_share_group(share_group)
        self.journal = journal
        self.scope = None if scope is None else ScopeFilter(scope)
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.site = site
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.listeners = list(listeners)
        self.fast_mqtt = fast_mqtt
        self.share_group = share_group
        self.stats = IngestStats()
        self.clock = ClockOffsets()
        self.clock_tolerance_ns = None if clock_tolerance_s is None else round(clock_tolerance_s * 1e9)
        self.clock_suspects = ClockSuspects(self.clock_tolerance_ns or 0)
        self._warn = RateLimitedLog(log)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._disconnected = threading.Event()
        self._disconnected.set()  # until the first connect
        #: Set once the broker granted every subscription of the current connection.
        self.subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._client = self._make_client()

    # -- MQTT -----------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = FastClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,  # also what amqtt (the demo's embedded broker) speaks
            manual_ack=True,
            on_publish_fast=self._on_publish_fast,
            buffered=self.fast_mqtt,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.stats.last_error = f"connect refused: {reason}"
            log.error("broker refused the connection: %s", reason)
            return
        self.stats.connected = True
        self.stats.connects += 1
        self._disconnected.clear()
        self.subscribed.clear()
        # Subscribing again on a resumed session is harmless and covers a broker restart
        # that lost its sessions.
        _rc, self._subscribe_mid = client.subscribe([(t, 1) for t in self.topics()])
        log.info(
            "connected to %s:%s (session present: %s)",
            self.host,
            self.port,
            getattr(flags, "session_present", None),
        )

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            self.stats.last_error = f"subscription refused: {', '.join(refused)}"
            log.error("broker refused a subscription: %s", ", ".join(refused))
            return
        self.subscribed.set()

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        """Wait until the broker granted every subscription (True), or ``timeout_s`` passed."""
        return self.subscribed.wait(timeout_s)

    def topics(self) -> list[str]:
        """The topic filters subscribed (QoS 1)."""
        topics = subscription_topics(self.site)
        if not self.share_group:
            return topics
        return [t if t.endswith("/status") else f"$share/{self.share_group}/{t}" for t in topics]

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.stats.connected = False
        self.subscribed.clear()
        self._disconnected.set()
        if reason is not None and getattr(reason, "is_failure", False):
            self.stats.last_error = f"disconnected: {reason}"
            log.warning("disconnected from broker: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Runs in paho's network thread: only stamp and queue, the writer does the rest.
        self._queue.put((time.time_ns(), topic_bytes(msg), msg.payload, msg.mid, msg.qos))

    def _on_publish_fast(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        # FastClient's hand-over of a QoS 0/1 PUBLISH, in paho's network thread.
        self._queue.put((time.time_ns(), topic, payload, mid, qos))

    def start(self) -> None:
        """Start the writer thread and connect (retrying in the background until the broker is up)."""
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self._client.loop_start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Drain what was received, commit and acknowledge it, then disconnect.

        The writer finishes first, while the connection is still up, so the PUBACKs of its
        last batch reach the broker (disconnecting first made the broker redeliver them).
        Messages arriving meanwhile are queued behind the stop and never acknowledged: the
        broker redelivers them to the next session.
        """
        self._queue.put(_STOP)
        if self._writer is not None:
            self._writer.join(timeout_s)
        try:
            self._client.disconnect()
        except Exception:
            pass
        else:  # paho writes the queued PUBACKs, then DISCONNECT; stopping its loop sooner drops them
            self._disconnected.wait(timeout_s)
        self._client.loop_stop()
        self.stats.connected = False

    @property
    def connected(self) -> bool:
        """Whether the MQTT connection is up."""
        return self._client.is_connected()

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> bool:
        """Publish a server message (QoS 1) on the ingest's connection; False when not connected."""
        if not self._client.is_connected():
            return False
        return self._client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    # -- writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            lingered = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    # Under load, wait a moment once for more: a transaction costs about as
                    # much as a few dozen rows, so bigger batches raise throughput a lot,
                    # for a few ms of latency. A lone message is committed at once.
                    if lingered or len(batch) < 8:
                        break
                    lingered = True
                    time.sleep(self.linger_s)
                    continue
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._commit_with_retry(batch)
            if stop:
                return

    def _commit_with_retry(self, batch: list[tuple[int, bytes, bytes, int, int]]) -> None:
        delay_s = 0.1
        while True:
            try:
                self._commit(batch)
            except Exception as exc:
                # Nothing was acknowledged, so even if we die here the broker redelivers.
                st = self.stats
                st.last_error = f"journal: {type(exc).__name__}: {exc}"
                st.commit_failures += 1
                if st.failing_since_ns is None:
                    st.failing_since_ns = time.time_ns()
                log.exception("journal write failed; retrying in %.1f s", delay_s)
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            self.stats.failing_since_ns = None
            return

    def _commit(self, batch: list[tuple[int, bytes, bytes, int, int]]) -> None:
        scope = self.scope
        msgs = [
            (classify(topic, payload, received_ns, scope), received_ns, topic, payload)
            for received_ns, topic, payload, _mid, _qos in batch
        ]
        stored = self._store(msgs)
        # Committed: now (and only now) the broker may forget these messages. PUBACKs go
        # in arrival order, as MQTT 3.1.1 requires.
        _ack_all(self._client, [(mid, qos) for _rx, _topic, _payload, mid, qos in batch if qos > 0])
        st = self.stats
        st.received += len(batch)
        st.accepted += stored.inserted
        st.duplicates += len(stored.readings) - stored.inserted
        st.statuses += len(stored.statuses)
        st.dead_letters += len(stored.dead)
        st.batches += 1
        st.last_received_ns = batch[-1][0]
        st.last_commit_ns = time.time_ns()
        for d in stored.dead:
            st.dead_by_reason[d.reason] += 1
            self._warn.warn(d.reason, f"{d.topic[:120]}: {d.detail[:200]}")
        live = stored.readings
        tolerance_ns = self.clock_tolerance_ns
        suspect = False
        for r, rx in stored.readings:
            self.clock.add(r.site, r.device, r.t_ns, rx)
            if tolerance_ns is not None and abs(rx - r.t_ns) > tolerance_ns:
                self.clock_suspects.add_reading(r, rx)
                suspect = True
        if suspect:  # journalled, but kept out of the live view
            live = [(r, rx) for r, rx in live if abs(rx - r.t_ns) <= tolerance_ns]
        if tolerance_ns is not None:
            for s, rx in stored.statuses:
                self.clock_suspects.add_status(s, rx)
        for listener in self.listeners:
            try:
                listener(live, stored.statuses)
            except Exception:
                log.exception("ingest listener failed")

    def _store(self, msgs: list[_Message]) -> _Stored:
        """Commit decoded messages; a message the journal refuses becomes an ``unstorable`` dead letter.

        The batch is written in one transaction. If the journal refuses it for its content
        (not for its environment: a full disk or a lock is raised, so the caller retries
        without acknowledging), the batch is halved until the offending message is alone;
        that message is dead-lettered with the error, so one bad reading cannot stop ingest.
        """
        stored = _Stored.of(msgs)
        try:
            inserted = self.journal.write_batch(stored.readings, stored.dead, stored.statuses).inserted
        except Exception as exc:
            if _environmental(exc):
                raise
            if len(msgs) == 1:
                return self._store_unstorable(msgs[0], exc)
            half = len(msgs) // 2
            return _Stored.join(self._store(msgs[:half]), self._store(msgs[half:]))
        return dataclasses.replace(stored, inserted=inserted)

    def _store_unstorable(self, msg: _Message, exc: Exception) -> _Stored:
        _item, received_ns, raw_topic, payload = msg
        topic = raw_topic if isinstance(raw_topic, str) else bytes(raw_topic).decode("utf-8", "replace")
        dead = DeadLetter(
            topic, bytes(payload), UNSTORABLE, f"{type(exc).__name__}: {exc}"[:500], received_ns
        )
        self.journal.write_batch((), [dead])  # if even this fails, the caller retries the batch
        log.error(
            "message on %s cannot be stored (%s: %s); dead-lettered",
            topic[:120],
            type(exc).__name__,
            str(exc)[:200],
        )
        return _Stored(readings=[], statuses=[], dead=[dead], inserted=0)


# A decoded message with its arrival time and raw topic and payload.
_Message = tuple["Reading | Status | DeadLetter", int, "bytes | str", bytes]


@dataclass(frozen=True, slots=True)
class _Stored:
    """What a committed (part of a) batch held."""

    readings: list[tuple[Reading, int]]
    statuses: list[tuple[Status, int]]
    dead: list[DeadLetter]
    inserted: int = 0

    @classmethod
    def of(cls, msgs: Sequence[_Message]) -> _Stored:
        readings, statuses, dead = [], [], []
        for item, rx, _topic, _payload in msgs:
            if isinstance(item, Reading):
                readings.append((item, rx))
            elif isinstance(item, Status):
                statuses.append((item, rx))
            else:
                dead.append(item)
        return cls(readings, statuses, dead)

    @staticmethod
    def join(a: _Stored, b: _Stored) -> _Stored:
        return _Stored(
            a.readings + b.readings, a.statuses + b.statuses, a.dead + b.dead, a.inserted + b.inserted
        )


def _environmental(exc: BaseException) -> bool:
    """Whether a journal error comes from where it is written (disk full, I/O, a lock), not
    from what is written: such a batch is retried as it is, never dead-lettered."""
    return isinstance(exc, sqlite3.OperationalError | OSError | MemoryError)


_PUBACK = 0x40


def _ack_all(client: mqtt.Client, acks: list[tuple[int, int]]) -> None:
    """Send the PUBACKs of a committed batch, in order.

    QoS 1 acknowledgements are queued as one write of back-to-back PUBACK packets (4 bytes
    each) instead of one ``client.ack`` per message: each ``ack`` from outside paho's
    network thread takes a lock and wakes the loop through a socket, about a sixth of the
    ingest's CPU per message. Falls back to ``client.ack`` if paho's internals differ.
    """
    queue_packet = getattr(client, "_packet_queue", None)
    if queue_packet is None or any(qos != 1 for _, qos in acks) or not client.is_connected():
        for mid, qos in acks:
            client.ack(mid, qos)
        return
    for i in range(0, len(acks), 4096):
        chunk = acks[i : i + 4096]
        packet = b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid, _ in chunk)
        queue_packet(_PUBACK, packet, chunk[-1][0], 1)
