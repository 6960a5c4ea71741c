"""Changeover task classification per machine.

Starts come from machine-side events (a jig change from the pressure excursion, the other
three from debounced switch presses). A task ends at the earliest of: the next task's start,
the machine starting to run, the worker leaving the machine, or the end of its pressure
excursion (jig change). Tasks on one machine never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin_server.analysis.align import Grid
from twin_server.analysis.intervals import runs
from twin_server.analysis.machine_state import RUNNING, STOPPED
from twin_server.analysis.priors import TaskPriors
from twin_server.analysis.recover import recover_changeover

Row = tuple[str, str | None, float, float]  # task, worker, start, end


@dataclass
class TaskStart:
    """A task start found from the machine's sensors."""

    task: str
    t: float
    end: float | None = None  # known end (jig change excursion)
    inferred: bool = False  # not seen directly (forgotten press, switch-free mode)


def first_run_after(state: np.ndarray, k0: int, min_cells: int) -> int:
    """First cell >= ``k0`` where the machine runs for ``min_cells`` cells in a row (or ``n``)."""
    n = len(state)
    run = state[k0:] == RUNNING
    if not run.any():
        return n
    # run starts with enough length
    idx = np.flatnonzero(run)
    for i in idx:
        if run[i : i + min_cells].all() or i + min_cells > len(run):
            return k0 + int(i)
    return n


def first_leave_after(zone: np.ndarray, k0: int, machine_code: int, leave_cells: int) -> int:
    """First cell >= ``k0`` where the worker has been away from the machine ``leave_cells`` cells."""
    n = len(zone)
    away = zone[k0:] != machine_code
    if not away.any():
        return n
    # cumulative run length of "away"
    csum = np.cumsum(away)
    reset = np.where(~away, csum, 0)
    runlen = csum - np.maximum.accumulate(reset)
    hit = np.flatnonzero(runlen >= leave_cells)
    if len(hit) == 0:
        return n
    return k0 + int(hit[0]) - leave_cells + 1


def attribute_worker(zones: dict[str, np.ndarray], machine_code: int, k0: int, k1: int) -> str | None:
    """The worker who spent most of ``[k0, k1)`` at the machine (None if nobody was there)."""
    best, best_n = None, 0
    for w, z in zones.items():
        n_at = int(np.count_nonzero(z[k0 : max(k1, k0 + 1)] == machine_code))
        if n_at > best_n:
            best, best_n = w, n_at
    return best


def classify_machine_tasks(
    starts: list[TaskStart],
    state: np.ndarray,
    zones: dict[str, np.ndarray],
    machine_code: int,
    grid: Grid,
    *,
    leave_s: float = 30.0,
    run_confirm_s: float = 10.0,
    max_task_s: float = 3600.0,
    task_gap_s: float = 0.0,
    restart_gap_s: float = 0.0,
) -> list[tuple[str, str | None, float, float]]:
    """Turn task starts into non-overlapping task intervals.

    Parameters
    ----------
    starts : list of TaskStart
        Task starts on this machine (any order).
    state : numpy.ndarray
        Per-cell machine state codes.
    zones : dict
        Worker id -> per-cell zone code (true time).
    machine_code : int
        This machine's zone code.
    grid : Grid
        Common grid.
    leave_s : float
        The worker counts as gone after this long away from the machine.
    run_confirm_s : float
        The machine counts as started after running this long.
    max_task_s : float
        Upper bound on one task.
    task_gap_s, restart_gap_s : float
        Typical pause before the next task / before the machine starts: a task whose end
        is only known from what follows ends this much earlier (never before half its span).

    Returns
    -------
    list of (task, worker, start, end)
    """
    starts = sorted(starts, key=lambda s: s.t)
    out: list[tuple[str, str | None, float, float]] = []
    run_cells = max(1, int(run_confirm_s / grid.step_s))
    leave_cells = max(1, int(leave_s / grid.step_s))
    for i, st in enumerate(starts):
        k0 = int(np.clip(grid.index(st.t), 0, grid.n - 1))
        end = min(grid.end, st.t + max_task_s)
        hard_end = end
        if i + 1 < len(starts):
            nxt = starts[i + 1].t
            hard_end = min(hard_end, nxt)
            end = min(end, nxt - task_gap_s)
        k_run = first_run_after(state, k0 + 1, run_cells)
        if k_run < grid.n:
            t_run = float(grid.time(k_run))
            hard_end = min(hard_end, t_run)
            end = min(end, t_run - restart_gap_s)
        if st.end is not None:
            end = hard_end = min(hard_end, st.end)
        end = min(hard_end, max(end, st.t + 0.5 * (hard_end - st.t)))
        k1 = int(np.clip(grid.index(end), k0 + 1, grid.n))
        worker = attribute_worker(zones, machine_code, k0, k1)
        if worker is not None and st.end is None:
            k_leave = first_leave_after(zones[worker], k0, machine_code, leave_cells)
            if k_leave > k0:
                end = min(end, float(grid.time(k_leave)))
        if end > st.t:
            out.append((st.task, worker, float(st.t), float(end)))
    return out


def recover_machine(
    rows: list[Row],
    state: np.ndarray,
    zones: dict[str, np.ndarray],
    machine_code: int,
    grid: Grid,
    pri: TaskPriors,
    *,
    task_gap_s: float,
    restart_gap_s: float,
    arrival_delay_s: float,
    switch_free: bool = False,
    min_visit_s: float = 60.0,
) -> list[Row]:
    """Add forgotten (or, switch-free, all) switch tasks to one machine's tasks.

    Each stop of the machine (a run of ``stopped``) is one changeover; the worker's
    arrival there and the machine's restart bound it.
    """
    out: list[Row] = []
    used = np.zeros(len(rows), dtype=bool)
    starts = np.array([r[2] for r in rows]) if rows else np.zeros(0)
    for k0, k1, code in runs(state):
        if code != STOPPED:
            continue
        t0, t1 = float(grid.time(k0)), float(grid.time(k1))
        sel = (starts >= t0) & (starts < t1) & ~used
        mine = [rows[i] for i in np.flatnonzero(sel)]
        used |= sel
        # Who was there, and since when.
        visitor = None
        if mine and mine[0][1] is not None:
            visitor = mine[0][1]
        else:
            counts = {w: int(np.count_nonzero(z[k0:k1] == machine_code)) for w, z in zones.items()}
            if counts and max(counts.values()) * grid.step_s >= min_visit_s:
                visitor = max(counts, key=lambda w: counts[w])
        if visitor is None:
            out += mine
            continue
        at = np.flatnonzero(zones[visitor][k0:k1] == machine_code)
        arrival = float(grid.time(k0 + at[0])) + arrival_delay_s if len(at) else None
        restarted = k1 < grid.n and state[k1] == RUNNING
        end_s = t1 - restart_gap_s if restarted else None
        if (
            switch_free
            and not mine
            and (end_s is None or arrival is None or not pri.is_changeover(end_s - arrival))
        ):
            out += mine  # a minor stop: the worker fixed something, no changeover
            continue
        if not mine and not switch_free:
            out += mine
            continue
        got = recover_changeover(mine, arrival, pri, task_gap_s, switch_free=switch_free, end_s=end_s)
        out += [(t, w if w is not None else visitor, s, e) for t, w, s, e in got]
    out += [rows[i] for i in np.flatnonzero(~used)]
    out.sort(key=lambda r: r[2])
    return out
