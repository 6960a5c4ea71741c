"""RSSI-only zones on a small fixed subset of the scenario family (tuning draws), with thresholds.

The draws are tuning draws (``TUNING_SEEDS``; never reported on), forced to RSSI-only sensing
and cut to 1 h, plus the pilot site under the family's conditions. Each threshold sits a
little under what was measured when it was set (in the comments), so a regression in the
self-calibrated RSSI model shows here; every figure is compared with the naive method
(strongest receiver -> nearest zone, ``none`` below -70 dBm) on the same recording.
"""

from __future__ import annotations

import numpy as np
import pytest

from twin_server.analysis import analyze
from twin_server.analysis import confidence as cf
from twin_server.baselines import strongest_receiver_result
from twin_server.evaluate import label_grid, score, score_times
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, fixed_scenario, simulate_scenario

#: Small tuning draws: 1, 2 and 3 workers, 3 .. 7 receivers, zones with and without a receiver
#: within 2 m, receivers at machines and walls.
DRAWS = (1003, 1027, 1037, 1046)
HOURS = 1.0


@pytest.fixture(scope="module")
def runs(pilot_site):
    out = []
    for seed in DRAWS:
        assert seed in TUNING_SEEDS
        draw = draw_scenario(seed, hours=HOURS, sensing="rssi")
        sim = simulate_scenario(draw)
        out.append((draw, sim, analyze(sim.readings, draw.site)))
    draw = fixed_scenario(pilot_site, 101, hours=HOURS, sensing="rssi")
    sim = simulate_scenario(draw)
    out.append((draw, sim, analyze(sim.readings, draw.site)))
    return out


def zone_and_naive(draw, sim, res) -> tuple[float, float]:
    got = score(sim.truth, res, zones_only=True).zone_accuracy
    naive = score(sim.truth, strongest_receiver_result(sim.truth, sim.readings, draw.site), zones_only=True)
    return got, naive.zone_accuracy


def test_rssi_only_zone_accuracy_beats_the_naive_method(runs) -> None:
    """Measured: 1003 0.889 (naive 0.240), 1027 0.953 (0.227), 1037 0.958 (0.184), 1046 0.659
    (0.608), pilot 0.998 (0.834); mean 0.891. Target >= 0.93 mean: not met on the family.
    (1003 was 0.887 before the second, silence-started radio fit.)

    Before the receivers' floor and the zone chain: 0.883, 0.882, 0.915, 0.850 (0.765 when this
    test was written), 0.999; mean 0.906. On these five the two changes lose a little (1046
    falls with the floor although its fitted exponent and levels move towards the truth); on
    48 other RSSI-only tuning draws they gain 7 points (docs/analysis.md)."""
    got = [zone_and_naive(*r) for r in runs]
    acc = [a for a, _ in got]
    assert np.mean(acc) >= 0.87, got
    assert min(acc) >= 0.60, got
    assert all(a > n for a, n in got), got


def test_self_calibration_uses_the_events(runs) -> None:
    """Presence events become labelled windows of the fit; the fitted model is physical."""
    for draw, _sim, res in runs:
        model = res.extra["analysis"]["rssi_model"]
        assert model["labelled_windows"] > 0, draw.seed
        assert 1.2 <= model["exponent"] <= 4.5
        assert 2.0 <= model["sigma_db"] <= 12.0
        placed = res.extra["analysis"]["rssi_events_placed"]
        assert placed["events"] > 0 and 0.0 <= placed["model"] <= 1.0


def test_confidence_is_calibrated(runs) -> None:
    """Per second, the reported interval confidence against being right.

    Measured: ECE 0.084 on these five recordings (0.094 before the zone chain); held out in
    bench/analyze/calibration.py after the chain's table (``rssi_chain``) was fitted: 0.035 on
    10 RSSI-only recordings, 0.038 on 28 of all sensings, 0.044 on the ble_tetam session
    (target <= 0.05 pooled). Per recording it is timid: 1027 is right 95.3 % of the seconds
    with a mean confidence of 0.73, 1037 95.8 % with 0.76 (per-recording ECE 0.21-0.24 on the
    four family draws, 0.044 on the pilot)."""
    conf, ok = [], []
    for _draw, sim, res in runs:
        t = score_times(sim.truth.window_start, sim.truth.window_end)
        for w in _draw.site.worker_ids:
            true_iv = [(z.start, z.end, z.zone) for z in sim.truth.worker_zones if z.worker == w]
            truth = label_grid(true_iv, t, "-")
            mine = [z for z in res.worker_zones if z.worker == w]
            keep = truth != "-"
            conf.append(label_grid([(z.start, z.end, z.confidence) for z in mine], t, np.nan)[keep])
            ok.append(label_grid([(z.start, z.end, z.zone) for z in mine], t, "?")[keep] == truth[keep])
    conf, ok = np.concatenate(conf), np.concatenate(ok)
    ece = cf.expected_calibration_error(conf, ok)
    assert ece <= ECE_MAX, ece


ECE_MAX = 0.10


def test_naive_zones_and_events_placed(pilot_site) -> None:
    """The in-analysis naive method: loudest receiver -> nearest zone, quiet -> none, short holds."""
    from twin_server.analysis import position_smoother as psm
    from twin_server.analysis import rssi_zones as rz

    grid = psm.floor_grid(pilot_site)
    n_r = len(grid.receivers)
    rssi = np.full((8, n_r), np.nan)
    rssi[0, 0], rssi[0, 1 % n_r] = -55.0, -80.0
    rssi[1, 1 % n_r] = -60.0
    rssi[2, 0] = -85.0  # heard, but too quiet: none
    # seconds 3 .. 5 silent: 3 s hold, then none
    path = rz.strongest_receiver_zones(rssi, grid)
    none = len(grid.zones) - 1
    centroids = [np.asarray(m.zone, dtype=float).mean(axis=0) for m in pilot_site.machines]
    near0 = int(np.argmin([np.hypot(*(grid.receiver_xyz[0, :2] - c)) for c in centroids]))
    assert path[0] == near0
    assert path[2] == none and list(path[3:6]) == [none] * 3 and path[6] == none
    placed, n = rz.events_placed([path], [(60, near0)])  # nothing of the path 10 .. 40 s away
    assert n == 1 and placed == 0.0
    long = np.full(100, none)
    long[60:] = 1
    assert rz.events_placed([long], [(50, 1)]) == (1.0, 1)  # 10 s after the event
    assert rz.events_placed([long], [(50, 0)]) == (0.0, 1)


def test_zone_confidence_uses_the_source_table(monkeypatch) -> None:
    monkeypatch.setitem(cf.TABLES, "rssi", ((0.0, 0.0), (0.5, 0.3), (1.0, 0.9)))
    monkeypatch.setitem(cf.NOT_HEARD, "rssi", 0.95)
    got = cf.zone_confidence(np.array([0.5, 1.0, 0.0]), np.array([1, 2, -1]), "rssi")
    assert np.allclose(got, [0.3, 0.9, 0.95])
    # A source without a table keeps the raw values; no estimate without a table: 0.
    assert np.allclose(cf.zone_confidence(np.array([0.7, 0.2]), np.array([0, -1]), "other"), [0.7, 0.0])
