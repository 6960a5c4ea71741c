"""The agent's TOML config: loading, defaults and validation that names the bad key.

Errors read like ``sensors[2].gpio: must be 0..27``: the dotted path of the key, then what
is wrong, so an engineer on the shop floor can fix the file without reading code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.wire import SWITCH_CHANNELS
from twin_contract import vocabulary as vocab

__all__ = ["Config", "ConfigError", "load_config", "parse_config", "sample_config_text"]

_ID = re.compile(vocab.ID_PATTERN)
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
SENSOR_KINDS = frozenset({"light", "pressure", "switch", "ble", "zone"})


class ConfigError(ValueError):
    """A config problem; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class AgentSection:
    site: str
    device: str
    machine: str
    receiver: str
    data_dir: str
    sample_hz: float = 10.0
    level_period_s: float = 1.0
    status_period_s: float = 60.0
    stop_drain_s: float = 5.0


@dataclass(frozen=True)
class MqttSection:
    host: str
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    max_inflight: int = 500
    client_id: str = ""


@dataclass(frozen=True)
class OutboxSection:
    max_rows: int = 500_000
    synchronous: str = "FULL"
    #: When a row may leave the outbox: "server" (its seq is covered by the server's
    #: acknowledgement: in the journal), "broker" (the broker's PUBACK), or "auto" (server
    #: once this agent has received one acknowledgement from the server, broker before).
    keep_until: str = "auto"
    #: A reading the broker acknowledged that the server has still not committed after
    #: this long (while the server keeps acknowledging others) is sent again.
    resend_after_s: float = 10.0
    #: Re-sent readings per second at most (new readings are not limited).
    resend_rate_per_s: float = 500.0
    #: Cap on the outbox file in MiB (0: the disk is the limit); at the cap the oldest
    #: readings are dropped and counted, as on a full disk.
    max_mb: float = 0.0


@dataclass(frozen=True)
class ReplaySection:
    file: str
    speed: float = 1.0
    #: Restamp rows with the agent's clock instead of keeping the recorded times.
    restamp: bool = False
    #: Replay the file again from the top when it ends.
    loop: bool = False


@dataclass(frozen=True)
class Config:
    agent: AgentSection
    mqtt: MqttSection
    outbox: OutboxSection
    sensors: list[dict[str, Any]]
    replay: ReplaySection | None = None
    path: Path | None = field(default=None, compare=False)

    def sensor(self, sensor_id: str) -> dict[str, Any]:
        for s in self.sensors:
            if s["id"] == sensor_id:
                return s
        raise KeyError(sensor_id)

    @property
    def outbox_path(self) -> Path:
        return Path(self.agent.data_dir) / "outbox.sqlite"


def sample_config_text() -> str:
    """The documented sample config (the pilot's machine M3)."""
    # Next to this module (not importlib.resources on the package: robust to namespace
    # shadowing of ``edge_agent`` by a same-named folder on sys.path).
    return (Path(__file__).resolve().parent / "sample_config.toml").read_text(encoding="utf-8")


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; relative paths in it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return parse_config(text, base_dir=path.parent, path=path)


