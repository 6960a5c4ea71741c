"""Put the schedule and the sensors together: one simulated shift in memory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin_server.result import BeaconLag, MachineState, Result, Task, WorkerZone
from twin_server.site import Site

from .params import SimParams
from .sensors import render_readings
from .shift import Schedule, build_schedule

__all__ = ["PILOT_DAY", "Simulation", "default_start", "simulate", "truth_result"]

#: The first day of the pilot; simulations start at this day's shift start unless told otherwise.
PILOT_DAY = date(2023, 2, 6)
_DEFAULTS = SimParams()
_ROUND = 3  # decimals of the truth's times (milliseconds)


@dataclass
class Simulation:
    """A simulated shift: readings (device time), the ground truth and the schedule behind it."""

    readings: pd.DataFrame
    truth: Result
    schedule: Schedule
    facts: dict


def default_start(site: Site, day: date = PILOT_DAY) -> float:
    """Epoch seconds of the site's shift start on ``day`` (site-local time)."""
    return datetime.combine(day, site.shift.start, ZoneInfo(site.timezone)).timestamp()


def truth_result(site: Site, sched: Schedule, extra: dict | None = None) -> Result:
    """The ground truth in the contract's result schema (true time, covering the window)."""
    t0, t1 = sched.t0, sched.t1

    def r(v: float) -> float:
        return round(float(v), _ROUND)

    states = []
    for mid in site.machine_ids:
        cursor = t0
        for a, b in sched.runs[mid]:
            if a > cursor:
                states.append(MachineState(mid, "stopped", r(cursor), r(a)))
            states.append(MachineState(mid, "running", r(a), r(b)))
            cursor = b
        if cursor < t1:
            states.append(MachineState(mid, "stopped", r(cursor), r(t1)))
    zones = [
        WorkerZone(w.id, zone, r(a), r(b)) for w in site.workers for zone, a, b in sched.zones(site, w.id)
    ]
    tasks = [
        Task(tk.machine, tk.task, tk.worker, r(tk.start), r(tk.end))
        for tk in sorted(sched.tasks, key=lambda k: (k.machine, k.start))
    ]
    lag = [BeaconLag(w, v, r(a), r(b)) for w in site.worker_ids for a, b, v in sched.lag[w]]
    return Result(
        site=site.site,
        window_start=r(t0),
        window_end=r(t1),
        machine_states=states,
        worker_zones=zones,
        tasks=tasks,
        beacon_lag=lag,
        rejected_rows=0,
        extra=extra or {},
    )


def simulate(
    site: Site,
    hours: float = 8.0,
    seed: int = 0,
    start: float | None = None,
    params: SimParams | None = None,
    via: dict[str, list[tuple[float, float]]] | None = None,
) -> Simulation:
    """Simulate ``hours`` of the site from ``start`` (default: shift start on the pilot's first day).

    Deterministic per ``seed``: the same inputs give the same readings and truth. ``via``
    gives per machine the waypoints from its zone out to the main aisle (U-shaped cells).
    """
    if not hours > 0:
        raise ValueError("hours must be > 0")
    params = params or SimParams()
    t0 = float(default_start(site) if start is None else start)
    t1 = t0 + hours * 3600.0
    sched = build_schedule(site, params, t0, t1, np.random.default_rng([seed, 0]), via)
    readings, facts = render_readings(sched, site, params, seed)
    if "locator_lag" in facts:
        # Per-move lags: the truth holds the delay each reported change actually had.
        sched.lag = facts.pop("locator_lag")
    changed = {
        f.name: list(v) if isinstance(v, tuple) else v
        for f in dataclasses.fields(SimParams)
        if f.name != "tasks" and (v := getattr(params, f.name)) != getattr(_DEFAULTS, f.name)
    }
    if params.tasks != _DEFAULTS.tasks:
        changed["tasks"] = {k: dataclasses.asdict(v) for k, v in params.tasks.items()}
    # Seed, hours and the changed parameters are enough to make the same day again.
    extra = {"simulation": {"seed": seed, "hours": hours, "params": changed, **facts}}
    return Simulation(readings, truth_result(site, sched, extra), sched, facts)
