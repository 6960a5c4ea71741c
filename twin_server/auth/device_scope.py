"""MQTT-side scope check: a device may only publish its own site's and its own station's data.

The broker's ACL already limits each edge agent to ``twin/v1/{site}/{device}/#``; this check
is the server's second line (defence in depth, and the only line on a broker without ACLs or
where one account is shared): a reading is rejected, and counted under the returned reason,
when its topic names another site, when its device is not one of the site's publishing
devices, or when a device speaks for a station that is not its own.

Who may publish what (mirrors :func:`twin_server.ingest.publish.device_of`):

* a machine's edge agent (``Machine.device_id``): the machine kinds (light, pressure, switch,
  light_state, pressure_state) with ``source`` = that machine, and ``rssi`` with ``source`` = a
  receiver mounted at that machine;
* a BLE scanner bridge (``Site.receiver_device``) for a receiver not at a machine: ``rssi``
  with ``source`` = that receiver;
* a locator system (``site.locators``): ``zone`` with ``source`` = the locator itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin_contract import vocabulary as vocab

__all__ = ["MACHINE_KINDS", "DeviceScope", "check_device_scope"]

MACHINE_KINDS = vocab.MACHINE_KINDS


@dataclass(frozen=True)
class DeviceScope:
    """The publishing devices of one site, indexed once (build it per site, reuse per reading)."""

    site_id: str
    machine_of_device: dict[str, str] = field(default_factory=dict)
    receivers_of_device: dict[str, frozenset[str]] = field(default_factory=dict)
    locators: frozenset[str] = frozenset()

    @classmethod
    def of(cls, site: Any) -> DeviceScope:
        """Index a :class:`twin_server.site.Site`."""
        machine_of_device = {m.device_id: m.id for m in site.machines}
        receivers: dict[str, set[str]] = {}
        for r in site.receivers:
            receivers.setdefault(site.receiver_device(r.id), set()).add(r.id)
        return cls(
            site.site,
            machine_of_device,
            {d: frozenset(v) for d, v in receivers.items()},
            frozenset(site.locators),
        )

    def check(self, reading: Any) -> str | None:
        """The rejection reason for a reading (a :class:`edge_agent.wire.Reading`), or None.

        Reasons: ``foreign_site``, ``unknown_device``, ``foreign_machine`` (a machine kind
        from a device that is not that machine's), ``foreign_receiver`` (RSSI for a receiver
        not at the device's station), ``foreign_locator`` (a zone report whose source is not
        the publishing locator), ``kind_not_allowed`` (e.g. a locator sending machine data).
        """
        if reading.site != self.site_id:
            return "foreign_site"
        dev = reading.device
        known = dev in self.machine_of_device or dev in self.receivers_of_device or dev in self.locators
        if not known:
            return "unknown_device"
        kind = reading.kind
        if kind in MACHINE_KINDS:
            machine = self.machine_of_device.get(dev)
            if machine is None:
                return "kind_not_allowed"
            return None if reading.source == machine else "foreign_machine"
        if kind == "rssi":
            mine = self.receivers_of_device.get(dev)
            if mine is None:
                return "kind_not_allowed"
            return None if reading.source in mine else "foreign_receiver"
        if kind == "zone":
            if dev not in self.locators:
                return "kind_not_allowed"
            return None if reading.source == dev else "foreign_locator"
        return "kind_not_allowed"


def check_device_scope(site: Any, reading: Any) -> str | None:
    """Why a reading is outside its device's site and station (None: it is in scope).

    Parameters
    ----------
    site : twin_server.site.Site
        The configured site of this server.
    reading : edge_agent.wire.Reading
        A decoded reading (its ``site`` and ``device`` come from the topic).

    Returns
    -------
    str or None
        A short reason to count the rejection under (see :meth:`DeviceScope.check`).
        For a hot path, build ``DeviceScope.of(site)`` once and call ``.check(reading)``.
    """
    return DeviceScope.of(site).check(reading)
