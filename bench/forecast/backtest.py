"""Backtest of the forecast: a forecast every minute of simulated days, against what happened.

Run: ``.venv/bin/python bench/forecast/backtest.py --set report [--cache DIR]``
(``--set tuning`` for the shops the forecast may be tuned on; ``--set demo`` for the demo's
pilot through its journal; ``--set all`` = report + demo).

Every minute of the shift of each evaluation day, the forecast is made from the day's analysis
cut at that minute (only what was known then) and the analyses of the earlier days; each
machine's predicted event (a running machine: the end of its run; a stopped one: its restart)
is compared with the simulator's truth. Beside it, two naive forecasts made from the same
analyses at the same minute: the machine's median run length (median stop length for a
restart) counted from the run's start (at zero once passed: a countdown), and the elapsed
time alone (it will go on as long again). Printed per horizon (the forecast's own median lead
time: 5 = up to 10 min, 15 = 10-22.5, 30 = 22.5-45, 60 = 45-90): the MAE of the medians, the
80 % interval's coverage, how much the predicted end moves from minute to minute; per day the
spread (worst decile); the shift end's running minutes and changeover count; speed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from data import (
    REPORT_SHOPS,
    TUNING_SHOPS,
    Shop,
    demo_journal,
    demo_shop,
    family_days,
    family_shop,
)

from twin_server.forecast.engine import _changeovers_so_far, _so_far
from twin_server.forecast.guard import apply_guard, apply_guard_total, fit_calibration, steady
from twin_server.forecast.history import merge_segments, truncate_result
from twin_server.forecast.model import ForecastParams
from twin_server.forecast.service import (
    CAL_DAYS,
    CAL_STEP_S,
    STEADY_BAND,
    calibration_rows,
    forecast_result,
    records_of,
)
from twin_server.result import Result
from twin_server.store.replay_data import shift_window

BINS = ((5, 0.0, 10.0), (15, 10.0, 22.5), (30, 22.5, 45.0), (60, 45.0, 90.0))
SHIFT_END_LEADS_MIN = (240, 120, 60)


# -- naive forecasts --------------------------------------------------------------------------
def completed(result: Result, machine: str) -> tuple[list[float], list[float]]:
    """Lengths of the machine's complete runs and of its stops between two runs (seconds)."""
    segs = merge_segments(result.machine_states, machine)
    runs, stops = [], []
    for i in range(1, len(segs) - 1):
        state, a, b = segs[i]
        if segs[i - 1][0] in ("running", "stopped") and segs[i + 1][0] in ("running", "stopped"):
            if state == "running" and segs[i - 1][0] == "stopped" and segs[i + 1][0] == "stopped":
                runs.append(b - a)
            elif state == "stopped" and segs[i - 1][0] == "running" and segs[i + 1][0] == "running":
                stops.append(b - a)
    return runs, stops


class Naive:
    """The machine's median run (stop) length over the earlier days and today so far."""

    def __init__(self, history: list[Result], machines: list[str]) -> None:
        self.runs = {m: [] for m in machines}
        self.stops = {m: [] for m in machines}
        for r in history:
            for m in machines:
                a, b = completed(r, m)
                self.runs[m] += a
                self.stops[m] += b

    def predict(self, today: Result, machine: str, event: str, since: float, t: float):
        a, b = completed(today, machine)
        pool = (self.runs[machine] + a) if event == "run_end" else (self.stops[machine] + b)
        if not pool:  # never seen: the site's
            pool = [v for vs in (self.runs if event == "run_end" else self.stops).values() for v in vs]
        if not pool:
            return None, None, None
        med = float(np.median(pool))
        lo, hi = (float(v) for v in np.quantile(pool, (0.1, 0.9)))
        return max(since + med, t), max(since + lo, t), max(since + hi, t)


# -- truth ------------------------------------------------------------------------------------
def truth_event(truth: Result, machine: str, t: float, event: str) -> tuple[str, float | None]:
    """``("ok", time)``, ``("censored", None)`` (after the recording) or ``("mismatch", None)``."""
    segs = merge_segments(truth.machine_states, machine)
    for i, (state, a, b) in enumerate(segs):
        if a <= t < b:
            if event == "run_end":
                if state != "running":
                    return "mismatch", None
                return ("censored", None) if b >= truth.window_end - 1 else ("ok", b)
            if state != "stopped":
                return "mismatch", None
            if i + 1 < len(segs) and segs[i + 1][0] == "running":
                return "ok", segs[i + 1][1]
            return "censored", None
    return "mismatch", None


