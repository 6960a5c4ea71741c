"""Benchmark: one forecast refresh of a 30-machine site learning from 20 earlier days.

Run: ``.venv/bin/python bench/forecast/speed.py [--machines 30] [--workers 8] [--days 20]``

Simulates ``--days`` + 1 days of a synthetic site (batches of parts, 9 h windows; truth
results stand in for analyses: the forecast's cost does not depend on where they come from)
and turns the earlier days into the records the live server keeps (done once per day, timed
apart). A *refresh* is what the live loop does after each analysis: cut today's result at the
moment, read today's records, fit the model to earlier days + today, and forecast every
machine (200 draws), then correct it with the guard (naive medians from the records, the
rules learnt from earlier days' forecasts, the shown ends held steady). Learning those rules
(forecasting each earlier day every 10 min, once per day and kept) is timed apart, for one
earlier day. Timed at 12 moments over the day; printed in ms and as a ratio against
a yardstick measured in the same run (numpy sorting 10 million random floats).
Target: < 200 ms per refresh.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import numpy as np

from twin_server.forecast.engine import forecast
from twin_server.forecast.guard import fit_calibration, naive_pools
from twin_server.forecast.history import truncate_result
from twin_server.forecast.model import ForecastParams, fit_model
from twin_server.forecast.service import CAL_DAYS, calibration_rows, day_off, guarded, records_of
from twin_server.simulate import SimParams, synthetic_site
from twin_server.simulate.core import default_start, truth_result
from twin_server.simulate.shift import build_schedule
from twin_server.store.replay_data import shift_window


def yardstick_s() -> float:
    """Seconds numpy takes to sort 10 million random floats (best of 3)."""
    data = np.random.default_rng(0).random(10_000_000)
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        np.sort(data)
        best = min(best, time.perf_counter() - began)
    return best


def days_of(site, n_days: int, params: SimParams) -> list[tuple[str, object]]:
    """``n_days`` workdays of truth results (schedules only: no sensor readings needed)."""
    out = []
    d = dt.date(2024, 4, 1)
    for k in range(n_days):
        t0 = default_start(site, d)
        sched = build_schedule(site, params, t0, t0 + 9 * 3600.0, np.random.default_rng([k, 0]))
        sched._zones = {w: [] for w in site.worker_ids}  # worker zones: not needed here, slow to draw
        out.append((d.isoformat(), truth_result(site, sched)))
        d += dt.timedelta(days=1 if d.weekday() < 4 else 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=30)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--days", type=int, default=20)
    args = parser.parse_args()
    yard = yardstick_s()
    print(f"yardstick (np.sort of 1e7 floats, best of 3): {yard * 1000:.0f} ms")
    site = synthetic_site(args.machines, args.workers)
    params = SimParams(run_model="parts", shop_seed=1, worker_speed_sd=0.3, run_median_min=50.0)
    days = days_of(site, args.days + 1, params)
    began = time.perf_counter()
    history = [records_of(site, res, day) for day, res in days[:-1]]
    per_day_ms = (time.perf_counter() - began) * 1000 / args.days
    day, result = days[-1]
    lo, hi = shift_window(site, day)
    fp = ForecastParams()
    prev_day, prev_result = days[-2]
    began = time.perf_counter()
    rows = calibration_rows(site, prev_result, history[:-1], prev_day, fp)
    cal_ms = (time.perf_counter() - began) * 1000
    cal = fit_calibration(rows, 1)
    shown: dict = {}
    times = []
    fit_ms = []
    for at in np.linspace(lo + 600, hi - 600, 12):
        began = time.perf_counter()
        known = truncate_result(result, float(at))
        today = records_of(site, known, day)
        model = fit_model([*history, today], site.machine_ids, site.worker_ids, fp, history_days=len(history))
        fitted = time.perf_counter()
        fc = forecast(
            model,
            known,
            today,
            float(at),
            timezone=site.timezone,
            shift=(lo, hi),
            off=day_off(site, day),
            day=day,
        )
        guarded(fc, cal, naive_pools([*history, today]), shown)
        times.append((time.perf_counter() - began) * 1000)
        fit_ms.append((fitted - began) * 1000)
    med = statistics.median(times)
    print(
        f"site: {args.machines} machines, {args.workers} workers; history {args.days} days, "
        f"{sum(len(h.batches) for h in history)} batches, {sum(len(h.tasks) for h in history)} tasks; "
        f"{len(fc.machines)} machines forecast, {fp.samples} draws"
    )
    print(f"earlier day -> records (once per day, cached): {per_day_ms:.0f} ms per day")
    print(
        f"earlier day -> the guard's rows (once per day, cached): {cal_ms:.0f} ms per day "
        f"({len(rows)} machine forecasts; the service learns from {CAL_DAYS} days)"
    )
    print("| refresh | median ms | max ms | x yardstick (median) |")
    print("|---|---|---|---|")
    print(
        f"| fit (earlier days + today) | {statistics.median(fit_ms):.0f} | {max(fit_ms):.0f} | "
        f"{statistics.median(fit_ms) / 1000 / yard:.3f} |"
    )
    print(f"| whole refresh | {med:.0f} | {max(times):.0f} | {med / 1000 / yard:.3f} |")
    print(
        f"target < 200 ms: {'met' if med < 200 else 'NOT met'} on this machine "
        f"(= {0.2 / yard:.2f} yardsticks here)"
    )


if __name__ == "__main__":
    main()
