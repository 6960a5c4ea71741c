"""Accuracy regression on a small fixed subset of the scenario family, one test per figure.

The draws are tuning draws (``TUNING_SEEDS``; the accuracy report uses other, fresh draws)
with at most 5 machines, cut to 1.5 h so the module stays fast. Each threshold sits a
little under what was measured when it was set (in the comment), so a regression in lag
estimation, zones, tasks or the guardrail fails here. Every figure is also compared with a
naive method on the same recording.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin_server.analysis import AnalysisParams, analyze
from twin_server.baselines import (
    locator_shift_result,
    naive_median_lag,
    strongest_receiver_result,
    task_worker_accuracy,
    zone_accuracy_after_moves,
)
from twin_server.evaluate import BASELINE_SHIFT_S, score
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, fixed_scenario, simulate_scenario

#: Small tuning draws: every sensing, every lag process, kept and overtaken report order,
#: sensor dropouts (seeds from TUNING_SEEDS; see the module docstring).
DRAWS = (1046, 1052, 1056, 1068, 1070, 1075, 1090, 1096)
HOURS = 1.5


@pytest.fixture(scope="module")
def runs():
    out = []
    for seed in DRAWS:
        assert seed in TUNING_SEEDS
        draw = draw_scenario(seed, hours=HOURS)
        sim = simulate_scenario(draw)
        out.append((draw, sim, analyze(sim.readings, draw.site)))
    return out


@pytest.fixture(scope="module")
def per_move(pilot_site):
    """The pilot under independent per-move lag, with RSSI; the same recording without RSSI."""
    draw = fixed_scenario(pilot_site, 7, hours=3.0, sensing="both", lag_process="per_move")
    sim = simulate_scenario(draw)
    no_rssi = sim.readings[sim.readings["kind"] != "rssi"].reset_index(drop=True)
    return draw, sim, no_rssi


def naive_zone(draw, sim) -> dict[str, float]:
    """Zone accuracy of every naive method that the recording allows."""
    truth, readings, site = sim.truth, sim.readings, draw.site
    out = {}
    if draw.params.locator:
        for name, shift in (
            ("raw", 0.0),
            ("30 s", BASELINE_SHIFT_S),
            ("median lag", naive_median_lag(readings, site)),
        ):
            out[name] = score(
                truth, locator_shift_result(truth, readings, site, shift), zones_only=True
            ).zone_accuracy
    if draw.params.rssi:
        out["strongest receiver"] = score(
            truth, strongest_receiver_result(truth, readings, site), zones_only=True
        ).zone_accuracy
    return out


def test_guardrail_draws_below_their_best_naive_baseline(runs):
    """The target is none; measured: 2 of these 8 draws (1070 by 0.009 to the 30 s shift, 1090 by
    0.016 to the median lag read off the file), each losing to a constant shift of a lag that
    barely moves (stretches, drift; docs/accuracy.md). 1046 (0.016 below) was fixed by the
    pressure baseline at the window's end. The lag fit's fixed 20 s start took 1090 from 0.010
    to 0.016 below (its zone 0.9756 -> 0.9691) and 1070 from 0.011 to 0.009; on the 48 tuning
    draws per process it left the drifting-lag draws below their best naive method at 16 of 48
    and cut the others' (per move 4 -> 2, outliers 8 -> 3, stretches 16 -> 14)."""
    below = {}
    for draw, sim, res in runs:
        got = score(sim.truth, res, zones_only=True).zone_accuracy
        naive = naive_zone(draw, sim)
        best = max(naive.values())
        if got < best:
            below[draw.seed] = best - got
    assert len(below) <= 2, below
    assert max(below.values(), default=0.0) <= 0.02, below


def test_zone_accuracy(runs):
    acc = [score(sim.truth, res, zones_only=True).zone_accuracy for _d, sim, res in runs]
    # Measured: mean 0.934, worst 0.793 (1052, RSSI only) with the old RSSI grid; with the
    # self-calibrating RSSI model (merged from h13-rssi) 1052 gives 0.752; mean 0.940.
    assert np.mean(acc) >= 0.93
    assert min(acc) >= 0.74


