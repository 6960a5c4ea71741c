"""Ground truth of a simulated shift: machine runs, changeovers, worker paths, locator lag.

Everything here is pure: a site, parameters, a window and a numpy ``Generator`` in, a
:class:`Schedule` out. A small discrete-event loop moves the workers: the free worker who is
earliest in time looks for a stopped machine it has noticed, walks there along the aisle,
does the changeover's tasks (or a minor fix), restarts the machine, lingers, and goes back to
its idle spot; at a break it walks out of the door and comes back when the break ends.
Worker positions are piecewise-linear paths (knots), so sensors can sample them anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from twin_contract import vocabulary as vocab
from twin_server.geometry import polygon_mask
from twin_server.site import Site, point_in_polygon, polygon_centroid

from .params import PILOT_LAG_SAMPLES_S, SimParams
from .parts import PartShop, worker_pace

__all__ = [
    "Place",
    "Schedule",
    "TaskRun",
    "Trajectory",
    "build_schedule",
    "move_lags",
    "off_intervals",
    "polygon_mask",
    "zone_labels",
]

TRUTH_STEP_S = 0.1  # resolution of the true zone intervals


@dataclass(frozen=True)
class Place:
    """Somewhere a worker goes: the spot where it stands and its entry point on the aisle."""

    name: str
    work_xy: tuple[float, float]
    aisle_xy: tuple[float, float]
    facing_rad: float  # direction the worker faces while standing at ``work_xy``
    lateral_xy: tuple[float, float] = (0.0, 0.0)  # offset to the control-panel side of the zone
    via: tuple[tuple[float, float], ...] = ()  # waypoints from ``aisle_xy`` out to the main aisle


@dataclass(frozen=True)
class TaskRun:
    """One true task."""

    machine: str
    task: str
    worker: str
    start: float
    end: float


@dataclass
class Trajectory:
    """A worker's true floor path: knots ``(t, x, y)`` joined by straight lines.

    ``face[i]`` is the heading (radians) on the segment from knot ``i`` to ``i + 1``; NaN means
    "the direction of motion". ``away`` lists ``[start, end)`` intervals off the floor.
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    face: np.ndarray
    away: list[tuple[float, float]] = field(default_factory=list)

    def sample(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position ``(x, y)`` and heading at ``times`` (vectorised)."""
        x = np.interp(times, self.t, self.x)
        y = np.interp(times, self.t, self.y)
        seg = np.clip(np.searchsorted(self.t, times, side="right") - 1, 0, len(self.t) - 2)
        dx = np.diff(self.x)
        dy = np.diff(self.y)
        seg_face = np.where(np.isnan(self.face[:-1]), np.arctan2(dy, dx), self.face[:-1])
        return x, y, seg_face[seg]

    def away_mask(self, times: np.ndarray) -> np.ndarray:
        """True where the worker is off the floor."""
        out = np.zeros(times.shape, dtype=bool)
        for a, b in self.away:
            out |= (times >= a) & (times < b)
        return out


@dataclass
class Schedule:
    """The ground truth of a simulated shift, in true (not device) time."""

    t0: float
    t1: float
    runs: dict[str, list[tuple[float, float]]]  # machine -> running intervals, clipped to the window
    tasks: list[TaskRun]
    paths: dict[str, Trajectory]  # worker -> path
    lag: dict[str, list[tuple[float, float, float]]]  # worker -> (start, end, lag_s)
    off: list[tuple[float, float]]  # breaks / off-shift time inside the window
    _zones: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict, repr=False)

    def zones(self, site: Site, worker: str) -> list[tuple[str, float, float]]:
        """The worker's true ``(zone, start, end)`` runs over the window (computed once)."""
        if worker not in self._zones:
            self._zones[worker] = true_zone_intervals(site, self.paths[worker], self.t0, self.t1)
        return self._zones[worker]


# -- calendar ---------------------------------------------------------------------------


def off_intervals(site: Site, t0: float, t1: float) -> list[tuple[float, float]]:
    """Epoch intervals in ``[t0, t1)`` when workers are away (breaks, outside shift hours).

    The shift calendar is in the site's local time (``site.timezone``).
    """
    tz = ZoneInfo(site.timezone)
    first = datetime.fromtimestamp(t0, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(t1, tz).date() + timedelta(days=1)
    present: list[tuple[float, float]] = []
    day = first
    while day <= last:

        def at(tm, d=day):
            return datetime.combine(d, tm, tz).timestamp()

        edges = [at(site.shift.start)]
        for b in sorted(site.shift.breaks, key=lambda b: b.start):
            edges += [at(b.start), at(b.end)]
        edges.append(at(site.shift.end))
        present += [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
        day += timedelta(days=1)
    # Complement of the present intervals inside the window.
    off: list[tuple[float, float]] = []
    cursor = t0
    for a, b in sorted(present):
        if b <= cursor:
            continue
        if a > cursor:
            off.append((cursor, min(a, t1)))
        cursor = max(cursor, b)
        if cursor >= t1:
            break
    if cursor < t1:
        off.append((cursor, t1))
    return [(a, b) for a, b in off if b > a and a < t1]


# -- geometry ---------------------------------------------------------------------------


def zone_labels(site: Site, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Machine id whose zone holds each point (first in file order), else ``"none"``."""
    out = np.empty(x.shape, dtype=object)
    out[:] = "none"  # one shared string (np.full would make one object per element)
    free = np.ones(x.shape, dtype=bool)
    for m in site.machines:
        hit = free & polygon_mask(x, y, m.zone)
        out[hit] = m.id
        free &= ~hit
    return out


def _unit(dx: float, dy: float) -> tuple[float, float]:
    n = math.hypot(dx, dy)
    return (dx / n, dy / n) if n > 1e-9 else (0.0, -1.0)


def machine_places(
    site: Site, params: SimParams, via: dict[str, list[tuple[float, float]]] | None = None
) -> dict[str, Place]:
    """Where a worker stands at each machine and where it joins the aisle.

    The aisle point lies ``aisle_offset_m`` beyond the zone's edge, on the side away from the
    machine (for a machine without a position: below the zone, -y). ``via`` gives, per machine,
    waypoints from there out to the main aisle (e.g. the mouth of a U-shaped cell).
    """
    via = via or {}
    places = {}
    for m in site.machines:
        cx, cy = polygon_centroid(m.zone)
        if m.position is not None:
            ux, uy = _unit(cx - m.position[0], cy - m.position[1])
        else:
            ux, uy = 0.0, -1.0
        reach = max((px - cx) * ux + (py - cy) * uy for px, py in m.zone)
        step = reach + params.aisle_offset_m
        ax, ay = cx + ux * step, cy + uy * step
        while site.zone_at(ax, ay) != "none":  # odd layouts: step further out
            step += 0.5
            ax, ay = cx + ux * step, cy + uy * step
        # The control panel side: perpendicular to the facing direction, kept inside the zone.
        lx, ly = -uy, ux
        width = max((px - cx) * lx + (py - cy) * ly for px, py in m.zone)
        off = min(0.8, 0.35 * width)
        lateral = (lx * off, ly * off)
        for sign in (1, -1):
            if not point_in_polygon(cx + sign * lateral[0], cy + sign * lateral[1], m.zone):
                lateral = (0.0, 0.0)
        way = tuple((float(x), float(y)) for x, y in via.get(m.id, ()))
        places[m.id] = Place(m.id, (cx, cy), (ax, ay), math.atan2(-uy, -ux), lateral, way)
    return places


# -- the worker's path under construction -------------------------------------------------


class _Path:
    """Knots appended in time order while the schedule is built."""

    def __init__(self, t: float, xy: tuple[float, float], place: Place) -> None:
        self.t = [t]
        self.x = [xy[0]]
        self.y = [xy[1]]
        self.face = [math.nan]
        self.place = place
        self.away: list[tuple[float, float]] = []

    @property
    def now(self) -> float:
        return self.t[-1]

    @property
    def xy(self) -> tuple[float, float]:
        return self.x[-1], self.y[-1]

    def stay_until(self, t: float, facing: float = math.nan) -> None:
        if t > self.now + 1e-9:
            self.face[-1] = facing
            self.t.append(t)
            self.x.append(self.x[-1])
            self.y.append(self.y[-1])
            self.face.append(math.nan)

    def walk(self, points: list[tuple[float, float]], speed_mps: float) -> None:
        for px, py in points:
            d = math.hypot(px - self.x[-1], py - self.y[-1])
            if d < 1e-6:
                continue
            self.face[-1] = math.nan
            self.t.append(self.now + d / speed_mps)
            self.x.append(px)
            self.y.append(py)
            self.face.append(math.nan)

    def route(self, dest: Place, spot: tuple[float, float] | None = None) -> list[tuple[float, float]]:
        """Waypoints from the current place to ``dest`` along the aisle."""
        target = spot if spot is not None else dest.work_xy
        if dest.name == self.place.name:
            return [target]
        out, back = list(self.place.via), list(reversed(dest.via))
        if out and back and out[0] == back[-1]:  # same cell: no need to leave it
            out, back = [], []
        return [self.place.aisle_xy, *out, *back, dest.aisle_xy, target]

    def trajectory(self) -> Trajectory:
        return Trajectory(
            np.array(self.t), np.array(self.x), np.array(self.y), np.array(self.face), list(self.away)
        )


def _route_length(start: tuple[float, float], points: list[tuple[float, float]]) -> float:
    total = 0.0
    x, y = start
    for px, py in points:
        total += math.hypot(px - x, py - y)
        x, y = px, py
    return total


# -- random draws ---------------------------------------------------------------------------


def _lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(np.clip(median * math.exp(sigma * rng.standard_normal()), lo, hi))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def draw_changeover(rng: np.random.Generator, params: SimParams) -> list[tuple[str, float]]:
    """The tasks of one changeover in order, with durations in seconds.

    Jig change comes first when present (usually); tool change then program input (sometimes
    swapped); material setting last (sometimes early). Each task is present with its share;
    a changeover has at least one task.
    """
    specs = params.tasks
    present = {name: rng.random() < spec.share for name, spec in specs.items()}
    durations = {
        name: 60.0 * _lognormal(rng, spec.median_min, spec.sigma, spec.min_min, spec.max_min)
        for name, spec in specs.items()
    }
    u_jig, u_swap, u_mat = rng.random(3)
    if not any(present.values()):
        present["material_setting"] = True
    order = list(vocab.SWITCH_TASKS)
    if u_swap < params.swap_tool_program_share:
        order = ["program_input", "tool_change", "material_setting"]
    if u_mat < params.material_early_share:
        order = ["material_setting", *order[:2]]
    if u_jig < params.jig_first_share:
        order = ["jig_change", *order]
    else:
        order.insert(order.index("tool_change") + 1, "jig_change")
    return [(name, durations[name]) for name in order if present.get(name)]


def _draw_lag(
    rng: np.random.Generator, params: SimParams, t0: float, t1: float
) -> list[tuple[float, float, float]]:
    """Piecewise-constant locator lag: a mean-reverting walk in log-lag with short outliers."""
    out = []
    lo, hi = params.lag_bounds_s
    base = math.log(params.lag_median_s)
    level = base + 0.3 * rng.standard_normal()
    t = t0
    while t < t1:
        if rng.random() < params.lag_outlier_share:
            dur = 60.0 * _uniform(rng, params.lag_outlier_min)
            lag = _uniform(rng, params.lag_outlier_s)
        else:
            dur = 60.0 * _uniform(rng, params.lag_segment_min)
            level += params.lag_walk_sigma * rng.standard_normal() - 0.3 * (level - base)
            lag = math.exp(level)
        end = min(t + dur, t1)
        out.append((t, end, round(float(np.clip(lag, lo, hi)), 2)))
        t = end
    return out


def move_lags(
    rng: np.random.Generator, params: SimParams, zones: list[tuple[str, float, float]], t0: float, t1: float
) -> list[tuple[float, float, float]]:
    """A lag for every zone change, as ``(start, end, lag_s)`` from one change to the next.

    ``per_move``: each change draws one of the pilot's camera-checked lags (times 0.9 .. 1.1),
    independently of the others; ``outliers``: the same, with ``lag_long_share`` of the changes
    reported ``lag_long_s`` late; ``drift``: a log-lag Ornstein-Uhlenbeck process (median
    ``lag_drift_median_s``, sd ``lag_drift_sigma``, correlation ``lag_drift_tau_min``) sampled at
    each change. All but the long outliers are clipped to ``lag_bounds_s``.
    """
    lo, hi = params.lag_bounds_s
    starts = np.array([a for _, a, _ in zones], dtype="float64")
    n = len(starts)
    if params.lag_process == "drift":
        tau = 60.0 * params.lag_drift_tau_min
        level = np.empty(n)
        x = params.lag_drift_sigma * rng.standard_normal()
        prev = t0
        for i, t in enumerate(starts):
            a = math.exp(-max(t - prev, 0.0) / tau)
            x = a * x + params.lag_drift_sigma * math.sqrt(1 - a * a) * rng.standard_normal()
            level[i] = x
            prev = t
        lags = np.clip(params.lag_drift_median_s * np.exp(level), lo, hi)
    else:
        samples = np.array(PILOT_LAG_SAMPLES_S)
        lags = np.clip(samples[rng.integers(len(samples), size=n)] * rng.uniform(0.9, 1.1, n), lo, hi)
        if params.lag_process == "outliers":
            long = rng.random(n) < params.lag_long_share
            lags = np.where(long, rng.uniform(*params.lag_long_s, n), lags)
    ends = np.append(starts[1:], t1)
    rows = zip(starts, ends, lags, strict=True)
    return [(float(a), float(b), round(float(v), 2)) for a, b, v in rows if b > a]


# -- the discrete-event loop -------------------------------------------------------------------


@dataclass
class _MachineState:
    stop_at: float  # when the current run ends (or ended)
    notice_at: float  # when a free worker first notices the stop
    plan: list[tuple[str, float]]  # tasks of the coming service ([] = minor stop)
    fix_s: float  # length of a minor stop's fix
    runs: list[tuple[float, float]] = field(default_factory=list)


def build_schedule(
    site: Site,
    params: SimParams,
    t0: float,
    t1: float,
    rng: np.random.Generator,
    via: dict[str, list[tuple[float, float]]] | None = None,
) -> Schedule:
    """Simulate the true course of a shift in ``[t0, t1)``.

    Parameters
    ----------
    site : Site
        Machines, zones, workers and shift calendar.
    params : SimParams
        Behaviour parameters.
    t0, t1 : float
        Window in epoch seconds.
    rng : numpy.random.Generator
        The only source of randomness (determinism per seed).
    via : dict, optional
        Machine id -> waypoints from its aisle point out to the main aisle (U-shaped cells);
        idle spots, the door and the tool crib lie on the main aisle.

    Returns
    -------
    Schedule
        Machine runs, tasks, worker paths and the locator lag per worker.
    """
    if not t1 > t0:
        raise ValueError("the window must have a positive length")
    places = machine_places(site, params, via)
    off = off_intervals(site, t0, t1)
    # Where each machine's route meets the main aisle (its aisle point unless it has waypoints).
    aisle_pts = np.array([p.via[-1] if p.via else p.aisle_xy for p in places.values()])
    order = np.argsort(aisle_pts[:, 0])
    # Idle spots: on the aisle between neighbouring machines; the door: left end of the aisle.
    door_xy = (float(aisle_pts[order[0], 0] - 3.0), float(aisle_pts[order[0], 1]))
    door = Place("door", door_xy, door_xy, math.pi)
    homes = []
    for j in range(len(site.workers)):
        a = aisle_pts[order[j % len(order)]]
        b = aisle_pts[order[(j + 1) % len(order)]] if len(order) > 1 else a + np.array([2.0, 0.0])
        hx, hy = (a + b) / 2 + np.array([0.0, 0.3 * (j // max(len(order), 1))])
        if site.zone_at(float(hx), float(hy)) != "none":
            hx, hy = a
        homes.append(Place(f"home-{j}", (float(hx), float(hy)), (float(hx), float(hy)), math.pi / 2))
    crib_xy = (float(aisle_pts[order[-1], 0] + 3.0), float(aisle_pts[order[-1], 1]))
    crib = Place("crib", crib_xy, crib_xy, 0.0)

    def next_off(t: float) -> tuple[float, float]:
        for a, b in off:
            if b > t:
                return a, b
        return math.inf, math.inf

    def new_service(
        stop_t: float, changeover: bool = False, minor: bool | None = None
    ) -> tuple[float, list[tuple[str, float]], float]:
        notice = stop_t + _uniform(rng, params.reaction_s)
        if minor is None:  # the default run model: a share of the stops are minor
            minor = rng.random() < params.minor_stop_share and not changeover
        if minor:
            return notice, [], _uniform(rng, (60.0, 240.0))
        return notice, draw_changeover(rng, params), 0.0

    shop = PartShop.create(site, params, rng)  # None: runs drawn on their own
    pace = worker_pace(site, params)
    machines: dict[str, _MachineState] = {}
    for m in site.machines:
        minor = None
        if rng.random() < params.initial_running_share:
            if shop is not None:
                remaining, minor = shop.initial_run(m.id)
            else:
                remaining = 60.0 * params.run_median_min * rng.uniform(0.1, 1.2)
            stop = t0 + remaining
            runs = [(t0, stop)]
        else:
            stop = t0
            runs = []
        # A machine stopped at the start waits for its first set-up of the day.
        if shop is not None and stop == t0:
            minor = False
        notice, plan, fix = new_service(stop, changeover=stop == t0, minor=minor)
        if stop == t0:
            notice = t0
        machines[m.id] = _MachineState(stop, notice, plan, fix, runs)

    paths: dict[str, _Path] = {}
    for j, w in enumerate(site.workers):
        a, b = next_off(t0)
        if a <= t0:
            p = _Path(t0, door.work_xy, door)
            p.away.append((t0, b))
            p.stay_until(b)
        else:
            p = _Path(t0, homes[j].work_xy, homes[j])
        paths[w.id] = p

    tasks: list[TaskRun] = []
    worker_ids = [w.id for w in site.workers]
    guard = 0
    while worker_ids:
        guard += 1
        if guard > 200_000:  # a bug, not a long shift: fail loudly
            raise RuntimeError("schedule did not converge")
        j = min(range(len(worker_ids)), key=lambda k: (paths[worker_ids[k]].now, k))
        wid = worker_ids[j]
        p = paths[wid]
        t = p.now
        if t >= t1:
            break
        br_start, br_end = next_off(t)
        if br_start <= t:
            # Break or off-shift: walk out of the door, come back when it ends.
            p.walk(p.route(door), _uniform(rng, params.walk_speed_mps))
            p.place = door
            arrive = p.now
            if arrive < br_end:
                p.away.append((arrive, br_end))
            p.stay_until(max(br_end, arrive))
            continue
        ready = [(ms.notice_at, mid) for mid, ms in machines.items() if ms.notice_at <= t]
        if ready:
            ready.sort(key=lambda r: (r[0], _route_length(p.xy, p.route(places[r[1]]))))
            speed = _uniform(rng, params.walk_speed_mps)
            n_max = len(params.tasks)
            gaps = [_uniform(rng, params.task_gap_s) for _ in range(n_max)]
            fetch = rng.random(n_max)
            fetch_s = [_uniform(rng, params.fetch_s) for _ in range(n_max)]
            restart_s = _uniform(rng, params.restart_delay_s)
            # Drawn only when asked for, so the defaults keep their random stream.
            crib_u = rng.random(n_max) if params.crib_share > 0 else np.ones(n_max)
            crib_s = [_uniform(rng, params.crib_s) for _ in range(n_max)] if params.crib_share > 0 else []
            prep_s = _uniform(rng, params.first_task_delay_s) if params.first_task_delay_s[1] > 0 else 0.0
            chosen = None
            for _, mid in ready:
                ms = machines[mid]
                route = p.route(places[mid])
                walk_s = _route_length(p.xy, route) / speed
                # Planned time; fetch trips may take a little longer than the gap they replace.
                work_s = ms.fix_s
                if ms.plan:
                    work_s = sum(d * pace[wid] for _, d in ms.plan) + sum(gaps[: len(ms.plan) - 1])
                # Nobody starts what they cannot finish before the break (longest waiting first).
                if t + walk_s + work_s + restart_s <= br_start:
                    chosen = mid
                    break
            if chosen is None:
                p.stay_until(min(br_start, t + 60.0, t1 + 1.0), p.place.facing_rad)
                continue
            mid = chosen
            place = places[mid]
            p.walk(route, speed)
            p.place = place
            facing = place.facing_rad
            if not ms.plan:
                p.stay_until(p.now + ms.fix_s, facing)
            elif prep_s > 0:
                p.stay_until(p.now + prep_s, facing)
            for k, (name, dur) in enumerate(ms.plan):
                # Program input at the control panel, material on the other side.
                sign = {"program_input": 1.0, "material_setting": -1.0}.get(name, 0.0)
                spot = (
                    place.work_xy[0] + sign * place.lateral_xy[0],
                    place.work_xy[1] + sign * place.lateral_xy[1],
                )
                p.walk([spot], speed)
                start = p.now
                p.stay_until(start + dur * pace[wid], facing)
                tasks.append(TaskRun(mid, name, wid, start, p.now))
                if k < len(ms.plan) - 1:
                    if crib_u[k] < params.crib_share:
                        # To the tool crib along the aisle and back (longer than the planned gap).
                        p.walk(p.route(crib), speed)
                        p.place = crib
                        p.stay_until(p.now + crib_s[k], crib.facing_rad)
                        p.walk(p.route(place, spot), speed)
                        p.place = place
                    elif fetch[k] < params.fetch_share:
                        # To the tool cart / rack on the aisle and back (planned time: the gap).
                        cart = (
                            place.aisle_xy[0] + 2.0 * place.lateral_xy[0],
                            place.aisle_xy[1] + 2.0 * place.lateral_xy[1],
                        )
                        p.walk([cart], speed)
                        p.stay_until(p.now + fetch_s[k], place.facing_rad)
                        p.walk([spot], speed)
                    else:
                        p.stay_until(p.now + gaps[k], facing)
            restart = p.now + restart_s
            p.stay_until(restart, facing)
            minor = None
            if shop is not None:
                run_s, minor = shop.after_service(mid, [name for name, _ in ms.plan])
            else:
                run_s = 60.0 * _lognormal(
                    rng, params.run_median_min, params.run_sigma, params.run_min_min, params.run_max_min
                )
            ms.runs.append((restart, restart + run_s))
            ms.stop_at = restart + run_s
            ms.notice_at, ms.plan, ms.fix_s = new_service(ms.stop_at, minor=minor)
            linger_end = restart + _uniform(rng, params.linger_s)
            if linger_end > br_start:
                linger_end = max(restart, br_start)
            p.stay_until(linger_end, facing)
            continue
        # Nothing to do: maybe check a running machine, else go to the idle spot and wait.
        next_event = min([ms.notice_at for ms in machines.values()] + [br_start, t1 + 1.0])
        home = homes[site.worker_ids.index(wid)]
        step_s = max(1.0, min(next_event, t + 60.0) - t)
        # visit_share is per idle minute; the wait below may be shorter than a minute.
        if rng.random() < 1 - (1 - params.visit_share) ** (step_s / 60.0):
            mid = site.machine_ids[int(rng.integers(len(places)))]
            speed = _uniform(rng, params.walk_speed_mps)
            route = p.route(places[mid])
            visit_s = _uniform(rng, params.visit_s)
            back_s = _route_length(places[mid].work_xy, [places[mid].aisle_xy, home.work_xy]) / speed
            total = _route_length(p.xy, route) / speed + visit_s + back_s
            if t + total < next_event:
                p.walk(route, speed)
                p.place = places[mid]
                p.stay_until(p.now + visit_s, places[mid].facing_rad)
                continue
        if p.place.name != home.name:
            p.walk(p.route(home), _uniform(rng, params.walk_speed_mps))
            p.place = home
        p.stay_until(max(p.now + 1.0, min(next_event, t + 60.0)), home.facing_rad)

    for p in paths.values():
        p.stay_until(max(p.now, t1) + 60.0)  # keep a final segment past the window
    runs = {mid: _clip_intervals(ms.runs, t0, t1) for mid, ms in machines.items()}
    clipped = [
        TaskRun(tk.machine, tk.task, tk.worker, tk.start, min(tk.end, t1)) for tk in tasks if tk.start < t1
    ]
    lag = {w.id: _draw_lag(rng, params, t0, t1) for w in site.workers}
    sched = Schedule(t0, t1, runs, clipped, {k: v.trajectory() for k, v in paths.items()}, lag, off)
    if params.lag_process != "stretches":
        sched.lag = {w.id: move_lags(rng, params, sched.zones(site, w.id), t0, t1) for w in site.workers}
    return sched


def _clip_intervals(items: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(max(a, t0), min(b, t1)) for a, b in items if b > t0 and a < t1 and min(b, t1) > max(a, t0)]


# -- truth intervals ---------------------------------------------------------------------------


def true_zone_intervals(site: Site, path: Trajectory, t0: float, t1: float) -> list[tuple[str, float, float]]:
    """``(zone, start, end)`` runs of a worker's true zone covering ``[t0, t1)``.

    Sampled every :data:`TRUTH_STEP_S` seconds; a break (off the floor) is ``none``.
    """
    n = max(1, math.ceil((t1 - t0) / TRUTH_STEP_S))
    times = t0 + np.arange(n) * TRUTH_STEP_S
    x, y, _ = path.sample(times)
    labels = zone_labels(site, x, y)
    labels[path.away_mask(times)] = "none"
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    out = []
    for a, b in zip(starts, ends, strict=True):
        out.append((str(labels[a]), float(times[a]), float(times[b]) if b < n else t1))
    return out