def shift_totals(site, truth: Result, day: str) -> tuple[float, float]:
    lo, hi = shift_window(site, day)
    known = truncate_result(truth, hi)
    rec = records_of(site, known, day)
    run = sum(_so_far(truth, m, lo, hi) for m in site.machine_ids) / 60.0
    co = sum(_changeovers_so_far(rec, known, m, lo, hi) for m in site.machine_ids)
    return run, float(co)


# -- one day -------------------------------------------------------------------------------------
def backtest_day(
    shop: Shop,
    day: str,
    analysis: Result,
    truth: Result,
    history_records,
    history_results,
    params: ForecastParams,
    forecast_fn=None,
) -> dict:
    """Rows of every minute's forecast of one day, and the shift-end checks."""
    site = shop.site
    lo, hi = shift_window(site, day)
    naive = Naive(history_results, site.machine_ids)
    rows, ends, times = [], [], []
    run_total, co_total = shift_totals(site, truth, day)
    for t in np.arange(lo + 60.0, hi, 60.0):
        t = float(t)
        if t <= analysis.window_start or t > analysis.window_end:
            continue
        began = time.perf_counter()
        fc = forecast_fn(t) if forecast_fn else forecast_result(site, analysis, history_records, t, params)
        times.append(time.perf_counter() - began)
        known = truncate_result(analysis, t)
        for m in fc.machines:
            if m.event is None:
                continue
            status, target = truth_event(truth, m.machine, t, m.event)
            nm, nlo, nhi = naive.predict(known, m.machine, m.event, m.since, t)
            rows.append(
                {
                    "t": t,
                    "machine": m.machine,
                    "event": m.event,
                    "phase": m.phase,
                    "since": m.since,
                    "p10": m.p10,
                    "p50": m.p50,
                    "p90": m.p90,
                    "cold": bool(m.cold),
                    "status": status,
                    "context": m.context,
                    "truth": target,
                    "naive_med": nm,
                    "naive_lo": nlo,
                    "naive_hi": nhi,
                    "naive_el": t + (t - m.since),
                }
            )
        lead = round((hi - t) / 60.0)
        if lead in SHIFT_END_LEADS_MIN:
            known_run = fc.running_min_so_far
            share = known_run / max(1e-9, len(site.machine_ids) * (min(t, hi) - lo) / 60.0)
            ends.append(
                {
                    "lead_min": lead,
                    "running_min": fc.running_min,
                    "changeovers": fc.changeovers,
                    "truth_running_min": run_total,
                    "truth_changeovers": co_total,
                    "naive_running_min": known_run + share * len(site.machine_ids) * (hi - t) / 60.0,
                    "naive_changeovers": fc.changeovers_so_far * (hi - lo) / max(1.0, t - lo),
                }
            )
    return {
        "shop": shop.name,
        "world": shop.world,
        "day": day,
        "rows": rows,
        "ends": ends,
        "forecast_s": times,
        "machines": len(site.machine_ids),
        "workers": len(site.workers),
    }


#: The model's code: what the cached forecasts depend on. The guard (guard.py, applied by the
#: service) is applied here after the cache, so changing it re-runs only the report.
_MODEL_FILES = ("dists.py", "engine.py", "history.py", "model.py")


def _params_key(params: ForecastParams) -> str:
    """Changes with the parameters and with the model's code: cached backtests stay honest."""
    h = hashlib.sha1(json.dumps(asdict(params), sort_keys=True).encode())
    for name in _MODEL_FILES:
        h.update((Path(__file__).resolve().parents[2] / "twin_server" / "forecast" / name).read_bytes())
    return h.hexdigest()[:10]


#: Changes with what calibration_rows records (not covered by the model's key).
CAL_VERSION = 2


def cal_rows_cached(
    shop: Shop,
    k: int,
    day: str,
    analysis: Result,
    hist_rec,
    cache: Path,
    params: ForecastParams,
    tag: str | None = None,
) -> list[dict]:
    """The guard's rows of day ``k`` (its forecasts every CAL_STEP_S with its own history), cached."""
    key = cache / f"cal{CAL_VERSION}-{tag or shop.name}-{k:02d}-{_params_key(params)}.json.gz"
    if key.exists():
        with gzip.open(key, "rt") as f:
            return json.load(f)
    rows = calibration_rows(shop.site, analysis, hist_rec, day, params, CAL_STEP_S)
    with gzip.open(key, "wt") as f:
        json.dump(rows, f)
    return rows


