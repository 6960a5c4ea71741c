"""Shift KPIs from an analysis result (pure): utilisation, changeover and idle minutes."""

from __future__ import annotations

import math
from typing import Any

from twin_server.result import TASK_NAMES, Result

__all__ = ["changeover_starts", "compute_kpis", "shift_kpis", "with_trend"]


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
            k[f"changeover_{name}_min"] = (
                sum(t.end - t.start for t in result.tasks if t.machine == m and t.task == name) / 60
            )
        out[m] = k
    totals = {
        key: sum(v[key] for v in out.values())
        for key in ("running_min", "stopped_min", "changeover_min", "idle_min", "task_count")
    }
    known = totals["running_min"] + totals["stopped_min"]
    totals["utilisation"] = totals["running_min"] / known if known > 0 else None
    return {"machines": out, "totals": totals}


# --- the viewer's KPI strip and shift summary ------------------------------------------------
#: Tasks on one machine less than this apart are one changeover (the replay's J/K jumps and
#: the KPI strip count changeovers the same way: replay/src/timeline.js changeoverStarts).
CHANGEOVER_MERGE_S = 120.0

Interval = tuple[float, float]


def _union(iv: list[Interval]) -> list[Interval]:
    """Sorted, disjoint union of half-open intervals (touching ones merged)."""
    out: list[list[float]] = []
    for s, e in sorted(iv):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Intersection of two unions of intervals."""
    a, b = _union(a), _union(b)
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """``a`` minus ``b`` (both unions of intervals)."""
    out = []
    b = _union(b)
    for s, e in _union(a):
        cur = s
        for bs, be in b:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
        if cur < e:
            out.append((cur, e))
    return out


def _total_min(iv: list[Interval]) -> float:
    return sum(e - s for s, e in iv) / 60.0


def _longest(iv: list[Interval]) -> dict[str, float] | None:
    if not iv:
        return None
    s, e = max(iv, key=lambda x: (x[1] - x[0], -x[0]))
    return {"start": s, "end": e, "min": (e - s) / 60.0}


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def changeover_starts(tasks: list[Interval], merge_gap_s: float = CHANGEOVER_MERGE_S) -> list[float]:
    """Start times of one machine's changeovers: runs of tasks less than ``merge_gap_s`` apart."""
    starts = []
    last_end = -math.inf
    for s, e in sorted(tasks):
        if s - last_end > merge_gap_s:
            starts.append(s)
        last_end = max(last_end, e)
    return starts


_TIME_KEYS = {"start": 1, "end": 1, "first_changeover": 1, "utilisation": 4}


def _rounded(x: Any, nd: int = 2) -> Any:
    """Round the floats of a nested document (minutes to 0.01, times to 0.1 s) for JSON."""
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, dict):
        return {k: _rounded(v, _TIME_KEYS.get(k, nd)) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v, nd) for v in x]
    return x


