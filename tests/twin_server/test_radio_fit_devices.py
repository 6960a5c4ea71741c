"""Per-device offsets fitted without a survey, on real BLE data (ble_uji_fingerprint excerpt, CC BY 4.0).

Three phones listened to the same 24 fixed beacons at the same points; their RSSI scales differ
by about 17 dB (see tests/data/ble_uji_fingerprint/README.md). The self-calibration is given
the three devices' RSSI and nothing else (no positions, no events) and must find the offsets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_server.analysis import position_smoother as psm
from twin_server.analysis import radio_fit as rf
from twin_server.site import parse_site

DATA = Path(__file__).resolve().parents[1] / "data" / "ble_uji_fingerprint"
PHONES = ("a5", "bq", "s6")
RECEIVER_Z_M = 2.5  # not in the source; shelf-top beacons
DEVICE_Z_M = 1.2
SECONDS_PER_FINGERPRINT = 5  # one fitting window per fingerprint


@pytest.fixture(scope="module")
def uji():
    pts = pd.read_csv(DATA / "lib_c4_points.csv")
    rec = pd.read_csv(DATA / "lib_receivers.csv")
    where = pts.groupby("point")[["x_m", "y_m"]].first()

    def square(x: float, y: float, half: float = 1.0) -> list[list[float]]:
        return [[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]]

    site = parse_site(
        {
            "site": "uji-lib",
            "floor": [32.0, 16.0],
            "machines": [
                {"id": f"p{p}", "zone": square(where.loc[p, "x_m"], where.loc[p, "y_m"])}
                for p in where.index[::4][:4]
            ],
            "workers": [{"id": ph, "beacon": ph} for ph in PHONES],
            "receivers": [
                {"id": str(r.receiver_id), "position": [r.x_m, r.y_m, RECEIVER_Z_M]} for r in rec.itertuples()
            ],
        }
    )
    grid = psm.floor_grid(site)
    col = {r: i for i, r in enumerate(grid.receivers)}
    mats, truth = {}, {}
    for ph in PHONES:
        fps = list(pts[pts["phone"] == ph].groupby(["point", "rep"]))
        m = np.full((len(fps) * SECONDS_PER_FINGERPRINT, len(col)), np.nan)
        xy = np.zeros((len(fps), 2))
        for i, ((p, _rep), f) in enumerate(fps):
            rows = slice(i * SECONDS_PER_FINGERPRINT, (i + 1) * SECONDS_PER_FINGERPRINT)
            m[rows, [col[str(r)] for r in f["receiver_id"]]] = f["rssi_dbm"].to_numpy(dtype="float64")
            xy[i] = where.loc[p].to_numpy()
        mats[ph], truth[ph] = m, xy
    model = rf.fit_radio(mats, [], grid, DEVICE_Z_M)
    return pts, grid, mats, truth, model


def test_self_calibration_finds_the_phones_offsets(uji) -> None:
    """Measured: fitted a5 - bq 18.1 dB, a5 - s6 16.8 dB; the data's own paired medians 17.5 and 16.8."""
    pts, _grid, _mats, _truth, model = uji
    paired = pts.groupby(["phone", "point", "receiver_id"])["rssi_dbm"].mean().unstack("phone")
    fitted = {ph: float(np.median(model.level_dbm[ph])) for ph in PHONES}
    for a, b in (("a5", "bq"), ("a5", "s6"), ("bq", "s6")):
        data = float((paired[a] - paired[b]).median())
        assert abs((fitted[a] - fitted[b]) - data) <= 2.5, (a, b, fitted, data)
    assert fitted["a5"] - fitted["bq"] >= 12.0  # the offset is real and found


def test_per_device_levels_place_the_phones_better(uji) -> None:
    """Nearest-cell fit of each fingerprint: measured 1.75 m mean error with the fitted
    per-device levels, 2.86 m with one level shared by the three phones."""
    _pts, grid, mats, truth, model = uji
    ld = grid.log_distance(DEVICE_Z_M).reshape(-1, len(grid.receivers))
    gx, gy = grid.centres()
    cells = np.column_stack([gx.ravel(), gy.ravel()])
    shared = np.mean([model.level_dbm[ph] for ph in PHONES], axis=0)

    def mean_error(level_of) -> float:
        errs = []
        for ph, m in mats.items():
            mu = level_of(ph)[None, :] - model.exponent * ld
            for i, k in enumerate(range(0, len(m), SECONDS_PER_FINGERPRINT)):
                heard = np.isfinite(m[k])
                if heard.sum() < 3:
                    continue
                best = ((m[k][heard][None, :] - mu[:, heard]) ** 2).sum(axis=1).argmin()
                errs.append(float(np.hypot(*(cells[best] - truth[ph][i]))))
        return float(np.mean(errs))

    own, one = mean_error(lambda ph: model.level_dbm[ph]), mean_error(lambda ph: shared)
    assert own <= 2.1
    assert own <= 0.75 * one, (own, one)


def test_zone_probabilities_need_a_fitted_model(uji) -> None:
    """Per-second zone probabilities come from the fitted occupancy; a model without one (a
    surveyed level) gets an error naming it, not an AttributeError on None."""
    _pts, grid, mats, _truth, model = uji
    probs = rf.zone_probabilities_at(mats["a5"], "a5", model, grid, DEVICE_Z_M)
    assert probs.shape == (len(mats["a5"]), len(grid.zones))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    surveyed = dataclasses.replace(model, occupancy=None)
    with pytest.raises(ValueError, match="occupancy is None"):
        rf.zone_probabilities_at(mats["a5"], "a5", surveyed, grid, DEVICE_Z_M)
