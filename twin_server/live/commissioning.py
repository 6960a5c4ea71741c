"""The commissioning checklist of each machine, from the readings the server ingests.

The server-side twin of ``python -m edge_agent doctor``: while an engineer installs a
machine, the page at ``/commissioning/`` shows per machine whether its Pi is online, its
clock synchronised, each sensor's live value, the lamp seen on and off, a pressure
excursion, each button pressed, and the workers' beacons heard by its receivers.

Everything here is pure: :class:`MachineSession` folds journal rows (:meth:`MachineSession.apply`),
:func:`machine_view` turns a session, the device's last status and the current time into the
view and its checklist. The I/O (reading the journal, the HTTP and WebSocket routes) is in
:mod:`twin_server.api.commissioning`.

Sensors are told apart by kind and, for switches, by task (one light and one pressure
sensor per machine, as in the hardware guide); ``light_state`` and ``pressure_state``
events count for the light and pressure sensor. A machine whose site entry lists no
sensors is checked against the hardware guide's kit (light, pressure, three buttons).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twin_server.site import Machine, Site

__all__ = [
    "STALE_S",
    "Item",
    "MachineSession",
    "SensorTrack",
    "device_of_machine",
    "expected_sensors",
    "machine_of_reading",
    "machine_view",
    "overall",
]

#: A machine or sensor that sent nothing for this long is reported as silent (levels come
#: every second from a healthy agent).
STALE_S = 30.0
#: Light and pressure levels: the minimum and maximum are taken over this recent window.
RECENT_S = 300.0

_FAMILY = {
    "light": "light",
    "light_state": "light",
    "pressure": "pressure",
    "pressure_state": "pressure",
    "switch": "switch",
}
_KIT = (
    ("light", "light", ""),
    ("pressure", "pressure", ""),
    ("sw-tool", "switch", "tool_change"),
    ("sw-program", "switch", "program_input"),
    ("sw-material", "switch", "material_setting"),
)


@dataclass(frozen=True)
class Item:
    """One line of the checklist.

    Parameters
    ----------
    key : str
        Stable id of the line within the machine (``online``, ``switch:sw-tool``, ...).
    check : str
        What is checked: ``online``, ``clock``, ``data``, ``live``, ``light_on_off``,
        ``pressure_excursion``, ``switch``, ``beacon`` or ``receivers``.
    status : str
        ``pass``, ``fail`` or ``waiting`` (not seen yet: do the step).
    code : str
        Why, as a stable code the page translates (``pressed``, ``not_heard``, ...).
    args : dict
        Values for the reason (sensor id, level, ages in seconds, ...).
    reason : str
        The reason in English.
    """

    key: str
    check: str
    status: str
    code: str
    args: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "check": self.check,
            "status": self.status,
            "code": self.code,
            "args": self.args,
            "reason": self.reason,
        }


@dataclass
class SensorTrack:
    """What one machine sensor (light, pressure or a switch) sent since the session started."""

    family: str
    channel: str
    sensor: str = ""
    unit: str = ""
    last_value: float | None = None
    last_t_ns: int | None = None
    last_rx_ns: int | None = None
    # [arrival second, min, max] per second of the last RECENT_S seconds (bounded whatever the rate).
    recent: deque[list[float]] = field(default_factory=deque)
    states_seen: dict[int, int] = field(default_factory=dict)  # 0/1 -> arrival ns of the first
    presses: int = 0
    first_press_rx_ns: int | None = None
    first_press_t_ns: int | None = None
    last_press_rx_ns: int | None = None


@dataclass
class BeaconTrack:
    """One beacon as heard by one receiver since the session started."""

    receiver: str
    beacon: str
    rssi_dbm: float
    rssi_max_dbm: float
    adverts: int
    last_rx_ns: int


@dataclass
class MachineSession:
    """One machine's commissioning session: everything received since ``start_id``.

    Parameters
    ----------
    machine : str
        Machine id.
    started_ns : int
        Server time the session started (epoch ns).
    start_id : int
        Journal row id at the start; only rows after it count.
    """

    machine: str
    started_ns: int
    start_id: int = 0
    sensors: dict[tuple[str, str], SensorTrack] = field(default_factory=dict)
    beacons: dict[tuple[str, str], BeaconTrack] = field(default_factory=dict)
    last_rx_ns: int | None = None
    devices: set[str] = field(default_factory=set)
    rejected: Counter[str] = field(default_factory=Counter)
    ignored: int = 0

    def apply(self, row: Mapping[str, Any]) -> None:
        """Fold one journal row (``id, device, sensor, kind, t_ns, received_ns, source,
        channel, value, unit, count, rssi_max_dbm``) into the session.

        Rows at or before ``start_id`` and rows that are not machine or RSSI readings are
        ignored; a row with a missing or non-numeric value is counted in ``ignored``.
        """
        if int(row.get("id") or 0) <= self.start_id:
            return
        kind = row.get("kind")
        value = row.get("value")
        rx = int(row["received_ns"])
        if kind == "zone":
            return
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.ignored += 1
            return
        self.last_rx_ns = rx if self.last_rx_ns is None else max(self.last_rx_ns, rx)
        self.devices.add(str(row.get("device", "")))
        if kind == "rssi":
            self._beacon(row, float(value), rx)
            return
        family = _FAMILY.get(str(kind))
        if family is None:
            self.ignored += 1
            return
        channel = str(row.get("channel") or "") if family == "switch" else ""
        track = self.sensors.get((family, channel))
        if track is None:
            track = self.sensors[(family, channel)] = SensorTrack(family, channel)
        track.sensor = str(row.get("sensor") or track.sensor)
        v = float(value)
        if kind in ("light_state", "pressure_state"):
            track.states_seen.setdefault(int(v != 0.0), rx)
            return
        if kind == "switch":
            if v == 1.0:
                track.presses += 1
                if track.first_press_rx_ns is None:
                    track.first_press_rx_ns, track.first_press_t_ns = rx, int(row["t_ns"])
                track.last_press_rx_ns = rx
        else:
            sec = rx // 10**9
            last = track.recent[-1] if track.recent else None
            if last is not None and last[0] == sec:
                last[1], last[2] = min(last[1], v), max(last[2], v)
            else:
                track.recent.append([sec, v, v])
            while track.recent and track.recent[0][0] < sec - RECENT_S:
                track.recent.popleft()
        track.unit = str(row.get("unit") or "")
        track.last_value, track.last_t_ns, track.last_rx_ns = v, int(row["t_ns"]), rx

    def _beacon(self, row: Mapping[str, Any], rssi: float, rx: int) -> None:
        receiver, beacon = str(row.get("source", "")), str(row.get("channel", ""))
        count = row.get("count")
        adverts = int(count) if isinstance(count, int) and count > 0 else 1
        peak = row.get("rssi_max_dbm")
        peak_dbm = float(peak) if isinstance(peak, int | float) else rssi
        old = self.beacons.get((receiver, beacon))
        if old is None:
            self.beacons[(receiver, beacon)] = BeaconTrack(receiver, beacon, rssi, peak_dbm, adverts, rx)
            return
        old.adverts += adverts
        old.rssi_max_dbm = max(old.rssi_max_dbm, peak_dbm)
        if rx >= old.last_rx_ns:
            old.rssi_dbm, old.last_rx_ns = rssi, rx

    def reject(self, reason: str) -> None:
        """Count a message of this machine's device that broke the wire contract."""
        self.rejected[reason] += 1


