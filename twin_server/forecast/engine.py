"""The forecast itself: the site's next hours drawn many times from the learnt model.

Each draw plays the shop forward from the moment of the forecast: running machines finish
their batch or stop for a minor fix, a stopped machine waits until a worker is free (first
come, first served, the earliest-free worker takes it, nobody starts a service that would run
into a break, nobody serves after the shift ends), the changeover's tasks follow the usual
order with the serving worker's own durations, and the next batch's length depends on whether
program input was among them. All draws advance together, one event each per step (numpy
over the draws), so a 30-machine site is cheap.

``forecast(...)`` returns a :class:`Forecast`: per machine when its current run ends or when
it will run again (median and 80 % range), the lane of the next hour (most likely state per
minute), when it will need the operator and how long it will wait, and the shift end's
running minutes and changeover count, each with a range; and the reasons a range is wide
(no history, a machine never seen running, a worker with no history).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from twin_server.forecast.history import DayRecords, MachineNow, machine_now
from twin_server.forecast.model import END, START, SiteModel
from twin_server.result import TASK_NAMES, Result

__all__ = ["LANE_STATES", "Forecast", "MachineForecast", "QueueItem", "forecast"]

RUN, WAIT, CHANGEOVER, FIX, OFF, UNKNOWN = range(6)
#: Lane states by code: running; stopped waiting for the operator (or a break); changeover;
#: minor fix; stopped until the next shift; state unknown.
LANE_STATES = ("running", "waiting", "changeover", "fix", "off", "unknown")
_TASK_INDEX = {n: i for i, n in enumerate(TASK_NAMES)}
_START_I = len(TASK_NAMES)
_PROGRAM_I = _TASK_INDEX["program_input"]
_MAX_STEPS = 100_000
_NEVER = 1e15  # stands in for 'not within the horizon' in quantiles


@dataclass
class MachineForecast:
    """One machine's forecast (times in epoch seconds)."""

    machine: str
    phase: str  # running / changeover / between / waiting / unknown
    since: float
    event: str | None  # 'run_end' (running) or 'restart' (stopped); None when unknown
    p10: float | None = None
    p50: float | None = None
    p90: float | None = None
    p_after_shift: float = 0.0  # share of draws where the event falls after the shift (or never today)
    cold: list[str] = field(default_factory=list)  # why the range is prior-heavy
    basis: int = 0  # earlier batches (running) or stops (stopped) of this machine behind it
    task: str | None = None
    worker: str | None = None
    context: str | None = None  # running: new (program input before it), same, unknown
    need_at: float | None = None  # when it will next need the operator (median), within the horizon
    p_need: float = 0.0  # probability it needs the operator within the horizon
    wait_p50_min: float | None = None  # how long it will wait for the operator then
    wait_p90_min: float | None = None
    running_min: list[float] = field(default_factory=list)  # by shift end: p10, p50, p90
    changeovers: list[float] = field(default_factory=list)
    lane: list[dict[str, Any]] = field(default_factory=list)  # {"state", "start", "end", "p"}


@dataclass
class QueueItem:
    """The operator's next hour: a machine that will need them, and its wait."""

    machine: str
    need_at: float
    p_need: float
    wait_p50_min: float
    wait_p90_min: float