def guard_days(days: list[dict], cal_rows: dict[tuple[str, int], list[dict]]) -> list[dict]:
    """The evaluated days as the service shows them: each minute's forecast corrected by the
    guard fitted on the CAL_DAYS days before it (never the day itself), the shown end held
    steady minute to minute. ``cal_rows``: (shop, day index) -> rows."""
    out = []
    for d in days:
        k = d["k"]
        rows = [r for j in range(k - CAL_DAYS, k) for r in cal_rows.get((d["shop"], j), [])]
        cal = fit_calibration(rows)
        new = []
        shown: dict = {}
        for r in sorted(d["rows"], key=lambda r: r["t"]):
            r = dict(r)
            r["p10"], r["p50"], r["p90"] = apply_guard(
                cal, r["event"], r["t"], r["p10"], r["p50"], r["p90"], r["naive_med"]
            )
            key = (r["machine"], r["event"], r["since"])
            prev = shown.get(key)
            fresh = prev is not None and 0 < r["t"] - prev[0] <= 90.0
            r["p50"] = steady(prev[1] if fresh else None, r["p10"], r["p50"], r["p90"], r["t"], STEADY_BAND)
            if r["p50"] is not None:
                r["p10"] = min(r["p10"], r["p50"]) if r["p10"] is not None else None
                r["p90"] = max(r["p90"], r["p50"]) if r["p90"] is not None else None
            shown[key] = (r["t"], r["p50"])
            new.append(r)
        ends = [
            {
                **e,
                **{
                    name: apply_guard_total(cal, name, 60.0 * e["lead_min"], e[name])
                    for name in ("running_min", "changeovers")
                },
            }
            for e in d["ends"]
        ]
        out.append({**d, "rows": new, "ends": ends, "guard_rows": len(rows)})
    return out


def run_family(
    seeds, n_history: int, n_eval: int, cache: Path, params: ForecastParams, log, cal: dict | None = None
) -> list[dict]:
    out = []
    for seed in seeds:
        shop = family_shop(seed)
        log(
            f"{shop.name}: {len(shop.site.machines)} machines, {len(shop.site.workers)} workers, "
            f"runs: {shop.world}"
        )
        days = family_days(shop, n_history + n_eval, cache, log)
        for k in range(n_history, n_history + n_eval):
            if cal is not None:
                for j in range(max(0, k - CAL_DAYS), k):
                    if (shop.name, j) not in cal:
                        dj, aj, _ = days[j]
                        before = days[max(0, j - params.history_days) : j]
                        hj = [records_of(shop.site, a, d) for d, a, _ in before]
                        cal[(shop.name, j)] = cal_rows_cached(shop, j, dj, aj, hj, cache, params)
            key = cache / f"bt-{shop.name}-{k:02d}-{_params_key(params)}.json.gz"
            if key.exists():
                with gzip.open(key, "rt") as f:
                    out.append({**json.load(f), "k": k})
                continue
            day, analysis, truth = days[k]
            earlier = days[max(0, k - params.history_days) : k]
            hist_rec = [records_of(shop.site, a, d) for d, a, _ in earlier]
            res = backtest_day(shop, day, analysis, truth, hist_rec, [a for _, a, _ in earlier], params)
            with gzip.open(key, "wt") as f:
                json.dump(res, f)
            log(
                f"  {shop.name} {day}: {len(res['rows'])} forecasts, "
                f"{1000 * statistics.median(res['forecast_s']):.0f} ms median"
            )
            out.append({**res, "k": k})
    return out


