"""The project's vocabulary: the only place these names and rules are written down.

Standard library only, so the Pi agent imports it as cheaply as the server. The wire contract
(``docs/wire-contract.md``) and the analysis contract (``docs/analyze-contract.md``) are
written in these words.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "BINARY_KINDS",
    "CHANNEL_PATTERN",
    "CSV_KINDS",
    "ID_PATTERN",
    "JIG_TASK",
    "KINDS",
    "MACHINE_KINDS",
    "NO_ZONE",
    "SEQ_MAX",
    "SWITCH_TASKS",
    "TASKS",
    "T_NS_MAX",
    "T_NS_MIN",
    "default_machine_device",
    "is_id",
    "receiver_bridge_device",
]

# -- tasks ---------------------------------------------------------------------------------
#: The four changeover tasks, in the order the pilot listed them.
TASKS: Final = ("jig_change", "tool_change", "program_input", "material_setting")
#: The task marked by the pressure sensor (it has no button).
JIG_TASK: Final = "jig_change"
#: Tasks marked by a push switch: a switch reading's channel is one of these.
SWITCH_TASKS: Final = ("tool_change", "program_input", "material_setting")

# -- readings ------------------------------------------------------------------------------
#: Kinds of the readings CSV (``docs/analyze-contract.md``).
CSV_KINDS: Final = ("light", "pressure", "switch", "rssi", "zone")
#: Every reading kind on the wire: the CSV's, plus the edge-detected state changes
#: (1 = lamp on / pressure away from its normal level, 0 = back).
KINDS: Final = frozenset({*CSV_KINDS, "light_state", "pressure_state"})
#: Kinds that a machine's own sensors produce (``source`` is the machine id).
MACHINE_KINDS: Final = frozenset({"light", "pressure", "switch", "light_state", "pressure_state"})
#: Kinds whose value is 0 or 1.
BINARY_KINDS: Final = frozenset({"switch", "light_state", "pressure_state"})
#: The zone of a worker who is at no machine.
NO_ZONE: Final = "none"

# -- ids and bounds ------------------------------------------------------------------------
#: Site, device, sensor, machine, worker, receiver and beacon ids.
ID_PATTERN: Final = r"^[A-Za-z0-9_.\-]{1,64}$"
#: A reading's channel: a task, a beacon id or empty.
CHANNEL_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{0,64}$"
_ID = re.compile(ID_PATTERN)
#: Plausible device time, 2000-01-01 .. 2200-01-01 in epoch ns (inside a signed 64-bit integer).
T_NS_MIN: Final = 946_684_800 * 10**9
T_NS_MAX: Final = 7_258_118_400 * 10**9
#: Largest sequence number: the journal and InfluxDB hold signed 64-bit integers.
SEQ_MAX: Final = 2**63 - 1


def is_id(value: object) -> bool:
    """Whether ``value`` is a valid id (1-64 of ``A-Z a-z 0-9 _ . -``)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None  # "$" alone lets "M3\n" through


# -- devices -------------------------------------------------------------------------------
def default_machine_device(machine_id: str) -> str:
    """The edge agent (Pi) of a machine whose site file names no ``device``: ``pi-<id>``, lower case."""
    return f"pi-{machine_id.lower()}"


def receiver_bridge_device(receiver_id: str) -> str:
    """The device publishing a receiver that is not at a machine (a BLE scanner bridge)."""
    return f"rx-{receiver_id.lower()}"
