"""The scenario family: ranges as documented, fixed seed sets, per-move lag, dropouts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from twin_server.simulate.family import (
    REPORT_SEEDS,
    TUNING_SEEDS,
    Dropout,
    apply_dropouts,
    draw_scenario,
    fixed_scenario,
    simulate_scenario,
)
from twin_server.simulate.layouts import _segment_distance
from twin_server.simulate.params import PILOT_LAG_SAMPLES_S


def test_tuning_and_report_seeds_are_disjoint_and_fixed():
    assert not set(TUNING_SEEDS) & set(REPORT_SEEDS)
    assert len(REPORT_SEEDS) >= 200 and len(TUNING_SEEDS) >= 100
    a, b = draw_scenario(TUNING_SEEDS[0]), draw_scenario(TUNING_SEEDS[0])
    assert a.params == b.params and a.facts == b.facts and a.start == b.start
    assert draw_scenario(TUNING_SEEDS[1]).facts != a.facts


@pytest.fixture(scope="module")
def draws():
    return [draw_scenario(s) for s in TUNING_SEEDS[:60]]


def test_draws_cover_the_documented_ranges(draws):
    kinds = {d.facts["layout"] for d in draws}
    assert kinds == {"rows", "u_cells", "scattered"}
    assert {d.sensing for d in draws} == {"locator", "rssi", "both"}
    assert {d.lag_process for d in draws if d.lag_process} == {"stretches", "per_move", "drift", "outliers"}
    assert {d.facts["floor_outline"] for d in draws} == {True, False}
    assert any(d.dropouts for d in draws) and any(not d.dropouts for d in draws)
    n_m = [len(d.site.machines) for d in draws]
    assert min(n_m) >= 2 and max(n_m) <= 30 and max(n_m) >= 15
    assert any(len(d.site.receivers) < len(d.site.machines) for d in draws)
    assert any(len(d.site.receivers) > len(d.site.machines) for d in draws)
    mounts = set().union(*(d.facts["receiver_mounts"] for d in draws))
    assert mounts == {"machine", "wall", "pillar", "ceiling"}
    for d in draws:
        p = d.params
        assert -75 <= p.tx_power_dbm <= -45 and 1.6 <= p.path_loss_exponent <= 3.5
        assert 0.1 <= p.packet_loss <= 0.8 and 0 <= p.body_loss_db <= 12
        assert p.receiver_gain_spread_db <= 8 and 0 <= p.forgotten_share <= 0.15
        assert 0.1 - 1e-9 <= p.adv_interval_s <= 2.0 and p.first_task_delay_s[1] <= 60
        assert 2 <= d.hours <= 4
        for m in d.site.machines:
            xs = [q[0] for q in m.zone]
            ys = [q[1] for q in m.zone]
            sides = sorted(math.dist(m.zone[i], m.zone[(i + 1) % 4]) for i in range(4))
            assert sides[0] >= 1.5 - 0.005 and sides[-1] <= 3.0 + 0.005, (d.seed, m.id, sides)
            assert min(xs) >= 0 and min(ys) >= 0
        for r in d.site.receivers:
            assert 1.0 <= r.position[2] <= 3.0
            near = min(_segment_distance(r.position[0], r.position[1], [list(q) for q in m.zone])
                       for m in d.site.machines)
            assert near <= 4.0 + 0.05, (d.seed, r.id, near)


def test_zones_do_not_overlap(draws):
    from twin_server.simulate.shift import zone_labels

    for d in draws[:20]:
        rng = np.random.default_rng(0)
        xs = [q[0] for m in d.site.machines for q in m.zone]
        ys = [q[1] for m in d.site.machines for q in m.zone]
        x = rng.uniform(min(xs), max(xs), 20000)
        y = rng.uniform(min(ys), max(ys), 20000)
        hits = np.zeros(len(x), dtype=int)
        from twin_server.simulate.shift import polygon_mask

        for m in d.site.machines:
            hits += polygon_mask(x, y, m.zone)
        assert hits.max() <= 1, d.seed
        assert (zone_labels(d.site, x, y) != "none").any()


def test_per_move_lag_is_independent_and_from_the_pilot_samples(pilot_site):
    draw = fixed_scenario(pilot_site, 5, hours=8.0, sensing="locator", lag_process="per_move")
    sim = simulate_scenario(draw)
    lags = np.array([b.lag_s for b in sim.truth.beacon_lag])
    assert len(lags) > 40
    samples = np.array(PILOT_LAG_SAMPLES_S)
    if draw.params.locator_keep_order:
        # A report may wait for the previous one: only ever longer than drawn.
        assert (lags >= 0.9 * samples.min() - 1e-6).all()
    else:
        near = np.min(np.abs(lags[:, None] / samples[None, :] - 1.0), axis=1)
        assert (near <= 0.1 + 1e-3).all()
    # Independent per move: neighbouring lags are not more alike than random pairs.
    r = np.corrcoef(lags[:-1], lags[1:])[0, 1]
    assert abs(r) < 0.3
    assert (lags > 60).any() and (lags < 10).any()


def test_lost_and_overtaken_reports(pilot_site):
    base = fixed_scenario(pilot_site, 6, hours=3.0, sensing="locator", lag_process="per_move")
    import dataclasses

    loose = dataclasses.replace(base, params=dataclasses.replace(base.params, locator_keep_order=False,
                                                                  locator_loss_share=0.2))
    sim = simulate_scenario(loose)
    zones = sim.readings[sim.readings["kind"] == "zone"]
    truth_changes = sum(1 for z in sim.truth.worker_zones)
    assert len(zones) < 0.9 * truth_changes  # some reports lost
    # Overtaken: some report arrives before a report of an earlier change.
    for w in pilot_site.workers:
        # The truth holds each change's actual delay: its report time is start + delay.
        rep = [b.start + b.lag_s for b in sim.truth.beacon_lag if b.worker == w.id]
        if any(b < a for a, b in itertools.pairwise(rep)):
            break
    else:
        pytest.fail("no overtaking report")


def test_dropouts_cut_the_device_rows(pilot_site):
    draw = fixed_scenario(pilot_site, 3, hours=1.0, sensing="both")
    sim = simulate_scenario(draw)
    t0 = draw.start
    gone = apply_dropouts(sim.readings, pilot_site, [Dropout("M3", t0 + 600, t0 + 1200)])
    inside = (gone["t"] >= t0 + 600) & (gone["t"] < t0 + 1200)
    # The machine's own rows and its receiver's (stamped by the machine's Pi) are gone ...
    assert not (inside & gone["source"].isin(["M3", "R3"])).any()
    # ... and nothing else.
    other = ~sim.readings["source"].isin(["M3", "R3"])
    assert (~gone["source"].isin(["M3", "R3"])).sum() == other.sum()


def test_a_family_draw_simulates_and_routes_leave_u_cells():
    seed = next(s for s in TUNING_SEEDS if draw_scenario(s).facts["layout"] == "u_cells"
                and len(draw_scenario(s).site.machines) <= 8)
    draw = draw_scenario(seed, hours=1.0)
    sim = simulate_scenario(draw)
    assert len(sim.readings) > 1000
    assert sim.truth.extra["simulation"]["family"]["layout"] == "u_cells"
    for w, path in sim.schedule.paths.items():
        # No walk passes through a machine: sample the path finely.
        t = np.linspace(path.t[0], path.t[-1], 20000)
        x, y, _ = path.sample(t)
        for m in draw.site.machines:
            mx, my = m.position
            half = min(m.footprint) / 2 - 0.2
            assert not ((np.abs(x - mx) < half) & (np.abs(y - my) < half)).any(), (w, m.id)
