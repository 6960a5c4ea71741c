"""The forecast's guardrail: blends towards the naive median where the model lost on earlier
days, widens or narrows the 80 % range to what earlier days' misses ask, holds the shown end
steady, and learns only from days before the one it serves."""

from __future__ import annotations

import numpy as np
import pytest

from twin_server.forecast.guard import (
    MIN_ROWS,
    apply_guard,
    apply_guard_total,
    fit_calibration,
    naive_median,
    naive_pools,
    steady,
)
from twin_server.forecast.history import DayRecords, StopRecord

T0 = 1_700_000_000.0


def _rows(n, rng, *, model_bias_s=0.0, spread_s=600.0, half_width_s=300.0, lead_s=1800.0, event="run_end"):
    """Forecasts made at T0 + k min whose truth is the naive median plus noise."""
    out = []
    for k in range(n):
        t = T0 + 60.0 * k
        truth = t + lead_s + rng.normal(0.0, spread_s)
        naive = t + lead_s
        p50 = naive + model_bias_s
        out.append(
            {
                "t": t,
                "event": event,
                "p10": p50 - half_width_s,
                "p50": p50,
                "p90": p50 + half_width_s,
                "naive_med": naive,
                "observed": truth,
            }
        )
    return out


def _coverage(rows, cal):
    hit = []
    for r in rows:
        lo, _mid, hi = apply_guard(cal, r["event"], r["t"], r["p10"], r["p50"], r["p90"], r["naive_med"])
        hit.append(lo <= r["observed"] <= hi)
    return float(np.mean(hit))


def test_blends_to_the_naive_median_where_the_model_lost():
    rng = np.random.default_rng(1)
    cal = fit_calibration(_rows(400, rng, model_bias_s=1200.0))
    r = _rows(1, rng, model_bias_s=1200.0)[0]
    _lo, mid, _hi = apply_guard(cal, "run_end", r["t"], r["p10"], r["p50"], r["p90"], r["naive_med"])
    assert mid == pytest.approx(r["naive_med"], abs=1.0)  # the model's 20 min too late are gone
    # an unbiased model keeps (most of) its median
    cal = fit_calibration(_rows(400, rng, model_bias_s=0.0))
    rule = next(iter(cal.rules.values()))
    assert rule.w >= 0.5


def test_range_widened_to_eighty_percent_on_fresh_days():
    rng = np.random.default_rng(2)
    earlier = _rows(600, rng, spread_s=900.0, half_width_s=200.0)  # the model's range far too narrow
    fresh = _rows(2000, rng, spread_s=900.0, half_width_s=200.0)
    assert _coverage(fresh, None) < 0.4
    assert 0.75 <= _coverage(fresh, fit_calibration(earlier)) <= 0.85
    # and a range far too wide is narrowed
    earlier = _rows(600, rng, spread_s=120.0, half_width_s=1500.0)
    fresh = _rows(2000, rng, spread_s=120.0, half_width_s=1500.0)
    assert _coverage(fresh, None) > 0.99
    assert 0.75 <= _coverage(fresh, fit_calibration(earlier)) <= 0.85


def test_too_few_earlier_forecasts_leave_the_model_alone():
    rng = np.random.default_rng(3)
    cal = fit_calibration(_rows(MIN_ROWS - 1, rng, model_bias_s=1200.0))
    assert cal.rules == {}
    r = _rows(1, rng, model_bias_s=1200.0)[0]
    got = apply_guard(cal, "run_end", r["t"], r["p10"], r["p50"], r["p90"], r["naive_med"])
    assert got == (r["p10"], r["p50"], r["p90"])
    # a missing naive median (nothing seen at the site) or median passes through
    cal = fit_calibration(_rows(400, rng))
    assert apply_guard(cal, "run_end", T0, None, None, None, T0) == (None, None, None)


def test_guarded_range_never_before_now_and_ordered():
    rng = np.random.default_rng(4)
    cal = fit_calibration(_rows(400, rng, spread_s=3000.0, half_width_s=60.0, lead_s=300.0))
    for r in _rows(200, rng, spread_s=3000.0, half_width_s=60.0, lead_s=300.0):
        lo, mid, hi = apply_guard(cal, "run_end", r["t"], r["p10"], r["p50"], r["p90"], r["naive_med"])
        assert r["t"] <= lo <= mid <= hi


def test_shift_end_totals_widened_from_earlier_misses():
    rng = np.random.default_rng(5)
    rows = [
        {
            "t": T0,
            "event": "running_min",
            "lead_s": 3600.0,
            "p10": 500.0,
            "p50": 510.0,
            "p90": 520.0,
            "observed": 510.0 + rng.normal(0, 40),
        }
        for _ in range(200)
    ]
    cal = fit_calibration(rows)
    lo, mid, hi = apply_guard_total(cal, "running_min", 3600.0, [500.0, 510.0, 520.0])
    assert mid == 510.0 and lo < 470.0 and hi > 550.0
    # another lead class has no rows: unchanged
    assert apply_guard_total(cal, "running_min", 4 * 3600.0, [500.0, 510.0, 520.0]) == [500.0, 510.0, 520.0]


def test_steady_end_moves_only_as_far_as_pushed():
    # within the band: held; beyond it: moved to the band's edge; passed: follows the model
    assert steady(T0 + 1800, T0 + 1000, T0 + 1850, T0 + 2600, T0, 0.1) == T0 + 1800
    assert steady(T0 + 1800, T0 + 1000, T0 + 2400, T0 + 3000, T0, 0.1) == pytest.approx(T0 + 2400 - 180)
    assert steady(T0 + 1800, T0 + 500, T0 + 1000, T0 + 3000, T0, 0.1) == pytest.approx(T0 + 1000 + 100)
    assert steady(T0 - 10, T0 + 100, T0 + 400, T0 + 900, T0, 0.1) == T0 + 400
    assert steady(None, T0 + 100, T0 + 400, T0 + 900, T0, 0.1) == T0 + 400


def test_naive_median_from_records():
    def stop(m, a, b):
        return StopRecord(m, a, b, (), True, True)

    rec = DayRecords(
        "s",
        T0,
        stops=[stop("M1", T0, T0 + 60), stop("M1", T0 + 660, T0 + 700), stop("M1", T0 + 1900, T0 + 2000)],
    )
    pools = naive_pools([rec])
    assert sorted(pools[0]["M1"]) == [600.0, 1200.0] and sorted(pools[1]["M1"]) == [40.0, 60.0, 100.0]
    assert naive_median(pools, "M1", "run_end", T0 + 3000, T0 + 3100) == T0 + 3000 + 900
    assert naive_median(pools, "M1", "run_end", T0, T0 + 5000) == T0 + 5000  # passed: now
    assert naive_median(pools, "M2", "restart", T0, T0) == T0 + 60  # never seen: the site's
    assert naive_median(({}, {}), "M1", "run_end", T0, T0) is None
