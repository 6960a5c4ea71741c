"""Accuracy regression on a small fixed set of simulated shifts (see docs/accuracy.md).

Thresholds sit just under what was measured when they were set, so a regression in any
stage (alignment, machine state, zones, lag, tasks) fails here. The simulator is
deterministic per seed.
"""

from __future__ import annotations

import itertools

import pytest

from twin_server.analysis import AnalysisParams, analyze
from twin_server.evaluate import baseline_results, score
from twin_server.simulate import SimParams, simulate, synthetic_site


@pytest.fixture(scope="module")
def pilot_runs(pilot_site):
    out = []
    for seed in (1, 2):
        sim = simulate(pilot_site, 2.0, seed)
        out.append((sim, analyze(sim.readings, pilot_site)))
    return out


def _check_schema(result, site, *, locator: bool = True) -> None:
    covered = [
        ("machine", site.machine_ids, result.machine_states),
        ("worker", site.worker_ids, result.worker_zones),
    ]
    if locator:
        covered.append(("worker", site.worker_ids, result.beacon_lag))
    else:
        assert result.beacon_lag == [], "RSSI has no lag: nothing to report"
    for key, ids, rows in covered:
        for i in ids:
            mine = sorted((r for r in rows if getattr(r, key) == i), key=lambda r: r.start)
            assert mine, f"nothing for {i}"
            assert mine[0].start == pytest.approx(result.window_start)
            assert mine[-1].end == pytest.approx(result.window_end)
            for a, b in itertools.pairwise(mine):
                assert a.end == pytest.approx(b.start)
    for m in site.machine_ids:
        tasks = sorted((t for t in result.tasks if t.machine == m), key=lambda t: t.start)
        for a, b in itertools.pairwise(tasks):
            assert a.end <= b.start + 1e-6, f"overlapping tasks on {m}: {a} {b}"
        assert all(t.end > t.start for t in tasks)
        assert all(t.worker is None or t.worker in site.worker_ids for t in tasks)


@pytest.mark.parametrize("i", [0, 1])
def test_pilot_site_accuracy(pilot_runs, pilot_site, i) -> None:
    sim, result = pilot_runs[i]
    _check_schema(result, pilot_site)
    s = score(sim.truth, result)
    # Measured (seed 1 / seed 2): zone 0.9956/0.9965, task 0.993/0.993, F1 0.974/0.970,
    # lag MAE 2.61/1.46 s (RSSI in the lag as a channel calibrated on the file's sure seconds).
    # The per-visit model pooled in time had 0.9980/0.9982 and 1.6/1.2 s on this lag, which
    # holds for minutes: the per-move model gives a little of that up, see docs/accuracy.md.
    assert s.zone_accuracy >= 0.995
    assert s.task_accuracy >= 0.97
    assert s.task_macro_f1 >= 0.94
    assert s.machine_state_accuracy >= 0.999
    assert s.lag_mae_s <= 2.7
    base = baseline_results(sim.truth, sim.readings, pilot_site)
    assert s.zone_accuracy > score(sim.truth, base["raw"], zones_only=True).zone_accuracy
    assert s.zone_accuracy > score(sim.truth, base["shifted_30s"], zones_only=True).zone_accuracy


def test_rssi_only_recording(pilot_site) -> None:
    sim = simulate(pilot_site, 2.0, 3, params=SimParams(locator=False))
    assert not (sim.readings["kind"] == "zone").any()
    result = analyze(sim.readings, pilot_site)
    _check_schema(result, pilot_site, locator=False)
    s = score(sim.truth, result)
    # Measured: zone 0.9812 (0.9967 before the zone chain: where the smoother is under 0.8 sure
    # the chain now has a half say, which on the family's RSSI-only tuning draws gains 3.6
    # points and here, with good radio, costs 1.5; 0.9988 with the previous path-loss grid).
    assert s.zone_accuracy >= 0.975
    assert s.task_accuracy >= 0.965
    assert s.task_macro_f1 >= 0.93


