"""Fixtures shared by the server's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_server.analysis.bleeval import rssi_frame
from twin_server.readings import validate_readings
from twin_server.site import parse_site

TETAM = Path(__file__).resolve().parents[1] / "data" / "ble_tetam"
BEACON = "e78f135624ce"


@pytest.fixture(scope="module")
def stops_session():
    """Twenty stops of 60-120 s at the five points, 3-8 s walks between, a press at each stop."""
    rec = pd.read_csv(TETAM / "receivers.csv", dtype={"receiver_id": str}).set_index("receiver_id")
    pk = pd.read_csv(TETAM / "stops_rssi.csv", dtype={"receiver_id": str})
    points = [g for _, g in pk.groupby(["x_m", "y_m"], sort=True)]
    h = 0.8  # 1.6 m squares around the points
    machines = []
    for i, g in enumerate(points):
        x, y = float(g["x_m"].iloc[0]), float(g["y_m"].iloc[0])
        machines.append(
            {"id": f"M{i + 1}", "zone": [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h]]}
        )
    site = parse_site(
        {
            "site": "tetam-stops",
            "machines": machines,
            "workers": [{"id": "W", "beacon": BEACON}],
            "receivers": [
                {
                    "id": r,
                    "position": [
                        float(rec.loc[r, "x_m"]),
                        float(rec.loc[r, "y_m"]),
                        float(rec.loc[r, "z_m"]),
                    ],
                }
                for r in sorted(pk["receiver_id"].unique())
            ],
        }
    )
    rng = np.random.default_rng(7)
    t, prev = 1_700_000_000.0, -1
    rows, truth, presses = [], [], []
    for _ in range(20):
        i = int(rng.integers(len(points)))
        while i == prev:
            i = int(rng.integers(len(points)))
        prev = i
        stay = float(rng.uniform(60, 120))
        a = float(rng.uniform(0, 300 - stay))
        g = points[i][(points[i]["t_s"] >= a) & (points[i]["t_s"] < a + stay)]
        rows.append(
            pd.DataFrame(
                {
                    "t_seconds": g["t_s"] - a + t,
                    "receiver_id": g["receiver_id"],
                    "beacon_id": BEACON,
                    "rssi_dbm": g["rssi_dbm"],
                }
            )
        )
        truth.append((t, f"M{i + 1}"))
        presses.append((t + float(rng.uniform(5, 0.6 * stay)), f"M{i + 1}"))
        t += stay
        truth.append((t, "none"))
        t += float(rng.uniform(3, 8))
    rssi = pd.concat(rows, ignore_index=True)
    frame = rssi_frame(rssi, site)
    pt = np.array([p for p, _ in presses])
    pm = [m for _, m in presses]
    sw = pd.DataFrame(
        {
            "t": np.concatenate([pt, pt + 2.0]),
            "kind": "switch",
            "source": pm + pm,
            "channel": "program_input",
            "value": np.repeat([1.0, 0.0], len(pt)),
        }
    )
    readings = validate_readings(
        pd.concat([frame[["t", "kind", "source", "channel", "value"]], sw]).sort_values("t", kind="stable"),
        site,
    ).frame
    return site, rssi, readings, pd.DataFrame(truth, columns=["t_seconds", "zone"])
