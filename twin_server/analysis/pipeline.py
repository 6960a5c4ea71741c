"""The analysis pipeline: readings frame + site -> contract result (offline = live)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from twin_server.analysis import confidence as cf
from twin_server.analysis import dwell_naming as dn
from twin_server.analysis import events as ev
from twin_server.analysis import fingerprint_zones as fp
from twin_server.analysis import lag as lg
from twin_server.analysis import machine_state as ms
from twin_server.analysis import move_lag as mv
from twin_server.analysis import position_smoother as psm
from twin_server.analysis import priors as pr
from twin_server.analysis import radio_fit as rf
from twin_server.analysis import rssi_zones as rz
from twin_server.analysis import tasks as tk
from twin_server.analysis import zone_fingerprints as zf
from twin_server.analysis.align import Grid, apply_clock_offsets, make_grid
from twin_server.analysis.intervals import runs
from twin_server.analysis.params import AnalysisParams
from twin_server.result import BeaconLag, MachineState, Result, Task, WorkerZone
from twin_server.site import Site

UNKNOWN_ZONE = -1


def _one_blas_thread(fn: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``fn`` with BLAS on one thread: the analysis's matrix products are small, and a
    second BLAS thread waiting for a busy core made an 8 h analysis 1.5-2x slower under load
    (same results)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Result:
        with threadpool_limits(1, "blas"):
            return fn(*args, **kwargs)

    return run


@_one_blas_thread
def analyze(
    readings: pd.DataFrame,
    site: Site,
    *,
    rejected_rows: int = 0,
    params: AnalysisParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> Result:
    """Analyse a recording: machine states, worker zones (true time), tasks and beacon lag.

    Parameters
    ----------
    readings : pandas.DataFrame
        Validated long frame (``t, kind, source, channel, value, label``) as produced by
        :mod:`twin_server.readings`, any row order.
    site : Site
        The site the readings belong to.
    rejected_rows : int
        Rows the loader skipped; copied into the result.
    params : AnalysisParams, optional
        Tunables; defaults suit the contract.
    progress : callable, optional
        Receives a few human-readable progress lines.

    Returns
    -------
    Result
        The contract's result. ``extra`` holds ``confidence`` details and ``analysis``
        diagnostics (thresholds, fitted path-loss).
    """
    p = params or AnalysisParams()
    say = progress or (lambda _msg: None)
    frame = apply_clock_offsets(readings, p.clock_offsets_s)
    frame = frame.sort_values("t", kind="stable", ignore_index=True)
    if len(frame) == 0:
        return Result(site=site.site, window_start=0.0, window_end=0.0, rejected_rows=rejected_rows)
    t_all = frame["t"].to_numpy(dtype="float64")
    grid = make_grid(float(t_all.min()), float(t_all.max()), p.step_s)
    window_end = float(t_all.max()) if t_all.max() > t_all.min() else grid.end
    by_kind = {k: g for k, g in frame.groupby("kind", sort=False)}
    diag: dict[str, object] = {}

    # 1. machine states
    say(f"analyze: {len(frame)} readings over {grid.n * grid.step_s / 3600:.2f} h; machine states")
    states = machine_states(by_kind, site, grid, p, diag)

    # 2. machine-side events (presences)
    presses = switch_presses(by_kind.get("switch"), p)
    jigs = jig_changes(by_kind.get("pressure"), site, grid, p)

    # 3. zones: RSSI (true time) and the lag-corrected locator stream
    say("analyze: worker zones and locator lag")
    zone_names = [*site.machine_ids, "none"]
    none_code = len(site.machine_ids)
    anchors = presence_anchors(presses, jigs, states, site, grid, press_delay_s=p.press_delay_s)
    loc_streams = locator_streams(by_kind.get("zone"), site, zone_names)
    rssi_est = rssi_zone_estimates(
        by_kind.get("rssi"), site, grid, p, anchors, diag, unpinned=set(loc_streams), states=states
    )
    zones: dict[str, np.ndarray] = {}
    conf: dict[str, np.ndarray] = {}
    lags: list[BeaconLag] = []
    visit_diag: dict[str, list[list[float]]] = {}
    diag["lag_visits"] = visit_diag
    owns, diag["anchor_owners"] = anchor_owners(anchors, loc_streams, rssi_est, grid, p.max_lag_s, none_code)
    press_cells = [(int(grid.index(pr.t)), site.machine_ids.index(pr.machine)) for pr in presses]
    tracks = (
        per_move_tracks(loc_streams, owns, rssi_est, grid, p, none_code + 1, diag, press_cells)
        if p.lag_model == "per_move"
        else {}
    )
    for w in site.workers:
        rz_est = rssi_est.get(w.id)
        rssi_codes = rz_est.zone if rz_est is not None else None
        if w.id in loc_streams and p.lag_model == "per_move":
            track = tracks[w.id]
            zones[w.id], conf[w.id] = track.codes, track.confidence
            if rz_est is not None:
                # Before the locator's first report: RSSI (true time) where it hears the beacon.
                before = track.codes < 0
                zones[w.id] = np.where(before, rz_est.zone, track.codes)
                conf[w.id] = np.where(before, rz_est.posterior.max(axis=1), track.confidence)
            segs = mv.lag_segments(track, grid.start, window_end)
            lags += [BeaconLag(w.id, lag, s, e) for s, e, lag in segs]
        elif w.id in loc_streams:
            lt, lc = loc_streams[w.id]
            own = owns[w.id]
            visits = lg.visit_lags(
                lt,
                lc,
                own,
                grid,
                none_code=none_code,
                rssi_zone=rssi_codes,
                max_lag_s=p.max_lag_s,
                arrival_delay_s=p.arrival_delay_s,
                rssi_lead_s=p.rssi_lag_lead_s,
            )
            rep_lag = lg.report_lags(lt, lc, visits, p.default_lag_s)
            typical = float(np.median([v for _, v in visits])) if visits else None
            visit_diag[w.id] = [[round(float(lt[j]), 1), round(v, 1)] for j, v in visits]
            true_t, rep_lag = lg.keep_report_order(lt, rep_lag)
            order = np.argsort(true_t, kind="stable")
            codes = lg.locator_codes_at(true_t[order], lc[order], grid.centres(), UNKNOWN_ZONE)
            c = np.where(codes >= 0, 0.9, 0.0)
            if rz_est is not None:
                # Both: the lag-corrected locator is the more reliable at the zone level (RSSI
                # flickers at zone edges); RSSI fills what the locator has not reported yet
                # and, above, pins the locator's lag.
                rssi_p = rz_est.confidence
                use_rssi = codes < 0
                codes = np.where(use_rssi, rz_est.zone, codes)
                c = np.where(use_rssi, rssi_p, c)
            zones[w.id] = codes
            conf[w.id] = c
            lags += [
                BeaconLag(w.id, round(lag, 1), s, e)
                for s, e, lag in lg.lag_segments(
                    lt[order], rep_lag[order], grid, window_end, typical_lag_s=typical
                )
            ]
        elif rz_est is not None:
            zones[w.id] = rz_est.zone
            conf[w.id] = rz_est.confidence
            # RSSI is stamped where it is received: no lag to estimate, none reported.
        else:
            zones[w.id] = np.full(grid.n, UNKNOWN_ZONE, dtype=np.int64)
            conf[w.id] = np.zeros(grid.n)

    if tracks and rssi_est:
        # Which source places the presence events better: the locator (moved by the typical
        # lag, not fitted to the events) or RSSI? Where RSSI is clearly better (a locator
        # losing reports or down), or places nearly all of them, confident RSSI seconds lead
        # (the per-move track is tied to the locator's sequence of reports, RSSI is not).
        guess = diag.get("lag_first_guess_s") or p.default_lag_s
        shifted = {
            w: lg.locator_codes_at(lt, lc, grid.centres() + guess, -1) for w, (lt, lc) in loc_streams.items()
        }
        own_events = {w: [(a.k, a.code) for a in owns[w]] for w in loc_streams if w in rssi_est}
        a_loc, n_ev = mv.event_accuracy(shifted, own_events)
        a_rssi, _ = mv.event_accuracy({w: e.zone for w, e in rssi_est.items()}, own_events)
        diag["events_placed"] = {"locator": round(a_loc, 3), "rssi": round(a_rssi, 3), "events": n_ev}
        if n_ev >= 10 and a_rssi >= min(p.rssi_trusted, max(0.8, a_loc + p.rssi_lead_margin)):
            for wid in own_events:
                sure = rssi_est[wid].posterior.max(axis=1) >= p.rssi_sure
                zones[wid] = np.where(sure, rssi_est[wid].zone, zones[wid])
                conf[wid] = np.where(sure, rssi_est[wid].posterior.max(axis=1), conf[wid])
            diag["zones_led_by"] = "rssi"
    if p.lag_model == "per_move" and loc_streams and p.repair_unexplained:
        # Events no worker's zone explains (a lost report, a locator outage) place a worker;
        # only one whose beacon was heard that day (one never heard may not have been there).
        reports = {
            w: {int(c): grid.index(lt[lc == c]) for c in np.unique(lc)} for w, (lt, lc) in loc_streams.items()
        }
        heard = {w: z for w, z in zones.items() if w in loc_streams or w in rssi_est}
        diag["zone_cells_repaired"] = mv.repair_unexplained(
            heard,
            conf,
            anchors,
            none_code,
            report_cells=reports,
            rssi_post={w: e.posterior for w, e in rssi_est.items()},
        )

    def source(w: str) -> str:
        if w in loc_streams:
            return "locator"
        return "rssi_chain" if w in rssi_est and rssi_est[w].chained else "rssi"

    conf = {w: cf.zone_confidence(conf[w], zones[w], source(w)) for w in conf}
    for wid, est in rssi_est.items():
        if est.snapped is not None and est.snapped_raw is not None and wid not in loc_streams and wid in conf:
            # Snapped dwells have their own tables (a guess: see rssi_zones.standing_at_machines).
            named = cf.calibrate(est.snapped_raw, cf.TABLES["rssi_named"])
            single = cf.calibrate(est.snapped_raw, cf.TABLES["rssi_snapped"])
            still = cf.calibrate(est.snapped_raw, cf.TABLES["rssi_still"])
            inside = cf.calibrate(est.snapped_raw, cf.TABLES["rssi_still_inside"])
            conf[wid] = np.select(
                [est.snapped == 2, est.snapped == 1, est.snapped == 3, est.snapped == 4],
                [named, single, still, inside],
                conf[wid],
            )

    # 4. tasks
    say("analyze: tasks")
    task_rows = classify_tasks(site, grid, states, zones, presses, jigs, p)

    result = Result(
        site=site.site, window_start=grid.start, window_end=window_end, rejected_rows=rejected_rows
    )
    for m in site.machine_ids:
        for s, e, code in runs(states[m]):
            result.machine_states.append(
                MachineState(m, ms.STATE_NAMES[int(code)], _t(grid, s, window_end), _t(grid, e, window_end))
            )
    for wid in site.worker_ids:
        for s, e, code in runs(zones[wid]):
            name = zone_names[int(code)] if code >= 0 else "none"
            mean_conf = float(np.round(np.mean(conf[wid][s:e]), 3))
            result.worker_zones.append(
                WorkerZone(wid, name, _t(grid, s, window_end), _t(grid, e, window_end), mean_conf)
            )
    result.tasks = [Task(m, task, worker, s, e) for m, task, worker, s, e in task_rows]
    result.beacon_lag = lags
    result.extra["analysis"] = diag
    return result


def per_move_tracks(
    loc_streams: dict[str, tuple[np.ndarray, np.ndarray]],
    owns: dict[str, list[lg.Anchor]],
    rssi_est: dict[str, rz.ZoneEstimate],
    grid: Grid,
    p: AnalysisParams,
    n_z: int,
    diag: dict[str, object],
    press_cells: list[tuple[int, int]],
) -> dict[str, mv.LocatorTrack]:
    """Every worker's locator track, each move's lag its own (:mod:`move_lag`).

    RSSI is a noisy channel calibrated on the file's sure seconds, used when it names the
    right machine at enough presence events (pooled over workers); how much neighbouring
    moves share their lag is fitted on
    all workers' well-determined moves together (one locator system), then each track is
    recomputed with it. ``diag["lag_moves"][worker]`` lists ``[report time, lag, lag IQR]``
    per reported change (a wide IQR: the move had no evidence of its own).
    """
    if not loc_streams:
        return {}
    weight = mv.rssi_weight(
        [(rz.local_evidence(rssi_est[w]), [(a.k, a.code) for a in owns[w]]) for w in owns if w in rssi_est],
        p.rssi_lag_weight,
        mv.RSSI_RIGHT_FROM,
    )
    # RSSI enters the lag as a noisy channel calibrated on the seconds the file itself makes
    # sure (the raw per-second evidence misled it: a receiver naming machine B while the worker
    # waited beside it pulled moves 240 s early; docs/accuracy.md).
    channel: dict[str, np.ndarray] = {}
    heard = [w for w in loc_streams if w in rssi_est] if weight > 0 else []
    if heard:
        labelled = []
        for w in heard:
            sure = mv.sure_zone_cells(*loc_streams[w], grid.start, grid.step_s, grid.n, p.move_max_lag_s)
            for a in owns[w]:
                if 0 <= a.k < grid.n:
                    sure[a.k] = a.code
            labelled.append((rz.local_evidence(rssi_est[w]), sure))
        evs, diag["rssi_lag_channel"] = mv.rssi_confusion_evidence(labelled, p.rssi_lag_weight)
        channel = dict(zip(heard, evs, strict=True))
    evidence = {}
    for w in loc_streams:
        pairs = [(a.k, a.code) for a in owns[w]]
        ev = mv.presence_evidence(pairs, grid.n, n_z, p.presence_penalty)
        if w in channel:
            ev += channel[w]
        evidence[w] = (ev, pairs)

    # The lag EM starts from a fixed typical lag: the entry lag read off the recording (report
    # minus first press) is pulled far up where workers share machines (another worker's
    # presses) and the EM stays near a wrong start (family tuning draw 1022: 84 s read, 34 s
    # lag error; from 20 s: 7 s). ``lag_em_start_s=None`` reads it off the recording.
    if p.lag_em_start_s is not None:
        guess: float | None = p.lag_em_start_s
    else:
        guess = mv.entry_lag_median(list(loc_streams.values()), press_cells, grid, n_z - 1)
    start_pmf = mv.initial_lag_pmf(p.move_max_lag_s, grid.step_s, median_s=guess or p.default_lag_s)

    def track(
        w: str, rho: float, pmf: np.ndarray, final: bool, iterations: int | None = None, chain: float = 0.0
    ) -> mv.LocatorTrack:
        ev, pairs = evidence[w]
        got = mv.locator_track(
            *loc_streams[w],
            ev,
            grid,
            max_lag_s=p.move_max_lag_s,
            anchors=pairs,
            none_code=n_z - 1,
            arrival_scale_s=p.arrival_scale_s,
            neighbour_rho=rho,
            lag_pmf=pmf,
            drop_gain=p.lag_drop_gain if final else 0.0,
            iterations=(0 if final else mv.LAG_EM_ITERATIONS) if iterations is None else iterations,
            share_neighbours=rho > 0,
            chain_rho=chain,
        )
        assert got is not None, f"locator stream of {w} without reports"  # loc_streams holds none such
        return got

    # First pass: each worker's lag distribution (EM), every move on its own; then how much
    # neighbouring moves share their lag, pooled; last, each track with both (no refit).
    first = {w: track(w, 0.0, start_pmf, final=False) for w in loc_streams}
    near = np.concatenate([t.neighbour_pairs[0] for t in first.values()])
    far = np.concatenate([t.neighbour_pairs[1] for t in first.values()])
    rho = mv.fit_share(near, far)
    if p.lag_pool_workers and len(first) > 1:
        # One locator system: its lag distribution is the workers' pooled, each by its moves.
        moves = {w: float(len(t.report_t)) for w, t in first.items()}
        total = sum(moves[w] * t.lag_pmf for w, t in first.items())
        assert isinstance(total, np.ndarray)  # len(first) > 1: a sum of arrays, not the start 0
        pooled = total / max(sum(moves.values()), 1.0)
        pmfs = {w: pooled for w in first}
    else:
        pmfs = {w: t.lag_pmf for w, t in first.items()}
    if p.lag_steady_margin is not None:
        # Model choice per worker: a lag that holds (the constant shift, events still placing
        # each change) where it explains the file's reports and events better than lags
        # drawn anew for every move.
        steady = {}
        for w in loc_streams:
            alt = mv.steady_lag_pmf(pmfs[w], grid.step_s)
            score = {
                name: track(w, 0.0, pmf, final=False, iterations=0).log_evidence
                for name, pmf in (("per_move", pmfs[w]), ("steady", alt))
            }
            steady[w] = round(score["steady"] - score["per_move"], 1)
            if steady[w] > p.lag_steady_margin:
                pmfs[w] = alt
        diag["lag_steady_gain"] = steady
    # Whether consecutive moves keep their lag (a locator whose lag holds for minutes, or
    # drifts): the chance that is tried is kept where all workers' log evidence beats
    # independent lags by ``lag_chain_margin``; it then replaces the pinned-pairs share ``rho``.
    chain = 0.0
    if p.lag_chain_rhos:
        chain_ev = dict.fromkeys((0.0, *p.lag_chain_rhos), 0.0)
        for w in loc_streams:
            got = mv.chain_log_evidence(
                *loc_streams[w],
                evidence[w][0],
                grid,
                pmfs[w],
                list(chain_ev),
                max_lag_s=p.move_max_lag_s,
                anchors=evidence[w][1],
                none_code=n_z - 1,
                arrival_scale_s=p.arrival_scale_s,
            )
            for c, v in got.items():
                chain_ev[c] += v
        best = max(chain_ev, key=lambda c: chain_ev[c])
        if best > 0 and chain_ev[best] - chain_ev[0.0] > p.lag_chain_margin:
            chain = best
        diag["lag_chain_evidence"] = {str(c): round(v - chain_ev[0.0], 1) for c, v in chain_ev.items()}
    diag["lag_chain_rho"] = chain
    out = {w: track(w, rho, pmfs[w], final=True, chain=chain) for w in loc_streams}
    diag["rssi_lag_weight"] = round(weight, 3)  # RSSI's standing at the events; > 0: the channel is used
    # The pinned-pairs share as used: the lag chain, where chosen, replaces it.
    diag["lag_neighbour_share"] = round(rho, 3) if chain == 0 else 0.0
    diag["lag_first_guess_s"] = None if guess is None else round(guess, 1)
    diag["lag_reports_dropped"] = {w: t.dropped for w, t in out.items()}
    diag["lag_moves"] = {
        w: [
            [round(float(a), 1), round(float(b), 1), round(float(c), 1)]
            for a, b, c in zip(t.report_t, t.lag_s, t.lag_iqr_s, strict=True)
        ]
        for w, t in out.items()
    }
    return out


def _t(grid: Grid, k: int, window_end: float) -> float:
    return float(min(grid.time(k), window_end)) if k >= grid.n else float(grid.time(k))


def machine_states(
    by_kind: dict[str, pd.DataFrame], site: Site, grid: Grid, p: AnalysisParams, diag: dict[str, object]
) -> dict[str, np.ndarray]:
    """Per-cell state codes of every machine (``unknown`` where there is no data)."""
    light = by_kind.get("light")
    lstate = by_kind.get("light_state")
    groups = dict(tuple(light.groupby("source"))) if light is not None else {}
    sgroups = dict(tuple(lstate.groupby("source"))) if lstate is not None else {}
    out: dict[str, np.ndarray] = {}
    thresholds: dict[str, float | None] = {}
    pending = []
    for m in site.machine_ids:
        if m in groups:
            g = groups[m]
            codes, thr = ms.machine_state_codes(
                g["t"].to_numpy(),
                g["value"].to_numpy(),
                grid,
                window_s=p.light_window_s,
                max_hold_periods=p.max_hold_periods,
                min_state_s=p.min_state_s,
            )
            if thr is None:
                pending.append(m)
            out[m], thresholds[m] = codes, thr
        elif m in sgroups:
            g = sgroups[m]
            out[m] = ms.state_codes_from_binary(g["t"].to_numpy(), g["value"].to_numpy(), grid)
        else:
            out[m] = np.full(grid.n, ms.UNKNOWN, dtype=np.int64)
    known = [v for v in thresholds.values() if v is not None]
    if known and pending:
        fallback = float(np.median(known))
        for m in pending:
            g = groups[m]
            out[m], _ = ms.machine_state_codes(
                g["t"].to_numpy(),
                g["value"].to_numpy(),
                grid,
                window_s=p.light_window_s,
                max_hold_periods=p.max_hold_periods,
                min_state_s=p.min_state_s,
                fallback_threshold=fallback,
            )
    diag["light_threshold"] = {m: (None if v is None else round(v, 3)) for m, v in thresholds.items()}
    return out


def switch_presses(switch: pd.DataFrame | None, p: AnalysisParams) -> list[ev.Press]:
    """Debounced presses of every task switch (none in switch-free mode)."""
    if switch is None or p.switch_free:
        return []
    out: list[ev.Press] = []
    for (m, task), g in switch.groupby(["source", "channel"]):
        for t in ev.debounce_presses(g["t"].to_numpy(), g["value"].to_numpy(), p.debounce_s):
            out.append(ev.Press(str(m), str(task), float(t)))
    return sorted(out, key=lambda x: x.t)


def jig_changes(
    pressure: pd.DataFrame | None, site: Site, grid: Grid, p: AnalysisParams
) -> dict[str, list[tuple[float, float]]]:
    """Pressure excursions per machine."""
    out: dict[str, list[tuple[float, float]]] = {m: [] for m in site.machine_ids}
    if pressure is None:
        return out
    for m, g in pressure.groupby("source"):
        out[str(m)] = ev.pressure_excursions(
            g["t"].to_numpy(),
            g["value"].to_numpy(),
            grid,
            z=p.pressure_z,
            merge_s=p.pressure_merge_s,
            min_s=p.min_jig_s,
            max_hold_periods=p.max_hold_periods,
            pad_s=p.pressure_pad_s,
        )
    return out


def presence_anchors(
    presses: list[ev.Press],
    jigs: dict[str, list[tuple[float, float]]],
    states: dict[str, np.ndarray],
    site: Site,
    grid: Grid,
    press_delay_s: float = 0.0,
) -> list[tuple[int, int]]:
    """(cell, machine code) pairs at which someone was certainly at the machine.

    A jig change's (widened) start is the task's start, while a press comes a little
    after the start of its task; jig-change anchors begin ``press_delay_s`` after the
    start, so both kinds sit the same typical time after the worker's arrival.
    """
    code = {m: i for i, m in enumerate(site.machine_ids)}
    out: list[tuple[int, int]] = []
    for press in presses:
        out.append((int(grid.index(press.t)), code[press.machine]))
    for m, items in jigs.items():
        for s, e in items:
            for t in np.arange(min(s + press_delay_s, e), e, 30.0):  # someone is there the whole time
                out.append((int(grid.index(t)), code[m]))
    # A machine starting after a stop: someone pressed cycle start.
    for m, st in states.items():
        rr = runs(st)
        for i in range(1, len(rr)):
            if rr[i][2] == ms.RUNNING and rr[i - 1][2] == ms.STOPPED and rr[i - 1][1] - rr[i - 1][0] > 60:
                out.append((max(0, rr[i][0] - 2), code[m]))
    return [(k, c) for k, c in out if 0 <= k < grid.n]


#: RSSI decides between workers the locator leaves in doubt only where it names the machine at
#: this share of the events the locator gives to one worker alone: more often right than wrong.
#: RSSI that placed no event gave them to the wrong workers (tuning draw 1089: zone 0.988
#: without RSSI, 0.976 with it; 0.988 with this check). A stricter 0.8 lost 1035 (RSSI right
#: at 0.56 of them, and still better than nobody deciding) ...
RSSI_ATTRIBUTE_RIGHT = 0.5
#: ... counted over at least this many such events.
RSSI_ATTRIBUTE_MIN_EVENTS = 10


def anchor_owners(
    anchors: list[tuple[int, int]],
    loc_streams: dict[str, tuple[np.ndarray, np.ndarray]],
    rssi_est: dict[str, rz.ZoneEstimate],
    grid: Grid,
    max_lag_s: float,
    none_code: int,
) -> tuple[dict[str, list[lg.Anchor]], dict[str, Any]]:
    """Which worker each anchor (presence event) belongs to.

    An anchor goes to the worker if it is the only one the locator shows at the machine
    within the lag search range after it. When several are, RSSI (true time) decides, if it
    names the machine at :data:`RSSI_ATTRIBUTE_RIGHT` of the anchors the locator gives to one
    worker alone (its own check on this file). When none is, the worker whose report of the
    machine was followed at once by a ``none`` report (an overtaken report: the walk there
    reported last) may have it (:func:`_overtaken_owner`).

    Returns
    -------
    owners : dict
        Worker -> its anchors (every worker with a locator stream has a list).
    info : dict
        ``ambiguous`` anchors, ``rssi_right`` share at the unambiguous ones (None: not
        measured) and whether RSSI decided (``rssi_decides``).
    """
    centres = grid.centres()
    orders = {w: np.argsort(lt, kind="stable") for w, (lt, _lc) in loc_streams.items()}
    streams = {w: (lt[orders[w]], lc[orders[w]]) for w, (lt, lc) in loc_streams.items()}
    probe = np.arange(0.0, max_lag_s + 1e-9, 5.0)
    cands: list[list[str]] = []
    for k, code in anchors:
        cands.append(
            [
                w
                for w, (lt, lc) in loc_streams.items()
                if (lg.locator_codes_at(lt, lc, centres[k] + probe, none_code) == code).any()
            ]
        )
    # RSSI's own record on this file: the anchors the locator alone already gives to one worker.
    checks = [
        bool(rssi_est[c[0]].zone[k] == code)
        for (k, code), c in zip(anchors, cands, strict=True)
        if len(c) == 1 and c[0] in rssi_est and 0 <= k < len(rssi_est[c[0]].zone)
    ]
    rssi_right = float(np.mean(checks)) if checks else None
    decides = (
        rssi_right is not None
        and len(checks) >= RSSI_ATTRIBUTE_MIN_EVENTS
        and rssi_right >= RSSI_ATTRIBUTE_RIGHT
    )
    owners: dict[str, list[lg.Anchor]] = {w: [] for w in loc_streams}
    for (k, code), there in zip(anchors, cands, strict=True):
        if decides and len(there) > 1:
            # Several candidates by the (late) locator: RSSI says who is there right now.
            there = [w for w in there if w in rssi_est and rssi_est[w].zone[k] == code]
        if not there:
            there = _overtaken_owner(code, centres[k], streams, none_code)
        if len(there) == 1:
            owners[there[0]].append(lg.Anchor(k, code))
    info = {
        "ambiguous": sum(len(c) > 1 for c in cands),
        "rssi_right": None if rssi_right is None else round(rssi_right, 3),
        "rssi_decides": decides,
    }
    return owners, info


#: A machine report followed this soon by a ``none`` report may have been overtaken by it
#: (a report of the walk there, with a longer lag, arriving last): the worker may still be there.
OVERTAKEN_GAP_S = 60.0
#: How long after such a pair an event at that machine may still be given to that worker.
OVERTAKEN_REACH_S = 600.0
#: The worker must be this much nearer in time than any other such worker.
OVERTAKEN_MARGIN_S = 60.0


def _overtaken_owner(
    code: int, t: float, streams: dict[str, tuple[np.ndarray, np.ndarray]], none_code: int
) -> list[str]:
    """The worker an event nobody's locator explains belongs to, when a report was overtaken.

    Candidates: workers whose last two reports before ``t`` are this machine and then ``none``
    within :data:`OVERTAKEN_GAP_S`, the machine report at most :data:`OVERTAKEN_REACH_S`
    before. One clear nearest (by :data:`OVERTAKEN_MARGIN_S`) is returned, else nobody.
    """
    dist = {}
    for w, (lt, lc) in streams.items():
        j = int(np.searchsorted(lt, t, side="right")) - 1
        if j < 1 or lc[j] != none_code or lc[j - 1] != code or lt[j] - lt[j - 1] > OVERTAKEN_GAP_S:
            continue
        if t - lt[j - 1] <= OVERTAKEN_REACH_S:
            dist[w] = float(t - lt[j - 1])
    if not dist:
        return []
    best = min(dist, key=lambda w: dist[w])
    if sum(d <= dist[best] + OVERTAKEN_MARGIN_S for d in dist.values()) > 1:
        return []
    return [best]


def locator_streams(
    zone: pd.DataFrame | None, site: Site, zone_names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Worker id -> (report times, zone codes) of the locator stream."""
    if zone is None:
        return {}
    code = {z: i for i, z in enumerate(zone_names)}
    worker_of = site.worker_by_beacon()
    out = {}
    for b, g in zone.groupby("channel"):
        w = worker_of.get(str(b))
        if w is None:
            continue
        labels = g["label"].to_numpy(dtype=object)
        out[w] = (g["t"].to_numpy(dtype="float64"), np.array([code[z] for z in labels], dtype=np.int64))
    return out