@dataclass
class Forecast:
    """The forecast of a site at one moment."""

    site: str
    at: float
    day: str
    shift_end: float
    history_days: int
    cold: bool  # no earlier day to learn from: every range comes from priors and today so far
    machines: list[MachineForecast]
    queue: list[QueueItem]
    running_min: list[float]  # the site's running minutes by shift end: p10, p50, p90
    changeovers: list[float]
    running_min_so_far: float
    changeovers_so_far: int
    horizon_s: float
    samples: int
    compute_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no NaN: missing values are null)."""
        return _clean(asdict(self))

    def machine(self, machine_id: str) -> MachineForecast:
        return next(m for m in self.machines if m.machine == machine_id)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.floating | np.integer):
        return _clean(x.item())
    return x


class _Draws:
    """Vectorised draws from the site model for ``n`` Monte Carlo samples.

    Services and residuals of the future are drawn from banks filled once per forecast, so
    one step of the simulation costs a few numpy operations whatever the machine.
    """

    BANK = 512

    def __init__(self, model: SiteModel, rng: np.random.Generator, n: int) -> None:
        self.m = model
        self.rng = rng
        self.n = n
        tm, bm = model.tasks, model.batches
        self.workers = list(model.workers)
        names = list(TASK_NAMES)
        # worker offsets: one row per worker, the last row (unknown worker) all zeros
        self.offset = np.zeros((len(self.workers) + 1, len(names)))
        for i, w in enumerate(self.workers):
            for k, name in enumerate(names):
                self.offset[i, k] = tm.offset.get((w, name), 0.0)
        self.level = np.array([tm.level[n_] for n_ in names])
        # transitions: rows tasks + start, columns tasks + end
        self.trans = np.zeros((len(names) + 1, len(names) + 1))
        for r, prev in enumerate([*names, START]):
            row = tm.transitions[prev]
            for c, nxt in enumerate([*names, END]):
                if nxt != prev and not (prev == START and nxt == END):
                    self.trans[r, c] = row.get(nxt, 0.0)
        # per machine: batch level, residual scales (other, same), minor stops per second
        ms = model.machines
        self.b_level = np.array([bm.level.get(m, bm.site_level) for m in ms])
        self.b_scale = np.array([[bm.scale_of(m, "new"), bm.scale_of(m, "same")] for m in ms])
        self.rate = np.array([bm.interruptions_per_s.get(m, 0.0) for m in ms])
        self.beta = bm.beta
        k = self.BANK
        self.bank_z = np.stack(
            [bm.resid[c].sample(rng.random(k), rng.standard_normal(k)) for c in ("other", "same")]
        )
        self.bank_response = self.log_points(tm.response, size=k)
        fix = self.log_points(tm.minor, size=k) - float(np.exp(tm.response.quantiles(np.array([0.5]))[0]))
        self.bank_fix = np.maximum(fix, 30.0)
        nw = len(self.workers) + 1
        w_idx = np.repeat(np.arange(nw), k)
        dur, new = self.rest_of_changeover(
            np.full(nw * k, _START_I), np.zeros((nw * k, len(names)), bool), w_idx
        )
        self.bank_co = dur.reshape(nw, k)
        self.bank_new = new.reshape(nw, k)

    def pick(self, size: int) -> np.ndarray:
        return self.rng.integers(0, self.BANK, size)

    def worker_index(self, worker: str | None) -> int:
        return self.workers.index(worker) if worker in self.workers else len(self.workers)

    def log_points(self, pts, above: np.ndarray | float = -np.inf, size: int | None = None) -> np.ndarray:
        size = self.n if size is None else size
        return np.exp(pts.sample(self.rng.random(size), self.rng.standard_normal(size), above))

    @staticmethod
    def elapsed_above(elapsed_s: float) -> float:
        return math.log(max(elapsed_s, 1.0)) if elapsed_s > 0 else -np.inf

    def task(self, task_i: np.ndarray, worker_i: np.ndarray, above_s: np.ndarray | None = None) -> np.ndarray:
        """Durations (s) of tasks ``task_i`` by workers ``worker_i`` (conditioned on > above_s)."""
        out = np.zeros(len(task_i))
        for k, name in enumerate(TASK_NAMES):
            sel = np.flatnonzero(task_i == k)
            if len(sel) == 0:
                continue
            loc = self.level[k] + self.offset[worker_i[sel], k]
            above = -np.inf
            if above_s is not None:
                a = above_s[sel]
                above = np.where(a > 0, np.log(np.maximum(a, 1.0)) - loc, -np.inf)
            z = self.m.tasks.resid[name].sample(
                self.rng.random(len(sel)), self.rng.standard_normal(len(sel)), above
            )
            out[sel] = np.exp(loc + z)
        return out

    def next_task(self, prev: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Next task index (or ``len(TASK_NAMES)``: the end) after ``prev`` given ``done``."""
        w = self.trans[prev].copy()
        w[:, : len(TASK_NAMES)] *= ~done
        total = w.sum(axis=1, keepdims=True)
        w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
        w[total[:, 0] <= 0, len(TASK_NAMES)] = 1.0
        u = self.rng.random(len(prev))[:, None]
        return np.minimum((np.cumsum(w, axis=1) < u).sum(axis=1), len(TASK_NAMES))

    def rest_of_changeover(
        self, prev: np.ndarray, done: np.ndarray, worker_i: np.ndarray, since_s: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seconds from the end of task ``prev`` (``_START_I``: from the arrival) to the restart,
        and whether program input was among the tasks. ``since_s``: time since ``prev`` ended,
        which already counts towards the next gap or the restart delay."""
        n = len(prev)
        total = np.zeros(n)
        active = np.ones(n, bool)
        for step in range(len(TASK_NAMES) + 1):
            nxt = self.next_task(prev, done)
            ends = active & (nxt == len(TASK_NAMES))
            go = active & ~nxt_is_end(nxt)
            if step == 0 and since_s is not None:
                above = np.log(np.maximum(since_s, 1.0))
                gap = self.log_points(self.m.tasks.gap, above, n) - since_s
                rs = self.log_points(self.m.tasks.restart, above, n) - since_s
            else:
                gap = self.log_points(self.m.tasks.gap, size=n)
                rs = self.log_points(self.m.tasks.restart, size=n)
            total += np.where(go & (prev != _START_I), gap, 0.0) + np.where(ends, rs, 0.0)
            total += np.where(go, self.task(np.where(go, nxt, 0), worker_i), 0.0)
            hit = np.flatnonzero(go)
            done[hit, nxt[hit]] = True
            prev = np.where(go, nxt, prev)
            active = go
            if not active.any():
                break
        return total, done[:, _PROGRAM_I].copy()

    def batch_loc(
        self,
        j: np.ndarray,
        new: np.ndarray,
        same: np.ndarray,
        prev_s: np.ndarray,
        hour: np.ndarray,
        wd: np.ndarray,
    ) -> np.ndarray:
        """Location of log batch length (see :func:`~twin_server.forecast.model._design_rows`)."""
        b = self.beta
        lvl = self.b_level[j]
        z = np.where(np.isfinite(prev_s) & (prev_s > 0), np.log(np.where(prev_s > 0, prev_s, 1.0)) - lvl, 0.0)
        unknown = ~(new | same)
        ang = 2 * math.pi * hour / 24.0
        return (
            lvl
            + b[0] * new
            + b[1] * same
            + b[2] * unknown
            + b[3] * same * z
            + b[4] * new * z
            + b[5 + np.clip(wd, 0, 6)]
            + b[12] * np.sin(ang)
            + b[13] * np.cos(ang)
        )

    def set_clock(self, at: float, tz: ZoneInfo) -> None:
        """Local midnight before ``at`` and its weekday: hour and weekday of later times cheaply."""
        d = datetime.fromtimestamp(at, tz)
        self.midnight = at - (d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6)
        self.weekday0 = d.weekday()

    def batch_future(
        self, j: np.ndarray, newpart: np.ndarray, prev_s: np.ndarray, t: np.ndarray
    ) -> np.ndarray:
        """Lengths (s) of batches starting at ``t`` after a changeover (bank residuals)."""
        since = t - self.midnight
        days = since // 86400.0
        hour = (since - days * 86400.0) / 3600.0
        wd = (self.weekday0 + days.astype(np.int64)) % 7
        same = ~newpart
        loc = self.batch_loc(j, newpart, same, prev_s, hour, wd)
        z = self.bank_z[same.astype(np.int64), self.pick(len(j))]
        return np.clip(np.exp(loc + self.b_scale[j, same.astype(np.int64)] * z), 60.0, 48 * 3600.0)

    def batch_now(
        self,
        machine: str,
        context: str,
        prev_s: float | None,
        t: float,
        tz: ZoneInfo,
        above_s: float,
        size: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, float]:
        """Lengths (s) of the batch running now, longer than its ``above_s`` so far, and how
        many of the machine's batches are behind them."""
        hour, wd = _hour_weekday(t, tz)
        pts, n_eff = self.m.batches.current(machine, context, prev_s, float(hour[0]), int(wd[0]))
        above = math.log(above_s) if above_s > 0 else -np.inf
        z = pts.sample(rng.random(size), rng.standard_normal(size), above)
        return np.clip(np.exp(z), 60.0, 48 * 3600.0), n_eff


def nxt_is_end(nxt: np.ndarray) -> np.ndarray:
    """Whether a drawn next task is the end of the changeover."""
    return nxt == len(TASK_NAMES)


def _hour_weekday(t: np.ndarray | float, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of day and weekday (vectorised over a day; DST-exact at the first time)."""
    t = np.atleast_1d(np.asarray(t, dtype="float64"))
    finite = t[np.isfinite(t)]
    ref = float(finite[0]) if len(finite) else 0.0
    d = datetime.fromtimestamp(ref, tz)
    midnight = ref - (d.hour * 3600 + d.minute * 60 + d.second + d.microsecond / 1e6)
    since = np.where(np.isfinite(t), t - midnight, 0.0)
    days = np.floor(since / 86400.0)
    hour = (since - days * 86400.0) / 3600.0
    wd = (d.weekday() + days.astype(np.int64)) % 7
    return hour, wd


def _push_past_off(
    start: np.ndarray, dur: np.ndarray, off: list[tuple[float, float]], whole: bool
) -> np.ndarray:
    """Service starts moved past breaks (``whole``: also when the service would run into one)."""
    for a, b in off:
        hit = (start < b) & ((start + dur > a) if whole else (start >= a))
        start = np.where(hit, b, start)
    return start


def _so_far(result: Result, machine: str, lo: float, hi: float) -> float:
    return sum(
        max(0.0, min(s.end, hi) - max(s.start, lo))
        for s in result.machine_states
        if s.machine == machine and s.state == "running"
    )


def _changeovers_so_far(records: DayRecords, result: Result, machine: str, lo: float, hi: float) -> int:
    n = sum(1 for s in records.stops if s.machine == machine and s.tasks and lo <= s.tasks[0].start < hi)
    # A changeover going on now is not a stop record yet (the machine has not restarted).
    counted = {s.tasks[0].start for s in records.stops if s.machine == machine and s.tasks}
    open_tasks = [t for t in result.tasks if t.machine == machine and t.start not in counted]
    return n + (1 if _open_changeover(result, machine, open_tasks, lo, hi) else 0)


def _open_changeover(result: Result, machine: str, tasks: list, lo: float, hi: float) -> bool:
    segs = sorted((s for s in result.machine_states if s.machine == machine), key=lambda s: s.start)
    if not segs or segs[-1].state != "stopped":
        return False
    return any(t.start >= segs[-1].start - 2.0 and lo <= t.start < hi for t in tasks)


def _q(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    x = np.asarray(x, dtype="float64")
    return [float(v) for v in np.quantile(x, qs)] if len(x) else [math.nan] * len(qs)


def forecast(
    model: SiteModel,
    result: Result,
    today: DayRecords,
    at: float,
    *,
    timezone: str,
    shift: tuple[float, float],
    off: list[tuple[float, float]],
    day: str,
    seed: int | None = None,
) -> Forecast:
    """Forecast the site at ``at``.

    Parameters
    ----------
    model : SiteModel
        Fitted on earlier days (and today so far).
    result : Result
        Today's analysis known at ``at`` (:func:`~twin_server.forecast.history.truncate_result`).
    today : DayRecords
        Records of that result (:func:`~twin_server.forecast.history.day_records`).
    at : float
        The moment of the forecast (epoch s).
    timezone : str
        Site time zone.
    shift : (float, float)
        Today's shift start and end (epoch s).
    off : list of (float, float)
        Today's breaks (epoch s).
    day : str
        Local day.
    seed : int, optional
        Random seed (default: the model's); one moment always gives the same forecast.

    Returns
    -------
    Forecast
    """
    t_start = time.perf_counter()
    p = model.params
    tz = ZoneInfo(timezone)
    n = p.samples
    # The same random numbers at every moment: the forecast moves because the shop did, not
    # because the draws did.
    rng = np.random.default_rng(p.seed if seed is None else seed)
    dr = _Draws(model, rng, n)
    dr.set_clock(at, tz)
    machines = model.machines
    n_m, n_w = len(machines), max(1, len(model.workers))
    shift_start, shift_end = shift
    closed = [(-math.inf, shift_start), *sorted(off), (shift_end, math.inf)]
    horizon_end = max(shift_end, at + p.horizon_s)
    qs = (p.interval[0], 0.5, p.interval[1])
    rows = np.arange(n)

    phase = np.full((n, n_m), OFF, dtype=np.int8)  # RUN or OFF (state after the next event)
    t_next = np.full((n, n_m), math.inf)  # the end of the current or next run
    run_start = np.full((n, n_m), math.inf)
    batch_left = np.zeros((n, n_m))
    batch_total = np.full((n, n_m), math.nan)
    end_minor = np.zeros((n, n_m), bool)
    w_free = np.full((n, n_w), at)
    run_acc = np.zeros((n, n_m))
    co_count = np.zeros((n, n_m))
    first_event = np.full((n, n_m), math.nan)
    need_at = np.full((n, n_m), math.nan)
    need_wait = np.full((n, n_m), math.nan)
    lane_n = round(p.horizon_s / 60.0)
    lane = np.full((n, n_m, lane_n), WAIT, dtype=np.int8)
    minute_t = at + 60.0 * np.arange(lane_n) + 30.0  # the middle of each minute

    def lane_set(ii: np.ndarray, jj: np.ndarray, t: np.ndarray, code: np.ndarray | int) -> None:
        """From ``t`` on, machine ``jj`` of draws ``ii`` is in state ``code`` (later calls win)."""
        keep = t < at + p.horizon_s
        if not keep.any():
            return
        ii, jj, t = ii[keep], jj[keep], t[keep]
        cc = np.broadcast_to(np.asarray(code, dtype=np.int8), keep.shape)[keep]
        later = minute_t[None, :] >= t[:, None]
        lane[ii, jj, :] = np.where(later, cc[:, None], lane[ii, jj, :])

    def start_runs(
        ii: np.ndarray, jj: np.ndarray, t: np.ndarray, new_batch: np.ndarray, newpart: np.ndarray
    ) -> None:
        """Machines ``jj`` of draws ``ii`` start running at ``t`` (a new batch, or the batch goes on)."""
        if new_batch.any():
            s_, j_ = ii[new_batch], jj[new_batch]
            b = dr.batch_future(j_, newpart[new_batch], batch_total[s_, j_], t[new_batch])
            batch_total[s_, j_] = b
            batch_left[s_, j_] = b
        rate = dr.rate[jj]
        gap = rng.exponential(1.0, len(ii)) / np.where(rate > 0, rate, 1e-12)
        left = batch_left[ii, jj]
        minor = gap < left - 60.0
        batch_left[ii, jj] = np.where(minor, left - gap, 0.0)
        end_minor[ii, jj] = minor
        run_start[ii, jj] = t
        t_next[ii, jj] = t + np.where(minor, gap, left)
        phase[ii, jj] = RUN
        lane_set(ii, jj, t, RUN)

    def serve(
        ii: np.ndarray,
        jj: np.ndarray,
        ready: np.ndarray,
        minor: np.ndarray,
        preset: tuple[np.ndarray, np.ndarray] | None = None,
        worker: int | None = None,
    ) -> None:
        """Machines ``jj`` of draws ``ii`` need the operator from ``ready``: wait, service, restart."""
        k = len(ii)
        w = np.argmin(w_free[ii], axis=1) if worker is None else np.full(k, worker)
        # A busy worker comes over after finishing elsewhere: as long as a free one takes to answer.
        handover = 0.0 if preset is not None else dr.bank_response[dr.pick(k)]
        start = np.maximum(ready, w_free[ii, w] + handover)
        if preset is not None:
            dur, newpart = preset
        else:
            pick = dr.pick(k)
            w_bank = np.minimum(w, len(dr.workers))
            dur = np.where(minor, dr.bank_fix[pick], dr.bank_co[w_bank, pick])
            newpart = ~minor & dr.bank_new[w_bank, pick]
        start = _push_past_off(start, dur, closed, p.finish_before_break)
        ok = np.isfinite(start)
        end = start + dur
        first = np.isnan(need_at[ii, jj]) & (ready < at + p.horizon_s) & (preset is None)
        need_at[ii[first], jj[first]] = ready[first]
        need_wait[ii[first], jj[first]] = (start - ready)[first]
        co_count[ii, jj] += (~minor & (start < shift_end) & (preset is None)).astype(float)
        w_free[ii[ok], w[ok]] = end[ok]
        fresh = np.isnan(first_event[ii, jj]) & (phase[ii, jj] != RUN)
        lane_set(ii[ok], jj[ok], start[ok], np.where(minor[ok], FIX, CHANGEOVER))
        lane_set(ii[~ok], jj[~ok], ready[~ok], OFF)
        # the restart: the next run starts at once (nothing between can change it)
        first_event[ii[fresh & ok], jj[fresh & ok]] = end[fresh & ok]
        phase[ii[~ok], jj[~ok]] = OFF
        t_next[ii[~ok], jj[~ok]] = math.inf
        if ok.any():
            s_, j_ = ii[ok], jj[ok]
            cont = minor[ok] & (batch_left[s_, j_] > 0)
            start_runs(s_, j_, end[ok], ~cont, newpart[ok])

    # -- the present ------------------------------------------------------------------------
    nows = [machine_now(result, today, m, at) for m in machines]
    out_machines: list[MachineForecast] = []
    waiting: list[tuple[float, int, MachineNow]] = []
    for j, now in enumerate(nows):
        mf = MachineForecast(now.machine, now.phase, now.since, None, task=now.task, worker=now.worker)
        out_machines.append(mf)
        jj = np.full(n, j)
        if now.phase == "unknown":
            lane[:, j, :] = UNKNOWN
            continue
        if now.phase == "running":
            mf.event = "run_end"
            ctx = now.batch_context if now.batch_context in ("new", "same") else "unknown"
            mf.context = ctx
            # The run's end from more draws than the simulation needs, with random numbers of
            # its own: a steady range.
            big = max(2000, n)
            own = np.random.default_rng([p.seed if seed is None else seed, 7, j])
            bb, n_eff = dr.batch_now(
                now.machine, ctx, now.prev_batch_s, now.since, tz, now.batch_elapsed_s, big, own
            )
            batch_total[:, j] = bb[:n]
            batch_left[:, j] = bb[:n] - now.batch_elapsed_s
            start_runs(rows, jj, np.full(n, at), np.zeros(n, bool), np.zeros(n, bool))
            run_start[:, j] = at
            rate = dr.rate[j]
            gap = own.exponential(1.0, big) / rate if rate > 0 else np.full(big, math.inf)
            left = bb - now.batch_elapsed_s
            ends = at + np.where(gap < left - 60.0, gap, left)
            mf.p10, mf.p50, mf.p90 = (float(v) for v in np.quantile(ends, qs))
            mf.p_after_shift = float((ends > shift_end).mean())
            mf.basis = round(n_eff)  # the machine's earlier batches like this one (weighted)
            if model.batches.n_batches.get(now.machine, 0) == 0:
                mf.cold.append("machine_never_seen_running")
            elif n_eff < p.cold_below:
                mf.cold.append("few_runs")
            continue
        mf.event = "restart"
        mf.basis = model.tasks.n_stops.get(now.machine, 0)
        if now.phase in ("changeover", "between"):
            wi = dr.worker_index(now.worker)
            w_row = min(wi, len(dr.workers))
            done = np.zeros((n, len(TASK_NAMES)), bool)
            for name in now.tasks_done:
                done[:, _TASK_INDEX[name]] = True
            w_idx = np.full(n, w_row)
            if now.phase == "changeover":
                k = _TASK_INDEX[now.task]
                done[:, k] = True
                el = at - now.task_start
                left = dr.task(np.full(n, k), w_idx, np.full(n, el)) - el
                rest, newpart = dr.rest_of_changeover(np.full(n, k), done, w_idx)
                remaining = np.maximum(left, 0.0) + rest
            else:
                prev = _TASK_INDEX[now.tasks_done[-1]] if now.tasks_done else _START_I
                remaining, newpart = dr.rest_of_changeover(
                    np.full(n, prev), done, w_idx, np.full(n, max(at - now.last_task_end, 1.0))
                )
            remaining = np.maximum(remaining, 1.0)
            if now.worker is not None and now.worker not in model.workers:
                mf.cold.append("worker_unknown")
            elif now.worker is not None and model.tasks.n_worker.get(now.worker, 0) < p.cold_below:
                mf.cold.append(f"worker_no_history:{now.worker}")
            if now.worker is not None and mf.cold:
                # Nobody knows this worker's pace yet: the rest of the changeover at a pace
                # drawn from the spread between workers (a wider range, not the site's mean
                # worker's), with random numbers of its own.
                pace_rng = np.random.default_rng([p.seed if seed is None else seed, 11, j])
                remaining = remaining * np.exp(model.tasks.pace_sd(p) * pace_rng.standard_normal(n))
            lane[:, j, :] = CHANGEOVER
            # The worker doing it is busy until the restart (the service is already under way).
            serve(
                rows,
                jj,
                np.full(n, at),
                np.zeros(n, bool),
                (remaining, newpart),
                worker=wi if wi < n_w and now.worker in model.workers else None,
            )
            continue
        waiting.append((now.since, j, now))
    # Machines already waiting join the queue in the order they stopped.
    for since, j, now in sorted(waiting, key=lambda x: x[0]):
        minor = rng.random(n) < model.tasks.p_minor.get(now.machine, 0.15)
        if now.worker_present is not None:
            ready = np.full(n, at)
        else:
            ready = since + dr.log_points(model.tasks.response, dr.elapsed_above(max(at - since, 0.0)))
            ready = np.maximum(ready, at)
        serve(rows, np.full(n, j), ready, minor)
        if model.tasks.n_stops.get(now.machine, 0) < p.cold_below:
            out_machines[j].cold.append("few_stops")

    # -- play the shop forward: one run end per draw and step ---------------------------------
    for _ in range(_MAX_STEPS):
        jj = np.argmin(t_next, axis=1)
        te = t_next[rows, jj]
        live = te <= horizon_end
        if not live.any():
            break
        ii, jj, te = rows[live], jj[live], te[live]
        run_acc[ii, jj] += np.maximum(0.0, np.minimum(te, shift_end) - np.maximum(run_start[ii, jj], at))
        run_start[ii, jj] = math.inf
        first = np.isnan(first_event[ii, jj])
        first_event[ii[first], jj[first]] = te[first]
        lane_set(ii, jj, te, WAIT)
        phase[ii, jj] = OFF
        t_next[ii, jj] = math.inf
        ready = te + dr.bank_response[dr.pick(len(ii))]
        serve(ii, jj, ready, end_minor[ii, jj])
    # runs still going: count them up to the shift end
    run_acc += np.where(phase == RUN, np.maximum(0.0, shift_end - np.maximum(run_start, at)), 0.0)

    # -- summaries ----------------------------------------------------------------------------
    hi_now = min(at, shift_end)
    site_run_so_far = 0.0
    site_co_so_far = 0
    for j, mf in enumerate(out_machines):
        m = mf.machine
        so_far = _so_far(result, m, shift_start, hi_now) / 60.0
        co_so_far = _changeovers_so_far(today, result, m, shift_start, hi_now)
        site_run_so_far += so_far
        site_co_so_far += co_so_far
        if mf.phase == "unknown":
            continue
        mf.running_min = _q(so_far + run_acc[:, j] / 60.0, qs)
        mf.changeovers = _q(co_so_far + co_count[:, j], qs)
        if mf.event == "restart":
            ev = np.where(np.isnan(first_event[:, j]), math.inf, first_event[:, j])
            mf.p_after_shift = float((ev > shift_end).mean())
            q = np.quantile(np.minimum(ev, _NEVER), qs)  # no inf - inf in the interpolation
            top = float(ev[np.isfinite(ev)].max()) if np.isfinite(ev).any() else -math.inf
            mf.p10, mf.p50, mf.p90 = (float(v) if v <= top else None for v in q)
        need = np.isfinite(need_at[:, j])
        mf.p_need = float(need.mean())
        if need.any():
            mf.need_at = float(np.median(need_at[need, j]))
            wt = need_wait[need, j]
            wt = np.where(np.isfinite(wt), wt, 24 * 3600.0)
            mf.wait_p50_min = float(np.median(wt) / 60.0)
            mf.wait_p90_min = float(np.quantile(wt, qs[2]) / 60.0)
        mf.lane = _lane_segments(lane[:, j, :], minute_t - 30.0)
        if model.history_days == 0:
            mf.cold.insert(0, "first_day")
    total_run = site_run_so_far + run_acc.sum(axis=1) / 60.0
    total_co = site_co_so_far + co_count.sum(axis=1)
    queue = sorted(
        (
            QueueItem(mf.machine, mf.need_at, mf.p_need, mf.wait_p50_min, mf.wait_p90_min)
            for mf in out_machines
            if mf.need_at is not None and mf.p_need >= 0.5
        ),
        key=lambda q_: q_.need_at,
    )
    out = Forecast(
        site=result.site,
        at=at,
        day=day,
        shift_end=shift_end,
        history_days=model.history_days,
        cold=model.history_days == 0,
        machines=out_machines,
        queue=queue,
        running_min=_q(total_run, qs),
        changeovers=_q(total_co, qs),
        running_min_so_far=site_run_so_far,
        changeovers_so_far=site_co_so_far,
        horizon_s=p.horizon_s,
        samples=n,
    )
    out.compute_ms = (time.perf_counter() - t_start) * 1000.0
    return out


def _lane_segments(states: np.ndarray, minute_t: np.ndarray) -> list[dict[str, Any]]:
    """The most likely state per minute, joined into segments with their mean probability."""
    n_codes = len(LANE_STATES)
    counts = np.stack([(states == c).mean(axis=0) for c in range(n_codes)])  # (codes, minutes)
    best = counts.argmax(axis=0)
    prob = counts.max(axis=0)
    out: list[dict[str, Any]] = []
    for k, code in enumerate(best):
        t0 = float(minute_t[k])
        if out and out[-1]["state"] == LANE_STATES[code]:
            out[-1]["end"] = t0 + 60.0
            out[-1]["_p"].append(float(prob[k]))
        else:
            out.append({"state": LANE_STATES[code], "start": t0, "end": t0 + 60.0, "_p": [float(prob[k])]})
    for seg in out:
        seg["p"] = round(float(np.mean(seg.pop("_p"))), 3)
    return out