# --- which machine a reading belongs to --------------------------------------------------------
def device_of_machine(machine: Machine, session: MachineSession) -> str | None:
    """The machine's Pi: as the site file names it, else the device its readings came from."""
    if machine.device is not None:
        return machine.device
    return sorted(session.devices)[0] if session.devices else None


def machine_of_reading(site: Site, kind: str, source: str, device: str) -> str | None:
    """The machine a reading is about, or None (a locator's zone report, an unknown source).

    Machine readings name the machine as ``source``; an RSSI reading names its receiver,
    whose ``machine`` the site file gives, else the machine whose Pi sent it.
    """
    if kind == "zone":
        return None
    ids = set(site.machine_ids)
    if kind != "rssi":
        return source if source in ids else None
    for r in site.receivers:
        if r.id == source and r.machine is not None:
            return r.machine
    for m in site.machines:
        if m.device is not None and m.device == device:
            return m.id
    return None


def expected_sensors(machine: Machine) -> list[tuple[str, str, str]]:
    """``(sensor id, kind, channel)`` the checklist expects: the site file's, else the kit."""
    if machine.sensors:
        return [(s.id, s.kind, s.channel) for s in machine.sensors]
    return list(_KIT)


# --- the checklist -----------------------------------------------------------------------------
def _age_s(now_ns: int, rx_ns: int | None) -> float | None:
    return None if rx_ns is None else round(max(0.0, (now_ns - rx_ns) / 1e9), 1)


