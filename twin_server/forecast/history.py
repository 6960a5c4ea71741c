"""What a forecast learns from: runs, batches, stops and tasks read off analysed shifts.

Pure functions over :class:`~twin_server.result.Result` (the contract's ``machine_states``,
``worker_zones`` and ``tasks``). A *run* is one stretch of the stack light on; a *batch* is
the runs between two changeovers (a stop without any task, a minor stop, interrupts a batch,
which then goes on); a *stop* is the time between two runs, with the tasks done in it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from twin_server.result import MachineState, Result, Task, WorkerZone

__all__ = [
    "Batch",
    "DayRecords",
    "MachineNow",
    "StopRecord",
    "TaskRecord",
    "day_records",
    "machine_now",
    "merge_segments",
    "truncate_result",
]

#: A stop shorter than this without any task is sensor noise, not a stop (seconds).
MIN_STOP_S = 20.0
#: Slack when comparing a segment edge with the window's edge (seconds).
EDGE_S = 2.0


@dataclass(frozen=True)
class Batch:
    """The runs of one machine between two changeovers.

    ``context``: ``new`` (the changeover before it had program input: a new part), ``same``
    (a changeover without program input), ``unknown`` (it started before the recording, or
    after a stretch of unknown machine state). ``length_s`` is a lower bound when
    ``censored`` (still running at the end of the recording).
    """

    machine: str
    start: float
    length_s: float
    context: str
    prev_length_s: float | None  # the machine's batch before it (complete), for 'same'
    runs: int
    minor_stops: int
    censored: bool
    hour: float  # local hour of the start
    weekday: int  # 0 = Monday


@dataclass(frozen=True)
class TaskRecord:
    """One task: who, which, how long (``censored``: cut by the end of the recording)."""

    machine: str
    task: str
    worker: str | None
    start: float
    duration_s: float
    censored: bool


@dataclass(frozen=True)
class StopRecord:
    """A stop between two runs (``restart`` None: not restarted within the recording)."""

    machine: str
    stop: float
    restart: float | None
    tasks: tuple[TaskRecord, ...]
    worker_free: bool  # some worker was not busy elsewhere when the machine stopped
    on_shift: bool  # no break or off-shift time between the stop and its first task/restart

    @property
    def changeover(self) -> bool:
        return bool(self.tasks)


@dataclass
class DayRecords:
    """Everything learnt from one analysed shift (or from the part of it before a moment)."""

    site: str
    day_start: float
    batches: list[Batch] = field(default_factory=list)
    stops: list[StopRecord] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)


def truncate_result(result: Result, at: float) -> Result:
    """The result as it was known at ``at``: segments and tasks cut there, later ones dropped.

    A task that went on past ``at`` ends at ``at`` (so it reads as in progress), exactly as
    the live analysis shows a task that has not ended yet.
    """

    def cut(items: list, make) -> list:
        return [make(it, min(it.end, at)) for it in items if it.start < at]

    return Result(
        site=result.site,
        window_start=result.window_start,
        window_end=min(result.window_end, at),
        machine_states=cut(result.machine_states, lambda s, e: MachineState(s.machine, s.state, s.start, e)),
        worker_zones=cut(
            result.worker_zones, lambda z, e: WorkerZone(z.worker, z.zone, z.start, e, z.confidence)
        ),
        tasks=cut(result.tasks, lambda t, e: Task(t.machine, t.task, t.worker, t.start, e)),
        beacon_lag=[],
        rejected_rows=result.rejected_rows,
        extra={},
    )


def merge_segments(states: list[MachineState], machine: str) -> list[tuple[str, float, float]]:
    """One machine's ``(state, start, end)`` in time order, neighbours of one state joined."""
    out: list[list] = []
    for s in sorted((s for s in states if s.machine == machine), key=lambda s: s.start):
        if s.end <= s.start:
            continue
        if out and out[-1][0] == s.state and s.start - out[-1][2] <= EDGE_S:
            out[-1][2] = max(out[-1][2], s.end)
        else:
            out.append([s.state, s.start, s.end])
    return [(a, b, c) for a, b, c in out]


def _drop_blips(segs: list[tuple[str, float, float]], tasks: list[Task]) -> list[tuple[str, float, float]]:
    """Stops shorter than :data:`MIN_STOP_S` between two runs with no task in them: the run goes
    on. (A stop going on now is a stop, however short so far.)"""
    out: list[list] = []
    for i, (state, a, b) in enumerate(segs):
        blip = (
            state == "stopped"
            and b - a < MIN_STOP_S
            and out
            and out[-1][0] == "running"
            and i + 1 < len(segs)
            and segs[i + 1][0] == "running"
            and not any(a - EDGE_S <= t.start < b for t in tasks)
        )
        if blip:
            out[-1][2] = b
            continue
        if out and out[-1][0] == state:
            out[-1][2] = b
        else:
            out.append([state, a, b])
    return [(s, a, b) for s, a, b in out]


