"""RSSI alone: the receivers' sensitivity floor and the zone chain, each through ``analyze``.

The draws are tuning draws (``TUNING_SEEDS``), forced to RSSI-only sensing and cut to 1 h.
Each comparison switches one part off (``AnalysisParams``) on the same recording, so the test
fails if that part stops helping; the margins sit under what was measured (in the comments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_server.analysis import AnalysisParams, analyze
from twin_server.analysis import rssi_zones as rz
from twin_server.analysis.bleeval import score_track, station_site
from twin_server.analysis.pipeline import rssi_floor
from twin_server.analysis.radio_fit import censored_mean
from twin_server.evaluate import score
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, simulate_scenario

TETAM = Path(__file__).resolve().parents[1] / "data" / "ble_tetam"


def zone_accuracy(seed: int, **params: object) -> float:
    assert seed in TUNING_SEEDS
    draw = draw_scenario(seed, hours=1.0, sensing="rssi")
    sim = simulate_scenario(draw)
    res = analyze(sim.readings, draw.site, params=AnalysisParams(**params))  # type: ignore[arg-type]
    return score(sim.truth, res, zones_only=True).zone_accuracy


def test_censored_mean_matches_the_packets_a_receiver_keeps() -> None:
    rng = np.random.default_rng(5)
    floor, sd = -95.0, 4.0
    for mu in (-105.0, -97.0, -93.0, -80.0):
        x = mu + sd * rng.standard_normal(400_000)
        kept = x[x >= floor].mean()
        assert abs(float(censored_mean(np.array([mu]), floor, sd)[0]) - kept) < 0.05, mu
    # Far above the floor nothing changes; far below, the packets heard sit just above it.
    assert abs(float(censored_mean(np.array([-60.0]), floor, sd)[0]) + 60.0) < 1e-6
    assert floor < float(censored_mean(np.array([-140.0]), floor, sd)[0]) < floor + 1.0


def test_rssi_floor_reads_each_receivers_weakest_packets() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for r, floor in (("a", -92.0), ("b", -99.0)):
        v = np.round(-88 + 6 * rng.standard_normal(5000))
        v = v[v >= floor]
        rows.append(pd.DataFrame({"t": np.arange(len(v)) * 0.25, "source": r, "channel": "b1", "value": v}))
    rows.append(pd.DataFrame({"t": [0.0, 1.0], "source": "c", "channel": "b1", "value": [-70.0, -71.0]}))
    floors, packet_sd = rssi_floor(pd.concat(rows, ignore_index=True), ["a", "b", "c"])
    assert floors[0] == pytest.approx(-92.0, abs=1.0)
    assert floors[1] == pytest.approx(-99.0, abs=1.0)
    assert floors[2] == pytest.approx(min(floors[0], floors[1]), abs=1.0)  # too few packets: site-wide
    assert 4.0 <= packet_sd <= 8.0  # the spread of the packets within a second (6 dB, cut)


def test_zone_chain_keeps_events_and_silence() -> None:
    ev = np.full((40, 3), 1 / 3)
    ev[:, 2] = 0.2
    ev[:, :2] = 0.4
    ev[30:] = [0.0, 0.0, 1.0]  # nothing heard: none
    clamp = np.full(40, -1)
    clamp[10] = 1
    post = rz.zone_chain_posterior(ev, clamp)
    assert np.allclose(post.sum(axis=1), 1.0)
    assert post[10].argmax() == 1 and post[10, 1] > 0.99
    assert post[12].argmax() == 1  # the event holds the neighbouring seconds
    assert post[35].argmax() == 2


def test_bridge_holds_a_worker_between_two_events_at_one_machine() -> None:
    # Zones 0, 1 and none (2); the smoother leans to none between two events at zone 0.
    post = np.tile([0.3, 0.1, 0.6], (100, 1))
    est = rz.ZoneEstimate(np.full(100, 2), post, ["M1", "M2", "none"], -60.0)
    clamp = np.full(100, -1)
    clamp[[10, 40, 90]] = 0
    running = np.zeros((2, 100), dtype=bool)
    out = rz.bridge_events(est, clamp, running, max_gap_cells=45, odds=20.0)
    assert (out.zone[11:40] == 0).all()
    assert np.allclose(out.posterior.sum(axis=1), 1.0)
    assert (out.zone[41:90] == 2).all()  # 50 s apart: longer than the bridge
    assert (out.zone[:10] == 2).all() and (out.zone[91:] == 2).all()
    assert est.posterior[20, 0] == 0.3  # the input is left as it was
    running[0, 25] = True  # the machine ran in between: two changeovers, no bridge
    assert (rz.bridge_events(est, clamp, running, max_gap_cells=45, odds=20.0).zone[11:40] == 2).all()
    clamp[40] = 1  # events at two machines: no bridge
    assert (rz.bridge_events(est, clamp, np.zeros((2, 100), bool), 45, 20.0).zone[11:40] == 2).all()


def test_bridge_between_events_helps_on_a_working_floor() -> None:
    """Draw 1090: measured 0.633 without the bridge and 0.776 with it (odds 1e4, 1,800 s)."""
    off = zone_accuracy(1090, rssi_bridge_odds=1.0)
    on = zone_accuracy(1090)
    assert on >= off + 0.10, (off, on)


def test_floor_helps_where_far_receivers_hear_little() -> None:
    """Draw 1010 (11 machines, 6 receivers, 80 % packet loss, floor binding): smoother only,
    measured 0.441 without the floor and 0.873 with it. The bridge between events is off in
    both (with it: 0.785 and 0.931), so the floor is measured alone."""
    without = zone_accuracy(1010, rssi_censored=False, rssi_zone_chain_share=0.0, rssi_bridge_odds=1.0)
    with_floor = zone_accuracy(1010, rssi_zone_chain_share=0.0, rssi_bridge_odds=1.0)
    assert with_floor >= without + 0.2, (without, with_floor)


def test_zone_chain_helps_workers_standing_at_machines() -> None:
    """Draw 1017 (9 machines, 4 workers, body loss 11 dB): measured 0.659 with the smoother
    alone and 0.806 with the chain mixed in. The bridge between events is off in both (with
    it: 0.801 and 0.837: the bridge holds many of the same seconds)."""
    alone = zone_accuracy(1017, rssi_zone_chain_share=0.0, rssi_bridge_odds=1.0)
    mixed = zone_accuracy(1017, rssi_bridge_odds=1.0)
    assert mixed >= alone + 0.08, (alone, mixed)


def test_zone_chain_is_not_used_without_presence_events() -> None:
    """Real BLE (ble_tetam excerpt, no events): the chain only knows whole squares there and
    lost to the smoother (75.1 -> 64.1 % over the nine tracks), so it stays off: same answer."""
    receivers = pd.read_csv(TETAM / "receivers.csv")
    pis = receivers[receivers["alias"].str.endswith("0")]
    site = station_site(receivers, dict(zip(pis["group"], pis["receiver_id"], strict=True)), "e78f135624ce")
    rssi = pd.read_csv(TETAM / "rectangular_without_rotation_rssi.csv")
    zones = pd.read_csv(TETAM / "rectangular_without_rotation_zones.csv")
    names = {"aisle": "none"}
    on = score_track(rssi, zones, site, zone_names=names)
    off = score_track(rssi, zones, site, params=AnalysisParams(rssi_zone_chain_share=0.0), zone_names=names)
    forced = score_track(
        rssi, zones, site, params=AnalysisParams(rssi_zone_chain_min_labels=0), zone_names=names
    )
    assert on.accuracy == off.accuracy
    assert forced.accuracy != on.accuracy  # the gate is what keeps it off


def test_floor_is_not_used_with_a_locator() -> None:
    """With a locator the RSSI model is left as it was (byte for byte)."""
    draw = draw_scenario(1038, hours=0.5, sensing="both")
    sim = simulate_scenario(draw)
    a = analyze(sim.readings, draw.site)
    b = analyze(sim.readings, draw.site, params=AnalysisParams(rssi_censored=False))
    assert a.worker_zones == b.worker_zones and a.beacon_lag == b.beacon_lag
