"""The learnt parts of the forecast: batch lengths, minor stops, tasks, their order, delays.

``fit_model(records, machines, workers, params)`` turns :class:`DayRecords` of earlier days
(and of today so far) into a :class:`SiteModel`. Each piece starts from a wide prior that
counts as a few observations (:class:`ForecastParams`), so a new site, a machine never seen
running or a new worker get a prediction with a wide range, which narrows as data come in.

Batch lengths follow an accelerated-failure-time model: ``log B = level(machine) +
context effect + slope(context) * (log previous batch - level) + weekday + hour of day +
scale(machine, context) * e``, with ``e`` drawn from the Kaplan-Meier distribution of the
standardised residuals (censored batches count as lower bounds). The context says whether
the changeover before the batch had program input (``new``: a new part), had none (``same``:
the part goes on, so the previous batch's length says much) or is unknown.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from twin_server.forecast.dists import Points
from twin_server.forecast.history import DayRecords
from twin_server.result import TASK_NAMES

__all__ = ["CONTEXTS", "ForecastParams", "SiteModel", "fit_model"]

CONTEXTS = ("new", "same", "unknown")  # 'unknown_start' batches predict as 'unknown'
START, END = "start", "end"


@dataclass(frozen=True)
class ForecastParams:
    """Settings and priors of the forecast (durations in seconds unless the name says so)."""

    samples: int = 200  # Monte Carlo draws of the site's next hours
    history_days: int = 20  # earlier days learnt from
    interval: tuple[float, float] = (0.1, 0.9)  # the range shown: an 80 % interval
    horizon_s: float = 3600.0  # the lane and the operator's queue look this far ahead
    seed: int = 0
    # priors: (median, log-sd) and how many observations they count as
    batch_prior_min: tuple[float, float] = (45.0, 1.0)
    task_prior_min: tuple[float, float] = (5.0, 0.9)
    response_prior_s: tuple[float, float] = (120.0, 0.9)
    gap_prior_s: tuple[float, float] = (30.0, 1.0)
    restart_prior_s: tuple[float, float] = (40.0, 0.8)
    minor_prior_s: tuple[float, float] = (180.0, 0.8)
    interruptions_prior_per_h: float = 0.1
    prior_weight: float = 3.0
    # shrinkage: pseudo-observations pulling a machine / worker towards the site
    machine_pseudo: float = 4.0
    scale_pseudo: float = 4.0
    worker_pseudo: float = 4.0
    slope_ridge: float = 3.0
    calendar_ridge: float = 30.0
    order_pseudo: float = 0.3
    cold_below: int = 3  # fewer observations than this: said on screen, prior-heavy range
    local_prior_weight: float = 3.0  # the site model counts as this many of a machine's batches
    prev_bandwidth: float = 0.25  # log units: how alike two previous batches must be ('same' part)
    finish_before_break: bool = True  # a worker starts no service that would run into a break
    new_worker_pace_sd: float = 0.35  # prior log-sd of how a worker with no history differs in pace


@dataclass
class BatchModel:
    """Batch length model (see the module docstring)."""

    level: dict[str, float]  # machine -> mean log batch length (shrunk to the site's)
    site_level: float
    beta: np.ndarray  # effects, see ``_design``
    scale: dict[tuple[str, str], float]  # (machine, class) -> residual scale
    resid: dict[str, Points]  # class -> standardised residuals
    n_batches: dict[str, int]  # machine -> complete batches seen
    interruptions_per_s: dict[str, float]
    own: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)  # machine -> its batches
    compact: dict[str, Points] = field(default_factory=dict)  # class -> resid in 64 quantiles
    params: ForecastParams | None = None
    level_sd: float = 0.0  # spread of the machines' levels: how far an unseen machine may be

    def current(
        self, machine: str, context: str, prev_s: float | None, hour: float, weekday: int
    ) -> tuple[Points, float]:
        """Distribution of ``log B`` of a batch of ``machine`` (and its effective sample size).

        The machine's own earlier batches, weighted by how alike their context is (a batch
        continuing the same part: by how close its previous batch's length was; a new part:
        the machine's new-part batches), with the site model's prediction as a prior counting
        as ``local_prior_weight`` batches (Beran's conditional Kaplan-Meier estimator). The
        clusters of the parts a machine makes stay apart, so time elapsed past one cluster
        moves the forecast to the next.
        """
        p = self.params or ForecastParams()
        loc = float(self.loc(machine, context, prev_s, hour, weekday)[0])
        scale = self.scale_of(machine, context)
        if not self.n_batches.get(machine, 0):
            # A machine never seen running may be as far from the site's level as machines
            # differ: the range carries that too (else it would be a known machine's width).
            scale = math.sqrt(scale**2 + self.level_sd**2)
        prior = self.compact[self.klass(context)].shifted(loc, scale)
        got = self.own.get(machine)
        if got is None or not len(got[0]):
            return prior, 0.0
        log_len, cens, ctx, log_prev = got
        if context == "same" and prev_s is not None and prev_s > 0:
            d = np.where(np.isfinite(log_prev), log_prev - math.log(prev_s), np.inf)
            w = np.where(ctx == "same", np.exp(-0.5 * (d / p.prev_bandwidth) ** 2), 0.0)
        elif context in ("new", "same"):
            w = (ctx == context).astype(float)
        else:
            w = np.ones(len(log_len))
        pts = Points.mixed(log_len, cens, w, prior, p.local_prior_weight)
        return pts, pts.n_data

    def loc(
        self,
        machine: str,
        context: str,
        prev_s: float | np.ndarray | None,
        hour: float | np.ndarray,
        weekday: int | np.ndarray,
    ) -> np.ndarray:
        """Location of ``log B`` for a batch starting now (vectorised over prev/hour/weekday)."""
        lvl = self.level.get(machine, self.site_level)
        x = _design_rows(context, prev_s, lvl, hour, weekday)
        return lvl + x @ self.beta

    def klass(self, context: str) -> str:
        return "same" if context == "same" else "other"

    def scale_of(self, machine: str, context: str) -> float:
        k = self.klass(context)
        return self.scale.get((machine, k), self.scale[("", k)])


def _design_rows(context: str | np.ndarray, prev_s, level, hour, weekday) -> np.ndarray:
    """Columns: new, same, unknown intercepts; slope*z for same and new; 7 weekdays; sin, cos hour."""
    hour = np.atleast_1d(np.asarray(hour, dtype="float64"))
    n = len(hour)
    ctx = np.broadcast_to(np.asarray(context, dtype=object), (n,))
    if prev_s is None:
        prev = np.full(n, np.nan)
    else:
        prev = np.broadcast_to(np.asarray(prev_s, dtype="float64"), (n,))
    lvl = np.broadcast_to(np.asarray(level, dtype="float64"), (n,))
    z = np.where(np.isfinite(prev) & (prev > 0), np.log(np.where(prev > 0, prev, 1.0)) - lvl, 0.0)
    is_new = ctx == "new"
    is_same = ctx == "same"
    x = np.zeros((n, 14))
    x[:, 0] = is_new
    x[:, 1] = is_same
    x[:, 2] = ~(is_new | is_same)
    x[:, 3] = is_same * z
    x[:, 4] = is_new * z
    wd = np.broadcast_to(np.asarray(weekday, dtype=np.int64), (n,))
    x[np.arange(n), 5 + np.clip(wd, 0, 6)] = 1.0
    ang = 2 * math.pi * hour / 24.0
    x[:, 12] = np.sin(ang)
    x[:, 13] = np.cos(ang)
    return x


_ORDER_ROWS = (*TASK_NAMES, START)
_ORDER_COLS = (*TASK_NAMES, END)


@dataclass
class _DayStats:
    """One day's records as arrays (computed once per day: earlier days never change)."""

    b_machine: np.ndarray
    b_context: np.ndarray
    b_prev: np.ndarray
    b_hour: np.ndarray
    b_weekday: np.ndarray
    b_length: np.ndarray
    b_censored: np.ndarray
    b_minor: np.ndarray
    t_name: np.ndarray
    t_worker: np.ndarray
    t_log: np.ndarray
    trans: np.ndarray  # (start + tasks) x (tasks + end) counts
    gaps: list[float]
    restarts: list[float]
    responses: list[float]
    minors: list[float]
    stops: Counter
    minor_stops: Counter


def _day_stats(rec: DayRecords) -> _DayStats:
    got = rec.__dict__.get("_stats")
    if got is not None:
        return got
    rows = [b for b in rec.batches if b.context != "unknown_start" and b.length_s > 0]
    tasks = [t for t in rec.tasks if not t.censored and t.duration_s > 0]
    trans = np.zeros((len(_ORDER_ROWS), len(_ORDER_COLS)))
    gaps, restarts, responses, minors = [], [], [], []
    stops, minor_stops = Counter(), Counter()
    for s in rec.stops:
        stops[s.machine] += 1
        if not s.tasks:
            minor_stops[s.machine] += 1
            if s.restart is not None and s.worker_free and s.on_shift:
                minors.append(s.restart - s.stop)
            continue
        seq = [t.task for t in s.tasks]
        for x, y in zip([START, *seq], [*seq, END], strict=True):
            if x != y and x in _ORDER_ROWS and y in _ORDER_COLS:
                trans[_ORDER_ROWS.index(x), _ORDER_COLS.index(y)] += 1.0
        for t0, t1 in zip(s.tasks[:-1], s.tasks[1:], strict=True):
            gaps.append(max(1.0, t1.start - (t0.start + t0.duration_s)))
        last = s.tasks[-1]
        if s.restart is not None and not last.censored:
            restarts.append(max(1.0, s.restart - (last.start + last.duration_s)))
        if s.worker_free and s.on_shift:
            responses.append(max(1.0, s.tasks[0].start - s.stop))

    def col(items: list, attr: str, dtype: object) -> np.ndarray:
        return np.array([getattr(x, attr) for x in items], dtype=dtype)

    out = _DayStats(
        col(rows, "machine", object),
        col(rows, "context", object),
        np.array([math.nan if b.prev_length_s is None else b.prev_length_s for b in rows], dtype="float64"),
        col(rows, "hour", "float64"),
        col(rows, "weekday", np.int64),
        col(rows, "length_s", "float64"),
        col(rows, "censored", bool),
        col(rows, "minor_stops", "float64"),
        col(tasks, "task", object),
        np.array([t.worker or "" for t in tasks], dtype=object),
        np.log(np.array([t.duration_s for t in tasks], dtype="float64")),
        trans,
        gaps,
        restarts,
        responses,
        minors,
        stops,
        minor_stops,
    )
    rec.__dict__["_stats"] = out
    return out


def _cat(stats: list[_DayStats], name: str, dtype: object) -> np.ndarray:
    parts = [getattr(st, name) for st in stats]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _fit_batches(stats: list[_DayStats], machines: list[str], p: ForecastParams) -> BatchModel:
    mach = _cat(stats, "b_machine", object)
    ctx = _cat(stats, "b_context", object)
    prev = _cat(stats, "b_prev", "float64")
    hour = _cat(stats, "b_hour", "float64")
    wd = _cat(stats, "b_weekday", np.int64)
    length = _cat(stats, "b_length", "float64")
    cens = _cat(stats, "b_censored", bool)
    minor = _cat(stats, "b_minor", "float64")
    prior_loc = math.log(60.0 * p.batch_prior_min[0])
    prior_sd = p.batch_prior_min[1]
    y = np.log(length) if len(length) else np.zeros(0)
    y_done = y[~cens]
    site_level = float((y_done.sum() + p.prior_weight * prior_loc) / (len(y_done) + p.prior_weight))
    level, n_batches = {}, {}
    for m in machines:
        ym = y[(mach == m) & ~cens]
        n_batches[m] = len(ym)
        level[m] = float((ym.sum() + p.machine_pseudo * site_level) / (len(ym) + p.machine_pseudo))
    beta = np.zeros(14)
    # How far machines' levels lie apart (known machines; the prior counting as prior_weight).
    known = [level[m] - site_level for m in machines if n_batches[m] >= p.cold_below]
    level_sd = math.sqrt(
        (sum(v * v for v in known) + p.prior_weight * prior_sd**2) / (len(known) + p.prior_weight)
    )
    model = BatchModel(level, site_level, beta, {}, {}, n_batches, {}, params=p, level_sd=level_sd)
    y_all = np.log(np.maximum(length, 1.0))
    lp = np.log(np.where(np.isfinite(prev) & (prev > 0), prev, np.nan))
    for m in machines:
        sel = mach == m
        model.own[m] = (y_all[sel], cens[sel], ctx[sel], lp[sel])
    _fit_rates(model, mach, length, minor, machines, p)
    if not len(y):
        for k in ("same", "other"):
            model.scale[("", k)] = prior_sd
            model.resid[k] = Points.fit(np.zeros(0), prior_weight=p.prior_weight)
            model.compact[k] = model.resid[k]
        return model
    lv = np.array([level.get(m, site_level) for m in mach])
    x = _design_rows(ctx, prev, lv, hour, wd)
    if (~cens).any():
        xd, rd = x[~cens], (y - lv)[~cens]
        ridge = np.array([1.0, 1.0, 1.0, p.slope_ridge, p.slope_ridge] + [p.calendar_ridge] * 9)
        model.beta = beta = np.linalg.solve(xd.T @ xd + np.diag(ridge), xd.T @ rd)
    # Residuals of every batch with a known start (censored ones as lower bounds), in two
    # classes: the same part going on ('same') and the rest; each machine its own scale.
    e = y - lv - x @ beta
    klass = np.where(ctx == "same", "same", "other")
    for k in ("same", "other"):
        in_k = klass == k
        es = e[in_k & ~cens]
        site_var = (np.sum(es**2) + p.scale_pseudo * prior_sd**2) / (len(es) + p.scale_pseudo)
        model.scale[("", k)] = math.sqrt(site_var)
        scale_i = np.full(len(y), math.sqrt(site_var))
        for m in machines:
            sel = in_k & (mach == m)
            em = e[sel & ~cens]
            var = (np.sum(em**2) + p.scale_pseudo * site_var) / (len(em) + p.scale_pseudo)
            model.scale[(m, k)] = math.sqrt(var)
            scale_i[sel] = model.scale[(m, k)]
        model.resid[k] = Points.fit((e / scale_i)[in_k], cens[in_k], prior_weight=p.prior_weight)
    for k, pts in model.resid.items():
        model.compact[k] = pts.compacted()
    return model


def _fit_rates(
    model: BatchModel,
    mach: np.ndarray,
    length: np.ndarray,
    minor: np.ndarray,
    machines: list[str],
    p: ForecastParams,
) -> None:
    """Minor stops per running hour, each machine's shrunk to the site's."""
    prior_expo_s = 5 * 3600.0
    site_rate = (minor.sum() + p.interruptions_prior_per_h * prior_expo_s / 3600.0) / (
        length.sum() + prior_expo_s
    )
    for m in machines:
        sel = mach == m
        model.interruptions_per_s[m] = float(
            (minor[sel].sum() + site_rate * prior_expo_s) / (length[sel].sum() + prior_expo_s)
        )


@dataclass
class TaskModel:
    """Task durations per worker, the usual order of tasks, and the delays around them."""

    level: dict[str, float]  # task -> mean log duration (s)
    offset: dict[tuple[str, str], float]  # (worker, task) -> log offset (shrunk)
    resid: dict[str, Points]  # task -> residuals
    n_worker: dict[str, int]  # worker -> tasks seen
    transitions: dict[str, dict[str, float]]  # prev -> next -> count (incl. pseudo-counts)
    gap: Points  # log seconds between two tasks
    restart: Points  # log seconds from the last task's end to the restart
    response: Points  # log seconds from a stop to the first task, a worker being free
    minor: Points  # log seconds of a minor stop, a worker being free (stop to restart)
    p_minor: dict[str, float]  # machine -> share of stops without a task
    n_stops: dict[str, int]

    def pace_sd(self, p: ForecastParams) -> float:
        """Log-sd of the pace between workers: how far a worker with no history may be from
        the site's usual durations (the spread of known workers' offsets, with a prior of
        ``new_worker_pace_sd`` counting as ``prior_weight`` workers)."""
        known = [w for w, k in self.n_worker.items() if k >= p.cold_below]
        offs = [v for (w, _task), v in self.offset.items() if w in known]
        n = len(known)
        ss = sum(v * v for v in offs) / max(1, len(offs)) * n
        return math.sqrt((ss + p.prior_weight * p.new_worker_pace_sd**2) / (n + p.prior_weight))

    def next_probs(self, prev: str, done: set[str] | frozenset[str]) -> tuple[list[str], np.ndarray]:
        """Which task comes after ``prev`` (or ``end``), the tasks in ``done`` excluded."""
        row = self.transitions[prev]
        names = [n for n in (*TASK_NAMES, END) if n not in done and n != prev]
        if prev == START:
            names = [n for n in names if n != END]
        w = np.array([row.get(n, 0.0) for n in names], dtype="float64")
        return names, w / w.sum()


def _log_points(
    values: list[float], prior: tuple[float, float], weight: float, censored: list[bool] | None = None
) -> Points:
    v = np.log(np.maximum(np.asarray(values, dtype="float64"), 1.0))
    return Points.fit(
        v,
        None if censored is None else np.asarray(censored, bool),
        prior_loc=math.log(prior[0]),
        prior_scale=prior[1],
        prior_weight=weight,
    )


def _fit_tasks(
    stats: list[_DayStats], machines: list[str], workers: list[str], p: ForecastParams
) -> TaskModel:
    prior_loc = math.log(60.0 * p.task_prior_min[0])
    level, offset, resid = {}, {}, {}
    names = _cat(stats, "t_name", object)
    who = _cat(stats, "t_worker", object)
    y_all = _cat(stats, "t_log", "float64")
    n_worker = {w: int(np.count_nonzero(who == w)) for w in workers}
    for name in TASK_NAMES:
        sel = names == name
        y, wk = y_all[sel], who[sel]
        level[name] = float((y.sum() + p.prior_weight * prior_loc) / (len(y) + p.prior_weight))
        e = y - level[name]
        for w in workers:
            mine = wk == w
            offset[(w, name)] = float(e[mine].sum() / (np.count_nonzero(mine) + p.worker_pseudo))
            e[mine] -= offset[(w, name)]
        resid[name] = Points.fit(e, prior_scale=p.task_prior_min[1], prior_weight=p.prior_weight)
    # Order: transitions between tasks within a stop (start -> first task, last task -> end).
    counts = sum((st.trans for st in stats), np.zeros((len(_ORDER_ROWS), len(_ORDER_COLS))))
    trans: dict[str, dict[str, float]] = {}
    for r, prev in enumerate(_ORDER_ROWS):
        trans[prev] = {
            n: p.order_pseudo + float(counts[r, c]) for c, n in enumerate(_ORDER_COLS) if n != prev
        }
    stops_per_m, minor_per_m = Counter(), Counter()
    for st in stats:
        stops_per_m.update(st.stops)
        minor_per_m.update(st.minor_stops)
    n_stops = sum(stops_per_m.values())
    site_minor = (sum(minor_per_m.values()) + 0.15 * p.prior_weight) / (n_stops + p.prior_weight)
    p_minor = {
        m: (minor_per_m[m] + site_minor * p.machine_pseudo) / (stops_per_m[m] + p.machine_pseudo)
        for m in machines
    }
    w = p.prior_weight

    def joined(name: str) -> list[float]:
        return [v for st in stats for v in getattr(st, name)]

    return TaskModel(
        level,
        offset,
        resid,
        n_worker,
        trans,
        _log_points(joined("gaps"), p.gap_prior_s, w),
        _log_points(joined("restarts"), p.restart_prior_s, w),
        _log_points(joined("responses"), p.response_prior_s, w),
        _log_points(joined("minors"), p.minor_prior_s, w),
        p_minor,
        dict(stops_per_m),
    )


@dataclass
class SiteModel:
    """Everything the forecast samples from."""

    machines: list[str]
    workers: list[str]
    params: ForecastParams
    batches: BatchModel
    tasks: TaskModel
    history_days: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def fit_model(
    records: list[DayRecords],
    machines: list[str],
    workers: list[str],
    params: ForecastParams | None = None,
    history_days: int | None = None,
) -> SiteModel:
    """Fit every part of the forecast to the records of earlier days (and today so far).

    Parameters
    ----------
    records : list of DayRecords
        Oldest first; today's records (up to the forecast moment) may be the last.
    machines, workers : list of str
        The site's ids.
    params : ForecastParams, optional
    history_days : int, optional
        How many earlier days ``records`` holds (for the cold-start note; default: all).

    Returns
    -------
    SiteModel
    """
    p = params or ForecastParams()
    stats = [_day_stats(r) for r in records]
    return SiteModel(
        machines,
        workers,
        p,
        _fit_batches(stats, machines, p),
        _fit_tasks(stats, machines, workers, p),
        history_days=len(records) if history_days is None else history_days,
    )