def test_zone_accuracy_after_moves(runs):
    got, fixed = [], []
    for draw, sim, res in runs:
        if not draw.params.locator:
            continue
        got.append(zone_accuracy_after_moves(sim.truth, res))
        shifted = locator_shift_result(sim.truth, sim.readings, draw.site, BASELINE_SHIFT_S)
        fixed.append(zone_accuracy_after_moves(sim.truth, shifted))
    # Measured: 0.917 mean (0.905 from the read-off lag start, 0.910 without the lag chain); the
    # pilot's fixed 30 s shift 0.895 on the same draws (the target, >= 0.93, is not met here;
    # docs/accuracy.md).
    assert np.mean(got) >= 0.9
    assert np.mean(got) >= np.mean(fixed)


def test_per_move_lag_locator_only(per_move):
    """Cause 1: under independent per-move lag, each move's own evidence beats pooling visits."""
    draw, sim, no_rssi = per_move
    mae = score(sim.truth, analyze(no_rssi, draw.site), zones_only=True).lag_mae_s
    pooled = score(
        sim.truth, analyze(no_rssi, draw.site, params=AnalysisParams(lag_model="visits")), zones_only=True
    ).lag_mae_s
    # Measured: 10.3 s per move (12.4 s when the lag fit started from the lag read off the
    # file), 15.3 s with visits pooled in time.
    assert mae <= 11.5
    assert mae < pooled


def test_per_move_lag_with_rssi_never_worse(per_move):
    draw, sim, no_rssi = per_move
    with_rssi = score(sim.truth, analyze(sim.readings, draw.site)).lag_mae_s
    without = score(sim.truth, analyze(no_rssi, draw.site)).lag_mae_s
    # Measured: 9.5 s with RSSI, 10.3 s without (target <= 5 s with RSSI: not met). From the lag
    # read off the file it was 8.6 s and 12.5 s: this draw lost 0.9 s with RSSI where 24 tuning
    # draws with RSSI and per-move lag gained 0.7 s on average (docs/analysis.md).
    assert with_rssi <= 10.0
    assert with_rssi <= without


def test_lag_fit_starts_from_a_fixed_lag_not_one_read_off_shared_machines():
    """Tuning draw 1022 (2 machines shared by 2 workers, per-move lag, true median 14 s): the
    entry lag read off the file (report minus the first press at that machine) takes the other
    worker's presses and reads 84 s, and the lag fit stays near that start."""
    draw = draw_scenario(1022, hours=2.0, sensing="locator", lag_process="per_move")
    sim = simulate_scenario(draw)
    # Without the lag chain, which mends this draw from either start (6.8 s from 84 s).
    fixed = analyze(sim.readings, draw.site, params=AnalysisParams(lag_chain_rhos=()))
    read_off = analyze(sim.readings, draw.site, params=AnalysisParams(lag_em_start_s=None, lag_chain_rhos=()))
    assert read_off.extra["analysis"]["lag_first_guess_s"] > 60.0
    got, before = score(sim.truth, fixed, zones_only=True), score(sim.truth, read_off, zones_only=True)
    # Measured: lag MAE 7.1 s and zone 0.969 from 20 s; 34.3 s and 0.880 from the 84 s read off.
    assert got.lag_mae_s <= 10.0 and before.lag_mae_s >= 25.0
    assert got.zone_accuracy >= before.zone_accuracy + 0.05
    raw = locator_shift_result(sim.truth, sim.readings, draw.site, 0.0)
    assert got.zone_accuracy > score(sim.truth, raw, zones_only=True).zone_accuracy  # 0.942


def test_lag_chain_where_the_file_shows_the_lag_holds():
    """Tuning draw 1018 (drifting lag, 2 h, locator only): the evidence chooses consecutive
    moves sharing their lag, and the lag and zones follow."""
    draw = draw_scenario(1018, hours=2.0, sensing="locator", lag_process="drift")
    sim = simulate_scenario(draw)
    chained = analyze(sim.readings, draw.site)
    alone = analyze(sim.readings, draw.site, params=AnalysisParams(lag_chain_rhos=()))
    assert chained.extra["analysis"]["lag_chain_rho"] > 0  # measured 0.95 (+92.7 nats over 0)
    got, before = score(sim.truth, chained, zones_only=True), score(sim.truth, alone, zones_only=True)
    # Measured: lag MAE 21.1 -> 11.8 s, zone 0.888 -> 0.917 (best naive: the 30 s shift 0.910).
    assert got.lag_mae_s <= before.lag_mae_s - 5.0
    assert got.zone_accuracy >= before.zone_accuracy + 0.02
    assert got.zone_accuracy > max(naive_zone(draw, sim).values())