def run_demo(
    n_history: int, n_eval: int, cache: Path, params: ForecastParams, log, cal: dict | None = None
) -> list[dict]:
    """The demo's pilot through its journal and the live server's analysis cache."""
    from twin_server.forecast.service import ForecastService
    from twin_server.live.hub import AnalysisCache
    from twin_server.store.journal import Journal

    shop = demo_shop()
    db, truths = demo_journal(shop, n_history + n_eval, cache, log)
    journal = Journal(db)
    out = []
    try:
        analysis = AnalysisCache(shop.site, journal, simulated_clock=True)
        svc = ForecastService(shop.site, analysis, params, db.parent / "forecast-history.json")
        for k in range(n_history, n_history + n_eval):
            day, truth = truths[k]
            if cal is not None:
                for j in range(max(0, k - CAL_DAYS), k):
                    if ("demo-pilot", j) not in cal:
                        dj = truths[j][0]
                        cal[("demo-pilot", j)] = cal_rows_cached(
                            shop, j, dj, analysis.get(dj)[0], svc.history(dj), cache, params, tag="demo"
                        )
            key = cache / f"bt-demo-{k:02d}-{_params_key(params)}.json.gz"
            if key.exists():
                with gzip.open(key, "rt") as f:
                    out.append({**json.load(f), "k": k})
                continue
            result = analysis.get(day)[0]
            earlier = [analysis.get(d)[0] for d, _ in truths[max(0, k - params.history_days) : k]]
            res = backtest_day(
                shop,
                day,
                result,
                truth,
                None,
                earlier,
                params,
                forecast_fn=lambda t: svc.forecast_at(t, guard=False),
            )
            with gzip.open(key, "wt") as f:
                json.dump(res, f)
            log(f"  demo {day}: {len(res['rows'])} forecasts")
            out.append({**res, "k": k})
    finally:
        journal.close()
    return out


# -- report ----------------------------------------------------------------------------------------
def _bin(h_min: float) -> int | None:
    for label, lo, hi in BINS:
        if lo < h_min <= hi:
            return label
    return None


def scored(days: list[dict], event: str | None = None):
    """Per scored forecast: (day index, bin by predicted lead, bin by true lead, errors...)."""
    out = []
    for di, d in enumerate(days):
        for r in d["rows"]:
            if r["status"] != "ok" or (event and r["event"] != event) or r["naive_med"] is None:
                continue
            t, truth = r["t"], r["truth"]
            p50 = r["p50"] if r["p50"] is not None else d_end(r)
            p10 = r["p10"] if r["p10"] is not None else p50
            p90 = r["p90"] if r["p90"] is not None else math.inf
            out.append(
                {
                    "day": di,
                    "bin": _bin((p50 - t) / 60.0),
                    "true_bin": _bin((truth - t) / 60.0),
                    "model": abs(p50 - truth) / 60.0,
                    "med": abs(r["naive_med"] - truth) / 60.0,
                    "el": abs(r["naive_el"] - truth) / 60.0,
                    "cover": p10 <= truth <= p90,
                    "naive_cover": r["naive_lo"] <= truth <= r["naive_hi"],
                    "cold": r["cold"],
                }
            )
    return out


def d_end(r: dict) -> float:
    return r["t"] + 24 * 3600.0


