"""Wire contract between edge agents and the twin server (MQTT topics and JSON payloads).

Standard library only: the server imports this module, and so does the Pi agent.
The contract is documented for integrators in ``docs/wire-contract.md``; keep both in step.

Topics
------
``twin/v1/{site}/{device}/{kind}/{sensor}``
    One reading (QoS 1, not retained).
``twin/v1/{site}/{device}/status``
    The device's availability (QoS 1, retained; the MQTT last will publishes ``offline``).
``twin/v1/{site}/{device}/ack``
    Published by the server (QoS 1, retained): per sensor, the highest sequence number up to
    which every reading is committed to its journal (:class:`Ack`). The agent keeps each
    reading until this covers it.

``site``, ``device``, ``kind`` and ``sensor`` are ids: 1 to 64 characters from
``A-Z a-z 0-9 _ . -``; ``status`` is not a valid kind.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

from twin_contract import vocabulary as vocab

__all__ = [
    "KINDS",
    "TOPIC_ROOT",
    "UNITS",
    "Ack",
    "Reading",
    "SensorAck",
    "Status",
    "WireError",
    "ack_topic",
    "decode",
    "decode_ack",
    "encode_ack",
    "encode_reading",
    "encode_status",
    "reading_topic",
    "status_topic",
    "subscription_topics",
]

WIRE_VERSION: Final = 1
TOPIC_ROOT: Final = "twin/v1"
_ROOT_PARTS: Final = TOPIC_ROOT.split("/")
MAX_PAYLOAD_BYTES: Final = 4096

#: Reading kinds. The first five are the kinds of the readings CSV (docs/analyze-contract.md);
#: ``light_state`` and ``pressure_state`` are edge-detected state changes (1 = lamp on /
#: pressure away from its normal level, 0 = back), published the moment they are detected.
KINDS: Final = vocab.KINDS

#: Units each kind may carry.
UNITS: Final[dict[str, frozenset[str]]] = {
    "light": frozenset({"lux", "raw"}),
    "pressure": frozenset({"kPa", "raw"}),
    "switch": frozenset({"bool"}),
    "rssi": frozenset({"dBm"}),
    "zone": frozenset({"zone"}),
    "light_state": frozenset({"bool"}),
    "pressure_state": frozenset({"bool"}),
}

SWITCH_CHANNELS: Final = frozenset(vocab.SWITCH_TASKS)

_ID = re.compile(vocab.ID_PATTERN)
_CHANNEL = re.compile(vocab.CHANNEL_PATTERN)
# Device time must be plausible (2000..2200). Every integer the decoder accepts must fit where
# it is stored: SQLite and InfluxDB hold signed 64-bit integers, and one unstorable value in a
# batch would fail the whole commit.
_T_NS_MIN: Final = vocab.T_NS_MIN
_T_NS_MAX: Final = vocab.T_NS_MAX
SEQ_MAX: Final = vocab.SEQ_MAX
COUNT_MAX: Final = 1_000_000  # advertisements in one window (10 Hz x 1 s is typical)
WINDOW_MS_MAX: Final = 86_400_000  # one day
AGENT_VERSION_MAX_CHARS: Final = 64


class WireError(ValueError):
    """A topic or payload that breaks the wire contract; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample or event from one sensor, stamped on the device when it was taken.

    Parameters
    ----------
    site, device, sensor : str
        Where it comes from; ``(site, device, sensor)`` names a sensor, ``seq`` counts its
        messages.
    kind : str
        One of :data:`KINDS`.
    t_ns : int
        Device time at sampling, UTC epoch nanoseconds.
    seq : int
        Per-sensor sequence number, from 0, +1 per message; survives agent restarts.
    source : str
        Machine id (light, pressure, switch, *_state), receiver id (rssi) or locator id (zone).
    channel : str
        Switch task name (switch), beacon id (rssi, zone), else empty.
    value : float or str
        Level (lux/kPa/raw), 1/0 (switch, *_state), mean RSSI dBm (rssi), or for ``zone`` a
        machine id or ``"none"``.
    unit : str
        One of ``UNITS[kind]``.
    count, rssi_max_dbm, window_ms : optional
        For ``rssi``: advertisements aggregated in the window, their maximum RSSI, window
        length.
    """

    site: str
    device: str
    sensor: str
    kind: str
    t_ns: int
    seq: int
    source: str
    value: float | str
    unit: str
    channel: str = ""
    count: int | None = None
    rssi_max_dbm: float | None = None
    window_ms: int | None = None

    @property
    def t_s(self) -> float:
        """Device time in float epoch seconds."""
        return self.t_ns / 1e9

    def check(self) -> Reading:
        """Return ``self`` if it satisfies the contract, else raise :class:`WireError`."""
        for name in ("site", "device", "sensor", "source"):
            _check_id(name, getattr(self, name))
        if self.kind not in KINDS:
            raise WireError("bad_kind", f"unknown kind {_short(self.kind)}")
        if not _CHANNEL.match(self.channel):
            raise WireError("bad_channel", f"channel {_short(self.channel)} is not an id")
        if isinstance(self.t_ns, bool) or not isinstance(self.t_ns, int):
            raise WireError("bad_time", "t_ns must be an integer")
        _check_t_ns(self.t_ns)
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or not 0 <= self.seq <= SEQ_MAX:
            raise WireError("bad_seq", f"seq must be an integer in 0..2^63-1, got {_short(self.seq)}")
        if self.unit not in UNITS[self.kind]:
            raise WireError("bad_unit", f"unit {_short(self.unit)} is not one of {sorted(UNITS[self.kind])}")
        _check_value(self)
        if self.kind == "switch" and self.channel not in SWITCH_CHANNELS:
            raise WireError("bad_channel", f"switch channel {_short(self.channel)} is not a task")
        if self.kind in ("rssi", "zone") and not self.channel:
            raise WireError("bad_channel", f"{self.kind} readings need the beacon id as channel")
        _check_aggregate(self)
        return self


@dataclass(frozen=True, slots=True)
class Status:
    """A device's availability message (retained)."""

    site: str
    device: str
    online: bool
    t_ns: int | None = None
    clock_synced: bool | None = None
    agent_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def reading_topic(reading: Reading) -> str:
    """MQTT topic of a reading."""
    return f"{TOPIC_ROOT}/{reading.site}/{reading.device}/{reading.kind}/{reading.sensor}"


