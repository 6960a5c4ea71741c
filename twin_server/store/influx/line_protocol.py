"""InfluxDB line protocol for raw readings and derived series (pure functions, no I/O).

Every point carries its device timestamp in nanoseconds. The measurements, tags and fields
are documented for integrators in ``docs/integrators.md``; keep both in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from twin_contract import vocabulary as vocab
from twin_server.result import Result

__all__ = [
    "DERIVED_MEASUREMENTS",
    "RAW_MEASUREMENTS",
    "escape_key",
    "escape_tag",
    "field_value",
    "journal_row_lines",
    "point",
    "result_lines",
]

RAW_MEASUREMENTS = (*vocab.CSV_KINDS, "light_state", "pressure_state")
DERIVED_MEASUREMENTS = ("machine_state", "worker_zone", "task", "beacon_lag", "kpi")


def escape_key(text: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ").replace("\n", "\\n")


def escape_tag(text: str) -> str:
    """Escape a tag key or value, or a field key (commas, equals signs, spaces)."""
    return (
        text.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace("=", "\\=")
        .replace(" ", "\\ ")
        .replace("\n", "\\n")
    )


def field_value(value: Any) -> str:
    """Format a field value: float, ``i``-suffixed integer, boolean or quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"field value {value!r} is not finite")
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, Any], t_ns: int) -> str:
    """One line of line protocol. Empty tag values are left out (InfluxDB rejects them).

    Tags are sorted by key, as InfluxDB recommends for write performance.
    """
    parts = [escape_key(measurement)]
    for key in sorted(tags):
        val = tags[key]
        if val is None or val == "":
            continue
        parts.append(f"{escape_tag(key)}={escape_tag(str(val))}")
    kept = {k: v for k, v in fields.items() if v is not None}
    if not kept:
        raise ValueError(f"point of {measurement!r} has no fields")
    field_text = ",".join(f"{escape_tag(k)}={field_value(v)}" for k, v in kept.items())
    return f"{','.join(parts)} {field_text} {int(t_ns)}"


# Column order of Journal.readings_after rows.
_ROW = (
    "id",
    "site",
    "device",
    "sensor",
    "seq",
    "kind",
    "t_ns",
    "received_ns",
    "source",
    "channel",
    "value",
    "label",
    "unit",
    "count",
    "rssi_max_dbm",
    "window_ms",
)


def journal_row_lines(rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """Line protocol for journal rows (see :meth:`Journal.readings_after`).

    Measurement = reading kind. Tags name what the source and channel mean for that kind
    (``machine``, ``task``, ``receiver``, ``beacon``, ``locator``) plus ``site``, ``device``
    and ``sensor``. Fields: ``value`` (float; for ``zone`` the string field ``zone``),
    ``seq``, ``delay_s`` (arrival minus device time), ``unit`` and the RSSI aggregates.
    """
    out = []
    for (
        _id,
        site,
        device,
        sensor,
        seq,
        kind,
        t_ns,
        received_ns,
        source,
        channel,
        value,
        label,
        unit,
        count,
        rssi_max,
        window_ms,
    ) in rows:
        tags = {"site": site, "device": device, "sensor": sensor}
        fields: dict[str, Any] = {}
        if kind == "rssi":
            tags["receiver"] = source
            tags["beacon"] = channel
        elif kind == "zone":
            tags["locator"] = source
            tags["beacon"] = channel
        else:
            tags["machine"] = source
            if kind == "switch":
                tags["task"] = channel
        if kind == "zone":
            fields["zone"] = label
        else:
            fields["value"] = float(value)
        fields["seq"] = int(seq)
        fields["delay_s"] = (received_ns - t_ns) / 1e9
        fields["unit"] = unit
        if count is not None:
            fields["count"] = int(count)
        if rssi_max is not None:
            fields["rssi_max_dbm"] = float(rssi_max)
        if window_ms is not None:
            fields["window_ms"] = int(window_ms)
        out.append(point(kind, tags, fields, t_ns))
    return out


def _ns(t_s: float) -> int:
    return round(t_s * 1e9)


def result_lines(
    result: Result, kpis: Mapping[str, Any] | None = None, shift: str | None = None
) -> list[str]:
    """Line protocol for an analysis result: one point per segment, at the segment's start.

    Parameters
    ----------
    result : Result
        The analysis of one shift.
    kpis : mapping, optional
        Output of :func:`twin_server.kpis.compute_kpis` for the same result.
    shift : str, optional
        Shift id (local date ``YYYY-MM-DD``) added as the ``shift`` tag.
    """
    site = result.site
    base = {"site": site, "shift": shift or ""}
    out = []
    for s in result.machine_states:
        out.append(
            point(
                "machine_state",
                {**base, "machine": s.machine, "state": s.state},
                {
                    "running": int(s.state == "running"),
                    "duration_s": float(s.end - s.start),
                    "end_s": float(s.end),
                },
                _ns(s.start),
            )
        )
    for z in result.worker_zones:
        out.append(
            point(
                "worker_zone",
                {**base, "worker": z.worker, "zone": z.zone},
                {"zone": z.zone, "duration_s": float(z.end - z.start), "end_s": float(z.end)},
                _ns(z.start),
            )
        )
    for t in result.tasks:
        out.append(
            point(
                "task",
                {**base, "machine": t.machine, "task": t.task, "worker": t.worker or "unknown"},
                {"duration_s": float(t.end - t.start), "end_s": float(t.end)},
                _ns(t.start),
            )
        )
    for lag in result.beacon_lag:
        out.append(
            point(
                "beacon_lag",
                {**base, "worker": lag.worker},
                {
                    "lag_s": float(lag.lag_s),
                    "duration_s": float(lag.end - lag.start),
                    "end_s": float(lag.end),
                },
                _ns(lag.start),
            )
        )
    if kpis:
        t_kpi = _ns(result.window_start)
        for machine, k in kpis.get("machines", {}).items():
            fields = {name: float(v) for name, v in k.items() if isinstance(v, int | float)}
            if fields:
                out.append(point("kpi", {**base, "machine": machine}, fields, t_kpi))
    return out
