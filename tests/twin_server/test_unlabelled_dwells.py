"""RSSI alone and no presence event: a worker standing still is at a machine, named with
the other dwells (``dwell_naming``).

Real data: the ble_tetam excerpts (CC0, tests/data/ble_tetam): the ``stops_session`` fixture
(conftest.py, five stationary points, four wall dongles) and the dataset's walking tracks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin_server.analysis import dwell_naming as dn
from twin_server.analysis.bleeval import naive_zones, rssi_frame, truth_at
from twin_server.analysis.fingerprint_zones import FingerprintParams, build_map, walk_survey_points
from twin_server.analysis.params import AnalysisParams
from twin_server.analysis.pipeline import analyze
from twin_server.evaluate import label_grid, score_times
from twin_server.site import parse_site

from .conftest import TETAM


def _still(rssi: np.ndarray) -> np.ndarray:
    p = AnalysisParams()
    return dn.still_dwells(rssi, int(p.rssi_still_half_s), p.rssi_still_drift_db, int(p.rssi_still_dwell_s))


def test_dwells_are_still_and_walks_and_short_pauses_are_not() -> None:
    rng = np.random.default_rng(3)
    a, b = np.array([-60.0, -72.0, -80.0]), np.array([-78.0, -63.0, -70.0])
    walk = a + (b - a) * np.linspace(0, 1, 60)[:, None]
    pause = np.repeat(b[None], 20, axis=0)
    back = b + (a - b) * np.linspace(0, 1, 40)[:, None]
    mean = np.vstack(
        [np.repeat(a[None], 120, axis=0), walk, np.repeat(b[None], 120, axis=0), back, pause, walk]
    )
    rssi = mean + rng.normal(0, 1.5, mean.shape)  # per-second means of a few packets
    rssi[rng.random(rssi.shape) < 0.2] = np.nan  # seconds a receiver heard nothing
    dwells = _still(rssi)
    assert (dwells[:110] == 0).mean() > 0.95  # the first dwell, its edge aside
    assert (dwells[190:300] == 1).mean() > 0.95  # the second
    assert (dwells[142:158] == -1).all()  # the middle of the first walk (its ends: within 15 s of a dwell)
    assert (dwells[345:] == -1).all()  # a 20 s pause between walks is not a dwell
    assert dwells.max() == 1


@pytest.mark.parametrize("track", ["rectangular_without_rotation", "zigzagging_without_rotation"])
def test_a_real_walker_is_never_still(track: str) -> None:
    pk = pd.read_csv(TETAM / f"{track}_rssi.csv", dtype={"receiver_id": str})
    pk["sec"] = np.floor(pk["t_seconds"] - pk["t_seconds"].min()).astype(int)
    rssi = pk.pivot_table(index="sec", columns="receiver_id", values="rssi_dbm", aggfunc="mean")
    rssi = rssi.reindex(range(int(pk["sec"].max()) + 1)).to_numpy()
    assert len(rssi) > 60
    assert (_still(rssi) == -1).all()


def _groups_at(
    zones_xy: np.ndarray, rx: np.ndarray, pick: list[int], seed: int, noise_db: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean RSSI of groups standing at ``pick`` (zone indices): a path loss with a level per
    receiver, plus a multipath offset of ``noise_db`` (sd) per spot and receiver."""
    rng = np.random.default_rng(seed)
    log_dist = 10 * np.log10(
        np.sqrt(((zones_xy[:, None] - rx[None, :, :2]) ** 2).sum(-1) + (rx[None, :, 2] - 1.2) ** 2)
    )
    level = np.array([-52.0, -58.0, -49.0, -61.0])
    values = level[None] - 2.3 * log_dist[pick] + rng.normal(0, noise_db, (len(pick), len(rx)))
    return values, log_dist


RX = np.array([[0.0, 0.0, 2.3], [20.0, 0.0, 2.3], [20.0, 16.0, 2.3], [0.0, 16.0, 2.3]])


def test_groups_of_dwells_are_named_together_where_one_path_loss_fits() -> None:
    zones_xy = np.array([[3.0, 3.0], [10.0, 4.0], [17.0, 3.0], [16.0, 13.0], [9.0, 12.0], [3.0, 13.0]])
    right = 0
    for seed in range(20):
        pick = list(np.random.default_rng(100 + seed).permutation(6)[:5])
        values, log_dist = _groups_at(zones_xy, RX, pick, seed)
        named, margin = dn.name_groups(values, log_dist)
        right += int((named == np.array(pick)).sum())
        assert len(set(named.tolist())) == 5 and (margin >= 0).all()
    assert right >= 0.8 * 20 * 5  # multipath of 3 dB sd: most, not all


