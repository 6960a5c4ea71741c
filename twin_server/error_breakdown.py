"""Where an analysis result is wrong, against a ground truth: the kinds of task-label error and
the lag error of every true move.

The contract's scores (:mod:`twin_server.evaluate`) say *how much* is wrong; these say *where*,
so that work goes to the error that is largest. Both score on the same instants as
:func:`twin_server.evaluate.score` (``window.start + k + 0.5``). Used by
``bench/analyze/errors.py`` on tuning draws of the scenario family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin_server.evaluate import label_grid, score_times
from twin_server.result import Result

#: Kinds of wrong task seconds, in the order they are reported.
TASK_ERROR_KINDS = (
    "missed_task",
    "wrong_task",
    "start_late",
    "end_early",
    "start_early",
    "end_late",
    "spurious",
)
#: A true task the result labels right for less than this share of its seconds is "missed".
MISSED_BELOW = 0.2
#: A result task further than this from any true task on its machine is "spurious", s.
NEAR_TASK_S = 300.0


def task_error_kinds(truth: Result, result: Result) -> dict[str, int]:
    """Count the machine-seconds whose task label is wrong, by kind.

    Parameters
    ----------
    truth, result : Result
        Ground truth and the document to check (same window).

    Returns
    -------
    dict
        Seconds per kind (:data:`TASK_ERROR_KINDS`):

        * ``missed_task``: inside a true task the result gets right for less than
          :data:`MISSED_BELOW` of its seconds (e.g. a forgotten press not recovered);
        * ``wrong_task``: inside a found true task, another task, or ``none`` between its
          first and last right seconds;
        * ``start_late`` / ``end_early``: inside a found true task, ``none`` before its first
          / after its last right second;
        * ``start_early`` / ``end_late``: a task where the truth has none, nearer the next
          true task's start / the previous one's end (on the same machine);
        * ``spurious``: a task more than :data:`NEAR_TASK_S` from any true task.
    """
    times = score_times(truth.window_start, truth.window_end)
    out = dict.fromkeys(TASK_ERROR_KINDS, 0)
    machines = {t.machine for t in truth.tasks} | {t.machine for t in result.tasks}
    for m in sorted(machines):
        t_iv = sorted((t.start, t.end, t.task) for t in truth.tasks if t.machine == m)
        got = label_grid([(t.start, t.end, t.task) for t in result.tasks if t.machine == m], times, "none")
        for start, end, name in t_iv:
            i0, i1 = np.searchsorted(times, [start, end])
            if i1 <= i0:
                continue
            seg = got[i0:i1]
            right = np.flatnonzero(seg == name)
            wrong = seg != name
            if len(right) < MISSED_BELOW * len(seg):
                out["missed_task"] += int(wrong.sum())
                continue
            idx = np.arange(len(seg))
            is_none = seg == "none"
            out["wrong_task"] += int(np.sum(wrong & ~is_none))
            out["start_late"] += int(np.sum(wrong & is_none & (idx < right[0])))
            out["end_early"] += int(np.sum(wrong & is_none & (idx > right[-1])))
            out["wrong_task"] += int(np.sum(wrong & is_none & (idx > right[0]) & (idx < right[-1])))
        truth_lab = label_grid(t_iv, times, "none")
        extra = np.flatnonzero((truth_lab == "none") & (got != "none"))
        ends = np.array([e for _, e, _ in t_iv])
        starts = np.array([s for s, _, _ in t_iv])
        for i in extra:
            t = times[i]
            since = t - ends[ends <= t].max() if np.any(ends <= t) else np.inf
            until = starts[starts > t].min() - t if np.any(starts > t) else np.inf
            if min(since, until) > NEAR_TASK_S:
                out["spurious"] += 1
            elif until < since:
                out["start_early"] += 1
            else:
                out["end_late"] += 1
    return out


@dataclass(frozen=True)
class MoveLagError:
    """The lag error over one true move (from one zone change to the next)."""

    worker: str
    start: float
    end: float
    zone: str  # true zone in the middle of the move's span
    true_lag_s: float
    mean_abs_error_s: float
    seconds: int  # scored seconds with both a true and an estimated lag


def lag_error_by_move(truth: Result, result: Result) -> list[MoveLagError]:
    """The estimated lag's mean absolute error over each true move's span.

    Parameters
    ----------
    truth, result : Result
        Ground truth (its ``beacon_lag`` piecewise per move) and the document to check.

    Returns
    -------
    list of MoveLagError
        One per true lag interval that holds scored seconds with an estimate; the
        seconds-weighted mean of ``mean_abs_error_s`` is the contract's lag MAE.
    """
    times = score_times(truth.window_start, truth.window_end)
    out = []
    for w in sorted({b.worker for b in truth.beacon_lag}):
        mine = [(b.start, b.end, b.lag_s) for b in result.beacon_lag if b.worker == w]
        est = label_grid(mine, times, np.nan)
        true_zones = [(z.start, z.end, z.zone) for z in truth.worker_zones if z.worker == w]
        zones = label_grid(true_zones, times, "none")
        for b in sorted((b for b in truth.beacon_lag if b.worker == w), key=lambda b: b.start):
            i0, i1 = np.searchsorted(times, [b.start, b.end])
            seg = est[i0:i1]
            ok = np.isfinite(seg)
            if not ok.any():
                continue
            out.append(
                MoveLagError(
                    w,
                    b.start,
                    b.end,
                    str(zones[(i0 + i1 - 1) // 2]),
                    b.lag_s,
                    float(np.mean(np.abs(seg[ok] - b.lag_s))),
                    int(ok.sum()),
                )
            )
    return out