def shift_kpis(result: Result, machines: list[str], workers: list[str]) -> dict[str, Any]:
    """The figures of the viewer's KPI strip and shift summary for one shift.

    Parameters
    ----------
    result : Result
        The shift's analysis, clipped to the shift (the same document the replay shows).
    machines, workers : list of str
        Ids of the site's machines and workers, in display order.

    Returns
    -------
    dict
        ``machines``: per machine ``utilisation`` (running share of the known time, 0..1 or
        None), ``running_min``, ``changeover_count`` (tasks less than 2 min apart are one
        changeover), ``changeover_min``, ``by_task`` (per task ``count``, ``min``, ``longest``
        {start, end, min}), ``attended_idle_min`` (stopped, no task under way, a worker in the
        machine's zone), ``longest_attended_idle``, ``longest_stop`` {start, end, min} (stopped,
        whatever the reason) and ``first_changeover`` (epoch s or None). ``workers``: per
        worker ``changeover_min`` and ``by_task`` (``count``, ``min``, ``median_min`` of one
        task, ``longest``). Every ``start`` is the moment the viewer jumps to.
    """
    base = compute_kpis(result, machines)["machines"]
    out_m: dict[str, Any] = {}
    for m in machines:
        states = [s for s in result.machine_states if s.machine == m]
        stopped = _union([(s.start, s.end) for s in states if s.state == "stopped"])
        tasks = sorted((t for t in result.tasks if t.machine == m), key=lambda t: t.start)
        task_iv = [(t.start, t.end) for t in tasks]
        attended = _union([(z.start, z.end) for z in result.worker_zones if z.zone == m])
        attended_idle = _intersect(_subtract(stopped, task_iv), attended)
        by_task = {}
        for name in TASK_NAMES:
            mine = [(t.start, t.end) for t in tasks if t.task == name]
            by_task[name] = {"count": len(mine), "min": _total_min(mine), "longest": _longest(mine)}
        starts = changeover_starts(task_iv)
        b = base[m]
        out_m[m] = {
            "utilisation": b["utilisation"],
            "running_min": b["running_min"],
            "changeover_count": len(starts),
            "changeover_min": b["changeover_min"],
            "task_count": len(tasks),
            "by_task": by_task,
            "attended_idle_min": _total_min(attended_idle),
            "longest_attended_idle": _longest(attended_idle),
            "longest_stop": _longest(stopped),
            "first_changeover": starts[0] if starts else None,
        }
    out_w: dict[str, Any] = {}
    for w in workers:
        mine = [t for t in result.tasks if t.worker == w]
        by_task = {}
        for name in TASK_NAMES:
            iv = [(t.start, t.end) for t in mine if t.task == name]
            by_task[name] = {
                "count": len(iv),
                "min": _total_min(iv),
                "median_min": None if not iv else _median([(e - s) / 60.0 for s, e in iv]),
                "longest": _longest(iv),
            }
        out_w[w] = {"changeover_min": sum(t.end - t.start for t in mine) / 60.0, "by_task": by_task}
    return {"machines": out_m, "workers": out_w}


def with_trend(days: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The last day's :func:`shift_kpis` with a trend over all ``days`` and own medians.

    Parameters
    ----------
    days : list of (day, shift_kpis document)
        Oldest first; the last is the shift shown.

    Returns
    -------
    dict
        The last day's document plus ``trend`` (per day, per machine ``utilisation``,
        ``changeover_count``, ``changeover_min``, ``attended_idle_min``, ``longest_stop_min``;
        per worker ``changeover_min``) and, per worker and task, ``own_median_min``: the
        median of that worker's per-task medians on the earlier days (None without one).
    """
    if not days:
        raise ValueError("with_trend needs at least one day")
    day, doc = days[-1]
    doc = {
        "day": day,
        "machines": doc["machines"],
        "workers": {
            w: {**v, "by_task": {k: dict(t) for k, t in v["by_task"].items()}}
            for w, v in doc["workers"].items()
        },
    }
    for w, v in doc["workers"].items():
        for name, t in v["by_task"].items():
            earlier = [
                d["workers"][w]["by_task"][name]["median_min"]
                for _, d in days[:-1]
                if w in d["workers"] and d["workers"][w]["by_task"][name]["median_min"] is not None
            ]
            t["own_median_min"] = _median(earlier)
    doc["trend"] = [
        {
            "day": d,
            "machines": {
                m: {
                    "utilisation": k["utilisation"],
                    "changeover_count": k["changeover_count"],
                    "changeover_min": k["changeover_min"],
                    "attended_idle_min": k["attended_idle_min"],
                    "longest_stop_min": (k["longest_stop"] or {}).get("min", 0.0),
                }
                for m, k in kd["machines"].items()
            },
            "workers": {w: {"changeover_min": v["changeover_min"]} for w, v in kd["workers"].items()},
        }
        for d, kd in days
    ]
    return _rounded(doc)