def test_naming_by_descent_where_there_are_too_many_namings_to_try() -> None:
    xs, ys = np.meshgrid([2.0, 7.0, 12.0, 17.0], [2.0, 8.0, 14.0])
    zones_xy = np.column_stack([xs.ravel(), ys.ravel()])  # 12 machines, 7 groups: 4 million namings
    pick = [0, 3, 5, 6, 8, 10, 11]
    values, log_dist = _groups_at(zones_xy, RX, pick, 1, noise_db=0.5)
    named, _margin = dn.name_groups(values, log_dist)
    assert (named == np.array(pick)).mean() >= 5 / 7


def test_too_few_or_too_many_groups_or_a_partly_heard_receiver_are_not_named() -> None:
    zones_xy = np.array([[3.0, 3.0], [10.0, 4.0], [17.0, 3.0]])
    for pick in ([0, 1], [0, 1, 2, 0]):
        values, log_dist = _groups_at(zones_xy, RX, pick, 0)
        named, margin = dn.name_groups(values, log_dist)
        assert (named == -1).all() and (margin == 0).all()
    values, log_dist = _groups_at(zones_xy, RX, [0, 1, 2], 0, noise_db=0.5)
    assert (dn.name_groups(values, log_dist)[0] == [0, 1, 2]).all()
    values[1, 2] = np.nan  # one receiver did not hear one group: its level would bend
    assert (dn.name_groups(values, log_dist)[0] == -1).all()


def test_dwells_at_one_spot_group_together() -> None:
    rng = np.random.default_rng(5)
    spots = rng.normal(-70, 8, (3, 4))
    order = [0, 1, 0, 2, 1, 2, 0]
    means = spots[order] + rng.normal(0, 0.6, (len(order), 4))  # a dwell's mean: well within 1 dB
    means[3, 1] = np.nan  # a receiver that did not hear one dwell enough
    groups = dn.group_dwells(means, AnalysisParams().rssi_dwell_group_db)
    assert len(set(groups.tolist())) == 3
    for a in range(len(order)):
        for b in range(len(order)):
            assert (groups[a] == groups[b]) == (order[a] == order[b])


def test_unlabelled_real_stops_are_named_by_their_groups_of_dwells(stops_session) -> None:
    """Without events the smoother puts every real dwell beside its small zone and answers a
    confident ``none``; standing still, the worker is at a machine, and the groups of dwells
    are named together, with a confidence that matches how often that is right."""
    site, rssi, _readings, zones = stops_session
    frame = rssi_frame(rssi, site)  # the RSSI alone: no press
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    truth = truth_at(zones, times)
    naive = float(np.mean(naive_zones(rssi, site, times) == truth))
    out = {}
    for snap in (False, True):
        result = analyze(frame, site, params=AnalysisParams(rssi_unlabelled_snap=snap))
        pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
        conf = label_grid([(z.start, z.end, z.confidence) for z in result.worker_zones], times, np.nan)
        out[snap] = (float(np.mean(pred == truth)), float(np.mean(pred == "none")), float(np.nanmean(conf)))
        if snap:
            snapped = result.extra["analysis"]["rssi_snapped"]["W"]
            assert snapped["seconds"] > 0.8 * len(times) and snapped["named"]
            assert snapped["groups"] <= 5 < snapped["dwells"]  # 20 stops at 5 points
    (off, off_none, off_conf), (on, on_none, on_conf) = out[False], out[True]
    assert off < 0.2 and off_none > 0.8 and off_conf > off + 0.6  # confidently wrong
    assert on > naive + 0.2 and on > off + 0.6  # the five groups of dwells named right
    assert on_none < 0.2
    assert abs(on_conf - on) < 0.1  # as sure as it is right


def test_a_floor_with_events_is_not_snapped(stops_session) -> None:
    """Where machines send events, a worker's dwells are named by them (zone fingerprints);
    a worker given none of them did no machine work and is left as the smoother says."""
    site, _rssi, readings, _zones = stops_session  # a press at every stop
    diag = analyze(readings, site).extra["analysis"]
    assert diag["rssi_zone_fingerprint"]["events"] == 20
    assert "rssi_snapped" not in diag


