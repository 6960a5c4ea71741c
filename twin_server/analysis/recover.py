"""Tasks nobody pressed a button for: forgotten presses and the switch-free mode.

Both fill a stretch of a changeover with the most probable sequence of switch tasks under
the duration, order and share priors of :mod:`twin_server.analysis.priors`:

* a **hole** is time inside a changeover with the worker at the machine but no task (after
  a jig change, or between arrival and the first press) - much longer than a normal pause,
  so a press was probably forgotten;
* a **long task** may hide a second one whose press was forgotten (tool change, then
  program input without its press): it is split where the priors say.

Pauses between tasks are exponential with mean ``gap_s``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from twin_server.analysis.priors import END, SWITCH_TASKS, TaskPriors

Row = tuple[str, str | None, float, float]  # task, worker, start, end


def lp_gap(d_s: float, gap_s: float) -> float:
    """Log density of a pause of ``d_s`` seconds between tasks."""
    return -math.log(gap_s) - max(d_s, 0.0) / gap_s


def lp_sum(pri: TaskPriors, seq: tuple[str, ...] | list[str], total_s: float) -> tuple[float, np.ndarray]:
    """Log density that tasks ``seq`` back to back last ``total_s`` in all, and their split.

    The split is the most probable one (durations proportional to the medians); the
    density integrates over the split by Laplace's approximation, so options with
    different numbers of tasks compare fairly.
    """
    med = np.array([math.exp(pri.log_mu[t]) for t in seq])
    durs = total_s * med / med.sum()
    lp = float(sum(pri.lp_duration(t, d) for t, d in zip(seq, durs, strict=True)))
    # k-1 free directions, each about sqrt(2 pi) * sd * d wide (log-normal in d).
    for t, d in list(zip(seq, durs, strict=True))[:-1]:
        lp += math.log(math.sqrt(2 * math.pi) * pri.log_sd[t] * d)
    return lp, durs


def best_fill(
    h0: float,
    h1: float,
    prev: str,
    nxt: str,
    pri: TaskPriors,
    allowed: list[str],
    gap_s: float,
    *,
    present_lp: dict[str, float],
    absent_lp: dict[str, float],
) -> tuple[float, list[tuple[str, float, float]]]:
    """Most probable sequence of tasks (possibly none) filling ``[h0, h1)``.

    Parameters
    ----------
    h0, h1 : float
        The stretch (epoch s), bounded by the previous task's end and the next's start.
    prev, nxt : str
        Task before and after (``start``/``end`` at the changeover's ends).
    pri : TaskPriors
        Duration/order priors.
    allowed : list of str
        Tasks that may be placed (not already in the changeover).
    gap_s : float
        Mean pause between tasks.
    present_lp, absent_lp : dict
        Log prior of placing / not placing each allowed task (e.g. forgotten-press odds).

    Returns
    -------
    score : float
        Log score of the best fill.
    tasks : list of (task, start, end)
    """
    total = h1 - h0
    best: tuple[float, list[tuple[str, float, float]]] = (
        lp_gap(total, gap_s) + pri.lp_follow(prev, nxt) + sum(absent_lp[t] for t in allowed),
        [],
    )
    for k in range(1, len(allowed) + 1):
        avail = total - (k + 1) * gap_s
        if avail <= 30.0 * k:
            break
        for seq in itertools.permutations(allowed, k):
            sc, durs = lp_sum(pri, seq, avail)
            chain = [prev, *seq, nxt]
            sc += sum(pri.lp_follow(a, b) for a, b in itertools.pairwise(chain))
            sc += sum(present_lp[t] for t in seq) + sum(absent_lp[t] for t in allowed if t not in seq)
            if sc > best[0]:
                out, t = [], h0 + gap_s
                for name, d in zip(seq, durs, strict=True):
                    out.append((name, t, t + d))
                    t += d + gap_s
                best = (sc, out)
    return best


def forgotten_odds(pri: TaskPriors, tasks: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Log prior of a task being there but unpressed vs not there at all."""
    present = {t: math.log(max(pri.forgotten_share * pri.share[t], 1e-6)) for t in tasks}
    absent = {t: math.log(max(1 - pri.share[t], 1e-3)) for t in tasks}
    return present, absent


def recover_changeover(
    rows: list[Row],
    arrival_s: float | None,
    pri: TaskPriors,
    gap_s: float,
    *,
    switch_free: bool = False,
    end_s: float | None = None,
    min_gain: float = 1.0,
) -> list[Row]:
    """Add the tasks a changeover most probably had but nobody pressed for.

    Parameters
    ----------
    rows : list of Row
        The changeover's tasks found from events, time-sorted, non-overlapping.
    arrival_s : float, optional
        When the worker arrived (true time), if known.
    pri : TaskPriors
        Priors.
    gap_s : float
        Mean pause between tasks.
    switch_free : bool
        No switch data at all: every switch task is a candidate with its plain share as
        prior (not the forgotten-press odds).
    end_s : float, optional
        End of the changeover (the machine restarting, minus the usual pause) - needed
        when the last task's end is known (jig change) or there is no task yet.
    min_gain : float
        Log-odds a change must win by.

    Returns
    -------
    list of Row
        Time-sorted rows, still non-overlapping.
    """
    names = {r[0] for r in rows}
    missing = [t for t in SWITCH_TASKS if t not in names]
    if not missing:
        return rows
    if switch_free:
        present = {t: math.log(max(pri.share[t], 1e-3)) for t in missing}
        absent = {t: math.log(max(1 - pri.share[t], 1e-3)) for t in missing}
    else:
        present, absent = forgotten_odds(pri, missing)
    worker = next((r[1] for r in rows if r[1] is not None), None)
    out = list(rows)
    # Holes: before the first task (from arrival), between tasks, after the last (to end_s).
    bounds: list[tuple[float, float, str, str]] = []
    if arrival_s is not None and rows and rows[0][2] - arrival_s > 2 * gap_s:
        bounds.append((arrival_s, rows[0][2], "start", rows[0][0]))
    for a, b in itertools.pairwise(rows):
        if b[2] - a[3] > 2 * gap_s:
            bounds.append((a[3], b[2], a[0], b[0]))
    if end_s is not None:
        last_end = rows[-1][3] if rows else (arrival_s if arrival_s is not None else end_s)
        last = rows[-1][0] if rows else "start"
        if end_s - last_end > 2 * gap_s:
            bounds.append((last_end, end_s + gap_s, last, END))
    for h0, h1, prev, nxt in bounds:
        cands = [t for t in missing if t not in {r[0] for r in out}]
        if not cands:
            break
        base, _ = best_fill(h0, h1, prev, nxt, pri, [], gap_s, present_lp={}, absent_lp={})
        score, fill = best_fill(h0, h1, prev, nxt, pri, cands, gap_s, present_lp=present, absent_lp=absent)
        base += sum(absent[t] for t in cands)
        if fill and score > base + min_gain:
            out += [(t, worker, s, e) for t, s, e in fill]
    out.sort(key=lambda r: r[2])
    # Long tasks hiding a forgotten one: split.
    if not switch_free:
        out = split_long_tasks(out, pri, gap_s, present, absent, min_gain)
    return out


def split_long_tasks(
    rows: list[Row],
    pri: TaskPriors,
    gap_s: float,
    present: dict[str, float],
    absent: dict[str, float],
    min_gain: float,
) -> list[Row]:
    """Split a task into itself plus a forgotten one where the priors favour it."""
    out = list(rows)
    i = 0
    while i < len(out):
        task, worker, s, e = out[i]
        names = {r[0] for r in out}
        cands = [t for t in present if t not in names]
        if task == "jig_change" or not cands:
            i += 1
            continue
        nxt = out[i + 1][0] if i + 1 < len(out) else END
        dur = e - s
        base = float(pri.lp_duration(task, dur)) + pri.lp_follow(task, nxt)
        best: tuple[float, tuple[str, float] | None] = (base + min_gain, None)
        avail = dur - gap_s
        if not avail > 60.0:  # room for two tasks of 30 s at least (60 s exactly: no split points)
            i += 1
            continue
        x = np.linspace(30.0, avail - 30.0, 60)
        dx = float(x[1] - x[0])
        for b in cands:
            # Integrate over where the split is (fair against one task), then take the
            # most probable split point.
            lp = pri.lp_duration(task, x) + pri.lp_duration(b, avail - x)
            marginal = float(np.logaddexp.reduce(lp) + math.log(dx))
            sc = marginal + pri.lp_follow(task, b) + pri.lp_follow(b, nxt) + present[b] - absent[b]
            if sc > best[0]:
                best = (sc, (b, float(x[int(np.argmax(lp))])))
        if best[1] is not None:
            b, split_s = best[1]
            out[i] = (task, worker, s, s + split_s)
            out.insert(i + 1, (b, worker, s + split_s + gap_s, e))
        i += 1
    return out
