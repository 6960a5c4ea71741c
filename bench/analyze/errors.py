"""Where the analysis is wrong on tuning draws of the scenario family: task-label errors by kind
and the lag error by kind of move.

Run: ``nice -n 10 .venv/bin/python bench/analyze/errors.py [--draws 24] [--skip 0]
[--hours 2.5] [--sensing locator] [--lag per_move] [--jobs 2] [--out rows.jsonl]``

Draws come from ``TUNING_SEEDS`` only (this is a tool to decide what to work on, so it may be
run as often as wanted; the report draws stay untouched). Per draw: the seconds of each task
error kind (:func:`twin_server.error_breakdown.task_error_kinds`), the per-task F1 and the lag
error per true move (:func:`twin_server.error_breakdown.lag_error_by_move`). The summary gives
the totals and, for the lag, the seconds-weighted error of moves into a machine zone or into
``none``, with a true lag under or over 60 s, and each group's share of the whole lag error.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

import numpy as np

from twin_server.analysis import analyze
from twin_server.error_breakdown import TASK_ERROR_KINDS, lag_error_by_move, task_error_kinds
from twin_server.evaluate import score
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, simulate_scenario

LONG_LAG_S = 60.0


def one(job: tuple[int, float, str | None, str | None]) -> dict[str, Any]:
    """Simulate, analyse and break down the errors of one tuning draw."""
    seed, hours, sensing, lag = job
    draw = draw_scenario(seed, hours=hours, sensing=sensing, lag_process=lag)
    sim = simulate_scenario(draw)
    res = analyze(sim.readings, draw.site)
    s = score(sim.truth, res)
    moves = [
        (m.zone != "none", m.true_lag_s >= LONG_LAG_S, m.mean_abs_error_s, m.seconds)
        for m in lag_error_by_move(sim.truth, res)
    ]
    return {
        "seed": seed,
        "sensing": draw.sensing,
        "lag_process": draw.lag_process,
        "zone": s.zone_accuracy,
        "lag_mae_s": s.lag_mae_s,
        "task_macro_f1": s.task_macro_f1,
        "task_f1": s.task_f1,
        "task_errors": task_error_kinds(sim.truth, res),
        "moves": moves,
    }


def summary(rows: list[dict[str, Any]]) -> str:
    """Totals over the draws, as text."""
    lines = [f"{len(rows)} tuning draws"]
    tot = {k: sum(r["task_errors"][k] for r in rows) for k in TASK_ERROR_KINDS}
    all_wrong = max(sum(tot.values()), 1)
    lines.append("task-label errors (machine-seconds, share of the wrong ones):")
    lines += [f"  {k:<12} {v:>8}  {v / all_wrong:5.1%}" for k, v in tot.items()]
    f1 = [r["task_macro_f1"] for r in rows if r["task_macro_f1"] is not None]
    if f1:
        lines.append(f"task macro-F1 {np.mean(f1):.3f}; per task:")
        for t in rows[0]["task_f1"]:
            vals = [r["task_f1"][t] for r in rows if r["task_f1"].get(t) is not None]
            lines.append(f"  {t:<17} {np.mean(vals):.3f} ({len(vals)} draws)" if vals else f"  {t:<17} -")
    moves = [m for r in rows for m in r["moves"]]
    if moves:
        arr = np.array(moves, dtype="float64")
        err_total = float(np.sum(arr[:, 2] * arr[:, 3]))
        secs = float(np.sum(arr[:, 3]))
        lines.append(f"lag MAE {err_total / secs:.1f} s over {int(secs)} s; by move:")
        for into_machine in (True, False):
            for long in (False, True):
                sel = (arr[:, 0] == into_machine) & (arr[:, 1] == long)
                if not sel.any():
                    continue
                e = float(np.sum(arr[sel, 2] * arr[sel, 3]))
                s = float(np.sum(arr[sel, 3]))
                where = "machine" if into_machine else "none"
                size = f">= {LONG_LAG_S:.0f} s" if long else f"<  {LONG_LAG_S:.0f} s"
                lines.append(
                    f"  into {where:<7} true lag {size}: {int(sel.sum()):>5} moves, "
                    f"{s / secs:5.1%} of the time, error {e / s:5.1f} s, "
                    f"{e / max(err_total, 1e-9):5.1%} of the lag error"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=24)
    ap.add_argument("--skip", type=int, default=0, help="tuning seeds to skip first")
    ap.add_argument("--hours", type=float, default=2.5)
    ap.add_argument("--sensing", choices=["locator", "both", "rssi"], default=None)
    ap.add_argument("--lag", choices=["per_move", "outliers", "drift", "stretches"], default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="per-draw rows (JSON Lines)")
    args = ap.parse_args(argv)
    seeds = list(TUNING_SEEDS)[args.skip : args.skip + args.draws]
    if not seeds or args.draws <= 0:
        ap.error(f"no tuning draws: --skip {args.skip} --draws {args.draws} (there are {len(TUNING_SEEDS)})")
    if args.hours <= 0:
        ap.error(f"--hours must be > 0, got {args.hours}")
    jobs = [(s, args.hours, args.sensing, args.lag) for s in seeds]
    rows = []
    out = args.out.open("w") if args.out else None
    pool = mp.Pool(min(args.jobs, 2)) if args.jobs > 1 else None
    try:
        for k, row in enumerate(pool.imap(one, jobs) if pool else map(one, jobs), 1):
            rows.append(row)
            zone = "-" if row["zone"] is None else f"{row['zone']:.3f}"
            print(f"[{k}/{len(jobs)}] seed {row['seed']}: zone {zone}", file=sys.stderr, flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
    finally:
        if pool:
            pool.close()
        if out:
            out.close()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