def test_more_still_spots_than_machines_are_not_snapped(stops_session) -> None:
    """A worker who stands still at more places than there are machines is not always at a
    machine: the same real stops with zones at two of the five points only, and nothing may
    be pulled into those two zones from the other three."""
    site, rssi, _readings, zones = stops_session
    two = parse_site(
        site.model_dump(mode="json") | {"machines": [m.model_dump(mode="json") for m in site.machines[:2]]}
    )
    kept = {m.id for m in two.machines}
    zones = zones.assign(zone=[z if z in kept else "none" for z in zones["zone"]])
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    truth = truth_at(zones, times)
    result = analyze(rssi_frame(rssi, two), two)
    snapped = result.extra["analysis"]["rssi_snapped"]["W"]
    assert snapped["groups"] > len(kept) and snapped["seconds"] == 0
    pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
    away = truth == "none"
    assert away.mean() > 0.4
    assert np.mean(pred[away] == "none") > 0.9  # the other three points stay outside the zones
    # Still seconds left as the smoother says take their own, humbler confidence.
    conf = label_grid([(z.start, z.end, z.confidence) for z in result.worker_zones], times, np.nan)
    assert 0.7 < float(np.nanmedian(conf[away])) < 0.8


def test_a_dwell_by_a_receiver_in_a_zone_is_in_that_zone() -> None:
    """Where a receiver stands in a machine zone, the worker's dwell that it hears loudest
    (and louder than any other receiver) is in that zone; a far dwell that this receiver
    merely leads is not (the real stops excerpt: sensor41 leads at 2.8 m by 11 dB and at
    7.2 m by 6.5 dB)."""
    site = parse_site(
        {
            "site": "inside",
            "machines": [
                {"id": "M1", "zone": [[15.3, 3.3], [18.5, 3.3], [18.5, 7.0], [15.3, 7.0]]},
                {"id": "M2", "zone": [[2.0, 3.3], [3.6, 3.3], [3.6, 4.9], [2.0, 4.9]]},
            ],
            "receivers": [
                {"id": "s41", "position": [17.77, 6.33, 2.3]},
                {"id": "s11", "position": [7.18, 0.68, 2.3]},
                {"id": "s31", "position": [12.82, 16.83, 2.3]},
            ],
        }
    )
    xyz = np.array([r.position for r in site.receivers], dtype=float)
    inside = dn.receivers_inside(site, xyz)
    assert inside.tolist() == [0, -1, -1]
    # Dwells' mean RSSI (s41, s11, s31) at the five real points of the excerpt.
    means = np.array(
        [
            [-61.4, -72.6, -74.5],  # (16.10, 4.13), in M1, 2.8 m from s41
            [-63.8, -70.3, -70.4],  # (10.92, 8.62), 7.2 m from s41, which still leads by 6.5 dB
            [-68.8, -62.4, -73.6],  # (2.77, 4.10), in M2, no receiver inside
            [-80.8, -78.2, -71.3],  # (16.08, 13.59)
            [-61.9, np.nan, -75.0],  # M1 again, s11 not heard enough
        ]
    )
    near = dn.loudest_inside(means, inside, min_margin_db=2.0, top_within_db=2.0)
    assert near.tolist() == [0, -1, -1, -1, 0]
    # Without the "nearest of the worker's dwells" condition the far dwell would be taken.
    assert dn.loudest_inside(means, inside, min_margin_db=2.0)[1] == 0
    assert (dn.loudest_inside(means, inside, min_margin_db=20.0, top_within_db=2.0) == -1).all()


