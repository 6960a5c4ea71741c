"""A paho-mqtt client with a cheaper receive path for the ingest; every paho internal we use.

Stock paho 2.x reads every packet with several small ``recv()`` calls (1 byte of command,
the remaining length byte by byte, then the body), goes back to ``select()`` after each
packet, and builds an :class:`paho.mqtt.client.MQTTMessage` per PUBLISH (topic decoded
for a debug log line, callback lookup by topic match). At tens of thousands of messages
per second that per-message Python work, not the journal, is the ingest's limit.

:class:`FastClient` changes only how bytes come in and how a QoS 0/1 PUBLISH is handed
over; connecting, subscribing, keepalive, reconnects, acknowledgements and every other
packet stay paho's own:

* socket reads are **buffered**: one ``recv(64 KiB)`` serves many packets, and
  ``loop_read`` keeps parsing packets while the buffer holds bytes (paho's loop would
  otherwise wait in ``select()`` for a socket that has nothing new while the next
  packets already sit in the buffer);
* a PUBLISH of QoS 0 or 1 on MQTT 3.1.1 is parsed in place (topic, message id, payload)
  and given to ``on_publish_fast(topic_bytes, payload, mid, qos)`` without an
  ``MQTTMessage``. Acknowledgement stays with the caller (``manual_ack``), exactly as
  before.

It overrides two private methods of paho 2.x (``_sock_recv``, ``_handle_publish``) and
uses a few private attributes (``_in_packet``, ``_sock``, ``_protocol``, ``_manual_ack``,
``_send_puback``); :func:`fast_path_available` and the constructor check them, and when
any is missing (a paho that changed its internals) the client behaves exactly like a stock
client: no buffering, messages through ``on_message``. paho is pinned ``<3`` in
``pyproject.toml``; :func:`missing_internals` lists what a paho lacks (the test suite
requires it empty). This is the only module that touches paho's private members: the
publishers wait on ``on_publish`` events, and :func:`topic_bytes` reads a stock message's
undecoded topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["FastClient", "PublishSink", "fast_path_available", "missing_internals", "topic_bytes"]

log = logging.getLogger("twin_server.ingest.subscriber")

#: ``(topic bytes, payload bytes, message id, qos)``, called in paho's network thread.
PublishSink = Callable[[bytes, bytes, int, int], None]

_READ_BYTES = 65536
_PUBLISH = 0x30


#: paho's private members used here: methods of ``Client`` ...
_CLIENT_METHODS = ("_sock_recv", "_handle_publish", "_packet_read", "_send_puback", "loop_read")
#: ... attributes of a ``Client`` instance, and of an ``MQTTMessage``.
_CLIENT_ATTRIBUTES = ("_in_packet", "_sock", "_protocol", "_manual_ack")
_MESSAGE_ATTRIBUTES = ("_topic",)


def fast_path_available() -> bool:
    """Whether this paho has the private members :class:`FastClient` relies on."""
    probe = mqtt.Client.__dict__
    return all(name in probe for name in _CLIENT_METHODS)


def missing_internals() -> list[str]:
    """paho's private members this module uses that this paho lacks (empty on the pinned paho).

    Each missing one makes this module fall back to stock paho behaviour; the test suite
    fails on any, so a paho upgrade that changes them is noticed.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    message = mqtt.MQTTMessage(topic=b"t")
    return (
        [f"Client.{n}" for n in _CLIENT_METHODS if n not in mqtt.Client.__dict__]
        + [f"Client().{n}" for n in _CLIENT_ATTRIBUTES if not hasattr(client, n)]
        + [
            f"MQTTMessage().{n}"
            for n in _MESSAGE_ATTRIBUTES
            if not isinstance(getattr(message, n, None), bytes)
        ]
    )


def topic_bytes(msg: mqtt.MQTTMessage) -> bytes:
    """A message's topic as received (bytes), without paho decoding it to text first."""
    raw = getattr(msg, "_topic", None)
    return raw if isinstance(raw, bytes) else msg.topic.encode()


class FastClient(mqtt.Client):
    """paho ``Client`` with buffered socket reads and a direct PUBLISH hand-over.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`paho.mqtt.client.Client`.
    on_publish_fast : callable, optional
        Receives every QoS 0/1 PUBLISH as ``(topic, payload, mid, qos)`` instead of
        ``on_message`` (which still gets QoS 2 and anything on MQTT 5).
    buffered : bool
        False gives stock paho behaviour (for comparison in ``bench/ingest``).
    """

    def __init__(
        self, *args: Any, on_publish_fast: PublishSink | None = None, buffered: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._fast_ok = (
            buffered and fast_path_available() and all(hasattr(self, name) for name in _CLIENT_ATTRIBUTES)
        )
        if buffered and not self._fast_ok:
            log.warning(
                "paho %s lacks the internals of the fast receive path; using stock paho",
                getattr(mqtt, "__version__", "?"),
            )
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None
        self._sink = on_publish_fast if self._fast_ok else None

    @property
    def fast(self) -> bool:
        """Whether the buffered, direct path is in use (False: stock paho)."""
        return self._fast_ok

    # -- buffered reads -----------------------------------------------------------------
    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._fast_ok:
            return super()._sock_recv(bufsize)
        if self._sock is not self._rsock:
            # A new connection: whatever the old socket left in the buffer is not ours.
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        pos = self._rpos
        buf = self._rbuf
        if pos >= len(buf):
            data = super()._sock_recv(_READ_BYTES)  # BlockingIOError when nothing is there
            if len(data) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return data
            self._rbuf, self._rpos = data, bufsize
            return data[:bufsize]
        end = pos + bufsize
        self._rpos = end if end < len(buf) else len(buf)
        return buf[pos:end]

    def buffered_bytes(self) -> int:
        """Bytes received from the socket and not yet parsed."""
        return len(self._rbuf) - self._rpos if self._sock is self._rsock else 0

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        if not self._fast_ok:
            return rc
        # Parse what is already buffered now: select() would not wake for it.
        while rc == mqtt.MQTT_ERR_SUCCESS and self._sock is not None and self.buffered_bytes() > 0:
            rc = super().loop_read(max_packets)
        return rc

    # -- PUBLISH hand-over ----------------------------------------------------------------
    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        sink = self._sink
        packet = self._in_packet
        command = packet["command"]
        qos = (command & 0x06) >> 1
        if sink is None or qos > 1 or self._protocol == mqtt.MQTTv5 or (command & 0xF0) != _PUBLISH:
            return super()._handle_publish()
        body = bytes(packet["packet"])
        if len(body) < 2:
            return super()._handle_publish()  # malformed: let paho report it
        topic_len = (body[0] << 8) | body[1]
        pos = 2 + topic_len
        if qos:
            if len(body) < pos + 2:
                return super()._handle_publish()
            mid = (body[pos] << 8) | body[pos + 1]
            pos += 2
        else:
            mid = 0
        sink(body[2 : 2 + topic_len], body[pos:], mid, qos)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return mqtt.MQTT_ERR_SUCCESS
