"""The simulated factory day: determinism, contract formats, truth invariants, sensor models."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_server.__main__ import main
from twin_server.readings import load_readings_csv, validate_readings
from twin_server.result import Result, load_result
from twin_server.simulate import SimParams, simulate, synthetic_site
from twin_server.simulate.params import param_docs, param_table_markdown
from twin_server.simulate.sensors import render_switches
from twin_server.simulate.shift import Schedule, TaskRun, draw_changeover, off_intervals
from twin_server.site import load_site

TASKS = ("jig_change", "tool_change", "program_input", "material_setting")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pilot():
    return load_site(ROOT / "examples" / "pilot_site.yaml")


@pytest.fixture(scope="module")
def day(pilot):
    """A full 8 h shift of the pilot site (includes the three breaks)."""
    return simulate(pilot, hours=8, seed=11)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    site = ROOT / "examples" / "pilot_site.yaml"
    code = main(["simulate", "--site", str(site), "--hours", "1.5", "--seed", "3", "--out", str(out)])
    assert code == 0
    return out


def _covers(intervals: list[tuple[float, float]], start: float, end: float) -> None:
    intervals = sorted(intervals)
    assert intervals[0][0] == pytest.approx(start)
    assert intervals[-1][1] == pytest.approx(end)
    for (_, b), (a, _) in itertools.pairwise(intervals):
        assert a == pytest.approx(b), "gap or overlap"
    assert all(b > a for a, b in intervals)


# -- CLI, determinism, formats ---------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    site = str(ROOT / "examples" / "pilot_site.yaml")
    for name, seed in (("a", 5), ("c", 6)):
        args = [
            "simulate",
            "--site",
            site,
            "--hours",
            "0.5",
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / name),
        ]
        assert main(args) == 0
    # The same seed in another process with another string-hash seed gives the same bytes.
    args = ["simulate", "--site", site, "--hours", "0.5", "--seed", "5", "--out", str(tmp_path / "b")]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "twin_server", *args], check=True, env=env, cwd=ROOT, capture_output=True
    )
    for f in ("readings.csv", "truth.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes()


def test_readings_load_without_rejections(cli_run, pilot):
    loaded = load_readings_csv(cli_run / "readings.csv", pilot)
    assert loaded.rejected_rows == 0
    kinds = set(loaded.frame["kind"])
    assert {"light", "pressure", "rssi", "zone"} <= kinds
    truth = load_result(cli_run / "truth.json")
    assert truth.rejected_rows == 0
    assert truth.window_end - truth.window_start == pytest.approx(1.5 * 3600)
    t = loaded.frame["t"]
    # The recording spans the window (device clocks are exact by default).
    assert t.min() >= truth.window_start and t.max() < truth.window_end
    assert t.min() - truth.window_start < 1.0 and truth.window_end - t.max() < 2.0
    assert Path(truth.extra["simulation"]["site_file"]) == (ROOT / "examples" / "pilot_site.yaml").resolve()


def test_no_rssi_no_locator_flags(tmp_path, pilot):
    site = str(ROOT / "examples" / "pilot_site.yaml")
    assert (
        main(
            [
                "simulate",
                "--site",
                site,
                "--hours",
                "0.3",
                "--out",
                str(tmp_path),
                "--no-rssi",
                "--no-locator",
            ]
        )
        == 0
    )
    kinds = set(load_readings_csv(tmp_path / "readings.csv", pilot).frame["kind"])
    assert "rssi" not in kinds and "zone" not in kinds and "light" in kinds


def test_synthetic_site_cli(tmp_path, capsys):
    outs = [tmp_path / "one", tmp_path / "elsewhere" / "two"]
    for out in outs:
        args = ["simulate", "--machines", "8", "--workers", "4", "--hours", "0.5", "--seed", "1"]
        assert main([*args, "--out", str(out)]) == 0
    # Same seed, different output folders: the same bytes.
    for f in ("readings.csv", "truth.json", "site.yaml"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes()
    site = load_site(outs[0] / "site.yaml")
    assert len(site.machines) == 8 and len(site.workers) == 4 and len(site.receivers) == 8
    loaded = load_readings_csv(outs[0] / "readings.csv", site)
    assert loaded.rejected_rows == 0
    assert set(loaded.frame.loc[loaded.frame["kind"] == "light", "source"]) == set(site.machine_ids)
    # evaluate finds the generated site next to the truth for its baselines.
    truth = str(outs[1] / "truth.json")
    capsys.readouterr()
    assert main(["evaluate", "--truth", truth, "--result", truth]) == 0
    assert "baselines not computed" not in capsys.readouterr().out


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path)]) == 2
    assert "--site or --machines" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: x\nmachines: []\n")
    assert main(["simulate", "--site", str(bad), "--out", str(tmp_path)]) == 2
    assert "machines" in capsys.readouterr().err
    site = str(ROOT / "examples" / "pilot_site.yaml")
    assert main(["simulate", "--site", site, "--out", str(tmp_path), "--param", "nope=1"]) == 2
    assert main(["simulate", "--site", site, "--out", str(tmp_path), "--forgotten-share", "2"]) == 2
    bad_params = (
        "packet_loss=1.5",
        "walk_speed_mps=1.2,0.8",
        "adv_interval_s=0",
        "lag_median_s=nan",
        "rssi=[",
    )
    for bad_param in bad_params:
        assert main(["simulate", "--site", site, "--out", str(tmp_path), "--param", bad_param]) == 2
        assert bad_param.split("=")[0] in capsys.readouterr().err
    assert main(["simulate", "--site", site, "--out", str(tmp_path), "--hours", "inf"]) == 2
    assert main(["simulate", "--site", site, "--out", str(tmp_path), "--start", "nan"]) == 2
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["simulate", "--site", site, "--hours", "0.05", "--out", str(a_file / "sub")]) == 2
    assert "cannot write" in capsys.readouterr().err
    with pytest.raises(ValueError, match="forgotten_share"):
        SimParams(forgotten_share=-0.1)


def test_param_override_changes_behaviour(tmp_path, pilot):
    site = str(ROOT / "examples" / "pilot_site.yaml")
    assert (
        main(
            [
                "simulate",
                "--site",
                site,
                "--hours",
                "0.5",
                "--out",
                str(tmp_path),
                "--param",
                "adv_interval_s=1.0",
                "--param",
                "walk_speed_mps=0.9,1.0",
            ]
        )
        == 0
    )
    rssi = load_readings_csv(tmp_path / "readings.csv", pilot).frame.query("kind == 'rssi'")
    per_link_rate = len(rssi) / (1800 * len(pilot.receivers) * len(pilot.workers))
    assert per_link_rate < 1.0  # one advert a second at most, minus losses


def test_every_parameter_documented():
    doc = (ROOT / "docs" / "simulator.md").read_text()
    for name, _default, text in param_docs():
        assert text, f"{name} has no doc"
    # The doc's table is the one generated from the dataclass: defaults cannot drift apart.
    assert param_table_markdown() in doc


# -- truth invariants -------------------------------------------------------------------------------


def test_truth_covers_window(day, pilot):
    truth = day.truth
    for m in pilot.machine_ids:
        states = [(s.start, s.end) for s in truth.machine_states if s.machine == m]
        _covers(states, truth.window_start, truth.window_end)
        assert {s.state for s in truth.machine_states} <= {"running", "stopped"}
    for w in pilot.worker_ids:
        zones = [(z.start, z.end) for z in truth.worker_zones if z.worker == w]
        _covers(zones, truth.window_start, truth.window_end)
    lag_by_worker = defaultdict(list)
    for b in truth.beacon_lag:
        lag_by_worker[b.worker].append((b.start, b.end))
    for w in pilot.worker_ids:
        _covers(lag_by_worker[w], truth.window_start, truth.window_end)


def test_tasks_do_not_overlap_and_machine_is_stopped(day, pilot):
    truth = day.truth
    assert len(truth.tasks) > 10
    for m in pilot.machine_ids:
        tasks = sorted((t.start, t.end) for t in truth.tasks if t.machine == m)
        for (_, b), (a, _) in itertools.pairwise(tasks):
            assert a >= b
        running = [(s.start, s.end) for s in truth.machine_states if s.machine == m and s.state == "running"]
        for ts, te in tasks:
            assert not any(a < te and ts < b for a, b in running), "a task while the machine runs"
    assert {t.task for t in truth.tasks} == set(TASKS)
    assert {t.worker for t in truth.tasks} <= set(pilot.worker_ids)


def test_worker_is_at_the_machine_during_its_tasks(day):
    truth = day.truth
    for tk in truth.tasks:
        overlapping = [
            z.zone
            for z in truth.worker_zones
            if z.worker == tk.worker and z.start < tk.end and tk.start < z.end
        ]
        assert overlapping == [tk.machine], f"{tk} overlaps zones {overlapping}"
    # And one worker does one task at a time.
    by_worker = defaultdict(list)
    for tk in truth.tasks:
        by_worker[tk.worker].append((tk.start, tk.end))
    for items in by_worker.values():
        items.sort()
        assert all(a >= b for (_, b), (a, _) in itertools.pairwise(items))


def test_breaks_are_spent_off_the_floor(day, pilot):
    truth = day.truth
    lunch = [(a, b) for a, b in off_intervals(pilot, truth.window_start, truth.window_end) if b - a >= 3000]
    assert len(lunch) == 1
    a, b = lunch[0]
    probe_from, probe_to = a + 120, b - 1  # walking out of the door takes a little while
    for z in truth.worker_zones:
        if z.start < probe_to and probe_from < z.end:
            assert z.zone == "none"
    rssi = day.readings.query("kind == 'rssi'")
    during = rssi[(rssi["t"] > probe_from) & (rssi["t"] < probe_to)]
    assert len(during) == 0
    assert not any(a <= t.start < b for t in truth.tasks)


def test_task_durations_and_orders_are_realistic(pilot):
    params = SimParams()
    rng = np.random.default_rng(0)
    plans = [draw_changeover(rng, params) for _ in range(3000)]
    assert all(plans)
    durations = defaultdict(list)
    jig_first = jig_present = 0
    orders = set()
    for plan in plans:
        names = [n for n, _ in plan]
        assert len(set(names)) == len(names)
        orders.add(tuple(names))
        for n, d in plan:
            durations[n].append(d / 60)
        if "jig_change" in names:
            jig_present += 1
            jig_first += names[0] == "jig_change"
    assert 0.8 < jig_first / jig_present < 0.97
    assert 0.4 < jig_present / len(plans) < 0.6
    assert len(orders) > 8  # tasks skipped and reordered
    for name, spec in params.tasks.items():
        d = np.array(durations[name])
        assert d.min() >= spec.min_min and d.max() <= spec.max_min
        assert np.median(d) == pytest.approx(spec.median_min, rel=0.1)
        assert d.std() > 0.2 * spec.median_min


def test_walking_takes_time_between_machines(day, pilot):
    # From zone to zone the worker walks 1 m out to the aisle, along it and 1 m back in,
    # at 0.8 .. 1.2 m/s: never faster, and never much slower for a direct move.
    centres = {m.id: m.centre for m in pilot.machines}
    moves = 0
    for w in pilot.worker_ids:
        zones = sorted((z.start, z.end, z.zone) for z in day.truth.worker_zones if z.worker == w)
        for i in range(len(zones) - 2):
            (_, _, z0), (a, b, mid), (_, _, z2) = zones[i : i + 3]
            if z0 != "none" and mid == "none" and z2 not in ("none", z0):
                path_m = math.dist(centres[z0], centres[z2]) + 2 * SimParams().aisle_offset_m
                assert b - a >= path_m / 1.2 - 0.2
                moves += 1
    assert moves >= 3


def test_machine_runs_are_long(day, pilot):
    runs = [
        s.end - s.start
        for s in day.truth.machine_states
        if s.state == "running" and day.truth.window_start < s.start and s.end < day.truth.window_end
    ]
    assert runs
    assert min(runs) >= 12 * 60 - 1
    assert np.median(runs) > 20 * 60


# -- sensors -----------------------------------------------------------------------------------------


def _state_at(truth, machine, t):
    iv = sorted((s.start, s.end, s.state) for s in truth.machine_states if s.machine == machine)
    starts = np.array([a for a, _, _ in iv])
    idx = np.searchsorted(starts, t, side="right") - 1
    return np.array([iv[i][2] for i in idx])


def test_stack_light_two_levels_per_machine(day, pilot):
    light = day.readings.query("kind == 'light'")
    levels = []
    for m in pilot.machine_ids:
        rows = light[light["source"] == m]
        state = _state_at(day.truth, m, rows["t"].to_numpy())
        on = rows["value"].to_numpy()[state == "running"]
        off = rows["value"].to_numpy()[state == "stopped"]
        assert len(on) > 100 and len(off) > 100
        assert np.percentile(on, 5) > np.percentile(off, 95)  # separable
        assert 0.9 < np.diff(np.sort(rows["t"].to_numpy())).mean() < 1.1  # ~1 Hz
        levels.append(np.median(on))
    assert len({round(v) for v in levels}) == len(levels)  # each machine its own level


def test_pressure_leaves_normal_during_jig_change(day, pilot):
    pressure = day.readings.query("kind == 'pressure'")
    jigs = [t for t in day.truth.tasks if t.task == "jig_change"]
    assert jigs
    for tk in jigs:
        rows = pressure[pressure["source"] == tk.machine]
        normal = rows["value"].median()
        mid = rows[(rows["t"] > tk.start + 20) & (rows["t"] < tk.end - 20)]["value"]
        assert mid.median() < 0.5 * normal
    for m in pilot.machine_ids:
        rows = pressure[pressure["source"] == m]
        quiet = rows["value"][(rows["value"] - rows["value"].median()).abs() < 0.1 * rows["value"].median()]
        assert quiet.std() / quiet.median() < 0.05


def _press_groups(switch: pd.DataFrame) -> list[pd.DataFrame]:
    """Presses of one button: rows closer than 1 s together (a press, its bounces, its release)."""
    groups = []
    for (_m, _c), rows in switch.groupby(["source", "channel"]):
        rows = rows.sort_values("t")
        edges = [0, *(np.flatnonzero(np.diff(rows["t"].to_numpy()) > 1.0) + 1), len(rows)]
        groups += [rows.iloc[a:b] for a, b in itertools.pairwise(edges) if b > a]
    return groups


def _press_count(switch: pd.DataFrame) -> int:
    """Number of presses (vectorised :func:`_press_groups`)."""
    total = 0
    for (_m, _c), rows in switch.groupby(["source", "channel"]):
        total += 1 + int(np.sum(np.diff(np.sort(rows["t"].to_numpy())) > 1.0))
    return total


def test_switch_presses_mark_task_starts(day):
    switch = day.readings.query("kind == 'switch'")
    groups = _press_groups(switch)
    marked = [t for t in day.truth.tasks if t.task != "jig_change"]
    assert 0.8 * len(marked) <= len(groups) <= len(marked)
    for g in groups:
        values = g["value"].tolist()
        assert values[0] == 1.0 and values[-1] == 0.0
        assert len(values) % 2 == 0
        t_first = g["t"].iloc[0]
        starts = [
            t.start for t in marked if t.machine == g["source"].iloc[0] and t.task == g["channel"].iloc[0]
        ]
        assert min(abs(t_first - s) for s in starts) <= 3.0
        hold = g["t"].iloc[-1] - t_first
        assert 0.05 < hold < 0.8
        if len(values) > 2:
            assert g["t"].iloc[2] - t_first <= 0.05  # a bounce


def test_forgotten_share_over_a_long_run():
    # Many tasks through the real renderer: 5 % of the presses should be missing.
    rng = np.random.default_rng(1)
    names = ["tool_change", "program_input", "material_setting", "jig_change"]
    tasks = [TaskRun("M1", names[i % 4], "W1", 1000.0 + 600 * i, 1300.0 + 600 * i) for i in range(16000)]
    sched = Schedule(0.0, 1e7, {"M1": []}, tasks, {}, {}, [])
    for share in (0.05, 0.2):
        params = SimParams(forgotten_share=share)
        pieces, counts = render_switches(sched, None, params, np.random.default_rng(2), {})
        presses = _press_count(pieces[0])
        assert counts["expected"] == 12000
        observed = 1 - presses / 12000
        assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / 12000)
        # Bounces: extra 1/0 pairs, about bounce_share of the presses.
        extra_pairs = (len(pieces[0]) - 2 * presses) / 2
        assert extra_pairs / presses == pytest.approx(params.bounce_share, abs=0.02)
    del rng


def test_rssi_follows_the_worker(day, pilot):
    rssi = day.readings.query("kind == 'rssi'")
    seconds = day.truth.window_end - day.truth.window_start
    for w in pilot.workers:
        zones = [(z.start, z.end, z.zone) for z in day.truth.worker_zones if z.worker == w.id]
        rows = rssi[rssi["channel"] == w.beacon]
        for m in pilot.machine_ids:
            at = np.zeros(len(rows), dtype=bool)
            t = rows["t"].to_numpy()
            for a, b, z in zones:
                if z == m:
                    at |= (t >= a) & (t < b)
            here = rows[at]
            by_receiver = here.groupby("source")["value"].median()
            own = next(r.id for r in pilot.receivers if r.machine == m)
            assert by_receiver.idxmax() == own
        per_receiver = rows.groupby("source").size() / seconds
        assert (per_receiver > 0.3).all() and (per_receiver < 3.5).all()
    assert rssi["value"].between(-110, -30).all()
    assert (rssi["value"] == rssi["value"].round()).all()


def test_locator_lag_range_and_reports(day, pilot):
    lags = [b.lag_s for b in day.truth.beacon_lag]
    assert min(lags) >= 6 and max(lags) <= 85
    for w in pilot.worker_ids:
        assert len({b.lag_s for b in day.truth.beacon_lag if b.worker == w}) >= 4  # it varies
    zone = day.readings.query("kind == 'zone'")
    for w in pilot.workers:
        reports = zone[zone["channel"] == w.beacon].sort_values("t")
        changes = sorted((z.start, z.zone) for z in day.truth.worker_zones if z.worker == w.id)[1:]
        lag_iv = [(b.start, b.end, b.lag_s) for b in day.truth.beacon_lag if b.worker == w.id]
        # Every report after the first is a true change, late by about the true lag at that change.
        matched = 0
        for (_, r), (start, label) in zip(reports.iloc[1:].iterrows(), changes, strict=False):
            assert r["label"] == label
            lag = next(v for a, b, v in lag_iv if a <= start < b)
            delay = r["t"] - start
            assert delay >= lag - 0.01
            matched += abs(delay - lag) < 0.2
        assert matched >= 0.8 * min(len(changes), len(reports) - 1)


def test_lag_distribution_like_the_pilot():
    site = synthetic_site(2, 6)
    sim = simulate(site, hours=9, seed=4, params=SimParams(rssi=False, locator=False))
    lags = np.array([b.lag_s for b in sim.truth.beacon_lag])
    weights = np.array([b.end - b.start for b in sim.truth.beacon_lag])
    order = np.argsort(lags)
    cdf = np.cumsum(weights[order]) / weights.sum()
    median = lags[order][np.searchsorted(cdf, 0.5)]
    assert 12 <= median <= 32
    assert lags.max() > 45  # occasional large outliers
    assert lags.min() >= 6


def test_clock_offsets_shift_device_time(pilot):
    base = simulate(pilot, hours=0.2, seed=2)
    skewed = simulate(pilot, hours=0.2, seed=2, params=SimParams(clock_offset_sd_s=3.0))
    offsets = skewed.facts["clock_offsets_s"]
    assert any(abs(v) > 0.1 for v in offsets.values())
    for m in pilot.machine_ids:
        a = base.readings.query("kind == 'light' and source == @m")["t"].to_numpy()
        b = skewed.readings.query("kind == 'light' and source == @m")["t"].to_numpy()
        np.testing.assert_allclose(b - a, offsets[m], atol=1e-6)
    # The truth stays in true time.
    assert base.truth.to_dict()["tasks"] == skewed.truth.to_dict()["tasks"]


def test_bigger_sites_simulate():
    site = synthetic_site(8, 4)
    sim = simulate(site, hours=2, seed=9)
    assert {t.machine for t in sim.truth.tasks} >= set(site.machine_ids[:4])
    zones = {z.zone for z in sim.truth.worker_zones}
    assert len(zones - {"none"}) >= 4


def test_params_dataclass_is_frozen():
    p = SimParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.forgotten_share = 0.5  # type: ignore[misc]


@settings(max_examples=6, deadline=None)
@given(
    n_machines=st.integers(1, 6),
    n_workers=st.integers(0, 3),
    hours=st.floats(0.05, 0.75),
    seed=st.integers(0, 2**31),
    start_hour=st.floats(0, 24),
    clock_sd=st.sampled_from([0.0, 2.0]),
)
def test_any_site_and_window_gives_valid_output(n_machines, n_workers, hours, seed, start_hour, clock_sd):
    site = synthetic_site(n_machines, n_workers)
    start = 1_675_641_600.0 + start_hour * 3600  # any time of day, breaks and nights included
    sim = simulate(site, hours=hours, seed=seed, start=start, params=SimParams(clock_offset_sd_s=clock_sd))
    truth = sim.truth
    # As read from a CSV, a zone row carries its machine id in ``value``.
    as_read = sim.readings.assign(
        value=np.where(sim.readings["kind"] == "zone", sim.readings["label"], sim.readings["value"])
    )
    checked = validate_readings(as_read, site)
    assert checked.rejected_rows == 0
    for m in site.machine_ids:
        _covers([(s.start, s.end) for s in truth.machine_states if s.machine == m], start, truth.window_end)
        tasks = sorted((t.start, t.end) for t in truth.tasks if t.machine == m)
        assert all(a >= b for (_, b), (a, _) in itertools.pairwise(tasks))
    for w in site.worker_ids:
        _covers([(z.start, z.end) for z in truth.worker_zones if z.worker == w], start, truth.window_end)
        _covers([(b.start, b.end) for b in truth.beacon_lag if b.worker == w], start, truth.window_end)
    for tk in truth.tasks:
        assert start <= tk.start < tk.end <= truth.window_end
    # Round trip through the contract's JSON.
    assert Result.from_dict(truth.to_dict()).to_dict() == truth.to_dict()


def test_truth_records_what_makes_the_same_day_again(tmp_path, pilot):
    site = str(ROOT / "examples" / "pilot_site.yaml")
    args = ["--hours", "0.4", "--seed", "8", "--forgotten-share", "0.3", "--param", "lag_median_s=35"]
    assert main(["simulate", "--site", site, "--out", str(tmp_path), *args]) == 0
    truth = load_result(tmp_path / "truth.json")
    recorded = truth.extra["simulation"]
    assert recorded["params"] == {"forgotten_share": 0.3, "lag_median_s": 35.0}
    params = SimParams(**recorded["params"])
    again = simulate(pilot, hours=recorded["hours"], seed=recorded["seed"], params=params)
    assert again.truth.to_dict()["tasks"] == truth.to_dict()["tasks"]
    assert again.truth.to_dict()["beacon_lag"] == truth.to_dict()["beacon_lag"]


def test_locator_imperfections_when_asked(pilot):
    base = simulate(pilot, hours=3, seed=12, params=SimParams(rssi=False))
    worse = simulate(
        pilot,
        hours=3,
        seed=12,
        params=SimParams(rssi=False, locator_min_dwell_s=60.0, locator_flicker_per_h=6.0),
    )
    assert base.truth.to_dict()["worker_zones"] == worse.truth.to_dict()["worker_zones"]
    for w in pilot.workers:
        zones = [(z.zone, z.start, z.end) for z in base.truth.worker_zones if z.worker == w.id]
        short = sum(1 for _, a, b in zones[1:] if b - a < 60.0)
        assert short > 0
        rows = {}
        for name, sim in (("base", base), ("worse", worse)):
            r = sim.readings
            rows[name] = r[(r["kind"] == "zone") & (r["channel"] == w.beacon)]
        # By default every change is reported (bar the last few, whose report would come too late).
        assert len(zones) - 3 <= len(rows["base"]) <= len(zones)
        # About 6/h x 3 h = 18 flickers of two reports each (some skipped), minus the short visits.
        assert len(rows["worse"]) <= len(rows["base"]) + 2 * 40
        flickers = 0
        labels = rows["worse"]["label"].tolist()
        t = rows["worse"]["t"].to_numpy()
        for k in range(1, len(labels) - 1):
            if labels[k - 1] == labels[k + 1] and t[k + 1] - t[k] <= 15.0 + 1e-6:
                flickers += 1
        assert flickers >= 3
        assert all(a != b for a, b in itertools.pairwise(labels))  # a report is always a change


def test_switching_a_sensor_family_off_leaves_the_others_alone(pilot):
    full = simulate(pilot, hours=0.5, seed=21)
    lean = simulate(pilot, hours=0.5, seed=21, params=SimParams(rssi=False, locator=False))
    assert full.truth.to_dict()["tasks"] == lean.truth.to_dict()["tasks"]
    for kind in ("light", "pressure", "switch"):
        a = full.readings[full.readings["kind"] == kind].reset_index(drop=True)
        b = lean.readings[lean.readings["kind"] == kind].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert {"rssi", "zone"}.isdisjoint(set(lean.readings["kind"]))