def test_through_analyze_a_dwell_by_a_receiver_in_its_zone_takes_that_zone(stops_session) -> None:
    """The real stops with two machines, one of whose zones holds a receiver (sensor41): the
    dwells it hears loudest are in that zone, with their own confidence; the dwells at the
    point 7 m away that it also leads stay out of it."""
    site, rssi, _readings, zones = stops_session
    doc = site.model_dump(mode="json")
    doc["machines"] = [
        {"id": "A", "zone": [[15.3, 3.3], [18.5, 3.3], [18.5, 7.0], [15.3, 7.0]]},  # (16.10, 4.13), sensor41
        site.machines[0].model_dump(mode="json") | {"id": "B"},  # the square around (2.77, 4.10)
    ]
    two = parse_site(doc)
    far = {"M5": "A", "M1": "B"}  # the fixture's machines are the five points in (x, y) order
    zones = zones.assign(zone=[far.get(z, "none") for z in zones["zone"]])
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    truth = truth_at(zones, times)
    point3 = truth_at(stops_session[3], times) == "M3"  # (10.92, 8.62): sensor41 leads by 6.5 dB
    result = analyze(rssi_frame(rssi, two), two)
    snapped = result.extra["analysis"]["rssi_snapped"]["W"]
    assert snapped["groups"] > 2 and snapped["seconds"] > 0.1 * len(times)
    pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
    conf = label_grid([(z.start, z.end, z.confidence) for z in result.worker_zones], times, np.nan)
    at_a = truth == "A"
    assert at_a.mean() > 0.1 and point3.mean() > 0.1
    assert np.mean(pred[at_a] == "A") > 0.97
    assert abs(float(np.nanmedian(conf[at_a])) - 0.832) < 0.01
    assert np.mean(pred[point3] == "A") < 0.1
    off = AnalysisParams(rssi_still_inside_margin_db=float("inf"))
    pred_off = label_grid(
        [(z.start, z.end, z.zone) for z in analyze(rssi_frame(rssi, two), two, params=off).worker_zones],
        times,
        "none",
    )
    # Measured: 1.0 with the rule, 0.885 without (the smoother already finds most of it here).
    assert np.mean(pred_off[at_a] == "A") < np.mean(pred[at_a] == "A") - 0.05


def test_with_a_survey_a_dwell_by_a_receiver_in_its_zone_takes_that_zone(stops_session) -> None:
    """The same rule in survey mode: with a survey made of another day's calibration walk (the
    zigzag track, Feb 2020; the stops are from June 2020) the fingerprint map under sensor41
    is off and the smoother leaves the dwells there outside the zone; the rule puts them in."""
    site, rssi, _readings, zones = stops_session
    doc = site.model_dump(mode="json")
    doc["machines"] = [
        {"id": "A", "zone": [[15.3, 3.3], [18.5, 3.3], [18.5, 7.0], [15.3, 7.0]]},  # sensor41 inside
        site.machines[0].model_dump(mode="json") | {"id": "B"},
    ]
    two = parse_site(doc)
    walk = pd.read_csv(TETAM / "zigzagging_without_rotation_rssi.csv", dtype={"receiver_id": str})
    walk = walk[walk["receiver_id"].isin({r.id for r in two.receivers})]
    track = pd.read_csv(TETAM / "zigzagging_without_rotation_gt.csv")
    fparams = FingerprintParams()
    fmap = build_map(walk_survey_points(walk, track), two, fparams, (0.0, 0.0, 20.5, 17.5))
    far = {"M5": "A", "M1": "B"}
    zones = zones.assign(zone=[far.get(z, "none") for z in zones["zone"]])
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    at_a = truth_at(zones, times) == "A"
    point3 = truth_at(stops_session[3], times) == "M3"  # 7.2 m from sensor41, which leads there

    def run(**kw: object) -> tuple[np.ndarray, np.ndarray, dict]:
        result = analyze(rssi_frame(rssi, two), two, params=AnalysisParams(survey_map=(fmap, fparams), **kw))
        pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
        conf = label_grid([(z.start, z.end, z.confidence) for z in result.worker_zones], times, np.nan)
        return pred, conf, result.extra["analysis"]

    pred, conf, diag = run()
    pred_off, conf_off, diag_off = run(survey_still_inside=False)
    assert at_a.mean() > 0.1 and point3.mean() > 0.1
    assert diag["survey_still_inside_s"] > 0.1 * len(times) and diag_off["survey_still_inside_s"] == 0
    # Measured: 1.0 with the rule, 0.842 without.
    assert np.mean(pred[at_a] == "A") > 0.97
    assert np.mean(pred_off[at_a] == "A") < np.mean(pred[at_a] == "A") - 0.05
    assert np.mean(pred[point3] == "A") < 0.1
    assert abs(float(np.nanmedian(conf[at_a])) - 0.832) < 0.01  # the rule's own confidence
    # Still seconds elsewhere keep the map's zone, with the confidence of still seconds left as
    # the smoother says instead of the map's own (0.98 here).
    assert (pred[point3] == pred_off[point3]).all()
    assert abs(float(np.nanmedian(conf[point3])) - 0.734) < 0.01
    assert float(np.nanmedian(conf_off[point3])) > 0.95
