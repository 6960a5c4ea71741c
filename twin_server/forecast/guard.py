"""The forecast's guardrail: it learns from its own earlier errors, never from the day it serves.

On earlier days the forecast was made every few minutes (:func:`calibration_rows` in the
service) and compared with what then happened. Per event (``run_end`` / ``restart``) and
horizon (the forecast's own median lead time), :func:`fit_calibration` picks the blend
between the model's median and the naive median (the machine's median run or stop length,
counted from the start of the run or stop) that had the smaller mean absolute error on those
days, and how far the 80 % range must be widened (or narrowed) on each side so that 10 % of
the earlier events fell below it and 10 % above (split conformal prediction). With too few
earlier forecasts of a kind the model's own answer stands.

Pure functions; the service feeds them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from twin_server.forecast.history import DayRecords, merge_segments
from twin_server.result import Result

__all__ = [
    "Calibration",
    "apply_guard",
    "apply_guard_total",
    "fit_calibration",
    "lead_bin",
    "naive_median",
    "naive_pools",
    "observed_event",
    "steady",
]

#: Horizon classes (minutes of the forecast's median lead time): upper edges.
LEAD_EDGES_MIN = (10.0, 22.5, 45.0, math.inf)
#: The shift end's site totals: lead classes (minutes before the shift end): upper edges.
TOTAL_EDGES_MIN = (90.0, 180.0, math.inf)
TOTALS = ("running_min", "changeovers")
#: Fewest earlier forecasts of one kind before the guard overrides the model.
MIN_ROWS = 30
_BLENDS = np.linspace(1.0, 0.0, 11)  # the model first: a tie keeps it
_MIN_WIDTH_S = 30.0


def lead_bin(lead_s: float) -> int:
    """Index of the horizon class of a median lead time (seconds)."""
    m = lead_s / 60.0
    return next(i for i, edge in enumerate(LEAD_EDGES_MIN) if m <= edge)


def _key(event: str, t: float, p50: float, naive_med: float) -> tuple[str, int, int]:
    """A forecast's kind: its event, its horizon class and the naive median's."""
    return event, lead_bin(p50 - t), lead_bin(naive_med - t)


@dataclass(frozen=True)
class Rule:
    """How one kind of forecast is corrected: ``w`` the model's share of the median (the rest
    is the naive median's), ``s_lo`` / ``s_hi`` the factors on the range's lower and upper
    half-widths, ``n`` the earlier forecasts behind them."""

    w: float
    s_lo: float
    s_hi: float
    n: int


@dataclass(frozen=True)
class Calibration:
    """Rules per ``(event, horizon class)``; days: how many earlier days they come from."""

    rules: dict[tuple, Rule]  # (event, class) and (event, class, the naive median's class)
    days: int = 0


def _widths(p10: float | None, p50: float, p90: float | None) -> tuple[float, float]:
    lo = p50 - p10 if p10 is not None else 0.0
    hi = p90 - p50 if p90 is not None else 4 * 3600.0
    return max(_MIN_WIDTH_S, lo), max(_MIN_WIDTH_S, hi)


def fit_calibration(rows: Iterable[dict], days: int = 0) -> Calibration:
    """Rules from earlier days' forecasts and what happened.

    Parameters
    ----------
    rows : iterable of dict
        Each with ``t``, ``event``, ``p10``, ``p50``, ``p90``, ``naive_med`` (epoch s or None) and
        ``observed`` (the event's time as analysed afterwards, None when unknown).
    days : int
        How many days the rows come from (reported, not used).

    Returns
    -------
    Calibration
    """
    groups: dict[tuple, list[tuple[float, ...]]] = {}
    totals: dict[tuple, list[tuple[float, ...]]] = {}
    for r in rows:
        if r["event"] in TOTALS:
            if r.get("observed") is not None and r.get("p50") is not None:
                lo_w, hi_w = max(1.0, r["p50"] - r["p10"]), max(1.0, r["p90"] - r["p50"])
                totals.setdefault(_total_key(r["event"], r["lead_s"]), []).append(
                    (r["p50"], r["p50"], r["observed"], lo_w, hi_w)
                )
            continue
        if r.get("observed") is None or r.get("p50") is None or r.get("naive_med") is None:
            continue
        lo_w, hi_w = _widths(r["p10"], r["p50"], r["p90"])
        groups.setdefault(_key(r["event"], r["t"], r["p50"], r["naive_med"]), []).append(
            (r["p50"], r["naive_med"], r["observed"], lo_w, hi_w)
        )
    for (event, b_model, _b_naive), items in list(groups.items()):
        groups.setdefault((event, b_model), []).extend(items)
    rules = {}
    for key, items in [*groups.items(), *totals.items()]:
        if len(items) < MIN_ROWS:
            continue
        p50, naive, y, lo_w, hi_w = (np.array(c) for c in zip(*items, strict=True))
        mae = [float(np.mean(np.abs(w * p50 + (1 - w) * naive - y))) for w in _BLENDS]
        w = 1.0 if key[0] in TOTALS else float(_BLENDS[int(np.argmin(mae))])
        med = w * p50 + (1 - w) * naive
        n = len(items)
        q = min(1.0, 0.9 * (n + 1) / n)  # split-conformal quantile with its finite-sample step
        s_lo = float(np.quantile((med - y) / lo_w, q))
        s_hi = float(np.quantile((y - med) / hi_w, q))
        rules[key] = Rule(w, max(0.0, s_lo), max(0.0, s_hi), n)
    return Calibration(rules, days)


Triple = tuple[float | None, float | None, float | None]


def apply_guard(
    cal: Calibration | None,
    event: str,
    t: float,
    p10: float | None,
    p50: float | None,
    p90: float | None,
    naive_med: float | None,
) -> Triple:
    """The corrected ``(p10, p50, p90)`` of one forecast made at ``t`` (unchanged without a rule)."""
    if cal is None or p50 is None or naive_med is None:
        return p10, p50, p90
    rule = cal.rules.get(_key(event, t, p50, naive_med)) or cal.rules.get((event, lead_bin(p50 - t)))
    if rule is None:
        return p10, p50, p90
    lo_w, hi_w = _widths(p10, p50, p90)
    med = max(t, rule.w * p50 + (1 - rule.w) * naive_med)
    return min(med, max(t, med - rule.s_lo * lo_w)), med, max(med, med + rule.s_hi * hi_w)


def _total_key(event: str, lead_s: float) -> tuple[str, int]:
    m = lead_s / 60.0
    return event, next(i for i, edge in enumerate(TOTAL_EDGES_MIN) if m <= edge)


def apply_guard_total(cal: Calibration | None, event: str, lead_s: float, q: Sequence[float]) -> list[float]:
    """The shift end's site total ``[p10, p50, p90]`` (``event``: running_min / changeovers)
    ``lead_s`` before the shift end, its range widened as earlier days' misses ask."""
    rule = None if cal is None or len(q) != 3 else cal.rules.get(_total_key(event, lead_s))
    if rule is None:
        return list(q)
    p10, p50, p90 = q
    lo_w, hi_w = max(1.0, p50 - p10), max(1.0, p90 - p50)
    return [min(p50, max(0.0, p50 - rule.s_lo * lo_w)), p50, max(p50, p50 + rule.s_hi * hi_w)]


# -- the naive median, from what the forecast learns from --------------------------------------
def naive_pools(records: Sequence[DayRecords]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per machine the lengths (s) of its complete runs and of its stops between two runs."""
    runs: dict[str, list[float]] = {}
    stops: dict[str, list[float]] = {}
    for rec in records:
        by_m: dict[str, list] = {}
        for s in rec.stops:
            by_m.setdefault(s.machine, []).append(s)
        for m, ss in by_m.items():
            ss.sort(key=lambda s: s.stop)
            for a, b in itertools.pairwise(ss):
                if a.restart is not None and b.stop > a.restart:
                    runs.setdefault(m, []).append(b.stop - a.restart)
            for s in ss:
                if s.restart is not None:
                    stops.setdefault(m, []).append(s.restart - s.stop)
    return runs, stops


def naive_median(
    pools: tuple[dict[str, list[float]], dict[str, list[float]]],
    machine: str,
    event: str,
    since: float,
    t: float,
) -> float | None:
    """The machine's median run (stop) length counted from ``since``, at ``t`` once passed (the
    site's median for a machine never seen)."""
    pool = pools[0] if event == "run_end" else pools[1]
    got = pool.get(machine) or [v for vs in pool.values() for v in vs]
    if not got:
        return None
    return max(since + float(np.median(got)), t)


def observed_event(result: Result, machine: str, t: float, event: str) -> float | None:
    """When the event forecast at ``t`` happened in an analysed day (None: unknown)."""
    segs = merge_segments(result.machine_states, machine)
    for i, (state, a, b) in enumerate(segs):
        if a <= t < b:
            if event == "run_end":
                return b if state == "running" and b < result.window_end - 1 else None
            if state == "stopped" and i + 1 < len(segs) and segs[i + 1][0] == "running":
                return segs[i + 1][1]
            return None
    return None


def steady(
    prev_p50: float | None, p10: float | None, p50: float | None, p90: float | None, t: float, band: float
) -> float | None:
    """The predicted end held where it was while the new median stays within ``band`` times the
    time left of it (a backlash: it moves only as far as the new median pushes it, so it never
    strays further than that from the model's).

    ``prev_p50``: the median shown a minute before for the same run (None: nothing shown).
    """
    if p50 is None or prev_p50 is None or prev_p50 <= t or band <= 0:
        return p50
    d = band * (min(p50, prev_p50) - t)
    return max(t, min(max(prev_p50, p50 - d), p50 + d))
