"""Zone fingerprints learned from presence events (RSSI alone), on real BLE stops.

Data (the ``stops_session`` fixture, conftest.py): the ble_tetam excerpt (CC0,
tests/data/ble_tetam): 5 min of the dataset's stationary recordings at five points, heard by
four wall dongles at 2.3 m (``stops_rssi.csv``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from twin_server.analysis import zone_fingerprints as zf
from twin_server.analysis.bleeval import naive_zones, truth_at
from twin_server.analysis.params import AnalysisParams
from twin_server.analysis.pipeline import analyze
from twin_server.evaluate import label_grid, score_times


def _events(zones: list[int], t_n: int = 400, per_zone: int = 6) -> np.ndarray:
    clamp = np.full(t_n, -1)
    k = 10
    for _ in range(per_zone):
        for z in zones:
            clamp[k] = z
            k += 20
    return clamp


def test_offsets_follow_the_events_where_zones_sit_off_the_path_loss() -> None:
    rng = np.random.default_rng(0)
    true = np.array([[6.0, -5.0, 0.0, 3.0], [-4.0, 2.0, 5.0, -6.0], [0.0, 4.0, -3.0, 1.0]])
    clamp = _events([0, 1, 2])
    rssi = np.full((len(clamp), 4), np.nan)
    for k in np.flatnonzero(clamp >= 0):  # the worker stands at the spot around each event
        rssi[k - 5 : k + 6] = -70.0 + true[clamp[k]] + rng.normal(0, 1.0, (11, 4))
    expected = np.full((3, 4), -70.0)
    fp = zf.fit_zone_fingerprint({"W": rssi}, {"W": clamp}, {"W": expected})
    assert fp.info["events"] == 18
    assert np.abs(fp.residual_db - true).max() < 1.0
    assert fp.weight.min() > 0.9
    # Where the path loss is right the same events leave it standing.
    rssi0 = np.where(np.isfinite(rssi), -70.0 + rng.normal(0, 1.0, rssi.shape), np.nan)
    fp0 = zf.fit_zone_fingerprint({"W": rssi0}, {"W": clamp}, {"W": expected})
    assert fp0.info["tau_db"] < 0.5
    assert np.abs(fp0.weight * fp0.residual_db).max() < 0.3  # the zones move by a fraction of a dB


def test_too_few_events_change_nothing() -> None:
    clamp = np.full(100, -1)
    clamp[[10, 50]] = [0, 1]
    rssi = np.full((100, 2), -60.0)
    fp = zf.fit_zone_fingerprint({"W": rssi}, {"W": clamp}, {"W": np.full((2, 2), -70.0)})
    assert not fp.weight.any()
    none = zf.fit_zone_fingerprint({"W": rssi}, {"W": None}, {"W": np.full((2, 2), -70.0)})
    assert none.info["events"] == 0 and not none.weight.any()


def test_a_zone_takes_its_fingerprint_flat_and_none_keeps_the_path_loss() -> None:
    share = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # 4 cells
    mean = np.array([[-60.0], [-62.0], [-64.0], [-66.0]])
    fp = zf.ZoneFingerprint(np.array([[3.0], [0.0]]), np.array([[1.0], [0.0]]))
    out = zf.apply_zone_fingerprint(mean, share, np.array([[-61.0], [-66.0]]), fp)
    assert out[0, 0] == pytest.approx(-58.0)  # in zone 0: expected -61 + 3
    assert out[1, 0] == pytest.approx(-60.0)  # half in zone 0: halfway from -62
    assert out[2, 0] == -64.0 and out[3, 0] == -66.0  # none, and a zone with weight 0
    two = zf.apply_zone_fingerprint(np.vstack([mean, mean - 5]), share, np.array([[-61.0], [-66.0]]), fp)
    assert two[4, 0] == pytest.approx(-58.0)  # every facing of the cell


def _accuracy(site, rssi, readings, zones, params: AnalysisParams) -> tuple[float, float, dict]:
    result = analyze(readings, site, params=params)
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    truth = truth_at(zones, times)
    pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
    return float(np.mean(pred == truth)), float(np.mean(pred == "none")), result.extra["analysis"]


def test_real_stops_with_a_press_each_find_their_zones(stops_session) -> None:
    """Real radio: without the fingerprints the smoother places most dwells beside their small
    zones (``none``), though every stop is labelled by a press; with them it finds the zones."""
    site, rssi, readings, zones = stops_session
    base = AnalysisParams()
    on, on_none, diag = _accuracy(site, rssi, readings, zones, base)
    off, off_none, _ = _accuracy(site, rssi, readings, zones, replace(base, rssi_zone_fingerprints=False))
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    naive = float(np.mean(naive_zones(rssi, site, times) == truth_at(zones, times)))
    assert diag["rssi_zone_fingerprint"]["events"] == 20
    assert diag["rssi_zone_fingerprint"]["tau_db"] > 1.0  # the spots do sit off the path loss
    assert off_none > 0.3 and off < 0.7
    assert on >= 0.85 and on > off + 0.2 and on > naive + 0.2
    assert on_none < 0.2
