"""Naive methods and an oracle to score the analysis against, on the same recording.

Every function returns a :class:`~twin_server.result.Result` holding worker zones (and,
where the method implies one, a lag) over the truth's window, scored with
:func:`twin_server.evaluate.score` (``zones_only=True``) like the analysis:

* :func:`strongest_receiver_result`: each second, the receiver that hears the beacon loudest,
  mapped to the zone nearest to it; ``none`` below a level (-70 dBm) or without packets;
* :func:`locator_shift_result`: the locator's zone stream moved earlier by a fixed shift
  (0 = the raw locator, 30 s = the pilot's manual fix) or by each worker's own shift: the
  median lag a practitioner reads off the file (:func:`naive_median_lag`, report minus the
  first press of each visit) or, as a reference that needs the truth, the median of the
  worker's true lag (:func:`median_true_lag`: the best any constant shift per worker can do);
* :func:`oracle_lag_result`: each report moved back by its own true delay (what perfect lag
  estimation would give from the locator alone).

Two extra figures complement the scorer: :func:`zone_accuracy_after_moves` (the seconds
right after each true zone change, where lag errors show) and :func:`task_worker_accuracy`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin_server.evaluate import BASELINE_SHIFT_S, label_grid, score_times, zone_stream_result
from twin_server.result import BeaconLag, Result, WorkerZone
from twin_server.site import Site

__all__ = [
    "STRONGEST_NONE_DBM",
    "locator_shift_result",
    "median_true_lag",
    "naive_median_lag",
    "oracle_lag_result",
    "strongest_receiver_result",
    "task_worker_accuracy",
    "zone_accuracy_after_moves",
]

#: Below this RSSI at the strongest receiver the naive method answers "none".
STRONGEST_NONE_DBM = -70.0


def _intervals_to_zones(
    worker: str, t: np.ndarray, labels: np.ndarray, t0: float, t1: float
) -> list[WorkerZone]:
    """Per-second labels (second ``k`` covers ``[t0 + k, t0 + k + 1)``) as merged zone intervals."""
    out: list[WorkerZone] = []
    if len(labels) == 0:
        return [WorkerZone(worker, "none", t0, t1)]
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    for a, b in zip(starts, ends, strict=True):
        out.append(WorkerZone(worker, str(labels[a]), float(t[a]), float(t[b]) if b < len(labels) else t1))
    return out


def strongest_receiver_result(
    truth: Result,
    readings: pd.DataFrame,
    site: Site,
    *,
    none_below_dbm: float = STRONGEST_NONE_DBM,
    hold_s: int = 3,
) -> Result:
    """Zones from the loudest receiver each second, mapped to the zone nearest to it.

    Parameters
    ----------
    truth : Result
        Gives the window.
    readings : pandas.DataFrame
        Readings frame; only ``rssi`` rows are used.
    site : Site
        Receivers, zones and beacons.
    none_below_dbm : float
        A second whose strongest receiver hears less than this (mean of its packets) is ``none``.
    hold_s : int
        A second without packets keeps the previous answer for up to this many seconds.
    """
    t0, t1 = truth.window_start, truth.window_end
    n = max(1, math.ceil(t1 - t0))
    edges = t0 + np.arange(n + 1, dtype="float64")
    names = [*site.machine_ids, "none"]
    zone_of = np.array(
        [_nearest_zone(site, r.position[0], r.position[1]) for r in site.receivers] + [len(names) - 1]
    )
    rx_index = {r.id: i for i, r in enumerate(site.receivers)}
    rssi = readings[readings["kind"] == "rssi"]
    out: list[WorkerZone] = []
    for w in site.workers:
        rows = rssi[rssi["channel"] == w.beacon]
        labels = np.full(n, len(names) - 1, dtype=np.int64)
        if len(rows):
            k = np.floor(rows["t"].to_numpy(dtype="float64") - t0).astype(np.int64)
            j = rows["source"].map(rx_index).to_numpy()
            v = rows["value"].to_numpy(dtype="float64")
            ok = (k >= 0) & (k < n) & pd.notna(j)
            k, j, v = k[ok], j[ok].astype(np.int64), v[ok]
            n_rx = len(site.receivers)
            total = np.zeros((n, n_rx))
            count = np.zeros((n, n_rx))
            np.add.at(total, (k, j), v)
            np.add.at(count, (k, j), 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
            best = mean.argmax(axis=1)
            level = mean[np.arange(n), best]
            heard = np.isfinite(level)
            labels = np.where(heard & (level >= none_below_dbm), zone_of[best], len(names) - 1)
            # Seconds without a packet keep the last answer for a little while.
            idx = np.where(heard, np.arange(n), -1)
            last = np.maximum.accumulate(idx)
            fill = ~heard & (last >= 0) & (np.arange(n) - last <= hold_s)
            labels[fill] = labels[last[fill]]
        out += _intervals_to_zones(w.id, edges[:-1], np.array(names, dtype=object)[labels], t0, t1)
    return Result(site=truth.site, window_start=t0, window_end=t1, worker_zones=out)


def _nearest_zone(site: Site, x: float, y: float) -> int:
    """Index of the machine whose zone centroid is nearest to a floor point."""
    from twin_server.site import polygon_centroid

    d = [math.hypot(x - cx, y - cy) for cx, cy in (polygon_centroid(m.zone) for m in site.machines)]
    return int(np.argmin(d))


def locator_shift_result(
    truth: Result, readings: pd.DataFrame, site: Site, shift_s: float | dict[str, float]
) -> Result:
    """The locator's zone stream moved ``shift_s`` earlier (one value, or one per worker id)."""
    if not isinstance(shift_s, dict):
        return zone_stream_result(truth, readings, site, float(shift_s))
    zones = readings[readings["kind"] == "zone"]
    out = Result(site=truth.site, window_start=truth.window_start, window_end=truth.window_end)
    for w in site.workers:
        s = float(shift_s.get(w.id, 0.0))
        one = zone_stream_result(truth, zones[zones["channel"] == w.beacon], site, s)
        out.worker_zones += [z for z in one.worker_zones if z.worker == w.id]
        out.beacon_lag += [b for b in one.beacon_lag if b.worker == w.id]
    return out