def test_eight_machines_four_workers() -> None:
    site = synthetic_site(8, 4)
    sim = simulate(site, 1.0, 1)
    result = analyze(sim.readings, site)
    _check_schema(result, site)
    s = score(sim.truth, result)
    # Measured: zone 0.9913, task 0.990, F1 0.970, state 0.9999, lag MAE 7.79 s. The lag
    # holds for minutes here (the simulator's default): the per-visit model pooled in time has
    # 1.9 s, the per-move model with the earlier RSSI model 4.19 s; the RSSI channel now
    # counts a run of wrong seconds as few (its errors last, rho 0.9+), see docs/accuracy.md.
    assert s.zone_accuracy >= 0.989
    assert s.task_accuracy >= 0.985
    assert s.task_macro_f1 >= 0.96
    assert s.machine_state_accuracy >= 0.999
    assert s.lag_mae_s <= 8.2


def test_rssi_only_eight_machines_body_shadowing() -> None:
    """Idle spots on the aisle between machines, the body shadowing the receivers behind the
    wearer: the body loss is fitted (presence events label the seconds it is fitted on)."""
    site = synthetic_site(8, 4)
    sim = simulate(site, 1.0, 2, params=SimParams(locator=False))
    result = analyze(sim.readings, site)
    _check_schema(result, site, locator=False)
    # Measured: zone 0.9874 (fitted body loss 6.2 dB, 94 labelled windows; 0.9951 with the
    # previous path-loss grid).
    assert score(sim.truth, result).zone_accuracy >= 0.98
    model = result.extra["analysis"]["rssi_model"]
    assert model["body_loss_db"] > 2
    assert model["labelled_windows"] > 50


def test_switch_free_mode_finds_tasks_without_switches(pilot_runs, pilot_site) -> None:
    sim, _ = pilot_runs[0]
    result = analyze(sim.readings, pilot_site, params=AnalysisParams(switch_free=True))
    _check_schema(result, pilot_site)
    s = score(sim.truth, result)
    names = {t.task for t in result.tasks}
    assert {"tool_change", "material_setting"} <= names
    # Measured 0.91 task accuracy and 0.55 macro-F1 with default priors on a held-out
    # seed: well short of the switch-based 0.97/0.95, but far above leaving them out.
    only_jigs = score(
        sim.truth,
        type(result)(**{**result.__dict__, "tasks": [t for t in result.tasks if t.task == "jig_change"]}),
    )
    assert s.task_accuracy > only_jigs.task_accuracy
    assert s.task_macro_f1 >= 0.45


def test_clock_offsets_are_applied(pilot_site) -> None:
    """A machine Pi whose clock runs 40 s slow: the offset param puts its events back."""
    sim = simulate(pilot_site, 1.0, 4)
    frame = sim.readings.copy()
    slow = frame["source"] == "M3"
    frame.loc[slow, "t"] = frame.loc[slow, "t"] - 40.0
    fixed = analyze(frame, pilot_site, params=AnalysisParams(clock_offsets_s={"M3": 40.0}))
    skewed = analyze(frame, pilot_site)
    good = score(sim.truth, fixed).machine_state_accuracy
    assert good >= 0.999
    assert good > score(sim.truth, skewed).machine_state_accuracy


def test_a_worker_never_heard_is_not_placed_by_elimination(pilot_site) -> None:
    """Operator B's beacon is not heard all day (not on site, or not worn): presses W1's zone
    does not explain must not be given to B just because B is the only other worker."""
    sim = simulate(pilot_site, 1.0, 5)
    beacon = next(w.beacon for w in pilot_site.workers if w.id == "W2")
    frame = sim.readings
    heard = frame["kind"].isin(["zone", "rssi"]) & (frame["channel"].astype(str) == beacon)
    frame = frame[~heard].reset_index(drop=True)
    assert any(t.worker == "W2" for t in sim.truth.tasks)  # B did work: the events are there
    result = analyze(frame, pilot_site)
    assert {z.zone for z in result.worker_zones if z.worker == "W2"} == {"none"}
    assert not [t for t in result.tasks if t.worker == "W2"]
    assert len(result.tasks) == len(sim.truth.tasks)  # the work is still found, only not given to B