def _levels(track: SensorTrack | None, now_ns: int) -> tuple[float, float] | None:
    if track is None:
        return None
    cutoff = now_ns // 10**9 - RECENT_S
    recent = [b for b in track.recent if b[0] >= cutoff]
    return (min(b[1] for b in recent), max(b[2] for b in recent)) if recent else None


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _device_items(
    device: str | None,
    status: Mapping[str, Any] | None,
    session: MachineSession,
    now_ns: int,
    offset_s: float | None,
    suspect: Mapping[str, Any] | None = None,
    simulated: str | None = None,
) -> list[Item]:
    items: list[Item] = []
    if device is None:
        items.append(
            Item(
                "online",
                "online",
                "waiting",
                "no_device",
                {},
                "the site file names no device for this machine and none has sent readings",
            )
        )
    elif status is None:
        items.append(
            Item(
                "online",
                "online",
                "waiting",
                "no_status",
                {"device": device},
                f"no status message from {device} yet: is the agent running?",
            )
        )
    elif status.get("online"):
        items.append(Item("online", "online", "pass", "online", {"device": device}, f"{device} is online"))
    else:
        age = _age_s(now_ns, status.get("received_ns"))
        items.append(
            Item(
                "online",
                "online",
                "fail",
                "offline",
                {"device": device, "age_s": age},
                f"{device} went offline {age} s ago (stopped, or lost its connection)",
            )
        )
    synced = None if status is None else status.get("clock_synced")
    clock: dict[str, Any] = {"device": device or "", "offset_s": offset_s}
    # The server's own estimate (arrival minus device time, a low quantile) as a cross-check.
    measured = "" if offset_s is None else f"; measured offset {offset_s:+.1f} s (+ = device behind)"
    if simulated and status is not None:
        # A replayed or simulated shift carries its own (past, accelerated) time: the device
        # clock cannot be judged against the server's, and a huge "offset" is expected.
        items.append(
            Item(
                "clock",
                "clock",
                "pass",
                "clock_simulated",
                dict(clock, simulated=simulated),
                f"simulated time ({simulated}): the clock check does not apply",
            )
        )
    elif suspect and suspect.get("clock_wrong"):
        clock |= {"offset_s": suspect["offset_s"], "readings": suspect["readings"]}
        items.append(
            Item(
                "clock",
                "clock",
                "fail",
                "clock_far_off",
                clock,
                f"{suspect['readings']} readings carry a device time {suspect['offset_s']:+.0f} s "
                "off their arrival: they are journalled but not shown live; set the device clock "
                "(chronyc tracking)",
            )
        )
    elif status is None:
        items.append(
            Item(
                "clock",
                "clock",
                "waiting",
                "no_status",
                clock,
                "the clock sync state comes with the device's status message" + measured,
            )
        )
    elif synced is None:
        items.append(
            Item(
                "clock",
                "clock",
                "waiting",
                "clock_unknown",
                clock,
                "the agent cannot tell whether its clock is synchronised: check chronyc tracking" + measured,
            )
        )
    elif synced:
        items.append(
            Item(
                "clock",
                "clock",
                "pass",
                "clock_synced",
                clock,
                "the agent reports an NTP-synchronised clock" + measured,
            )
        )
    else:
        items.append(
            Item(
                "clock",
                "clock",
                "fail",
                "clock_not_synced",
                clock,
                "the agent's clock is not NTP-synchronised: check chrony (chronyc tracking)" + measured,
            )
        )
    items += _driver_items(status)
    age = _age_s(now_ns, session.last_rx_ns)
    if age is None:
        items.append(
            Item(
                "data",
                "data",
                "waiting",
                "no_readings",
                {},
                "no reading from this machine since commissioning started",
            )
        )
    elif age > STALE_S:
        items.append(
            Item(
                "data",
                "data",
                "fail",
                "silent",
                {"age_s": age},
                f"no reading for {age:g} s: agent stopped or the network is down",
            )
        )
    else:
        items.append(Item("data", "data", "pass", "fresh", {"age_s": age}, f"last reading {age:g} s ago"))
    return items