def horizon_table(items: list[dict], key: str = "bin") -> list[str]:
    lines = [
        "| horizon | forecasts | MAE forecast | MAE naive median | MAE naive elapsed | "
        "vs best naive | 80 % coverage | naive-median 10-90 % coverage |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, _, _ in BINS:
        sel = [x for x in items if x[key] == label]
        if not sel:
            lines.append(f"| {label} min | 0 | | | | | | |")
            continue
        mae = statistics.fmean(x["model"] for x in sel)
        med = statistics.fmean(x["med"] for x in sel)
        el = statistics.fmean(x["el"] for x in sel)
        best = min(med, el)
        cov = statistics.fmean(x["cover"] for x in sel)
        ncov = statistics.fmean(x["naive_cover"] for x in sel)
        lines.append(
            f"| {label} min | {len(sel)} | {mae:.1f} | {med:.1f} | {el:.1f} | "
            f"{100 * (mae / best - 1):+.0f} % | {100 * cov:.1f} % | {100 * ncov:.1f} % |"
        )
    return lines


def per_day_table(items: list[dict], n_days: int) -> list[str]:
    lines = [
        "| horizon | days | mean of day MAE (forecast / best naive) | worst decile of days "
        "(forecast / best naive) | coverage: mean, worst decile |",
        "|---|---|---|---|---|",
    ]
    for label in (15, 30):
        ratios, maes, nbest, covs = [], [], [], []
        for di in range(n_days):
            sel = [x for x in items if x["day"] == di and x["bin"] == label]
            if len(sel) < 10:
                continue
            mae = statistics.fmean(x["model"] for x in sel)
            best = min(statistics.fmean(x["med"] for x in sel), statistics.fmean(x["el"] for x in sel))
            maes.append(mae)
            nbest.append(best)
            ratios.append(mae / best)
            covs.append(statistics.fmean(x["cover"] for x in sel))
        if not ratios:
            continue
        worst = float(np.quantile(ratios, 0.9))
        lines.append(
            f"| {label} min | {len(ratios)} | {statistics.fmean(maes):.1f} / {statistics.fmean(nbest):.1f} "
            f"min (ratio {statistics.fmean(ratios):.2f}) | ratio {worst:.2f} | "
            f"{100 * statistics.fmean(covs):.1f} %, {100 * float(np.quantile(covs, 0.1)):.1f} % |"
        )
    return lines


def jitter(days: list[dict]) -> list[str]:
    """Mean absolute minute-to-minute change of the predicted end of a run, per method."""
    acc = defaultdict(list)
    for d in days:
        seq = defaultdict(list)
        for r in d["rows"]:
            if r["event"] == "run_end":
                seq[(r["machine"], r["since"])].append(r)
        for rs in seq.values():
            rs.sort(key=lambda r: r["t"])
            for a, b in itertools.pairwise(rs):
                if b["t"] - a["t"] != 60.0 or a["p50"] is None or b["p50"] is None:
                    continue
                acc["forecast"].append(abs(b["p50"] - a["p50"]) / 60.0)
                if a["naive_med"] is not None and b["naive_med"] is not None:
                    acc["naive median countdown"].append(abs(b["naive_med"] - a["naive_med"]) / 60.0)
                acc["naive elapsed"].append(abs(b["naive_el"] - a["naive_el"]) / 60.0)
    lines = ["| predicted run end | minute-to-minute change, min per min (mean) | pairs |", "|---|---|---|"]
    for k, v in acc.items():
        lines.append(f"| {k} | {statistics.fmean(v):.3f} | {len(v)} |")
    return lines


def same_rows_table(raw: list[dict], shown: list[dict]) -> list[str]:
    """MAE of the model alone, the forecast as shown and the naive forecasts over identical
    forecasts: all of them, and by the true lead time."""
    lines = [
        "| event | true lead | forecasts | MAE model alone | MAE as shown | MAE naive median | "
        "MAE naive elapsed | as shown vs naive median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for event in (None, "run_end", "restart"):
        a, b = scored(raw, event), scored(shown, event)
        for label in ("all", 5, 15, 30, 60):
            idx = [i for i, x in enumerate(a) if label == "all" or x["true_bin"] == label]
            if not idx:
                continue
            m_raw = statistics.fmean(a[i]["model"] for i in idx)
            m_shown = statistics.fmean(b[i]["model"] for i in idx)
            med = statistics.fmean(a[i]["med"] for i in idx)
            el = statistics.fmean(a[i]["el"] for i in idx)
            lead = "all" if label == "all" else f"{label} min"
            lines.append(
                f"| {event or 'all'} | {lead} | {len(idx)} | {m_raw:.1f} | {m_shown:.1f} | "
                f"{med:.1f} | {el:.1f} | {100 * (m_shown / med - 1):+.0f} % |"
            )
    return lines


def shift_end_table(days: list[dict]) -> list[str]:
    lines = [
        "| lead | days | running min: MAE forecast / naive, 80 % coverage | changeovers: MAE forecast "
        "/ naive, 80 % coverage |",
        "|---|---|---|---|",
    ]
    for lead in SHIFT_END_LEADS_MIN:
        sel = [e for d in days for e in d["ends"] if e["lead_min"] == lead]
        if not sel:
            continue
        rm = statistics.fmean(abs(e["running_min"][1] - e["truth_running_min"]) for e in sel)
        rn = statistics.fmean(abs(e["naive_running_min"] - e["truth_running_min"]) for e in sel)
        rc = statistics.fmean(
            e["running_min"][0] <= e["truth_running_min"] <= e["running_min"][2] for e in sel
        )
        cm = statistics.fmean(abs(e["changeovers"][1] - e["truth_changeovers"]) for e in sel)
        cn = statistics.fmean(abs(e["naive_changeovers"] - e["truth_changeovers"]) for e in sel)
        cc = statistics.fmean(
            e["changeovers"][0] <= e["truth_changeovers"] <= e["changeovers"][2] for e in sel
        )
        lines.append(
            f"| {lead} min before | {len(sel)} | {rm:.0f} / {rn:.0f} min, {100 * rc:.0f} % | "
            f"{cm:.1f} / {cn:.1f}, {100 * cc:.0f} % |"
        )
    return lines


def report(title: str, days: list[dict], raw: list[dict] | None = None) -> str:
    """The tables of the forecast as shown (``days``), and of the model alone (``raw``) beside."""
    out = [f"## {title}", ""]
    shops = sorted({d["shop"] for d in days})
    n_rows = sum(len(d["rows"]) for d in days)
    status = defaultdict(int)
    for d in days:
        for r in d["rows"]:
            status[r["status"]] += 1
    out.append(
        f"{len(days)} days of {len(shops)} shops ({', '.join(shops)}); {n_rows} machine forecasts "
        f"({status['ok']} scored, {status['censored']} with the event after the recording, "
        f"{status['mismatch']} where the analysis and the truth disagreed on the state)."
    )
    out.append("")
    for event, name in ((None, "all"), ("run_end", "end of the current run"), ("restart", "restart")):
        items = scored(days, event)
        out += [f"### {name}: by the forecast's horizon (its median lead time)", ""]
        out += horizon_table(items)
        out += ["", f"### {name}: by the true lead time", ""]
        out += horizon_table(items, "true_bin")
        out += ["", f"### {name}: spread over days (horizon by forecast)", ""]
        out += per_day_table(items, len(days))
        out.append("")
    cold = [x for x in scored(days) if x["cold"]]
    if cold:
        out.append(
            f"Forecasts marked cold (few data): {len(cold)}, coverage "
            f"{100 * statistics.fmean(x['cover'] for x in cold):.1f} %."
        )
        out.append("")
    if raw is not None:
        n_guard = [d.get("guard_rows", 0) for d in days]
        out.append(
            f"The forecast as shown: the model's range corrected by the guard learnt from the forecasts of "
            f"the {CAL_DAYS} days before each day (every {CAL_STEP_S / 60:.0f} min; median "
            f"{statistics.median(n_guard):.0f} machine forecasts, {sum(1 for x in n_guard if x == 0)} days "
            f"with none). The model alone, before the guard:"
        )
        out.append("")
        for event, name in ((None, "all"), ("run_end", "end of the current run"), ("restart", "restart")):
            out += [f"#### model alone, {name}: by the forecast's horizon", ""]
            out += horizon_table(scored(raw, event))
            out.append("")
        out += ["#### model alone: minute-to-minute change of the predicted end", "", *jitter(raw), ""]
        out += [
            "### the same forecasts, every one (not binned by each method's own lead)",
            "",
            *same_rows_table(raw, days),
            "",
        ]
    out += ["### minute-to-minute change of the predicted end", "", *jitter(days), ""]
    out += ["### shift end (site totals)", "", *shift_end_table(days), ""]
    ms = [1000 * s for d in days for s in d["forecast_s"]]
    if ms:
        out.append(
            f"Forecast time per minute (fit + forecast, this run): median {statistics.median(ms):.0f} ms, "
            f"90th percentile {float(np.quantile(ms, 0.9)):.0f} ms."
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["tuning", "report", "demo", "all"], default="report")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "twin-forecast-bench"))
    parser.add_argument("--history", type=int, default=12, help="earlier days before the first evaluated day")
    parser.add_argument("--days", type=int, default=4, help="evaluated days per shop")
    parser.add_argument("--shops", type=int, default=None, help="use only the first N shops of the set")
    parser.add_argument("--out", default=None, help="also write the markdown report here")
    args = parser.parse_args()
    cache = Path(args.cache)
    params = ForecastParams()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    parts = []
    cal: dict = {}
    if args.set in ("tuning", "report", "all"):
        seeds = TUNING_SHOPS if args.set == "tuning" else REPORT_SHOPS
        seeds = seeds[: args.shops] if args.shops else seeds
        raw = run_family(seeds, args.history, args.days, cache, params, log, cal)
        days = guard_days(raw, cal)
        name = args.set if args.set != "all" else "report"
        parts.append(report(f"scenario family ({name} shops)", days, raw))
        for world in ("parts", "lognormal"):
            sub = [d for d in days if d["world"] == world]
            if sub and len({d["world"] for d in days}) > 1:
                parts.append(
                    report(f"scenario family, runs: {world}", sub, [d for d in raw if d["world"] == world])
                )
    if args.set in ("demo", "all"):
        raw = run_demo(args.history, args.days, cache, params, log, cal)
        parts.append(report("demo journals (pilot site, simulator defaults)", guard_days(raw, cal), raw))
    text = "\n\n".join(parts)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