def rssi_zone_estimates(
    rssi: pd.DataFrame | None,
    site: Site,
    grid: Grid,
    p: AnalysisParams,
    anchors: list[tuple[int, int]],
    diag: dict[str, object],
    unpinned: set[str] | None = None,
    states: dict[str, np.ndarray] | None = None,
) -> dict[str, rz.ZoneEstimate]:
    """Worker id -> RSSI zone estimate (true time), for beacons heard by receivers.

    The path-loss model is fitted from the recording (:func:`radio_fit.fit_radio`), with the
    presence events as labelled seconds, unless a survey gives it (``rssi_p0_by_receiver``) or
    a survey map replaces it (``survey_map``). Each presence event is then given to the worker
    most probably at that machine and pins that worker's zone at that second, except for the
    ``unpinned`` workers (those with a locator stream: the lag model weighs RSSI against the
    locator by how well each places the events, which pinned RSSI would always win).
    """
    if rssi is None or not site.receivers:
        return {}
    if p.survey_map is not None:
        return survey_zone_estimates(rssi, site, grid, p, diag, unpinned or set())
    fgrid = psm.floor_grid(site)
    worker_of = site.worker_by_beacon()
    mats: dict[str, np.ndarray] = {}
    for b, g in rssi.groupby("channel"):
        w = worker_of.get(str(b))
        if w is not None:
            mats[w] = rz.rssi_matrix(
                g["t"].to_numpy(), g["source"].to_numpy(), g["value"].to_numpy(), fgrid.receivers, grid
            )
    if not mats:
        return {}
    events = anchors if p.rssi_use_events else []
    if p.rssi_p0_by_receiver:
        level = np.array([p.rssi_p0_by_receiver.get(r, np.nan) for r in fgrid.receivers])
        level = np.where(np.isfinite(level), level, np.nanmedian(level))
        model = rf.RadioModel({w: level for w in mats}, p.rssi_exponent, 0.0, p.rssi_sigma_db, 1)
        clamps: dict[str, np.ndarray | None] = {w: None for w in mats}
    else:
        # The floor only for RSSI alone: with a locator on top it made one of 12 tuning draws
        # lag far worse (4.2 -> 41 s) through the RSSI lag channel, not yet understood.
        censored = p.rssi_censored and not unpinned
        floor, packet_sd = rssi_floor(rssi, fgrid.receivers) if censored else (None, 4.0)
        heard = quiet = None
        if floor is not None and p.rssi_silent_start:
            # A second fit whose levels start with the silent receivers counted; the one whose
            # model explains the heard packets and the silences better is kept. Where the
            # silences do not move any start, the second fit would be the first: skipped.
            heard = rf.start_levels(mats, fgrid, p.beacon_height_m)
            quiet = rf.start_levels(mats, fgrid, p.beacon_height_m, silence=(floor, packet_sd))
        model = rf.fit_radio(
            mats, events, fgrid, p.beacon_height_m, floor_dbm=floor, packet_sd_db=packet_sd, start_level=heard
        )
        if heard is not None and quiet is not None and not np.array_equal(heard, quiet):
            alt = rf.fit_radio(
                mats,
                events,
                fgrid,
                p.beacon_height_m,
                floor_dbm=floor,
                packet_sd_db=packet_sd,
                start_level=quiet,
            )
            scores = [rf.silence_score(m, mats, fgrid, p.beacon_height_m) for m in (model, alt)]
            diag["rssi_start_scores"] = [round(x, 1) for x in scores]
            if scores[1] > scores[0]:
                model = alt
        fitted = event_clamps(mats, events, model, fgrid, grid.n, p.beacon_height_m)
        clamps = {w: None if w in (unpinned or set()) else c for w, c in fitted.items()}
    diag["rssi_model"] = {
        "exponent": round(model.exponent, 2),
        "body_loss_db": round(model.body_loss_db, 1),
        "sigma_db": round(model.sigma_db, 2),
        "labelled_windows": model.labelled_windows,
        "level_dbm": {w: [round(float(v), 1) for v in lv] for w, lv in model.level_dbm.items()},
        "cell_m": round(fgrid.cell_m, 2),
    }
    fingerprints = None
    pinned = {w: c for w, c in clamps.items() if w not in (unpinned or set())}
    if (
        p.rssi_zone_fingerprints
        and model.occupancy is not None
        and any(c is not None for c in pinned.values())
    ):
        # RSSI alone: what each receiver hears at each machine, from the seconds around the
        # presence events (multipath puts a spot several dB off the path loss, and in a small
        # zone that is enough for the smoother to place a dwell beside it).
        expected = {
            w: zf.zone_average(zf.heard_means(model, fgrid, w, p.beacon_height_m), model.occupancy)
            for w in pinned
        }
        learned = zf.fit_zone_fingerprint(mats, pinned, expected)
        fingerprints = {w: (expected[w], learned) for w in expected}
        diag["rssi_zone_fingerprint"] = {k: round(v, 2) for k, v in learned.info.items()}
    est = rz.estimate_zones(
        mats,
        model,
        fgrid,
        beacon_height_m=p.beacon_height_m,
        clamps=clamps,
        evidence_for=unpinned or set(),
        zone_fingerprints=fingerprints,
    )
    if (
        p.rssi_zone_chain_share > 0
        and model.occupancy is not None
        and model.labelled_windows >= p.rssi_zone_chain_min_labels
    ):
        # Workers with RSSI alone: the position smoother's answer mixed with a chain over
        # zones that knows where people stand at each machine (see zone_chain_posterior).
        # Only where presence events taught it that: without them its zones are the whole
        # squares and it lost to the smoother alone on real data (ble_tetam 75.1 -> 64.1 %).
        for w in mats:
            if w in (unpinned or set()):
                continue
            ev = rf.zone_probabilities_at(
                mats[w], w, model, fgrid, p.beacon_height_m, zone_fingerprint=(fingerprints or {}).get(w)
            )
            chain = rz.zone_chain_posterior(ev, clamps.get(w))
            est[w] = rz.mix_zone_chain(est[w], chain, p.rssi_zone_chain_share, p.rssi_zone_chain_keep)
    diag["rssi_zone_chain"] = [w for w, e in est.items() if e.chained]
    if p.rssi_bridge_odds > 1.0 and states:
        # Workers held at a machine between two of their events there (a changeover).
        running = np.stack([states[m] == ms.RUNNING for m in site.machine_ids])
        max_cells = int(p.rssi_bridge_max_s / grid.step_s)
        for w, c in clamps.items():
            if c is not None and w in est:
                est[w] = rz.bridge_events(est[w], c, running, max_cells, p.rssi_bridge_odds)
    if p.rssi_unlabelled_snap and not anchors:
        # A floor without any presence event (RSSI alone, no machine sensors): a worker
        # standing still is at a machine, named with the other dwells (dwell_naming). Not
        # where the floor has events: a worker given none of them did no machine work, and
        # stands still where they wait (family draw 900357 lost 0.968 -> 0.912 when such a
        # worker was snapped).
        log_dist = dn.zone_log_distances(site, fgrid.receiver_xyz, p.beacon_height_m)
        inside = dn.receivers_inside(site, fgrid.receiver_xyz)
        snapped = {}
        for w in clamps:
            if w in est and w not in (unpinned or set()):
                dwells = still_dwells(mats[w], grid, p)
                means = dn.dwell_means(mats[w], dwells)
                group = dn.group_dwells(means, p.rssi_dwell_group_db)
                n_groups = int(group.max()) + 1 if len(group) else 0
                top_share = dn.top_groups_share(dwells, group, len(site.machines))
                if top_share < p.rssi_still_top_share:
                    # More places where the worker stands still than there are machines:
                    # standing still is not being at a machine here, so nothing is snapped
                    # (real stops, zones under 5 of 6 wall receivers, a walker also stopping
                    # away from them: 0.501 snapped second by second, 0.661 left as the
                    # smoother says). A dwell by a receiver standing in a zone is in it (the
                    # smoother misses those: 0.729 with them).
                    near = dn.loudest_inside(
                        means, inside, p.rssi_still_inside_margin_db, p.rssi_still_inside_top_db
                    )
                    est[w] = rz.left_standing(est[w], dwells, near)
                    named = np.full(n_groups, -1)
                else:
                    if p.rssi_name_dwell_groups:
                        named, margin = dn.name_groups(dn.group_means(mats[w], dwells, group), log_dist)
                    else:
                        named, margin = np.full(n_groups, -1), np.zeros(n_groups)
                    est[w] = rz.standing_at_machines(est[w], dwells, group, named, margin)
                kind = est[w].snapped
                snapped[w] = {
                    "dwells": int(dwells.max()) + 1,
                    "groups": n_groups,
                    "top_share": round(top_share, 3),
                    "named": bool((named >= 0).any()),
                    # seconds moved: snapped by name (2) or second by second (1), or given
                    # the zone of a receiver standing in it (4); 3 are left as they were
                    "seconds": 0 if kind is None else int(np.isin(kind, (1, 2, 4)).sum()),
                }
        diag["rssi_snapped"] = snapped
    naive = {w: rz.strongest_receiver_zones(mats[w], fgrid) for w in mats}
    placed_model = rz.events_placed([e.zone for e in est.values()], events)
    placed_naive = rz.events_placed(list(naive.values()), events)
    diag["rssi_events_placed"] = {
        "model": round(placed_model[0], 3),
        "naive": round(placed_naive[0], 3),
        "events": placed_model[1],
    }
    return est