def status_topic(site: str, device: str) -> str:
    """MQTT topic of a device's retained availability status."""
    _check_id("site", site)
    _check_id("device", device)
    return f"{TOPIC_ROOT}/{site}/{device}/status"


def subscription_topics(site: str = "+") -> list[str]:
    """Topic filters a server subscribes to for one site (``+`` for all)."""
    return [f"{TOPIC_ROOT}/{site}/+/+/+", f"{TOPIC_ROOT}/{site}/+/status"]


def encode_reading(reading: Reading) -> tuple[str, bytes]:
    """Validate a reading and return its ``(topic, payload)``."""
    reading.check()
    body: dict[str, Any] = {
        "v": WIRE_VERSION,
        "t_ns": reading.t_ns,
        "seq": reading.seq,
        "source": reading.source,
        "channel": reading.channel,
        "value": reading.value,
        "unit": reading.unit,
    }
    if reading.count is not None:
        body["count"] = reading.count
    if reading.rssi_max_dbm is not None:
        body["rssi_max_dbm"] = reading.rssi_max_dbm
    if reading.window_ms is not None:
        body["window_ms"] = reading.window_ms
    return reading_topic(reading), json.dumps(body, separators=(",", ":")).encode()


def encode_status(status: Status) -> tuple[str, bytes]:
    """Return the ``(topic, payload)`` of an availability status."""
    body: dict[str, Any] = {"v": WIRE_VERSION, "state": "online" if status.online else "offline"}
    if status.t_ns is not None:
        body["t_ns"] = status.t_ns
    if status.clock_synced is not None:
        body["clock_synced"] = status.clock_synced
    if status.agent_version is not None:
        body["agent_version"] = status.agent_version
    body.update(status.extra)
    return status_topic(status.site, status.device), json.dumps(body).encode()