def _driver_items(status: Mapping[str, Any] | None) -> list[Item]:
    """Sensors the agent could not open, from its status (``driver_errors``: sensor -> message).

    No line for an agent that does not report it (older agents, other publishers).
    """
    extra = {} if status is None else status.get("extra") or {}
    errors = extra.get("driver_errors") if isinstance(extra, Mapping) else None
    if not isinstance(errors, Mapping):
        return []
    if not errors:
        return [Item("drivers", "drivers", "pass", "drivers_ok", {}, "every configured sensor opened")]
    shown = {str(k): str(v)[:200] for k, v in sorted(errors.items())}
    text = "; ".join(f"{k}: {v}" for k, v in shown.items())
    return [
        Item(
            "drivers",
            "drivers",
            "fail",
            "driver_errors",
            {"errors": shown},
            f"the agent cannot open {len(shown)} sensor(s), retrying: {text}",
        )
    ]


def _delivery_items(delivery: Mapping[str, Any] | None) -> list[Item]:
    """Sequence gaps of the device's readings (``twin_server.ingest.delivery``): lost ones fail.

    No line before the device's first reading (the ``data`` line asks for it).
    """
    if delivery is None or not (delivery.get("sensors") or delivery.get("lost")):
        return []
    missing, lost = int(delivery.get("missing") or 0), int(delivery.get("lost") or 0)
    gaps = [
        {k: g[k] for k in ("sensor", "first_seq", "last_seq", "missing")}
        for g in delivery.get("lost_gaps") or []
    ]
    args = {"missing": missing, "lost": lost, "gaps": gaps}
    if lost:
        where = "; ".join(
            f"{g['sensor']} seq {g['first_seq']}..{g['last_seq']} ({g['missing']})" for g in gaps
        )
        return [
            Item(
                "delivery",
                "delivery",
                "fail",
                "readings_lost",
                args,
                f"{lost} reading(s) lost for good (the agent's outbox no longer held them): {where}",
            )
        ]
    if missing:
        return [
            Item(
                "delivery",
                "delivery",
                "waiting",
                "readings_missing",
                args,
                f"{missing} reading(s) missing in the journal; the agent is sending them again",
            )
        ]
    return [
        Item(
            "delivery",
            "delivery",
            "pass",
            "nothing_missing",
            args,
            "every reading of this device is in the journal, none lost",
        )
    ]