def naive_median_lag(
    readings: pd.DataFrame, site: Site, *, search_s: float = 150.0, default_s: float = BASELINE_SHIFT_S
) -> dict[str, float]:
    """Each worker's lag as a practitioner would guess it from the file: a median of visits.

    For every locator report of a worker entering machine M, the first button press at M
    after the worker's previous report (at most ``search_s`` before this one) and before its
    next report gives one value
    (report time minus press time, if positive); the worker's lag is their median
    (``default_s`` without any).
    """
    zones = readings[readings["kind"] == "zone"]
    sw = readings[(readings["kind"] == "switch") & (readings["value"] == 1.0)]
    presses = {m: np.sort(g["t"].to_numpy(dtype="float64")) for m, g in sw.groupby("source")}
    out = {}
    for w in site.workers:
        rows = zones[zones["channel"] == w.beacon].sort_values("t", kind="stable")
        t = rows["t"].to_numpy(dtype="float64")
        lab = rows["label"].to_numpy(dtype=object)
        vals = []
        for i, (ti, z) in enumerate(zip(t, lab, strict=True)):
            p = presses.get(z)
            if p is None or len(p) == 0:
                continue
            nxt = t[i + 1] if i + 1 < len(t) else np.inf
            j = int(np.searchsorted(p, max(ti - search_s, t[i - 1] if i > 0 else -np.inf)))
            if j < len(p) and p[j] < nxt and ti - p[j] > 0:
                vals.append(ti - p[j])
        out[w.id] = float(np.median(vals)) if vals else default_s
    return out


def median_true_lag(truth: Result) -> dict[str, float]:
    """Each worker's median true lag over the window's seconds (time-weighted)."""
    times = score_times(truth.window_start, truth.window_end)
    out = {}
    for w in sorted({b.worker for b in truth.beacon_lag}):
        lag = label_grid(
            [(b.start, b.end, b.lag_s) for b in truth.beacon_lag if b.worker == w], times, math.nan
        )
        lag = lag[np.isfinite(lag)]
        if len(lag):
            out[w] = float(np.median(lag))
    return out