def _local(t: float, tz: ZoneInfo) -> tuple[float, int]:
    d = datetime.fromtimestamp(t, tz)
    return d.hour + d.minute / 60.0, d.weekday()


class _TaskIndex:
    """A day's tasks per machine, sorted by start: the tasks of a stop by bisection."""

    def __init__(self, tasks: list[Task]) -> None:
        self.by_machine: dict[str, list[Task]] = {}
        for t in sorted(tasks, key=lambda t: t.start):
            self.by_machine.setdefault(t.machine, []).append(t)
        self.starts = {m: [t.start for t in ts] for m, ts in self.by_machine.items()}

    def within(self, machine: str, a: float, b: float) -> list[Task]:
        """Tasks of ``machine`` starting in ``[a - EDGE_S, b)``."""
        starts = self.starts.get(machine)
        if not starts:
            return []
        lo, hi = bisect.bisect_left(starts, a - EDGE_S), bisect.bisect_left(starts, b)
        return self.by_machine[machine][lo:hi]


def _busy_intervals(result: Result, index: _TaskIndex) -> dict[str, list[tuple[float, float]]]:
    """When each worker was busy with a changeover: first task start to the restart."""
    busy: dict[str, list[tuple[float, float]]] = {}
    for m in index.by_machine:
        segs = merge_segments(result.machine_states, m)
        for state, a, b in segs:
            if state != "stopped":
                continue
            mine = index.within(m, a, b)
            for t in mine:
                if t.worker is not None:
                    busy.setdefault(t.worker, []).append((t.start, b))
    return busy


def _busy_at(intervals: np.ndarray | None, t: float) -> bool:
    return intervals is not None and bool(((intervals[:, 0] <= t) & (t < intervals[:, 1])).any())


def _in_off(a: float, b: float, off: list[tuple[float, float]]) -> bool:
    return any(lo < b and hi > a for lo, hi in off)


def day_records(
    result: Result,
    machines: list[str],
    workers: list[str],
    timezone: str,
    off: list[tuple[float, float]] = (),
) -> DayRecords:
    """Batches, stops and tasks of one analysed shift.

    Parameters
    ----------
    result : Result
        One day's analysis (or the part of it before a moment, :func:`truncate_result`).
    machines, workers : list of str
        The site's machine and worker ids.
    timezone : str
        The site's time zone (hour of day and weekday of each batch).
    off : list of (float, float)
        Breaks and off-shift time of that day (epoch s): stops waiting across them do not
        teach how fast a free worker answers.

    Returns
    -------
    DayRecords
    """
    tz = ZoneInfo(timezone)
    rec = DayRecords(site=result.site, day_start=result.window_start)
    index = _TaskIndex(result.tasks)
    busy = _busy_intervals(result, index)
    busy_arr = {w: np.array(v, dtype="float64") for w, v in busy.items()}
    w1 = result.window_end
    for t in result.tasks:
        rec.tasks.append(
            TaskRecord(t.machine, t.task, t.worker, t.start, t.end - t.start, censored=t.end >= w1 - EDGE_S)
        )
    for m in machines:
        segs = _drop_blips(merge_segments(result.machine_states, m), index.within(m, -math.inf, math.inf))
        batch: dict | None = None
        prev_batch: float | None = None

        def close(b: dict, censored: bool, m: str = m) -> float | None:
            h, wd = _local(b["start"], tz)
            rec.batches.append(
                Batch(
                    m,
                    b["start"],
                    b["length"],
                    b["context"],
                    b["prev"],
                    b["runs"],
                    b["minor"],
                    censored,
                    h,
                    wd,
                )
            )
            return None if censored or b["context"] == "unknown_start" else b["length"]

        for i, (state, a, b) in enumerate(segs):
            if state != "running":
                continue
            prev = segs[i - 1] if i > 0 else None
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            stop_tasks = index.within(m, prev[1], prev[2]) if prev and prev[0] == "stopped" else []
            if prev is None or prev[0] != "stopped":
                # Started before the recording or after unknown state: when its batch began is unknown.
                if batch is not None:
                    close(batch, censored=True)
                batch = {
                    "start": a,
                    "length": 0.0,
                    "context": "unknown_start",
                    "prev": None,
                    "runs": 0,
                    "minor": 0,
                }
                prev_batch = None
            elif not stop_tasks and batch is not None:
                batch["minor"] += 1  # a minor stop: the batch goes on
            else:
                if batch is not None:
                    prev_batch = close(batch, censored=False)
                context = "unknown"  # a stop without tasks and no batch known before it
                if stop_tasks:
                    context = "new" if any(t.task == "program_input" for t in stop_tasks) else "same"
                batch = {
                    "start": a,
                    "length": 0.0,
                    "context": context,
                    "prev": prev_batch,
                    "runs": 0,
                    "minor": 0,
                }
            batch["length"] += b - a
            batch["runs"] += 1
            if nxt is None or nxt[0] != "stopped":
                close(batch, censored=True)  # running at the end of the recording, or state lost
                batch, prev_batch = None, None
        if batch is not None:
            # Ends in a stop: the batch is over if a changeover began in it, else it may go on.
            last = segs[-1]
            over = last[0] == "stopped" and bool(index.within(m, last[1], last[2] + 1.0))
            close(batch, censored=not over)
        # Stops.
        for i, (state, a, b) in enumerate(segs):
            if state != "stopped" or i == 0 or segs[i - 1][0] != "running":
                continue
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            restart = b if nxt is not None and nxt[0] == "running" else None
            if restart is None and b < w1 - EDGE_S:
                continue  # ends in unknown state: nothing to learn about the restart
            mine = index.within(m, a, b)
            trecs = tuple(
                TaskRecord(
                    t.machine, t.task, t.worker, t.start, t.end - t.start, censored=t.end >= w1 - EDGE_S
                )
                for t in mine
            )
            n_busy = sum(1 for w in workers if _busy_at(busy_arr.get(w), a))
            first = mine[0].start if mine else (restart if restart is not None else b)
            rec.stops.append(
                StopRecord(
                    m,
                    a,
                    restart,
                    trecs,
                    worker_free=n_busy < len(workers),
                    on_shift=not _in_off(a, first, off),
                )
            )
    return rec