def rssi_floor(rssi: pd.DataFrame, receivers: list[str]) -> tuple[np.ndarray, float]:
    """Each receiver's weakest reported RSSI (its sensitivity) and the spread of single packets.

    The floor is a low quantile of what the receiver reported (the site-wide one for a receiver
    with few packets); the spread is the median within-second sd of one link's packets.
    """
    vals = rssi["value"].to_numpy(dtype="float64")
    src = rssi["source"].to_numpy(dtype=str)
    site_floor = float(np.quantile(vals, 0.002)) if len(vals) else -100.0
    by_receiver = pd.Series(vals).groupby(src)
    low, count = by_receiver.quantile(0.002), by_receiver.size()
    floor = np.array([float(low[r]) if count.get(r, 0) >= 200 else site_floor for r in receivers])
    sec = np.floor(rssi["t"].to_numpy(dtype="float64")).astype(np.int64)
    g = pd.DataFrame({"c": rssi["channel"].to_numpy(dtype=str), "s": src, "t": sec, "v": vals})
    sd = g.groupby(["c", "s", "t"], sort=False)["v"].std().dropna()
    # The median sd of seconds with two or three packets runs under the packets' true spread;
    # the pooled sd was tried and did worse (24 RSSI-only tuning draws: 0.809 against 0.822).
    packet_sd = float(np.clip(np.median(sd), 1.5, 8.0)) if len(sd) >= 20 else 4.0
    return floor, packet_sd


