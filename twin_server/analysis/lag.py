"""Automatic, time-varying lag correction of a commercial locator's zone stream.

Machine-side events prove presence: a switch press, a jig change or a machine starting at
machine M at true time t means someone was in M's zone at t. Each locator *visit* (a
report that the beacon entered M, held until the next report) is matched with the
presence events of that worker at M:

* the worker arrived before the first event, so ``lag >= entry_report - first_event``;
* the worker left after the last event, so ``lag <= exit_report - last_event``.

The first event of a visit comes a few seconds after arrival (the first task starts as soon
as the worker is there), so the lag of the visit is the lower bound plus that small delay,
kept inside the bounds. Where the beacon is also heard by receivers, the RSSI zone estimate
(true time) gives the entry directly. Reports without evidence take the lag of the nearest
visit in time, so the lag varies over the shift as the locator's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from twin_server.analysis.align import Grid


@dataclass
class Anchor:
    """Someone was at machine ``code`` at grid cell ``k``."""

    k: int
    code: int


def locator_codes_at(loc_t: np.ndarray, loc_code: np.ndarray, times: np.ndarray, before: int) -> np.ndarray:
    """Locator zone code holding at each time (reports hold until the next)."""
    pos = np.searchsorted(loc_t, times, side="right") - 1
    return np.where(pos >= 0, loc_code[np.maximum(pos, 0)], before)


def visit_lags(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    anchors: list[Anchor],
    grid: Grid,
    *,
    none_code: int,
    rssi_zone: np.ndarray | None = None,
    max_lag_s: float = 150.0,
    arrival_delay_s: float = 2.0,
    rssi_lead_s: float = 0.0,
) -> list[tuple[int, float]]:
    """Lag estimates of the visits the evidence constrains.

    Parameters
    ----------
    loc_t, loc_code : numpy.ndarray
        Sorted locator report times (locator clock) and zone codes.
    anchors : list of Anchor
        Presence events attributed to this worker (true time).
    grid : Grid
        Common grid.
    none_code : int
        Code of ``none``.
    rssi_zone : numpy.ndarray, optional
        Per-cell zone codes from RSSI (true time; -1 unknown).
    max_lag_s : float
        Largest lag considered.
    arrival_delay_s : float
        Typical time from entering a zone to the first machine-side event.
    rssi_lead_s : float
        How much earlier than the true change the RSSI zone path changes, on average; taken
        off the RSSI-aligned lags.

    Returns
    -------
    list of (report_index, lag_s)
        The reports whose lag the evidence constrains (visit entries from events, other
        zone changes from RSSI), with their lag.
    """
    centres = grid.centres()
    a_t = np.array([centres[a.k] for a in anchors]) if anchors else np.zeros(0)
    a_code = np.array([a.code for a in anchors], dtype=np.int64)
    n = len(loc_t)
    anchored: dict[int, float] = {}
    for j in range(n):
        code = int(loc_code[j])
        if code == none_code or code < 0 or (j > 0 and loc_code[j - 1] == code):
            continue
        entry = loc_t[j]
        k = j + 1
        while k < n and loc_code[k] == code:
            k += 1
        exit_t = loc_t[k] if k < n else np.inf
        # Events before the previous report belong to an earlier visit (that visit ended, in
        # true time, before its exit was reported).
        since = max(entry - max_lag_s, loc_t[j - 1] if j > 0 else -np.inf)
        sel = (a_code == code) & (a_t >= since) & (a_t < exit_t)
        if sel.any():
            lo = entry - a_t[sel].min()
            hi = exit_t - a_t[sel].max()
            # lo <= 0: the first event came after the entry report, which bounds nothing.
            if 0 < lo <= hi:
                anchored[j] = min(lo + arrival_delay_s, hi)
    # Every other zone change (check visits without events, exits): where RSSI hears the
    # beacon, the lag that best aligns the locator with the RSSI zones around the change.
    rssi_based: dict[int, float] = {}
    if rssi_zone is not None:
        lags = np.arange(0.0, max_lag_s + 1e-9, 1.0)
        for j in range(1, n):
            if j in anchored or loc_code[j] == loc_code[j - 1]:
                continue
            est = rssi_lag(loc_t, loc_code, j, lags, rssi_zone, grid, none_code)
            if est is not None:
                rssi_based[j] = est - rssi_lead_s
    out = sorted([*anchored.items(), *rssi_based.items()])
    agree = None
    if rssi_zone is not None:

        def agree(j: int, lags: list[float]) -> list[float]:
            return rssi_agreement(loc_t, loc_code, j, lags, rssi_zone, grid, none_code)

    return smooth_lags(robust_lags(out, loc_t, agree=agree), loc_t)


def smooth_lags(
    visits: list[tuple[int, float]], loc_t: np.ndarray, *, half_s: float = 600.0, tolerance_s: float = 5.0
) -> list[tuple[int, float]]:
    """Median of each estimate with its agreeing neighbours close in time.

    The lag holds for stretches of many minutes while single estimates scatter by a few
    seconds (arrival delays, RSSI timing): estimates within ``half_s`` of each other and
    within ``tolerance_s`` of the one being smoothed are pooled. An estimate of another
    level (a lag change) is never pooled with it.
    """
    if half_s <= 0 or len(visits) < 2:
        return visits
    idx = np.array([j for j, _ in visits])
    vals = np.array([v for _, v in visits])
    t = loc_t[idx] - vals
    out = []
    for i, (j, v) in enumerate(visits):
        near = (np.abs(t - t[i]) <= half_s) & (np.abs(vals - v) <= tolerance_s)
        out.append((j, float(np.median(vals[near]))))
    return out


def rssi_lag(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    j: int,
    lags: np.ndarray,
    rssi_zone: np.ndarray,
    grid: Grid,
    none_code: int,
    margin_s: float = 45.0,
    min_agree: float = 0.9,
) -> float | None:
    """Lag of report ``j`` that best aligns the locator with the RSSI zones (None if unclear).

    The window covers every true time the change could have happened at; the middle of
    the best-agreeing range of lags is taken.
    """
    centres = grid.centres()
    k = grid.index(np.arange(loc_t[j] - lags[-1] - margin_s, loc_t[j] + margin_s, grid.step_s))
    k = k[(k >= 0) & (k < grid.n)]
    k = k[rssi_zone[k] >= 0]
    if len(k) < margin_s:
        return None
    seen = locator_codes_at(loc_t, loc_code, centres[k][:, None] + lags[None, :], none_code)
    # Only the machine zones this change is about count: elsewhere RSSI may confuse
    # neighbouring zones (or an idle spot with a neighbour), which says nothing about the lag.
    zs = [c for c in (loc_code[j], loc_code[j - 1]) if c != none_code]
    rel_rssi = np.where(np.isin(rssi_zone[k], zs), rssi_zone[k], -2)
    rel_seen = np.where(np.isin(seen, zs), seen, -2)
    score = (rel_seen == rel_rssi[:, None]).mean(axis=0)
    if score.max() < min_agree or score.max() - score.min() < 0.02:
        return None
    best = np.flatnonzero(score >= score.max() - 1e-9)
    if best[0] == 0 or best[-1] == len(lags) - 1:
        return None  # the best range runs into the search range's edge: no real optimum
    return float(0.5 * (lags[best[0]] + lags[best[-1]]))


def rssi_agreement(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    j: int,
    lags: list[float],
    rssi_zone: np.ndarray,
    grid: Grid,
    none_code: int,
    half_s: float = 120.0,
) -> list[float]:
    """Share of seconds around report ``j`` where the locator, moved back by each lag, agrees with RSSI."""
    centres = grid.centres()
    mid = loc_t[j] - float(np.mean(lags))
    k = grid.index(np.arange(mid - half_s, mid + half_s, grid.step_s))
    k = k[(k >= 0) & (k < grid.n)]
    k = k[rssi_zone[k] >= 0]
    if len(k) == 0:
        return [0.0 for _ in lags]
    return [
        float(np.mean(locator_codes_at(loc_t, loc_code, centres[k] + lag, none_code) == rssi_zone[k]))
        for lag in lags
    ]


def robust_lags(
    visits: list[tuple[int, float]],
    loc_t: np.ndarray,
    *,
    neighbours: int = 3,
    tolerance_s: float = 10.0,
    agree: Callable[[int, list[float]], list[float]] | None = None,
) -> list[tuple[int, float]]:
    """Replace visits whose lag looks wrong by the median of their neighbours.

    A visit's estimate errs low when the worker waited before the first event (the lower
    bound is loose): an estimate far below the median of the neighbouring visits takes
    that median. It errs high only when an event was wrongly attributed; with RSSI
    (``agree(j, [lag_a, lag_b])`` -> agreement of each), a far-off estimate in either
    direction is kept only if RSSI agrees with it better than with the median.
    """
    if len(visits) < 3:
        return visits
    vals = np.array([v for _, v in visits])
    out = []
    for i, (j, v) in enumerate(visits):
        lo, hi = max(0, i - neighbours), min(len(vals), i + neighbours + 1)
        others = np.delete(vals[lo:hi], i - lo)
        med = float(np.median(others))
        if abs(v - med) > tolerance_s and agree is not None:
            a_v, a_med = agree(j, [v, med])
            out.append((j, v if a_v > a_med else med))
        else:
            out.append((j, med if v < med - tolerance_s else v))
    return out


def report_lags(
    loc_t: np.ndarray, loc_code: np.ndarray, constrained: list[tuple[int, float]], default_lag_s: float
) -> np.ndarray:
    """Lag of every report: its visit's estimate, else the nearest estimated visit's in time."""
    n = len(loc_t)
    if not constrained:
        return np.full(n, default_lag_s)
    est = dict(constrained)
    idx = np.array(sorted(est))
    val = np.array([est[j] for j in idx])
    run_start = np.zeros(n, dtype=np.int64)
    for i in range(1, n):
        run_start[i] = run_start[i - 1] if loc_code[i] == loc_code[i - 1] else i
    out = np.empty(n)
    anchor_t = loc_t[idx]
    for i in range(n):
        if run_start[i] in est:
            out[i] = est[run_start[i]]
            continue
        pos = int(np.searchsorted(anchor_t, loc_t[i]))
        cands = [c for c in (pos - 1, pos) if 0 <= c < len(idx)]
        best = min(cands, key=lambda c: abs(anchor_t[c] - loc_t[i]))
        out[i] = val[best]
    return out


def keep_report_order(loc_t: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True times of sorted reports, and their lags, with the reports' order kept.

    Reports never overtake each other, so neither do the changes they report: a report's
    lag is capped so that it stays after the previous report in true time (a too-large
    estimate would otherwise hide the previous report's zone entirely).
    """
    true_t = np.maximum.accumulate(loc_t - lags)
    return true_t, loc_t - true_t