def _sensor_items(sid: str, kind: str, channel: str, track: SensorTrack | None, now_ns: int) -> list[Item]:
    args: dict[str, Any] = {"sensor": sid, "channel": channel}
    if kind == "switch":
        if track is None or track.first_press_rx_ns is None:
            return [
                Item(f"switch:{sid}", "switch", "waiting", "press_it", args, f"press the {channel} button")
            ]
        args |= {
            "presses": track.presses,
            "first_press_ns": track.first_press_rx_ns,
            "age_s": _age_s(now_ns, track.last_press_rx_ns),
        }
        if track.last_value == 1.0 and args["age_s"] > STALE_S:
            # As doctor's "reads pressed while nobody touches it": no release after the press.
            return [
                Item(
                    f"switch:{sid}",
                    "switch",
                    "fail",
                    "held",
                    args,
                    f"pressed {args['age_s']:g} s ago and never released: switch stuck or wire shorted",
                )
            ]
        return [
            Item(
                f"switch:{sid}",
                "switch",
                "pass",
                "pressed",
                args,
                f"pressed {track.presses} time(s), last {args['age_s']:g} s ago",
            )
        ]
    items: list[Item] = []
    age = _age_s(now_ns, None if track is None else track.last_rx_ns)
    if track is None or age is None or track.last_value is None:
        items.append(
            Item(f"live:{sid}", "live", "waiting", "no_level", dict(args), f"no {kind} level received yet")
        )
    else:
        live = dict(args, value=track.last_value, unit=track.unit, age_s=age)
        if age > STALE_S:
            items.append(
                Item(
                    f"live:{sid}",
                    "live",
                    "fail",
                    "level_silent",
                    live,
                    f"last {kind} level {age:g} s ago: check the ADC and its wiring",
                )
            )
        else:
            items.append(
                Item(
                    f"live:{sid}",
                    "live",
                    "pass",
                    "level",
                    live,
                    f"{_fmt(track.last_value)} {track.unit}, {age:g} s ago",
                )
            )
    levels = _levels(track, now_ns)
    lv = dict(args)
    if levels is not None:
        lv |= {"min": levels[0], "max": levels[1], "unit": track.unit if track else ""}
    seen = {} if track is None else track.states_seen
    spread = "" if levels is None else f" (levels {_fmt(levels[0])}..{_fmt(levels[1])})"
    if kind == "light":
        if 0 in seen and 1 in seen:
            items.append(
                Item(
                    f"light_on_off:{sid}",
                    "light_on_off",
                    "pass",
                    "on_and_off",
                    lv,
                    f"lamp seen on and off{spread}",
                )
            )
        elif 1 in seen:
            items.append(
                Item(
                    f"light_on_off:{sid}",
                    "light_on_off",
                    "waiting",
                    "seen_on",
                    lv,
                    f"lamp seen on, switch it off{spread}",
                )
            )
        elif 0 in seen:
            items.append(
                Item(
                    f"light_on_off:{sid}",
                    "light_on_off",
                    "waiting",
                    "seen_off",
                    lv,
                    f"lamp seen off, switch it on{spread}",
                )
            )
        else:
            items.append(
                Item(
                    f"light_on_off:{sid}",
                    "light_on_off",
                    "waiting",
                    "no_change",
                    lv,
                    f"switch the lamp off and on{spread}; if the levels move but this stays, run calibrate",
                )
            )
    elif kind == "pressure":
        if 1 in seen:
            items.append(
                Item(
                    f"pressure_excursion:{sid}",
                    "pressure_excursion",
                    "pass",
                    "excursion",
                    lv,
                    f"pressure excursion seen{spread}",
                )
            )
        else:
            items.append(
                Item(
                    f"pressure_excursion:{sid}",
                    "pressure_excursion",
                    "waiting",
                    "clamp_it",
                    lv,
                    f"clamp and release the jig to see an excursion{spread}",
                )
            )
    return items


def _beacon_items(site: Site, machine: Machine, session: MachineSession) -> list[Item]:
    receivers = [r.id for r in site.receivers if r.machine == machine.id]
    heard_by = sorted({b.receiver for b in session.beacons.values()})
    if not receivers and not heard_by:
        return [
            Item(
                "receivers",
                "receivers",
                "waiting",
                "no_receiver",
                {},
                "no receiver of this machine in the site file, and no RSSI from its device",
            )
        ]
    items = []
    for w in site.workers:
        got = sorted((b for b in session.beacons.values() if b.beacon == w.beacon), key=lambda b: b.receiver)
        args: dict[str, Any] = {
            "worker": w.id,
            "beacon": w.beacon,
            "receivers": [
                {"receiver": b.receiver, "rssi_dbm": b.rssi_dbm, "rssi_max_dbm": b.rssi_max_dbm} for b in got
            ],
        }
        if got:
            heard = "; ".join(f"{b.receiver} {b.rssi_dbm:.0f} dBm (max {b.rssi_max_dbm:.0f})" for b in got)
            items.append(Item(f"beacon:{w.beacon}", "beacon", "pass", "heard", args, f"heard: {heard}"))
        else:
            items.append(
                Item(
                    f"beacon:{w.beacon}",
                    "beacon",
                    "waiting",
                    "not_heard",
                    args,
                    f"walk through the zone with {w.id}'s beacon {w.beacon}",
                )
            )
    return items