def parse_config(text: str, base_dir: Path | None = None, path: Path | None = None) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"not valid TOML: {exc}") from None
    base = base_dir or Path.cwd()
    _no_unknown(raw, {"agent", "mqtt", "outbox", "sensors", "replay"}, "")
    a = _table(raw, "agent", required=True)
    agent = AgentSection(
        site=_id(a, "site", "agent"),
        device=_id(a, "device", "agent"),
        machine=_id(a, "machine", "agent"),
        receiver=_id(a, "receiver", "agent"),
        data_dir=str(base / _get(a, "data_dir", str, "agent")),
        sample_hz=_num(a, "sample_hz", "agent", 10.0, 0.1, 1000.0),
        level_period_s=_num(a, "level_period_s", "agent", 1.0, 0.0, 3600.0),
        status_period_s=_num(a, "status_period_s", "agent", 60.0, 1.0, 86400.0),
        stop_drain_s=_num(a, "stop_drain_s", "agent", 5.0, 0.0, 600.0),
    )
    _no_unknown(a, set(AgentSection.__dataclass_fields__), "agent")
    m = _table(raw, "mqtt", required=True)
    mqtt = MqttSection(
        host=_get(m, "host", str, "mqtt"),
        port=int(_num(m, "port", "mqtt", 1883, 1, 65535, integer=True)),
        username=_get(m, "username", str, "mqtt", ""),
        password=_get(m, "password", str, "mqtt", ""),
        tls=_get(m, "tls", bool, "mqtt", False),
        ca_file=_get(m, "ca_file", str, "mqtt", ""),
        keepalive_s=int(_num(m, "keepalive_s", "mqtt", 30, 5, 3600, integer=True)),
        reconnect_min_s=int(_num(m, "reconnect_min_s", "mqtt", 1, 1, 600, integer=True)),
        reconnect_max_s=int(_num(m, "reconnect_max_s", "mqtt", 60, 1, 3600, integer=True)),
        max_inflight=int(_num(m, "max_inflight", "mqtt", 500, 1, 20000, integer=True)),
        client_id=_get(m, "client_id", str, "mqtt", ""),
    )
    if not mqtt.host:
        raise ConfigError("mqtt.host", "must not be empty")
    if mqtt.reconnect_max_s < mqtt.reconnect_min_s:
        raise ConfigError("mqtt.reconnect_max_s", "must be >= reconnect_min_s")
    _no_unknown(m, set(MqttSection.__dataclass_fields__), "mqtt")
    o = _table(raw, "outbox", required=False)
    outbox = OutboxSection(
        max_rows=int(_num(o, "max_rows", "outbox", 500_000, 100, 100_000_000, integer=True)),
        synchronous=_choice(o, "synchronous", "outbox", ("FULL", "NORMAL"), "FULL"),
        keep_until=_choice(o, "keep_until", "outbox", ("auto", "server", "broker"), "auto"),
        resend_after_s=_num(o, "resend_after_s", "outbox", 10.0, 0.5, 86400.0),
        resend_rate_per_s=_num(o, "resend_rate_per_s", "outbox", 500.0, 1.0, 100_000.0),
        max_mb=_num(o, "max_mb", "outbox", 0.0, 0.0, 1_000_000.0),
    )
    _no_unknown(o, set(OutboxSection.__dataclass_fields__), "outbox")
    replay = None
    if "replay" in raw:
        r = _table(raw, "replay", required=True)
        replay = ReplaySection(
            file=str(base / _get(r, "file", str, "replay")),
            speed=_num(r, "speed", "replay", 1.0, 0.01, 10000.0),
            restamp=_get(r, "restamp", bool, "replay", False),
            loop=_get(r, "loop", bool, "replay", False),
        )
        _no_unknown(r, set(ReplaySection.__dataclass_fields__), "replay")
    sensors_raw = raw.get("sensors", [])
    if not isinstance(sensors_raw, list) or not all(isinstance(s, dict) for s in sensors_raw):
        raise ConfigError("sensors", "must be an array of tables ([[sensors]])")
    if not sensors_raw:
        raise ConfigError("sensors", "at least one [[sensors]] table is needed")
    sensors = [_sensor(s, f"sensors[{i}]", agent) for i, s in enumerate(sensors_raw)]
    _cross_checks(sensors, replay)
    return Config(agent, mqtt, outbox, sensors, replay, path)


def _sensor(s: dict[str, Any], where: str, agent: AgentSection) -> dict[str, Any]:
    from edge_agent.drivers import DRIVERS

    out = dict(s)
    out["id"] = _id(s, "id", where)
    kind = _choice(s, "kind", where, tuple(sorted(SENSOR_KINDS)))
    driver = _choice(s, "driver", where, tuple(sorted(DRIVERS)))
    cls = DRIVERS[driver]
    if kind not in cls.kinds:
        raise ConfigError(f"{where}.kind", f"driver {driver!r} cannot read a {kind} sensor")
    out["sample_hz"] = _num(s, "sample_hz", where, agent.sample_hz, 0.1, 1000.0)
    if kind in ("light", "pressure"):
        out["unit"] = _choice(s, "unit", where, ("raw", "lux") if kind == "light" else ("raw", "kPa"), "raw")
        out["scale"] = _num(s, "scale", where, 1.0, -1e9, 1e9)
        out["offset"] = _num(s, "offset", where, 0.0, -1e9, 1e9)
        out["level_period_s"] = _num(s, "level_period_s", where, agent.level_period_s, 0.0, 3600.0)
    if kind == "light":
        has = [k in s for k in ("on_above", "off_below")]
        if any(has) and not all(has):
            missing = "off_below" if has[0] else "on_above"
            raise ConfigError(f"{where}.{missing}", "on_above and off_below go together")
        if all(has):
            on = _num(s, "on_above", where, None, -1e9, 1e9)
            off = _num(s, "off_below", where, None, -1e9, 1e9)
            if not off < on:
                raise ConfigError(f"{where}.off_below", f"must be below on_above ({on})")
            out["on_above"], out["off_below"] = on, off
    if kind == "pressure":
        has = [k in s for k in ("normal", "band")]
        if any(has) and not all(has):
            missing = "band" if has[0] else "normal"
            raise ConfigError(f"{where}.{missing}", "normal and band go together")
        if all(has):
            out["normal"] = _num(s, "normal", where, None, -1e9, 1e9)
            out["band"] = _num(s, "band", where, None, 1e-9, 1e9)
        out["hysteresis"] = _num(s, "hysteresis", where, 0.2, 0.0, 0.9)
    if kind == "switch":
        ch = _get(s, "channel", str, where)
        if ch not in SWITCH_CHANNELS:
            raise ConfigError(f"{where}.channel", f"must be one of {', '.join(sorted(SWITCH_CHANNELS))}")
    if kind == "ble":
        out["window_ms"] = int(_num(s, "window_ms", where, 1000, 10, 60_000, integer=True))
        beacons = s.get("beacons", {})
        if not isinstance(beacons, dict):
            raise ConfigError(f"{where}.beacons", "must be a table of beacon id = MAC address")
        norm: dict[str, str] = {}
        for bid, mac in beacons.items():
            if not _ID.match(bid):
                raise ConfigError(f"{where}.beacons.{bid}", "beacon id must be 1-64 of A-Z a-z 0-9 _ . -")
            if not isinstance(mac, str) or not _MAC.match(mac):
                raise ConfigError(
                    f"{where}.beacons.{bid}", f"must be a MAC address like C3:00:00:0A:12:01, got {mac!r}"
                )
            norm[mac.upper()] = bid
        if len(norm) != len(beacons):
            raise ConfigError(f"{where}.beacons", "two beacons share one MAC address")
        out["beacons"] = norm  # MAC -> beacon id, the direction the drivers need
    cls.validate(out, where)
    return out