def lag_segments(
    loc_t: np.ndarray,
    lags: np.ndarray,
    grid: Grid,
    window_end: float,
    *,
    long_gap_s: float = 600.0,
    piece_s: float = 300.0,
    typical_lag_s: float | None = None,
    pull_tau_s: float = 1800.0,
    pull_max: float = 0.5,
) -> list[tuple[float, float, float]]:
    """Piecewise-constant lag over the window in true time, as ``(start, end, lag_s)``.

    Between two reports with different lags the change is put halfway; across a long
    silence (no reports for ``long_gap_s``) the lag is unknown and drifts, so it moves from
    one value to the other in ``piece_s`` steps (a linear guess beats a step there), and,
    given ``typical_lag_s``, is drawn towards that level the farther it is from the nearest
    report (the lag is mean-reverting; large lags are short-lived), at most by ``pull_max``
    after ``pull_tau_s``. The same holds before the first and after the last report.
    """
    if len(loc_t) == 0:
        return []
    true_t = loc_t - lags
    start = float(grid.start)

    def pulled(lin: float, d: float) -> float:
        if typical_lag_s is None:
            return lin
        w = pull_max * min(1.0, max(d, 0.0) / pull_tau_s)
        return lin + w * (typical_lag_s - lin)

    bounds: list[float] = []
    values: list[float] = []

    def add(b: float, v: float) -> None:
        b = min(max(b, bounds[-1] if bounds else start), window_end)
        v = round(float(v), 1)
        if values and v == values[-1]:
            return
        bounds.append(b)
        values.append(v)

    # Before the first report.
    t_first = float(true_t[0])
    if t_first - start > long_gap_s:
        n = int((t_first - start) // piece_s)
        for i in range(n):
            a = t_first - (n - i) * piece_s
            add(start if i == 0 else a, pulled(float(lags[0]), t_first - (a + piece_s / 2)))
        add(t_first - piece_s / 2, float(lags[0]))
    else:
        add(start, float(lags[0]))
    for c in range(1, len(lags)):
        t1, t2 = float(true_t[c - 1]), float(true_t[c])
        v1, v2 = float(lags[c - 1]), float(lags[c])
        if t2 - t1 > long_gap_s:
            steps = int((t2 - t1) // piece_s)
            for i in range(1, steps):
                tm = t1 + (i + 0.5) * piece_s
                lin = v1 + (v2 - v1) * i / steps
                add(t1 + i * piece_s, pulled(lin, min(tm - t1, t2 - tm)))
            add(t2 - piece_s / 2, v2)
        elif v2 != v1:
            add(0.5 * (t1 + t2), v2)
    # After the last report.
    t_last = float(true_t[-1])
    i = 1
    while t_last + i * piece_s < window_end and typical_lag_s is not None:
        add(t_last + i * piece_s, pulled(float(lags[-1]), (i + 0.5) * piece_s))
        i += 1
    bounds.append(window_end)
    return [(s, e, v) for s, e, v in zip(bounds[:-1], bounds[1:], values, strict=True) if e > s]