def overall(items: list[Item]) -> str:
    """``fail`` if any line failed, ``pass`` if every line passed, else ``waiting``."""
    statuses = {i.status for i in items}
    if "fail" in statuses:
        return "fail"
    return "pass" if statuses <= {"pass"} else "waiting"


def machine_view(
    site: Site,
    machine: Machine,
    session: MachineSession,
    status: Mapping[str, Any] | None,
    now_ns: int,
    clock_offset_s: float | None = None,
    clock_suspect: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    simulated: str | None = None,
) -> dict[str, Any]:
    """The commissioning view of one machine.

    Parameters
    ----------
    site, machine : Site, Machine
        The site model and the machine.
    session : MachineSession
        What was received since the machine's commissioning started.
    status : mapping or None
        The device's last status (``online``, ``clock_synced``, ``received_ns``, ``t_ns``,
        ``agent_version``, ``extra``: the status's other fields such as ``driver_errors``),
        None if it never sent one.
    now_ns : int
        Server time, epoch ns (ages are measured against it).
    clock_offset_s : float or None
        The server's estimate of the device clock's offset (arrival minus device time,
        seconds; positive = device behind), shown beside the agent's own sync state.
    clock_suspect : mapping or None
        ``{"readings", "offset_s", "clock_wrong"}`` when the ingest saw readings of this device
        whose device time is far from their arrival; with ``clock_wrong`` (a clock ahead, or a
        status message stamped far off) the clock line fails.
    delivery : mapping or None
        The device's sequence gaps (:meth:`twin_server.ingest.delivery.Delivery.device_summary`:
        ``missing`` now, ``lost`` since the session started, ``lost_gaps``); None: no line.
    simulated : str or None
        The devices replay a simulated or recorded shift (e.g. ``"replay at 60x"``): their
        clock is simulated, and the clock line passes saying so instead of failing.

    Returns
    -------
    dict
        ``id, name, name_ja, device, started_ns, status, device_status, last_seen_age_s,
        sensors, beacons, rejected, checklist``; ``checklist`` is a list of
        :meth:`Item.to_dict`.
    """
    device = device_of_machine(machine, session)
    items = _device_items(
        device, status, session, now_ns, clock_offset_s, clock_suspect, simulated
    ) + _delivery_items(delivery)
    sensors = []
    for sid, kind, channel in expected_sensors(machine):
        track = session.sensors.get((kind, channel))
        items += _sensor_items(sid, kind, channel, track, now_ns)
        levels = _levels(track, now_ns)
        sensors.append(
            {
                "id": sid,
                "kind": kind,
                "channel": channel,
                "value": None if track is None else track.last_value,
                "unit": None if track is None else track.unit or None,
                "age_s": _age_s(now_ns, None if track is None else track.last_rx_ns),
                "min": None if levels is None else levels[0],
                "max": None if levels is None else levels[1],
                "states_seen": [] if track is None else sorted(track.states_seen),
                "presses": 0 if track is None else track.presses,
                "first_press_ns": None if track is None else track.first_press_rx_ns,
            }
        )
    items += _beacon_items(site, machine, session)
    workers = site.worker_by_beacon()
    beacons = [
        {
            "receiver": b.receiver,
            "beacon": b.beacon,
            "worker": workers.get(b.beacon),
            "rssi_dbm": b.rssi_dbm,
            "rssi_max_dbm": b.rssi_max_dbm,
            "adverts": b.adverts,
            "age_s": _age_s(now_ns, b.last_rx_ns),
        }
        for b in sorted(session.beacons.values(), key=lambda b: (b.receiver, b.beacon))
    ]
    dev = None
    if status is not None:
        dev = {
            "online": bool(status.get("online")),
            "clock_synced": status.get("clock_synced"),
            "agent_version": status.get("agent_version"),
            "age_s": _age_s(now_ns, status.get("received_ns")),
        }
    return {
        "id": machine.id,
        "name": machine.name,
        "name_ja": machine.name_ja,
        "device": device,
        "started_ns": session.started_ns,
        "status": overall(items),
        "device_status": dev,
        "last_seen_age_s": _age_s(now_ns, session.last_rx_ns),
        "sensors": sensors,
        "beacons": beacons,
        "rejected": dict(sorted(session.rejected.items())),
        "checklist": [i.to_dict() for i in items],
    }