def decode(topic: str, payload: bytes | bytearray | str) -> Reading | Status:
    """Decode one MQTT message.

    Raises
    ------
    WireError
        For anything that is not a valid message of this contract; never another error.
    """
    try:
        return _decode(topic, payload)
    except WireError:
        raise
    except Exception as exc:  # defensive: any surprise is still the contract's error
        raise WireError("malformed", f"{type(exc).__name__}: {exc}") from None


def _decode(topic: str, payload: bytes | bytearray | str) -> Reading | Status:
    if not isinstance(topic, str):
        raise WireError("bad_topic", "topic must be text")
    parts = topic.split("/")
    if parts[:2] != _ROOT_PARTS:
        raise WireError("bad_topic", f"topic {topic[:120]!r} is not under {TOPIC_ROOT}/")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError("too_large", f"payload of {len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    body = _json_object(payload)
    if body.get("v") != WIRE_VERSION:
        raise WireError("bad_version", f"payload version {_short(body.get('v'))} is not {WIRE_VERSION}")
    if len(parts) == 5 and parts[4] == "status":
        return _decode_status(parts[2], parts[3], body)
    if len(parts) != 6:
        raise WireError("bad_topic", f"topic {topic[:120]!r} needs {TOPIC_ROOT}/site/device/kind/sensor")
    site, device, kind, sensor = parts[2:]
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError("bad_value", f"value must be a number or text, got {type(value).__name__}")
    # Fast path for the common message (ingest decodes tens of thousands a second): the
    # required fields have their exact JSON types and no aggregate fields; anything else
    # takes the field-by-field path below, which names the first bad field.
    get = body.get
    t_ns, seq, source, unit, channel = get("t_ns"), get("seq"), get("source"), get("unit"), get("channel", "")
    if (
        type(t_ns) is int
        and type(seq) is int
        and type(source) is str
        and type(unit) is str
        and type(channel) is str
        and "count" not in body
        and "rssi_max_dbm" not in body
        and "window_ms" not in body
    ):
        return Reading(
            site,
            device,
            sensor,
            kind,
            t_ns,
            seq,
            source,
            float(value) if type(value) is int else value,
            unit,
            channel,
        ).check()
    return Reading(
        site=site,
        device=device,
        sensor=sensor,
        kind=kind,
        t_ns=_field(body, "t_ns", int),
        seq=_field(body, "seq", int),
        source=_field(body, "source", str),
        channel=_field(body, "channel", str, default=""),
        value=float(value) if isinstance(value, int) else value,
        unit=_field(body, "unit", str),
        count=_field(body, "count", int, default=None),
        rssi_max_dbm=_opt_float(body, "rssi_max_dbm"),
        window_ms=_field(body, "window_ms", int, default=None),
    ).check()


def _decode_status(site: str, device: str, body: dict[str, Any]) -> Status:
    _check_id("site", site)
    _check_id("device", device)
    state = body.get("state")
    if state not in ("online", "offline"):
        raise WireError("bad_status", f"state must be online or offline, got {_short(state)}")
    known = {"v", "state", "t_ns", "clock_synced", "agent_version"}
    clock = body.get("clock_synced")
    t_ns = _field(body, "t_ns", int, default=None)
    if t_ns is not None:
        _check_t_ns(t_ns)
    version = _field(body, "agent_version", str, default=None)
    if version is not None and (len(version) > AGENT_VERSION_MAX_CHARS or not _storable_text(version)):
        raise WireError(
            "bad_agent_version", f"agent_version must be <= {AGENT_VERSION_MAX_CHARS} printable characters"
        )
    extra = {k: v for k, v in body.items() if k not in known}
    try:  # the journal keeps the extras as JSON text and the API serves them as UTF-8
        json.dumps(extra, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeEncodeError: a lone surrogate
        raise WireError("bad_status", f"status fields cannot be stored: {exc}"[:200]) from None
    return Status(
        site=site,
        device=device,
        online=state == "online",
        t_ns=t_ns,
        clock_synced=clock if isinstance(clock, bool) else None,
        agent_version=version,
        extra=extra,
    )


def _check_t_ns(t_ns: int) -> None:
    if not _T_NS_MIN <= t_ns <= _T_NS_MAX:
        raise WireError("bad_time", f"t_ns {_short(t_ns)} is outside 2000..2200")


def _short(value: object) -> str:
    """``repr`` of a value for an error message, cut so a hostile value cannot flood logs."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _storable_text(text: str) -> bool:
    """Printable and encodable as UTF-8 (a lone surrogate from a ``\\ud800`` escape is not)."""
    if not text.isprintable():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_object(payload: bytes | bytearray | str) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
        body = _JSON.decode(text)
    except WireError:  # NaN/Infinity: bad_value, not bad_json
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError("bad_json", str(exc)[:200]) from None
    if not isinstance(body, dict):
        raise WireError("bad_json", f"payload must be a JSON object, got {type(body).__name__}")
    return body


def _reject_constant(name: str) -> float:
    raise WireError("bad_value", f"{name} is not allowed")


# One decoder for every message: json.loads with a keyword builds a new JSONDecoder per call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


_MISSING = object()


def _field(body: dict[str, Any], name: str, typ: type, default: Any = _MISSING) -> Any:
    if name not in body:
        if default is _MISSING:
            raise WireError("missing_field", f"payload has no {name!r}")
        return default
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, typ):
        raise WireError(f"bad_{name}", f"{name} must be {typ.__name__}, got {type(value).__name__}")
    return value


def _opt_float(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"bad_{name}", f"{name} must be a number")
    return float(value)


_GOOD_IDS: set[str] = set()  # ids already checked: a site has few, and each repeats per message


def _check_id(name: str, value: object) -> None:
    if type(value) is str and value in _GOOD_IDS:
        return
    if not isinstance(value, str) or not _ID.match(value) or value == "status":
        raise WireError(f"bad_{name}", f"{name} {_short(value)} is not an id ([A-Za-z0-9_.-], 1-64)")
    if len(_GOOD_IDS) < 10_000:  # bounded: arbitrary topics must not grow it forever
        _GOOD_IDS.add(value)


def _check_value(r: Reading) -> None:
    if r.kind == "zone":
        if not isinstance(r.value, str) or not _ID.match(r.value):
            raise WireError("bad_value", f"zone value must be a machine id or 'none', got {_short(r.value)}")
        return
    if isinstance(r.value, bool) or not isinstance(r.value, float | int):
        raise WireError("bad_value", f"{r.kind} value must be a number, got {_short(r.value)}")
    if not math.isfinite(r.value):
        raise WireError("bad_value", f"value {r.value!r} is not finite")
    if r.kind in vocab.BINARY_KINDS and r.value not in (0.0, 1.0):
        raise WireError("bad_value", f"{r.kind} value must be 0 or 1, got {r.value!r}")
    if r.kind == "rssi" and not -150.0 <= r.value <= 20.0:
        raise WireError("bad_value", f"RSSI {r.value} dBm is outside -150..20")


def _check_aggregate(r: Reading) -> None:
    if r.count is not None and (not isinstance(r.count, int) or not 1 <= r.count <= COUNT_MAX):
        raise WireError("bad_count", f"count must be in 1..{COUNT_MAX}, got {_short(r.count)}")
    if r.window_ms is not None and (
        not isinstance(r.window_ms, int) or not 1 <= r.window_ms <= WINDOW_MS_MAX
    ):
        raise WireError(
            "bad_window_ms", f"window_ms must be in 1..{WINDOW_MS_MAX}, got {_short(r.window_ms)}"
        )
    if r.rssi_max_dbm is not None and not -150.0 <= r.rssi_max_dbm <= 20.0:
        raise WireError("bad_rssi_max_dbm", f"rssi_max_dbm {_short(r.rssi_max_dbm)} is outside -150..20")
    if r.kind != "rssi" and (r.count, r.rssi_max_dbm, r.window_ms) != (None, None, None):
        raise WireError("bad_aggregate", "count/rssi_max_dbm/window_ms are for rssi readings only")


# --- end-to-end acknowledgement (server -> agent) -------------------------------------------
#: An ack message lists every sensor of one device; a device has a handful, but the bound
#: is looser than a reading's.
MAX_ACK_BYTES: Final = 65536


@dataclass(frozen=True, slots=True)
class SensorAck:
    """The server's journal state of one sensor.

    Parameters
    ----------
    upto : int
        Every reading with ``seq <= upto`` is committed to the server's journal, or was
        declared lost there (the agent no longer held it); -1 when none is.
    max_seq : int
        The highest ``seq`` committed (-1 when none): readings between ``upto`` and
        ``max_seq`` that are not committed are a gap the agent should fill.
    missing : int
        Readings missing in ``(upto, max_seq]`` (still fillable).
    lost : int
        Readings the server has declared lost for this sensor (their gap can no longer be
        filled: the agent's outbox no longer held them).
    """

    upto: int
    max_seq: int = -1
    missing: int = 0
    lost: int = 0


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's acknowledgement of one device's readings (retained per device)."""

    site: str
    device: str
    t_ns: int
    sensors: dict[str, SensorAck] = field(default_factory=dict)


def ack_topic(site: str, device: str) -> str:
    """MQTT topic of the server's retained acknowledgement for one device."""
    _check_id("site", site)
    _check_id("device", device)
    return f"{TOPIC_ROOT}/{site}/{device}/ack"


def encode_ack(ack: Ack) -> tuple[str, bytes]:
    """Return the ``(topic, payload)`` of an acknowledgement."""
    body = {
        "v": WIRE_VERSION,
        "t_ns": int(ack.t_ns),
        "sensors": {
            s: {"upto": a.upto, "max": a.max_seq, "missing": a.missing, "lost": a.lost}
            for s, a in sorted(ack.sensors.items())
        },
    }
    return ack_topic(ack.site, ack.device), json.dumps(body, separators=(",", ":")).encode()


def decode_ack(topic: str, payload: bytes | bytearray | str) -> Ack:
    """Decode an acknowledgement.

    Raises
    ------
    WireError
        For anything that is not a valid acknowledgement; never another error.
    """
    try:
        parts = topic.split("/") if isinstance(topic, str) else []
        if len(parts) != 5 or parts[:2] != _ROOT_PARTS or parts[4] != "ack":
            raise WireError("bad_topic", f"{str(topic)[:120]!r} is not {TOPIC_ROOT}/site/device/ack")
        _check_id("site", parts[2])
        _check_id("device", parts[3])
        if len(payload) > MAX_ACK_BYTES:
            raise WireError("too_large", f"ack of {len(payload)} bytes > {MAX_ACK_BYTES}")
        body = _json_object(payload)
        if body.get("v") != WIRE_VERSION:
            raise WireError("bad_version", f"payload version {body.get('v')!r} is not {WIRE_VERSION}")
        t_ns = _field(body, "t_ns", int)
        sensors = body.get("sensors")
        if not isinstance(sensors, dict):
            raise WireError("bad_sensors", "sensors must be an object of sensor id -> state")
        out: dict[str, SensorAck] = {}
        for sid, st in sensors.items():
            _check_id("sensor", sid)
            if not isinstance(st, dict):
                raise WireError("bad_sensors", f"sensor {sid!r}: state must be an object")
            vals = [st.get(k, d) for k, d in (("upto", None), ("max", -1), ("missing", 0), ("lost", 0))]
            if any(type(v) is not int or v < -1 or v >= 2**63 for v in vals):
                raise WireError("bad_sensors", f"sensor {sid!r}: upto/max/missing/lost must be integers")
            out[sid] = SensorAck(*vals)
        return Ack(parts[2], parts[3], t_ns, out)
    except WireError:
        raise
    except Exception as exc:  # defensive: any surprise is still the contract's error
        raise WireError("malformed", f"{type(exc).__name__}: {exc}") from None