def test_lag_per_process(runs):
    by_process: dict[str, list[float]] = {}
    for draw, sim, res in runs:
        if draw.params.locator:
            by_process.setdefault(draw.lag_process, []).append(score(sim.truth, res).lag_mae_s)
    assert set(by_process) == {"stretches", "per_move", "drift", "outliers"}
    # Measured (mean per process): stretches 10.9 s, per_move 6.7 s, drift 8.7 s, outliers 28.7 s
    # (from the read-off start without the lag chain: 13.3, 7.7, 7.2, 32.1 s; the one drift draw
    # here, 1090, lost 1.5 s and the 48 drifting-lag tuning draws gained 0.7 s, docs/analysis.md).
    means = {k: np.mean(v) for k, v in by_process.items()}
    assert means["per_move"] <= 7.5 and means["drift"] <= 9.5, means
    assert means["stretches"] <= 13.0 and means["outliers"] <= 30.0, means


def test_task_accuracy_and_macro_f1(runs):
    s = [score(sim.truth, res) for _d, sim, res in runs]
    # Measured: task 0.982, macro-F1 0.913 (target 0.93 not met; 1070: 0.747).
    assert np.mean([x.task_accuracy for x in s]) >= 0.975
    assert np.mean([x.task_macro_f1 for x in s]) >= 0.91


def test_task_worker_attribution(runs):
    got = [task_worker_accuracy(sim.truth, res) for _d, sim, res in runs]
    got = [g for g in got if g is not None]
    # Measured: 0.954 (with the self-calibrating RSSI model; 0.872 with the old RSSI grid).
    assert np.mean(got) >= 0.94


def test_zone_confidence_is_lower_where_the_zone_is_wrong(runs):
    """The per-move posterior says where it is unsure: wrong seconds carry less confidence."""
    from twin_server.evaluate import label_grid, score_times

    right, wrong = [], []
    for draw, sim, res in runs:
        if not draw.params.locator:
            continue
        times = score_times(sim.truth.window_start, sim.truth.window_end)
        for w in draw.site.worker_ids:
            t = label_grid(
                [(z.start, z.end, z.zone) for z in sim.truth.worker_zones if z.worker == w], times, "?"
            )
            mine = [z for z in res.worker_zones if z.worker == w]
            r = label_grid([(z.start, z.end, z.zone) for z in mine], times, "?")
            c = label_grid([(z.start, z.end, z.confidence or 0.0) for z in mine], times, np.nan)
            right += list(c[t == r])
            wrong += list(c[t != r])
    # Measured: 0.891 on wrong seconds, 0.928 on right ones, after the per-source calibration
    # (confidence.py maps the posterior through isotonic tables, which flattens it; before
    # calibration the gap was larger than 0.05).
    assert np.nanmean(wrong) < np.nanmean(right) - 0.025


def test_regression_draws_are_what_they_claim(runs):
    kinds = {(d.sensing, d.lag_process) for d, _s, _r in runs}
    assert {"locator", "rssi", "both"} <= {k[0] for k in kinds}
    assert any(not d.params.locator_keep_order for d, _s, _r in runs)
    assert any(d.dropouts for d, _s, _r in runs)
    assert dataclasses.is_dataclass(runs[0][0].params)