def _cross_checks(sensors: list[dict[str, Any]], replay: ReplaySection | None) -> None:
    seen: dict[Any, str] = {}
    for i, s in enumerate(sensors):
        where = f"sensors[{i}]"
        keys = [("id", s["id"])]
        if "gpio" in s and s["driver"] == "button":
            keys.append(("gpio", s["gpio"]))
        if "adc_channel" in s:
            keys.append(("adc_channel", (s["driver"], s.get("i2c_address"), s["adc_channel"])))
        if s["kind"] == "switch":
            keys.append(("channel", s["channel"]))
        for name, key in keys:
            if (name, key) in seen:
                raise ConfigError(f"{where}.{name}", f"already used by {seen[(name, key)]}")
            seen[(name, key)] = where
        if s["driver"] == "replay" and replay is None:
            raise ConfigError(f"{where}.driver", "driver 'replay' needs a [replay] table with file = ...")


def _no_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            path = f"{where}.{key}" if where else key
            raise ConfigError(path, f"unknown key (known: {', '.join(sorted(known))})")


def _table(raw: dict[str, Any], name: str, required: bool) -> dict[str, Any]:
    if name not in raw:
        if required:
            raise ConfigError(name, f"missing [{name}] table")
        return {}
    value = raw[name]
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return value


_MISSING = object()


def _get(t: dict[str, Any], key: str, typ: type, where: str, default: Any = _MISSING) -> Any:
    if key not in t:
        if default is _MISSING:
            raise ConfigError(f"{where}.{key}", "missing")
        return default
    value = t[key]
    if (typ is not bool and isinstance(value, bool)) or not isinstance(value, typ):
        raise ConfigError(f"{where}.{key}", f"must be {_TYPE_NAMES.get(typ, typ.__name__)}, got {value!r}")
    return value


_TYPE_NAMES = {str: "text", bool: "true or false", int: "an integer", float: "a number"}


def _num(
    t: dict[str, Any], key: str, where: str, default: Any, lo: float, hi: float, integer: bool = False
) -> float:
    value = _get(t, key, int if integer else (int, float), where, default)  # type: ignore[arg-type]
    if value is None:
        raise ConfigError(f"{where}.{key}", "missing")
    if isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{where}.{key}", f"must be {_fmt(lo)}..{_fmt(hi)}, got {value}")
    return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _id(t: dict[str, Any], key: str, where: str) -> str:
    value = _get(t, key, str, where)
    if not _ID.match(value) or value == "status":
        raise ConfigError(f"{where}.{key}", f"must be an id (1-64 of A-Z a-z 0-9 _ . -), got {value!r}")
    return value


def _choice(
    t: dict[str, Any], key: str, where: str, choices: tuple[str, ...], default: Any = _MISSING
) -> str:
    value = _get(t, key, str, where, default)
    if value not in choices:
        raise ConfigError(f"{where}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return value


# Re-exported for drivers' validate(): same messages everywhere.
get_value = _get
get_number = _num
