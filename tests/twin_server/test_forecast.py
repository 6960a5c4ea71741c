"""Forecast: records read off analyses, the model, cold starts, the queue, honesty about time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest

from twin_server.forecast.dists import Points, km_weights
from twin_server.forecast.engine import LANE_STATES
from twin_server.forecast.history import day_records, machine_now, truncate_result
from twin_server.forecast.influx import forecast_lines
from twin_server.forecast.model import ForecastParams, fit_model
from twin_server.forecast.service import forecast_result, records_of
from twin_server.result import MachineState, Result, Task, WorkerZone
from twin_server.simulate import SimParams
from twin_server.simulate.core import default_start, truth_result
from twin_server.simulate.shift import build_schedule
from twin_server.store.replay_data import shift_window

TZ = "Asia/Tokyo"


def _days(site, n: int, params: SimParams, first=dt.date(2024, 4, 1)) -> list[tuple[str, Result]]:
    """``n`` workdays of truth results (the analysis' ideal) of a site."""
    out, d, k = [], first, 0
    while len(out) < n:
        if d.weekday() < 5:
            t0 = default_start(site, d)
            _lo, hi = shift_window(site, d.isoformat())
            sched = build_schedule(site, params, t0, hi + 2 * 3600, np.random.default_rng([k, 0]))
            out.append((d.isoformat(), truth_result(site, sched)))
            k += 1
        d += dt.timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def parts_days(pilot_site):
    # A shop that mostly repeats its part (program input in 20 % of changeovers): the
    # previous batch tells the next one's length.
    tasks = dict(SimParams().tasks)
    tasks["program_input"] = dataclasses.replace(tasks["program_input"], share=0.2)
    params = SimParams(
        run_model="parts",
        shop_seed=3,
        worker_speed_sd=0.3,
        batch_sigma=0.1,
        interruptions_per_h=0.1,
        tasks=tasks,
    )
    return _days(pilot_site, 9, params)


@pytest.fixture(scope="module")
def parts_history(pilot_site, parts_days):
    return [records_of(pilot_site, r, d) for d, r in parts_days[:-1]]


def _ordered(m) -> None:
    assert m.p10 is not None and m.p50 is not None and m.p90 is not None, m
    assert m.p10 <= m.p50 <= m.p90, m


# -- distributions -----------------------------------------------------------------------------
def test_kaplan_meier_by_hand():
    # 1, 2+ (censored), 3, 4: S drops 1/4 at 1; at 3, 2 at risk -> 3/4 * 1/2; at 4 -> 0.
    x, w = km_weights(np.array([3.0, 1.0, 4.0, 2.0]), np.array([False, False, False, True]))
    assert list(x) == [1.0, 2.0, 3.0, 4.0]
    assert w == pytest.approx([0.25, 0.0, 0.375, 0.375])
    # weighted: a weight of 3 on the first value is three observations of it
    x, w = km_weights(np.array([1.0, 5.0]), np.array([False, False]), np.array([3.0, 1.0]))
    assert w == pytest.approx([0.75, 0.25])


def test_points_condition_on_elapsed():
    pts = Points.fit(np.log(np.full(50, 600.0)) + np.linspace(-0.1, 0.1, 50), prior_weight=1.0)
    rng = np.random.default_rng(0)
    above = math.log(700.0)  # longer than every observation: the tail, never below
    draws = pts.sample(rng.random(500), rng.standard_normal(500), above)
    assert (draws > above).all()
    plain = pts.sample(rng.random(2000), rng.standard_normal(2000))
    assert np.median(np.exp(plain)) == pytest.approx(600.0, rel=0.05)


# -- records -------------------------------------------------------------------------------------
def _hand_result() -> Result:
    t0 = 1_700_000_000.0
    ms = [
        MachineState("M3", "running", t0, t0 + 1000),  # started before the recording
        MachineState("M3", "stopped", t0 + 1000, t0 + 1600),  # changeover with program input
        MachineState("M3", "running", t0 + 1600, t0 + 2600),
        MachineState("M3", "stopped", t0 + 2600, t0 + 2700),  # minor stop: no task
        MachineState("M3", "running", t0 + 2700, t0 + 3200),
        MachineState("M3", "stopped", t0 + 3200, t0 + 3500),  # changeover without program input
        MachineState("M3", "running", t0 + 3500, t0 + 5000),  # running at the end
    ]
    tasks = [
        Task("M3", "tool_change", "W1", t0 + 1100, t0 + 1300),
        Task("M3", "program_input", "W1", t0 + 1320, t0 + 1500),
        Task("M3", "material_setting", "W1", t0 + 3250, t0 + 3450),
    ]
    zones = [WorkerZone("W1", "M3", t0 + 1050, t0 + 1550), WorkerZone("W1", "none", t0 + 1550, t0 + 5000)]
    return Result("toyama-pilot", t0, t0 + 5000, ms, zones, tasks)


def test_day_records_batches_and_stops():
    rec = day_records(_hand_result(), ["M3"], ["W1", "W2"], TZ)
    b = [(x.context, x.length_s, x.minor_stops, x.censored, x.prev_length_s) for x in rec.batches]
    assert b == [
        ("unknown_start", 1000.0, 0, False, None),  # its start is unknown: never a 'prev'
        ("new", 1500.0, 1, False, None),  # 1000 + 500 across the minor stop
        ("same", 1500.0, 0, True, 1500.0),
    ]  # still running at the end: censored
    assert [(s.changeover, s.restart - s.stop) for s in rec.stops] == [
        (True, 600.0),
        (False, 100.0),
        (True, 300.0),
    ]
    assert all(s.worker_free for s in rec.stops)  # W2 was always free
    assert [t.task for t in rec.stops[0].tasks] == ["tool_change", "program_input"]


def test_machine_now_phases():
    res = _hand_result()
    t0 = res.window_start
    rec = day_records(truncate_result(res, t0 + 1400), ["M3"], ["W1"], TZ)
    now = machine_now(truncate_result(res, t0 + 1400), rec, "M3", t0 + 1400)
    assert (now.phase, now.task, now.worker, now.tasks_done) == (
        "changeover",
        "program_input",
        "W1",
        ("tool_change",),
    )
    cut = truncate_result(res, t0 + 2900)
    now = machine_now(cut, day_records(cut, ["M3"], ["W1"], TZ), "M3", t0 + 2900)
    # the batch goes on across the minor stop: 1000 s before it and 200 s since
    assert (now.phase, now.batch_context, now.batch_elapsed_s) == ("running", "new", 1200.0)
    cut = truncate_result(res, t0 + 1050)
    now = machine_now(cut, day_records(cut, ["M3"], ["W1"], TZ), "M3", t0 + 1050)
    assert now.phase == "waiting"


# -- the model on a shop making batches of parts -------------------------------------------------
def test_forecast_beats_the_machines_median_on_repeated_parts(pilot_site, parts_days, parts_history):
    """On the last day, every 10 min: the median error of the run's end is below the naive one."""
    day, res = parts_days[-1]
    lo, hi = shift_window(pilot_site, day)
    runs = {m: [] for m in pilot_site.machine_ids}
    for _d, r in parts_days[:-1]:
        for s in r.machine_states:
            if s.state == "running" and s.start > r.window_start and s.end < r.window_end:
                runs[s.machine].append(s.end - s.start)
    err_model, err_naive, covered = [], [], []
    for at in np.arange(lo + 1800, hi - 600, 600.0):
        fc = forecast_result(pilot_site, res, parts_history, float(at))
        for m in fc.machines:
            if m.event != "run_end":
                continue
            seg = next(s for s in res.machine_states if s.machine == m.machine and s.start <= at < s.end)
            if seg.end >= res.window_end - 1 or seg.start <= res.window_start:
                continue
            _ordered(m)
            err_model.append(abs(m.p50 - seg.end))
            err_naive.append(abs(max(seg.start + np.median(runs[m.machine]), at) - seg.end))
            covered.append(m.p10 <= seg.end <= m.p90)
    assert len(err_model) >= 20
    assert np.mean(err_model) < 0.8 * np.mean(err_naive)
    assert 0.6 <= np.mean(covered) <= 1.0


def test_forecast_moment_uses_only_the_past(pilot_site, parts_days, parts_history):
    """What happened after the moment cannot change the forecast made at it."""
    day, res = parts_days[-1]
    lo, _hi = shift_window(pilot_site, day)
    at = lo + 3 * 3600
    fc = forecast_result(pilot_site, res, parts_history, at)
    later = [dataclasses.replace(s, end=s.end + 999) if s.end > at else s for s in res.machine_states]
    changed = dataclasses.replace(
        res, machine_states=later, tasks=[t for t in res.tasks if t.start < at + 60]
    )
    again = forecast_result(pilot_site, changed, parts_history, at)
    assert again.to_dict() | {"compute_ms": 0} == fc.to_dict() | {"compute_ms": 0}
    assert fc.at == at and all(m.p10 is None or m.p10 >= at for m in fc.machines)


def test_lane_queue_and_shift_end_are_consistent(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    lo, hi = shift_window(pilot_site, day)
    fc = forecast_result(pilot_site, res, parts_history, lo + 2 * 3600)
    for m in fc.machines:
        assert m.lane[0]["start"] == pytest.approx(fc.at)
        assert m.lane[-1]["end"] == pytest.approx(fc.at + 3600)
        assert all(a["end"] == b["start"] for a, b in zip(m.lane, m.lane[1:], strict=False))
        assert {seg["state"] for seg in m.lane} <= set(LANE_STATES)
        assert all(0 < seg["p"] <= 1 for seg in m.lane)
        r = m.running_min
        assert r[0] <= r[1] <= r[2]
    assert fc.running_min[0] >= fc.running_min_so_far - 1e-6
    assert fc.running_min[2] <= fc.running_min_so_far + 3 * (hi - fc.at) / 60 + 1e-6
    assert fc.changeovers[0] >= fc.changeovers_so_far
    assert [q.need_at for q in fc.queue] == sorted(q.need_at for q in fc.queue)


def test_operator_queue_one_worker_two_machines(pilot_site):
    """Two machines stop together, one worker: the second waits about as long as the first's
    changeover takes."""
    site = pilot_site.model_copy(update={"workers": pilot_site.workers[:1]})
    t0 = default_start(site, dt.date(2024, 4, 3))
    states, tasks = [], []
    # history: one day of changeovers of ~10 min each (tool change + material setting)
    for k in range(12):
        for j, m in enumerate(site.machine_ids):
            a = t0 - 86400 + k * 2400 + j * 800
            states += [
                MachineState(m, "running", a, a + 1200),
                MachineState(m, "stopped", a + 1200, a + 1800),
            ]
            tasks += [
                Task(m, "tool_change", "W1", a + 1260, a + 1560),
                Task(m, "material_setting", "W1", a + 1580, a + 1760),
            ]
    hist = Result(site.site, t0 - 86400, t0 - 86400 + 12 * 2400 + 3000, states, [], tasks)
    history = [records_of(site, hist, (dt.date(2024, 4, 2)).isoformat())]
    at = t0 + 3000
    today = Result(
        site.site,
        t0,
        at,
        [
            MachineState("M3", "running", t0, t0 + 2990),
            MachineState("M3", "stopped", t0 + 2990, at),
            MachineState("M7", "running", t0, t0 + 2995),
            MachineState("M7", "stopped", t0 + 2995, at),
            MachineState("M10", "running", t0, at),
        ],
        [],
        [],
    )
    fc = forecast_result(site, today, history, at)
    first, second = fc.machine("M3"), fc.machine("M7")
    assert first.phase == second.phase == "waiting"
    assert first.wait_p50_min < 2.0
    assert 6.0 <= second.wait_p50_min <= 20.0  # the worker is busy on M3 first
    assert [q.machine for q in fc.queue][:2] == ["M3", "M7"]
    assert second.p50 > first.p50


# -- cold start ----------------------------------------------------------------------------------
def test_first_day_no_history(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    lo, hi = shift_window(pilot_site, day)
    for at in (lo + 300, lo + 4 * 3600, hi - 300):
        fc = forecast_result(pilot_site, res, [], at)
        assert fc.cold and fc.history_days == 0
        for m in fc.machines:
            assert m.cold[0] == "first_day"
            if m.event == "run_end":
                _ordered(m)
                assert m.p90 - m.p10 < 24 * 3600  # wide, not absurd
        assert fc.to_dict()["machines"]  # serialisable, no NaN
    # In the morning nothing is learnt yet: the ranges are the priors', wider than with history.
    fc = forecast_result(pilot_site, res, [], lo + 900)
    warm = forecast_result(pilot_site, res, parts_history, lo + 900)
    wide = [m.p90 - m.p10 for m in fc.machines if m.event == "run_end"]
    narrow = [w.p90 - w.p10 for w in warm.machines if w.event == "run_end"]
    assert wide and np.mean(wide) > 1.5 * np.mean(narrow)


def test_machine_never_seen_running(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    lo, _hi = shift_window(pilot_site, day)
    at = lo + 3 * 3600
    # M10 stood still on every earlier day
    history = []
    for d, r in parts_days[:-1]:
        ms = [s for s in r.machine_states if s.machine != "M10"]
        ms.append(MachineState("M10", "stopped", r.window_start, r.window_end))
        history.append(
            records_of(
                pilot_site,
                dataclasses.replace(r, machine_states=ms, tasks=[t for t in r.tasks if t.machine != "M10"]),
                d,
            )
        )
    ms = [s for s in res.machine_states if s.machine != "M10"] + [
        MachineState("M10", "stopped", res.window_start, at - 1200),
        MachineState("M10", "running", at - 1200, res.window_end),
    ]
    tasks = [t for t in res.tasks if t.machine != "M10"] + [
        Task("M10", "program_input", "W1", at - 1500, at - 1300)
    ]
    fc = forecast_result(pilot_site, dataclasses.replace(res, machine_states=ms, tasks=tasks), history, at)
    m = fc.machine("M10")
    assert m.event == "run_end" and "machine_never_seen_running" in m.cold
    _ordered(m)
    assert at < m.p50 < at + 12 * 3600
    others = [x for x in fc.machines if x.machine != "M10" and x.event == "run_end"]
    assert others and all("machine_never_seen_running" not in x.cold for x in others)
    # from the other machines and priors: a wider range than a machine with its own runs
    assert m.p90 - m.p10 > 1.5 * max(x.p90 - x.p10 for x in others)


def test_worker_with_no_history(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    site = pilot_site.model_copy(
        update={
            "workers": [
                *pilot_site.workers,
                pilot_site.workers[0].model_copy(update={"id": "W9", "beacon": "b-09"}),
            ]
        }
    )
    lo, _hi = shift_window(site, day)
    at = lo + 2 * 3600 + 600
    ms = [s for s in res.machine_states if s.machine != "M7"] + [
        MachineState("M7", "running", res.window_start, at - 700),
        MachineState("M7", "stopped", at - 700, res.window_end),
    ]

    def changeover_by(worker: str):
        tasks = [t for t in res.tasks if t.machine != "M7"] + [
            Task("M7", "jig_change", worker, at - 600, at - 100),
            Task("M7", "tool_change", worker, at - 60, at + 400),
        ]
        known = dataclasses.replace(res, machine_states=ms, tasks=tasks)
        return forecast_result(site, known, parts_history, at).machine("M7")

    m = changeover_by("W9")
    assert (m.phase, m.event, m.task, m.worker) == ("changeover", "restart", "tool_change", "W9")
    assert "worker_no_history:W9" in m.cold
    _ordered(m)
    assert at < m.p50 < at + 3 * 3600
    assert m.lane[0]["state"] == "changeover"
    # The same changeover by W2, whose pace is known: a narrower range than by a new worker.
    known = changeover_by("W2")
    assert not known.cold
    _ordered(known)
    assert m.p90 - m.p10 > 1.3 * (known.p90 - known.p10)


# -- InfluxDB lines ----------------------------------------------------------------------------
def test_forecast_lines(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    lo, _hi = shift_window(pilot_site, day)
    fc = forecast_result(pilot_site, res, parts_history, lo + 3600)
    lines = forecast_lines(fc)
    assert len(lines) == len([m for m in fc.machines if m.event]) + 1
    assert all(line.startswith("forecast,") and line.endswith(f" {round(fc.at * 1e9)}") for line in lines)
    assert any("machine=_site" in line and "running_min_p50=" in line for line in lines)


def test_params_are_used(pilot_site, parts_days, parts_history):
    day, res = parts_days[-1]
    lo, _hi = shift_window(pilot_site, day)
    few = forecast_result(pilot_site, res, parts_history, lo + 3600, ForecastParams(samples=20))
    assert few.samples == 20
    model = fit_model(parts_history, pilot_site.machine_ids, pilot_site.worker_ids)
    assert model.history_days == len(parts_history)


def _shop_day(site, day: dt.date, plan: list[tuple[float, list[str]]], machine: str = "M3") -> Result:
    """One machine's day from ``(run minutes, tasks of the changeover before it)``; the others idle."""
    t = default_start(site, day)
    t0 = t
    ms, tasks = [], []
    for run_min, before in plan:
        stop = t
        u = stop + 60
        for name in before:
            tasks.append(Task(machine, name, "W1", u, u + 120))
            u += 150
        t = u + 30
        ms += [
            MachineState(machine, "stopped", stop, t),
            MachineState(machine, "running", t, t + 60 * run_min),
        ]
        t += 60 * run_min
    ms.append(MachineState(machine, "stopped", t, t + 600))
    for m in site.machine_ids:
        if m != machine:
            ms.append(MachineState(m, "stopped", t0, t + 600))
    return Result(site.site, t0, t + 600, ms, [], tasks)


def test_same_part_follows_the_previous_batch(pilot_site):
    """A machine makes a 20-min part and a 100-min part; a changeover without program input
    continues the part. The forecast of a running batch follows the previous batch's length."""
    new, same = ["tool_change", "program_input"], ["material_setting"]
    history = []
    for k in range(6):
        day = dt.date(2024, 4, 1) + dt.timedelta(days=k)
        plan = [
            (20, new),
            (20, same),
            (20, same),
            (100, new),
            (100, same),
            (20, new),
            (20, same),
            (100, new),
            (100, same),
        ]
        history.append(records_of(pilot_site, _shop_day(pilot_site, day, plan), day.isoformat()))
    day = dt.date(2024, 4, 8)
    for part, expect in ((20, 20), (100, 100)):
        res = _shop_day(pilot_site, day, [(part, new), (part, same)])
        run = [s for s in res.machine_states if s.machine == "M3" and s.state == "running"][-1]
        at = run.start + 5 * 60
        fc = forecast_result(pilot_site, res, history, at)
        m = fc.machine("M3")
        assert (m.event, m.context) == ("run_end", "same")
        assert (m.p50 - run.start) / 60 == pytest.approx(expect, abs=expect * 0.15)
        assert m.p10 <= run.start + 60 * expect <= m.p90
