"""Shift KPIs from an analysis result (pure): utilisation, changeover and idle minutes."""

from __future__ import annotations

from typing import Any

from twin_server.result import TASK_NAMES, Result

__all__ = ["compute_kpis"]


def _overlap_s(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Total length of the intersection of two sets of disjoint half-open intervals."""
    total = 0.0
    i = j = 0
    a = sorted(a)
    b = sorted(b)
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def compute_kpis(result: Result, machines: list[str] | None = None) -> dict[str, Any]:
    """KPIs per machine (and totals) for one analysed shift.

    Parameters
    ----------
    result : Result
        The analysis of a shift.
    machines : list of str, optional
        Machine ids to report (default: those in the result).

    Returns
    -------
    dict
        ``{"machines": {id: {...}}, "totals": {...}}`` where each machine has
        ``running_min``, ``stopped_min``, ``unknown_min``, ``utilisation`` (running share
        of the time with a known state, 0..1, None without data), ``changeover_min`` and
        ``changeover_<task>_min`` for the four tasks, ``task_count``, and ``idle_min``
        (stopped and no changeover task going on).
    """
    ids = machines or sorted({s.machine for s in result.machine_states} | {t.machine for t in result.tasks})
    out: dict[str, Any] = {}
    for m in ids:
        by_state: dict[str, list[tuple[float, float]]] = {"running": [], "stopped": [], "unknown": []}
        for s in result.machine_states:
            if s.machine == m:
                by_state.setdefault(s.state, []).append((s.start, s.end))
        tasks = [(t.start, t.end) for t in result.tasks if t.machine == m]
        running_s = sum(e - s for s, e in by_state["running"])
        stopped_s = sum(e - s for s, e in by_state["stopped"])
        known_s = running_s + stopped_s
        k: dict[str, Any] = {
            "running_min": running_s / 60,
            "stopped_min": stopped_s / 60,
            "unknown_min": sum(e - s for s, e in by_state["unknown"]) / 60,
            "utilisation": running_s / known_s if known_s > 0 else None,
            "changeover_min": sum(e - s for s, e in tasks) / 60,
            "task_count": len(tasks),
            "idle_min": (stopped_s - _overlap_s(by_state["stopped"], tasks)) / 60,
        }
        for name in TASK_NAMES:
            k[f"changeover_{name}_min"] = sum(t.end - t.start for t in result.tasks
                                              if t.machine == m and t.task == name) / 60
        out[m] = k
    totals = {
        key: sum(v[key] for v in out.values())
        for key in ("running_min", "stopped_min", "changeover_min", "idle_min", "task_count")
    }
    known = totals["running_min"] + totals["stopped_min"]
    totals["utilisation"] = totals["running_min"] / known if known > 0 else None
    return {"machines": out, "totals": totals}
