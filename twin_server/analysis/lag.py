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


def visit_lags(loc_t: np.ndarray, loc_code: np.ndarray, anchors: list[Anchor], grid: Grid, *,
               none_code: int, rssi_zone: np.ndarray | None = None, max_lag_s: float = 150.0,
               arrival_delay_s: float = 2.0, min_rssi_run_s: float = 20.0) -> list[tuple[int, float]]:
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
    min_rssi_run_s : float
        An RSSI zone run shorter than this is edge flicker, not an entry.

    Returns
    -------
    list of (report_index, lag_s)
        The entry report of each constrained visit and its lag.
    """
    centres = grid.centres()
    a_t = np.array([centres[a.k] for a in anchors]) if anchors else np.zeros(0)
    a_code = np.array([a.code for a in anchors], dtype=np.int64)
    out: list[tuple[int, float]] = []
    n = len(loc_t)
    rssi_entries: dict[int, np.ndarray] = {}
    if rssi_zone is not None:
        # Entries into a zone the RSSI estimate then holds for a while (edge flicker is no entry).
        change = np.flatnonzero(np.diff(rssi_zone) != 0) + 1
        run_end = np.append(change[1:], len(rssi_zone))
        long_run = (run_end - change) * grid.step_s >= min_rssi_run_s
        for code in np.unique(rssi_zone[change]) if len(change) else []:
            sel = (rssi_zone[change] == code) & long_run
            rssi_entries[int(code)] = centres[change[sel]] - 0.5 * grid.step_s
    for j in range(n):
        code = int(loc_code[j])
        if code == none_code or code < 0 or (j > 0 and loc_code[j - 1] == code):
            continue
        entry = loc_t[j]
        k = j + 1
        while k < n and loc_code[k] == code:
            k += 1
        exit_t = loc_t[k] if k < n else np.inf
        estimates = []
        sel = (a_code == code) & (a_t >= entry - max_lag_s) & (a_t < exit_t)
        if sel.any():
            lo = max(0.0, entry - a_t[sel].min())
            hi = exit_t - a_t[sel].max()
            if lo <= hi:
                estimates.append(min(lo + arrival_delay_s, hi) if lo > 0 else min(arrival_delay_s, hi))
        ent = rssi_entries.get(code)
        if ent is not None and not estimates:
            cand = entry - ent
            cand = cand[(cand >= 0) & (cand <= max_lag_s)]
            if len(cand):
                estimates.append(float(cand.min()))
        if estimates:
            out.append((j, float(np.median(estimates))))
    return out


def report_lags(loc_t: np.ndarray, loc_code: np.ndarray, constrained: list[tuple[int, float]],
                default_lag_s: float) -> np.ndarray:
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


def lag_segments(loc_t: np.ndarray, lags: np.ndarray, grid: Grid,
                 window_end: float) -> list[tuple[float, float, float]]:
    """Piecewise-constant lag over the window in true time, as ``(start, end, lag_s)``."""
    if len(loc_t) == 0:
        return []
    true_t = loc_t - lags
    change = np.flatnonzero(np.diff(lags) != 0) + 1
    bounds = [grid.start]
    values = [float(lags[0])]
    for c in change:
        b = float(0.5 * (true_t[c - 1] + true_t[c]))
        b = min(max(b, bounds[-1]), window_end)
        bounds.append(b)
        values.append(float(lags[c]))
    bounds.append(window_end)
    return [(s, e, v) for s, e, v in zip(bounds[:-1], bounds[1:], values, strict=True) if e > s]