def test_live_zone_accuracy_through_the_live_path(tmp_path, pilot_site):
    """The live server's analysis (the journal read by ``analysis_worker.analyze_journal``, the
    function its child process runs) is ``analyze`` itself, and its causal accuracy, what the
    live view shows at each instant from the readings received so far, sits beside the
    offline figure on the same instants."""
    from twin_server.evaluate import label_grid
    from twin_server.ingest.publish import frame_to_wire
    from twin_server.live.analysis_worker import analyze_journal
    from twin_server.store.journal import Journal

    draw = fixed_scenario(pilot_site, 7, hours=1.5, sensing="locator", lag_process="per_move")
    sim = simulate_scenario(draw)
    journal = Journal(tmp_path / "j.sqlite")
    wire = frame_to_wire(sim.readings, draw.site)
    journal.write_batch([(r, r.t_ns) for r in wire])
    lo = wire[0].t_ns / 1e9
    t0, t1 = sim.truth.window_start, sim.truth.window_end
    offline = analyze(sim.readings, draw.site)

    def zone_at(res, w, t):
        return label_grid(
            [(z.start, z.end, z.zone) for z in res.worker_zones if z.worker == w], np.array([t]), "?"
        )[0]

    live_hits, offline_hits = [], []
    for i, T in enumerate(np.arange(t0 + 300.0, t1, 60.0)):
        live = analyze_journal(journal, draw.site, None, lo, float(T))
        if i == 0:
            same = analyze(sim.readings[sim.readings["t"] < T].reset_index(drop=True), draw.site)
            assert [(z.worker, z.zone, z.start) for z in live.worker_zones] == [
                (z.worker, z.zone, z.start) for z in same.worker_zones
            ]
        for w in draw.site.worker_ids:
            truth = label_grid(
                [(z.start, z.end, z.zone) for z in sim.truth.worker_zones if z.worker == w],
                np.array([T - 0.5]),
                "?",
            )[0]
            mine = [z for z in live.worker_zones if z.worker == w]
            live_hits.append(bool(mine) and max(mine, key=lambda z: z.start).zone == truth)
            offline_hits.append(zone_at(offline, w, T - 0.5) == truth)
    live_acc, offline_acc = float(np.mean(live_hits)), float(np.mean(offline_hits))
    # Measured: live 0.941, offline 0.976 on the same 170 (worker, instant) pairs (the live
    # view cannot know a move the locator has not reported yet: it lags by the report delay;
    # two jig changes here last 15 min, over half of the early prefixes, so the pressure
    # baseline of a short prefix is unsure: 0.965 with the earlier mirrored baseline).
    assert live_acc >= 0.93, (live_acc, offline_acc)
    assert offline_acc >= live_acc, (live_acc, offline_acc)


def test_an_overtaken_exit_does_not_end_the_visit():
    """Tuning draw 1025 (locator only, per-move lag, reports may overtake, 2 h): the walk to a
    machine is reported after the entry into it, so the stream says the machine and then
    `none` while the worker works on. The presses after it are given to that worker and the
    stale `none` is dropped, so the visit and its tasks go on."""
    draw = draw_scenario(1025, hours=2.0, sensing="locator")
    assert draw.lag_process == "per_move" and not draw.params.locator_keep_order
    sim = simulate_scenario(draw)
    res = analyze(sim.readings, draw.site)
    got = score(sim.truth, res)
    assert sum(res.extra["analysis"]["lag_reports_dropped"].values()) >= 1
    # Measured: zone 0.820 and macro-F1 0.857 (before: 0.746 and 0.817); best naive 0.652.
    assert got.zone_accuracy >= 0.80
    assert got.task_macro_f1 >= 0.84
    assert got.zone_accuracy > max(naive_zone(draw, sim).values())


def test_a_stale_exit_report_does_not_take_the_real_exit_with_it():
    """Tuning draw 1006, through ``analyze()``: W2's short exit was reported 80 s late, after
    the re-entry's report, and dropped as stale; the real exit's ``none`` was its repeat and
    went with it, so W2 stayed at M2 for the last 30 min (W2 right 0.589 of the seconds; the
    30 s shift 0.816). Kept behind the stale report, the repeat is the exit: 0.810."""
    from twin_server.evaluate import label_grid

    draw = draw_scenario(1006)
    sim = simulate_scenario(draw)
    res = analyze(sim.readings, draw.site)
    truth = sim.truth
    t = np.arange(truth.window_start, truth.window_end, 1.0) + 0.5

    def labels(zones) -> np.ndarray:
        return label_grid([(z.start, z.end, z.zone) for z in zones if z.worker == "W2"], t, "<missing>")

    said, true = labels(res.worker_zones), labels(truth.worker_zones)
    assert (said == true).mean() > 0.78
    last = t >= truth.window_end - 1500  # W2 left M2 by then
    assert (true[last] == "none").all()
    assert (said[last] == "none").mean() > 0.95
