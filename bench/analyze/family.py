"""Accuracy of the analysis on the scenario family, beside naive baselines and an oracle.

Run: ``nice -n 10 .venv/bin/python bench/analyze/family.py [--draws 200] [--jobs 2]
[--out results.jsonl] [--from results.jsonl]``

Draws come from ``REPORT_SEEDS`` only (never tuned on; see docs/simulator.md), plus the pilot
site and the 8 machines / 4 workers synthetic site under the family's conditions
(``fixed_scenario``, 4 h) and under the simulator's defaults (8 h). Each draw is simulated,
analysed with :func:`twin_server.analysis.analyze` and scored with
:func:`twin_server.evaluate.score`; on the same recording the naive methods are scored too:
strongest receiver -> nearest zone (``none`` below -70 dBm), the raw locator, the locator
shifted 30 s and the locator shifted by each worker's median lag as read off the file
(report minus first press per visit); for reference, two rows that need the truth: the
locator shifted by each worker's true median lag (the best constant shift) and the "oracle
lag" (every report moved back by its own true delay). The guardrail compares the analysis
with the best of the four naive methods on each draw. Per figure the tables give the mean and the
worst decile (the 10th percentile of the draws; the 90th for the lag error), per sensing and
per lag process. ``--causal N`` adds the live view's accuracy on the first ``N`` draws of each
group that have at most 8 machines (the analysis re-run on the readings received so far,
every 60 s over the first 2 h, scoring what the live server shows at that moment: each
worker's last zone segment).

Per-draw rows go to ``--out`` (JSON Lines); ``--from`` re-makes the tables from such a file.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from twin_server.analysis import AnalysisParams, analyze
from twin_server.baselines import (
    locator_shift_result,
    median_true_lag,
    naive_median_lag,
    oracle_lag_result,
    strongest_receiver_result,
    task_worker_accuracy,
    zone_accuracy_after_moves,
)
from twin_server.evaluate import BASELINE_SHIFT_S, label_grid, score
from twin_server.simulate import SimParams, synthetic_site
from twin_server.simulate.family import (
    REPORT_SEEDS,
    TUNING_SEEDS,
    Scenario,
    draw_scenario,
    fixed_scenario,
    simulate_scenario,
)
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]
METHODS = (
    "analysis",
    "oracle lag",
    "locator - true median lag",
    "strongest receiver",
    "raw locator",
    "locator - 30 s",
    "locator - median lag",
)
#: The naive methods of the guardrail (computable from the file alone).
NAIVE = ("strongest receiver", "raw locator", "locator - 30 s", "locator - median lag")


def scenario(group: str, seed: int) -> Scenario:
    """The draw ``seed`` of a group: ``family``, ``pilot``/``8x4`` (family conditions, 4 h) or
    ``pilot default``/``8x4 default`` (the simulator's defaults, 8 h)."""
    if group == "family":
        return draw_scenario(seed)
    site = (
        load_site(ROOT / "examples" / "pilot_site.yaml")
        if group.startswith("pilot")
        else synthetic_site(8, 4)
    )
    if group.endswith("default"):
        sc = fixed_scenario(site, seed, hours=8.0)
        return Scenario(
            seed,
            site,
            SimParams(),
            8.0,
            sc.start,
            "both",
            facts={
                "sensing": "both",
                "lag_process": "stretches",
                "machines": len(site.machines),
                "workers": len(site.workers),
                "layout": "rows",
                "hours": 8.0,
                "dropouts": 0,
            },
        )
    return fixed_scenario(site, seed, hours=4.0)


def zone_figures(truth, result) -> dict:
    s = score(truth, result, zones_only=True)
    return {
        "zone": s.zone_accuracy,
        "after_move": zone_accuracy_after_moves(truth, result),
        "lag_mae": s.lag_mae_s,
    }


def live_accuracy(sim, site, step_s: float = 60.0, span_s: float = 7200.0) -> float | None:
    """Share of (worker, instant) pairs where the live view's current zone is the true zone.

    Every ``step_s`` over the first ``span_s`` of the window, the analysis runs on the
    readings stamped up to that instant (what a live server has received) and its last zone
    segment per worker is compared with the true zone at that instant.
    """
    t0 = sim.truth.window_start
    t_end = min(sim.truth.window_end, t0 + span_s)
    frame = sim.readings
    tcol = frame["t"].to_numpy(dtype="float64")
    hits = []
    for T in np.arange(t0 + step_s, t_end, step_s):
        res = analyze(frame.loc[tcol <= T], site)
        last = {}
        for z in res.worker_zones:
            if z.worker not in last or z.start >= last[z.worker].start:
                last[z.worker] = z
        for w in site.worker_ids:
            truth = label_grid(
                [(z.start, z.end, z.zone) for z in sim.truth.worker_zones if z.worker == w],
                np.array([T - 0.5]),
                "<missing>",
            )[0]
            hits.append(w in last and last[w].zone == truth)
    return float(np.mean(hits)) if hits else None


def evaluate(job: tuple[str, int, bool, dict, str | None]) -> dict:
    """Every figure of one draw (runs in a worker process). ``drop``: ``"events"``, the analysis
    and the naive methods see the RSSI rows alone (a floor whose machines send nothing);
    ``"rssi"``, the analysis sees every row but the RSSI (the same floor without receivers; the
    naive methods keep them, so the rows compare with the full analysis)."""
    group, seed, causal, overrides, drop = job
    draw = scenario(group, seed)
    sim = simulate_scenario(draw)
    site, truth, readings = draw.site, sim.truth, sim.readings
    if drop == "events":
        readings = readings[readings["kind"] == "rssi"].reset_index(drop=True)
    seen = readings[readings["kind"] != "rssi"].reset_index(drop=True) if drop == "rssi" else readings
    t = time.perf_counter()
    res = analyze(seen, site, params=AnalysisParams(**overrides))
    run_s = time.perf_counter() - t
    s = score(truth, res)
    row: dict = {
        "group": group,
        "seed": seed,
        "sensing": draw.sensing,
        "lag_process": draw.lag_process,
        "facts": {k: v for k, v in draw.facts.items() if k != "nearest_receiver_m"},
        "near_2m": bool(draw.facts.get("zones_without_receiver_within_2m", 1) == 0),
        "readings": len(readings),
        "analyze_s": round(run_s, 2),
        "methods": {},
    }
    row["methods"]["analysis"] = {
        **zone_figures(truth, res),
        "task": s.task_accuracy,
        "f1": s.task_macro_f1,
        "state": s.machine_state_accuracy,
        "worker": task_worker_accuracy(truth, res),
    }
    if draw.params.locator:
        row["methods"]["oracle lag"] = zone_figures(truth, oracle_lag_result(truth, readings, site))
        row["methods"]["raw locator"] = zone_figures(truth, locator_shift_result(truth, readings, site, 0.0))
        row["methods"]["locator - 30 s"] = zone_figures(
            truth, locator_shift_result(truth, readings, site, BASELINE_SHIFT_S)
        )
        row["methods"]["locator - median lag"] = zone_figures(
            truth, locator_shift_result(truth, readings, site, naive_median_lag(readings, site))
        )
        row["methods"]["locator - true median lag"] = zone_figures(
            truth, locator_shift_result(truth, readings, site, median_true_lag(truth))
        )
    if draw.params.rssi and site.receivers:
        row["methods"]["strongest receiver"] = zone_figures(
            truth, strongest_receiver_result(truth, readings, site)
        )
    if causal and len(site.machines) <= 8:  # 120 re-runs each: small sites only
        row["live_zone"] = live_accuracy(sim, site)
    return row


# -- tables -------------------------------------------------------------------------------------


def _stat(vals: list[float], lower_is_better: bool = False) -> tuple[float, float] | None:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    worst = float(np.percentile(vals, 90 if lower_is_better else 10))
    return float(np.mean(vals)), worst


def _cell(vals: list[float], key: str) -> str:
    st = _stat(vals, key == "lag_mae")
    if st is None:
        return "-"
    mean, worst = st
    if key == "lag_mae":
        return f"{mean:.1f} s ({worst:.1f})"
    return f"{mean:.3f} ({worst:.3f})"


def table(rows: list[dict], title: str, keys=("zone", "after_move", "lag_mae")) -> list[str]:
    """One markdown table: one line per method, mean (worst decile) per figure."""
    names = {
        "zone": "zone acc.",
        "after_move": "zone acc. 120 s after moves",
        "lag_mae": "lag MAE",
        "task": "task acc.",
        "f1": "task macro-F1",
        "worker": "task worker right",
        "state": "machine state",
    }
    out = [
        f"**{title}** ({len(rows)} draws)",
        "",
        "| method | " + " | ".join(names[k] for k in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for m in METHODS:
        got = [r["methods"][m] for r in rows if m in r["methods"]]
        if not got:
            continue
        cells = [_cell([g.get(k) for g in got], k) for k in keys]
        if all(c == "-" for c in cells):
            continue
        label = f"**{m}**" if m == "analysis" else m
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    best = [max((r["methods"][m]["zone"] for m in NAIVE if m in r["methods"]), default=None) for r in rows]
    if any(b is not None for b in best):
        out.append("| best naive (per draw) | " + _cell(best, "zone") + " |" + " - |" * (len(keys) - 1))
    return [*out, ""]


def guardrail(rows: list[dict]) -> list[str]:
    below = []
    for r in rows:
        a = r["methods"]["analysis"]["zone"]
        naive = {m: r["methods"][m]["zone"] for m in NAIVE if m in r["methods"]}
        if naive and a < max(naive.values()):
            m = max(naive, key=lambda k: naive[k])
            below.append(f"{r['group']} {r['seed']}: analysis {a:.3f} < {m} {naive[m]:.3f}")
    return [
        f"Draws whose zone accuracy is below their best naive baseline: {len(below)} of {len(rows)}",
        *[f"- {b}" for b in below],
        "",
    ]


def _m(rows: list[dict], method: str, key: str) -> list[float]:
    return [
        r["methods"][method][key]
        for r in rows
        if method in r["methods"] and r["methods"][method].get(key) is not None
    ]


def targets(rows: list[dict]) -> list[str]:
    """The issue's figures against their targets: mean (worst decile) on the family's report draws."""
    fam = [r for r in rows if r["group"] == "family"]
    loc = [r for r in fam if r["sensing"] == "locator"]
    both = [r for r in fam if r["sensing"] == "both"]
    rssi = [r for r in fam if r["sensing"] == "rssi"]
    near = [r for r in rssi if r["near_2m"]]

    def line(name: str, rs: list[dict], key: str, target: str, method: str = "analysis") -> str:
        vals = _m(rs, method, key)
        return f"| {name} | {len(vals)} | {_cell(vals, key)} | {target} |"

    out = [
        "| figure | draws | mean (worst decile) | target |",
        "|---|---|---|---|",
        line("zone accuracy, all family draws", fam, "zone", ">= 0.97 (>= 0.93)"),
        line("zone accuracy 120 s after a move, locator only", loc, "after_move", ">= 0.93"),
        line("zone accuracy 120 s after a move, locator + RSSI", both, "after_move", ">= 0.95"),
    ]
    for proc in ("per_move", "stretches", "drift", "outliers"):
        out.append(
            line(
                f"lag MAE, locator only, `{proc}`",
                [r for r in loc if r["lag_process"] == proc],
                "lag_mae",
                "<= 8 s" if proc == "per_move" else "-",
            )
        )
        out.append(
            line(
                f"lag MAE, locator + RSSI, `{proc}`",
                [r for r in both if r["lag_process"] == proc],
                "lag_mae",
                "<= 5 s" if proc == "per_move" else "-",
            )
        )
    out += [
        line("task accuracy", fam, "task", ">= 0.97 (mean)"),
        line("task macro-F1", fam, "f1", ">= 0.93 (mean)"),
        line("task worker right (task seconds with the right task)", fam, "worker", "-"),
        line("RSSI only, zone accuracy (no survey)", rssi, "zone", ">= 0.93"),
        line("RSSI only, every zone with a receiver within 2 m", near, "zone", ">= 0.97"),
    ]
    live = [r for r in rows if r.get("live_zone") is not None]
    if live:
        out.append(
            f"| live (causal) zone accuracy, {len(live)} small draws of all groups | {len(live)} | "
            f"{_cell([r['live_zone'] for r in live], 'zone')} (offline on the same draws: "
            f"{_cell([r['methods']['analysis']['zone'] for r in live], 'zone')}) | - |"
        )
    return [*out, ""]


def markdown(rows: list[dict]) -> str:
    lines: list[str] = targets(rows)
    fam = [r for r in rows if r["group"] == "family"]
    groups = [("family", fam)] + [
        (g, [r for r in rows if r["group"] == g]) for g in ("pilot", "8x4", "pilot default", "8x4 default")
    ]
    for g, rs in groups:
        if not rs:
            continue
        lines += table(rs, f"{g}: all draws")
        lines += table(rs, f"{g}: tasks", keys=("task", "f1", "worker", "state"))
    for sensing in ("locator", "both", "rssi"):
        rs = [r for r in fam if r["sensing"] == sensing]
        if rs:
            lines += table(rs, f"family, sensing {sensing}")
    for proc in ("stretches", "per_move", "drift", "outliers"):
        for sensing in ("locator", "both"):
            rs = [r for r in rows if r["lag_process"] == proc and r["sensing"] == sensing]
            if rs:
                lines += table(rs, f"lag process {proc}, sensing {sensing} (all groups)")
    rs = [r for r in fam if r["sensing"] == "rssi" and r["near_2m"]]
    if rs:
        lines += table(rs, "family, RSSI only, every zone with a receiver within 2 m")
    live = [r for r in rows if r.get("live_zone") is not None]
    if live:
        lines += [
            "| group | draws | live (causal) zone acc. | offline zone acc., same draws |",
            "|---|---|---|---|",
        ]
        for g, _ in groups:
            rs = [r for r in live if r["group"] == g]
            if rs:
                lines.append(
                    f"| {g} | {len(rs)} | {_cell([r['live_zone'] for r in rs], 'zone')} | "
                    f"{_cell([r['methods']['analysis']['zone'] for r in rs], 'zone')} |"
                )
        lines.append("")
    lines += guardrail(rows)
    secs = [r["analyze_s"] for r in rows]
    lines.append(f"Analysis time per draw: median {np.median(secs):.1f} s, max {max(secs):.1f} s.")
    return "\n".join(lines)


def _init() -> None:
    os.nice(10) if hasattr(os, "nice") else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200, help="family report draws")
    ap.add_argument("--fixed", type=int, default=10, help="draws per fixed site (pilot, 8x4), each condition")
    ap.add_argument("--causal", type=int, default=0, help="live accuracy on the first N draws of each group")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (at most 2 on the shared machine)")
    ap.add_argument(
        "--tuning",
        action="store_true",
        help="use the tuning draws (TUNING_SEEDS, fixed sites from seed 101) instead of the report draws",
    )
    ap.add_argument(
        "--params",
        type=json.loads,
        default={},
        help='AnalysisParams overrides as JSON, e.g. \'{"lag_model": "visits"}\'',
    )
    ap.add_argument(
        "--sensing",
        choices=("locator", "rssi", "both"),
        action="append",
        help="only family draws with this sensing (repeatable)",
    )
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="start at the N-th report (or tuning) seed, e.g. 200 for draws not reported before",
    )
    ap.add_argument(
        "--fixed-from",
        type=int,
        default=None,
        help="first seed of the fixed sites (default 1; 101 with --tuning)",
    )
    ap.add_argument(
        "--groups",
        action="append",
        choices=("family", "pilot", "8x4", "pilot default", "8x4 default"),
        help="only these groups (repeatable; default all)",
    )
    ap.add_argument(
        "--no-events",
        action="store_true",
        help="the analysis sees the RSSI rows alone: no switch, pressure or light (use with --sensing rssi)",
    )
    ap.add_argument(
        "--no-rssi",
        action="store_true",
        help="the analysis sees every row but the RSSI (use with --sensing both: is RSSI worth it?)",
    )
    ap.add_argument("--out", type=Path, help="write per-draw rows (JSON Lines)")
    ap.add_argument(
        "--from",
        dest="src",
        type=Path,
        action="append",
        help="make the tables from JSON Lines files (repeatable: shards are joined)",
    )
    args = ap.parse_args(argv)
    if args.src:
        rows = [json.loads(ln) for src in args.src for ln in src.read_text().splitlines() if ln.strip()]
        print(markdown(rows))
        return 0
    seeds = TUNING_SEEDS if args.tuning else REPORT_SEEDS
    first = args.fixed_from if args.fixed_from is not None else (101 if args.tuning else 1)
    kw = args.params
    groups = set(args.groups or ("family", "pilot", "8x4", "pilot default", "8x4 default"))

    def wanted(group: str, seed: int) -> bool:
        return group in groups and (not args.sensing or scenario(group, seed).sensing in args.sensing)

    picked = seeds[args.skip : args.skip + args.draws]
    if args.no_events and args.no_rssi:
        ap.error("--no-events and --no-rssi leave the analysis nothing in common with the naive rows")
    ne = "events" if args.no_events else "rssi" if args.no_rssi else None
    jobs = [("family", s, i < args.causal, kw, ne) for i, s in enumerate(picked) if wanted("family", s)]
    for g in ("pilot", "8x4"):
        jobs += [
            (g, s, i < args.causal, kw, ne)
            for i, s in enumerate(range(first, first + args.fixed))
            if wanted(g, s)
        ]
    for g in ("pilot default", "8x4 default"):
        jobs += [
            (g, s, False, kw, ne)
            for s in range(first, first + max(1, args.fixed // 2))
            if args.fixed and wanted(g, s)
        ]
    print(f"{len(jobs)} draws", file=sys.stderr, flush=True)
    rows = []
    t0 = time.perf_counter()
    out = args.out.open("w") if args.out else None
    with mp.Pool(max(1, min(args.jobs, 2)), initializer=_init) as pool:
        for i, row in enumerate(pool.imap_unordered(evaluate, jobs)):
            rows.append(row)
            a = row["methods"]["analysis"]
            print(
                f"[{i + 1}/{len(jobs)} {time.perf_counter() - t0:.0f} s] {row['group']} {row['seed']} "
                f"{row['sensing']} {row['lag_process']}: zone {a['zone']:.3f} after-move {a['after_move']} "
                f"lag {a['lag_mae']} task {a['task']:.3f} ({row['analyze_s']} s)",
                file=sys.stderr,
                flush=True,
            )
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
    if out:
        out.close()
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