@dataclass(frozen=True)
class MachineNow:
    """What a machine is doing at the moment of the forecast.

    ``phase``: ``running``; ``changeover`` (a task in progress: ``task``, ``task_start``);
    ``between`` (tasks done in this stop, none in progress: ``last_task_end``); ``waiting``
    (stopped, no task yet); ``unknown`` (no data or state unknown).
    """

    machine: str
    phase: str
    since: float  # start of the current run / stop
    batch_context: str | None = None  # running: as in :class:`Batch`
    batch_elapsed_s: float = 0.0  # running: running time of the batch so far
    prev_batch_s: float | None = None
    started_before_window: bool = False
    task: str | None = None
    task_start: float | None = None
    worker: str | None = None
    tasks_done: tuple[str, ...] = ()
    last_task_end: float | None = None
    worker_present: str | None = None  # waiting: a worker is at the machine already


def machine_now(result: Result, records: DayRecords, machine: str, at: float) -> MachineNow:
    """The machine's phase at ``at`` from a result cut at ``at`` and its records."""
    index = _TaskIndex([t for t in result.tasks if t.machine == machine])
    mine = index.within(machine, -math.inf, math.inf)
    segs = _drop_blips(merge_segments(result.machine_states, machine), mine)
    segs = [s for s in segs if s[1] < at]
    if not segs or segs[-1][2] < at - 120.0 or segs[-1][0] not in ("running", "stopped"):
        return MachineNow(machine, "unknown", segs[-1][1] if segs else at)
    state, a, _b = segs[-1]
    if state == "running":
        mine = [bt for bt in records.batches if bt.machine == machine and bt.start <= a + EDGE_S]
        if not mine:
            return MachineNow(machine, "running", a, "unknown_start", at - a, started_before_window=True)
        cur = mine[-1]  # the batch of the current run: its length so far is the batch's elapsed time
        return MachineNow(
            machine,
            "running",
            a,
            cur.context,
            cur.length_s,
            cur.prev_length_s,
            started_before_window=cur.context == "unknown_start",
        )
    tasks = index.within(machine, a, at + 1.0)
    done = tuple(t.task for t in tasks if t.end < at - EDGE_S)
    if tasks and tasks[-1].end >= at - EDGE_S:
        t = tasks[-1]
        return MachineNow(
            machine, "changeover", a, task=t.task, task_start=t.start, worker=t.worker, tasks_done=done
        )
    if tasks:
        return MachineNow(
            machine, "between", a, worker=tasks[-1].worker, tasks_done=done, last_task_end=tasks[-1].end
        )
    present = None
    for z in result.worker_zones:
        if z.zone == machine and z.start <= at < z.end + EDGE_S and z.end >= at - EDGE_S:
            present = z.worker
    return MachineNow(machine, "waiting", a, worker_present=present)


def finite(x: float | None) -> bool:
    """Whether ``x`` is a finite number."""
    return x is not None and math.isfinite(x)