def event_clamps(
    mats: dict[str, np.ndarray],
    anchors: list[tuple[int, int]],
    model: rf.RadioModel,
    fgrid: psm.FloorGrid,
    n: int,
    beacon_height_m: float,
) -> Mapping[str, np.ndarray | None]:
    """Per worker, ``(n,)`` zone of the presence events given to them (-1 elsewhere).

    An event goes to the only worker, or to the worker whose fitted zone probability for
    that machine is highest, if :func:`radio_fit.attributed` says so; otherwise to nobody.
    """
    if not anchors:
        return {w: None for w in mats}
    out = {w: np.full(n, -1, dtype=np.int64) for w in mats}
    ks = np.array([k for k, _ in anchors], dtype=np.int64)
    zs = np.array([z for _, z in anchors], dtype=np.int64)
    if len(mats) == 1:
        w = next(iter(mats))
        out[w][ks] = zs
        return out
    workers = list(mats)
    rows = np.arange(len(ks))
    probs = np.stack(
        [rf.zone_probabilities_at(mats[w], w, model, fgrid, beacon_height_m, ks)[rows, zs] for w in workers]
    )
    best = probs.argmax(axis=0)
    ok = rf.attributed(probs.max(axis=0), probs.sum(axis=0))
    for i, w in enumerate(workers):
        mine = (best == i) & ok
        out[w][ks[mine]] = zs[mine]
    return out


