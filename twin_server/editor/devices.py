"""What the broker has seen of a site's devices, for binding machines and receivers to Pis.

A Pi that is not in the site file yet is still heard: its status and readings are kept as
dead letters (``unknown_device``) by the ingest's device scope. This module reads both the
accepted readings and those dead letters (the newest ones only, so a large journal costs a
bounded time) and tells, per device, what its agent said about itself: the machine its
readings name (``source``), the receivers its RSSI rows come from, the beacons they heard,
its sensors (id, kind, switch task), and whether it is online.
"""

from __future__ import annotations

import json
from typing import Any

from twin_server.store.journal import Journal

__all__ = ["RECENT_DEAD_LETTERS", "RECENT_READINGS", "devices_seen"]

RECENT_READINGS = 200_000  # newest journal rows looked at (a pilot-sized site: about 3 hours)
RECENT_DEAD_LETTERS = 20_000
_MACHINE_KINDS = {"light", "pressure", "switch", "light_state", "pressure_state"}
_SENSOR_KIND = {
    "light": "light",
    "light_state": "light",
    "pressure": "pressure",
    "pressure_state": "pressure",
    "switch": "switch",
}


def _entry(out: dict[str, dict[str, Any]], device: str) -> dict[str, Any]:
    got = out.get(device)
    if got is None:
        got = out[device] = {
            "device": device,
            "online": None,
            "last_seen_ns": 0,
            "machine": None,
            "receivers": set(),
            "beacons": set(),
            "sensors": {},
            "locator": False,
            "accepted": 0,
            "refused": 0,
            "agent_version": None,
        }
    return got


def _note(
    e: dict[str, Any], kind: str, sensor: str, source: str, channel: str, seen_ns: int, accepted: bool
) -> None:
    e["last_seen_ns"] = max(e["last_seen_ns"], int(seen_ns or 0))
    e["accepted" if accepted else "refused"] += 1
    if kind in _MACHINE_KINDS:
        e["machine"] = e["machine"] or source
        sk = _SENSOR_KIND[kind]
        prev = e["sensors"].get(sensor)
        if prev is None or (prev["kind"] != sk and kind in ("light", "pressure", "switch")):
            e["sensors"][sensor] = {"id": sensor, "kind": sk, "channel": channel if sk == "switch" else ""}
    elif kind == "rssi":
        e["receivers"].add(source)
        if channel:
            e["beacons"].add(channel)
    elif kind == "zone":
        e["locator"] = True


def devices_seen(journal: Journal, site_id: str) -> list[dict[str, Any]]:
    """Devices of ``site_id`` heard lately, newest first.

    Returns
    -------
    list of dict
        ``device, online, last_seen_ns, machine, receivers, beacons, sensors, locator,
        accepted, refused, agent_version`` per device.
    """
    out: dict[str, dict[str, Any]] = {}
    top = journal.max_id()
    rows = journal.sensors_heard(site_id, top - RECENT_READINGS)
    for device, kind, sensor, source, channel, n, rx in rows:
        e = _entry(out, device)
        _note(e, kind, sensor, source, channel, rx, True)
        e["accepted"] += int(n) - 1
    dead = journal.newest_dead_letter_payloads(RECENT_DEAD_LETTERS)
    for topic, payload, rx in dead:
        parts = str(topic).split("/")
        if len(parts) < 5 or parts[2] != site_id:
            continue
        device = parts[3]
        if len(parts) == 5 and parts[4] == "status":
            e = _entry(out, device)
            e["last_seen_ns"] = max(e["last_seen_ns"], int(rx))
            if e["online"] is None:  # newest first: the first status seen is the latest
                try:
                    body = json.loads(bytes(payload))
                    e["online"] = body.get("state") == "online"  # the wire contract's status
                    e["agent_version"] = body.get("agent_version")
                except (ValueError, AttributeError):
                    pass
            continue
        if len(parts) != 6:
            continue
        try:
            body = json.loads(bytes(payload))
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        _note(
            _entry(out, device),
            parts[4],
            parts[5],
            str(body.get("source", "")),
            str(body.get("channel", "") or ""),
            rx,
            False,
        )
    for s in journal.device_status():
        if s["site"] != site_id:
            continue
        e = _entry(out, s["device"])
        e["online"] = bool(s["online"])
        e["agent_version"] = s.get("agent_version") or e["agent_version"]
        e["last_seen_ns"] = max(e["last_seen_ns"], int(s["received_ns"] or 0))
    result = []
    for e in out.values():
        result.append(
            {
                **e,
                "receivers": sorted(e["receivers"]),
                "beacons": sorted(e["beacons"]),
                "sensors": list(e["sensors"].values()),
            }
        )
    result.sort(key=lambda e: (-e["last_seen_ns"], e["device"]))
    return result