def oracle_lag_result(truth: Result, readings: pd.DataFrame, site: Site) -> Result:
    """Each locator report moved back by the true delay of the change it reports.

    The truth's ``beacon_lag`` gives the lag per true-time stretch ``[start, end)``; a report
    at ``r`` belongs to the stretch whose ``start <= r - lag < end`` (the nearest one if none
    fits exactly, e.g. a report that waited for the previous one).
    """
    t0, t1 = truth.window_start, truth.window_end
    zones = readings[readings["kind"] == "zone"]
    out = Result(site=truth.site, window_start=t0, window_end=t1)
    for w in site.workers:
        rows = zones[zones["channel"] == w.beacon].sort_values("t", kind="stable")
        r = rows["t"].to_numpy(dtype="float64")
        labels = rows["label"].to_numpy(dtype=object)
        segs = sorted((b.start, b.end, b.lag_s) for b in truth.beacon_lag if b.worker == w.id)
        if not segs or len(r) == 0:
            out.worker_zones.append(WorkerZone(w.id, "none", t0, t1))
            continue
        s = np.array([a for a, _, _ in segs])
        e = np.array([b for _, b, _ in segs])
        lag = np.array([v for _, _, v in segs])
        tau = r[:, None] - lag[None, :]
        miss = np.maximum(s[None, :] - tau, 0.0) + np.maximum(tau - e[None, :], 0.0)
        pick = miss.argmin(axis=1)
        true_t = np.where(r <= t0 + 1e-6, r, r - lag[pick])  # the first report is the state at t0
        order = np.argsort(true_t, kind="stable")
        true_t, labels = true_t[order], labels[order]
        cursor, current = t0, "none"
        for ti, lab in zip(true_t, labels, strict=True):
            if ti > cursor and ti < t1:
                out.worker_zones.append(WorkerZone(w.id, current, cursor, float(ti)))
                cursor = float(ti)
            current = str(lab)
        if cursor < t1:
            out.worker_zones.append(WorkerZone(w.id, current, cursor, t1))
        out.beacon_lag += [BeaconLag(w.id, v, a, b) for a, b, v in segs]
    return out


def zone_accuracy_after_moves(truth: Result, result: Result, window_s: float = 120.0) -> float | None:
    """Zone accuracy over the seconds within ``window_s`` after each true zone change.

    The scorer's instants (``window.start + k + 0.5``) that fall in ``[change, change +
    window_s)`` of any change of that worker are scored once each; the window's first
    interval (not a change) is left out. None when no worker changes zone.
    """
    times = score_times(truth.window_start, truth.window_end)
    hits: list[np.ndarray] = []
    for w in sorted({z.worker for z in truth.worker_zones}):
        tz = sorted((z.start, z.end, z.zone) for z in truth.worker_zones if z.worker == w)
        changes = np.array([a for a, _, _ in tz[1:]])
        if len(changes) == 0:
            continue
        pos = np.searchsorted(changes, times, side="right") - 1
        near = (pos >= 0) & (times - changes[np.maximum(pos, 0)] < window_s)
        if not near.any():
            continue
        rz = [(z.start, z.end, z.zone) for z in result.worker_zones if z.worker == w]
        got = label_grid(rz, times[near], "<missing>")
        hits.append(got == label_grid(tz, times[near], "<missing-truth>"))
    return float(np.mean(np.concatenate(hits))) if hits else None


def task_worker_accuracy(truth: Result, result: Result) -> float | None:
    """Share of the true task seconds labelled with the right task whose worker is also right."""
    times = score_times(truth.window_start, truth.window_end)
    right = total = 0
    for m in sorted({t.machine for t in truth.tasks}):
        tt = [tk for tk in truth.tasks if tk.machine == m]
        rt = [tk for tk in result.tasks if tk.machine == m]
        t_task = label_grid([(tk.start, tk.end, tk.task) for tk in tt], times, "none")
        r_task = label_grid([(tk.start, tk.end, tk.task) for tk in rt], times, "none")
        t_w = label_grid([(tk.start, tk.end, tk.worker or "?") for tk in tt], times, "?")
        r_w = label_grid([(tk.start, tk.end, tk.worker or "?") for tk in rt], times, "?")
        same = (t_task != "none") & (t_task == r_task)
        total += int(same.sum())
        right += int((same & (t_w == r_w)).sum())
    return right / total if total else None