def still_dwells(rssi: np.ndarray, grid: Grid, p: AnalysisParams) -> np.ndarray:
    """:func:`dwell_naming.still_dwells` with the analysis's settings (seconds -> grid cells)."""
    return dn.still_dwells(
        rssi,
        max(1, int(p.rssi_still_half_s / grid.step_s)),
        p.rssi_still_drift_db,
        int(p.rssi_still_dwell_s / grid.step_s),
    )


def survey_zone_estimates(
    rssi: pd.DataFrame,
    site: Site,
    grid: Grid,
    p: AnalysisParams,
    diag: dict[str, object],
    unpinned: Collection[str] = (),
) -> dict[str, rz.ZoneEstimate]:
    """Worker id -> RSSI zone estimate from a site survey's fingerprint map (``p.survey_map``).

    The still-dwell rule (``p.survey_still_inside``) leaves out the ``unpinned`` workers (those
    with a locator stream), as the survey-free path does."""
    fmap, fparams = p.survey_map
    if list(fmap.zones) != list(site.machine_ids):
        raise ValueError(
            f"survey map zones {list(fmap.zones)} do not match the site's machines "
            f"{list(site.machine_ids)}: build the map from this site"
        )
    worker_of = site.worker_by_beacon()
    xyz = {r.id: r.position for r in site.receivers}
    inside = dn.receivers_inside(site, np.array([xyz.get(r, (np.nan,) * 3) for r in fmap.receivers]))
    given = 0
    out: dict[str, rz.ZoneEstimate] = {}
    for b, g in rssi.groupby("channel"):
        w = worker_of.get(str(b))
        if w is None:
            continue
        post = fp.zone_posterior(
            g["t"].to_numpy(),
            g["source"].astype(str).to_numpy(),
            g["value"].to_numpy(),
            fmap,
            fparams,
            grid.start,
            grid.n,
            grid.step_s,
        )
        est = rz.ZoneEstimate(
            zone=post.argmax(axis=1), posterior=post, zones=[*fmap.zones, "none"], p0_dbm=float("nan")
        )
        if p.survey_still_inside and w not in unpinned:
            # A still dwell by a receiver standing in a zone is in it, as without a survey: on
            # other days' calibration walks the map under such a receiver can be 5-12 dB off
            # (real stops under wall receivers, docs/accuracy.md).
            t, source, value = g["t"].to_numpy(), g["source"].astype(str).to_numpy(), g["value"].to_numpy()
            mat = rz.rssi_matrix(t, source, value, fmap.receivers, grid)
            dwells = still_dwells(mat, grid, p)
            near = dn.loudest_inside(
                dn.dwell_means(mat, dwells), inside, p.rssi_still_inside_margin_db, p.rssi_still_inside_top_db
            )
            # The other still seconds keep the map's zone, with the confidence measured for
            # still seconds left as the smoother says: the map's own posterior takes its error
            # as new in every second of a beacon that does not move (real wall-zones stops:
            # 0.977 given, 0.739 right).
            est = rz.left_standing(est, dwells, near)
            assert est.snapped is not None
            given += int((est.snapped == 4).sum())
        out[w] = est
    diag["rssi_model"] = "survey fingerprint map"
    diag["survey_still_inside_s"] = given
    return out


def classify_tasks(
    site: Site,
    grid: Grid,
    states: dict[str, np.ndarray],
    zones: dict[str, np.ndarray],
    presses: list[ev.Press],
    jigs: dict[str, list[tuple[float, float]]],
    p: AnalysisParams,
) -> list[tuple[str, str, str | None, float, float]]:
    """All tasks of all machines as ``(machine, task, worker, start, end)``."""
    per_machine: dict[str, list[tk.Row]] = {}
    for i, m in enumerate(site.machine_ids):
        starts = [tk.TaskStart("jig_change", s, e) for s, e in jigs.get(m, [])]
        starts += [tk.TaskStart(pr.task, pr.t) for pr in presses if pr.machine == m]
        per_machine[m] = tk.classify_machine_tasks(
            starts,
            states[m],
            zones,
            i,
            grid,
            leave_s=p.leave_s,
            task_gap_s=p.task_gap_s,
            restart_gap_s=p.restart_gap_s,
        )
    if p.recover_forgotten or p.switch_free:
        pri = p.priors
        if pri is None:
            own = [[(t, s, e) for t, _w, s, e in rows] for rows in per_machine.values()]
            pri = pr.TaskPriors() if p.switch_free else pr.learn_priors(own)
        for i, m in enumerate(site.machine_ids):
            per_machine[m] = tk.recover_machine(
                per_machine[m],
                states[m],
                zones,
                i,
                grid,
                pri,
                task_gap_s=p.task_gap_s,
                restart_gap_s=p.restart_gap_s,
                arrival_delay_s=p.arrival_delay_s,
                switch_free=p.switch_free,
            )
    out = [(m, task, worker, s, e) for m, rows in per_machine.items() for task, worker, s, e in rows]
    return sorted(out, key=lambda r: (r[0], r[3]))
