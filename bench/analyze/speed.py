"""Benchmark: how fast :func:`twin_server.analysis.analyze` runs, and how it grows.

Run: ``.venv/bin/python bench/analyze/speed.py [--skip-week]``

Simulates in memory (not timed) and times ``analyze`` on the readings frame:

* the pilot site (3 machines / 2 workers) for 8 h, 24 h and 7 days (target: 8 h < 2 s), and
  8 h with the per-visit lag model (the per-move model's cost in the same run);
* synthetic sites of 3 and 30 machines (2 and 20 workers) for 2 h each;
* the pilot site for 8 h with RSSI only (every zone from the self-calibrated RSSI model: the
  path-loss fit from the recording's own events plus the position smoother; target < 2 s);
* survey mode: one worker-hour of real BLE RSSI (the ble_tetam excerpt in ``tests/data``, its
  track repeated to an hour) analysed with the survey fingerprint map (target <= 1 s per
  worker-hour).

Every time is also printed as a ratio against a yardstick measured just before it in the same run
(numpy sorting 10 million random floats) and per simulated hour, so growth is visible as
a constant per-hour (per-machine-hour) cost. No asserts: figures only.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np
import pandas as pd

from twin_server.analysis import AnalysisParams, analyze
from twin_server.analysis.bleeval import rssi_frame, station_site
from twin_server.analysis.fingerprint_zones import FingerprintParams, build_map
from twin_server.simulate import SimParams, simulate, synthetic_site
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]


def yardstick_s(tries: int = 3) -> float:
    """Seconds numpy needs to sort 10 million random floats (best of ``tries``)."""
    data = np.random.default_rng(0).random(10_000_000)
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        np.sort(data)
        best = min(best, time.perf_counter() - t0)
    return best


def time_analysis(
    site, hours: float, seed: int = 1, repeat: int = 2, params=None, sim_params: SimParams | None = None
) -> tuple[float, int, float]:
    """Best wall time of ``analyze`` on a simulated recording, its row count, and the best
    ratio of a run's time to a yardstick measured just before it."""
    sim = simulate(site, hours, seed, params=sim_params)
    frame = sim.readings
    del sim
    gc.collect()
    best, ratio = float("inf"), float("inf")
    for _ in range(repeat):
        ys = yardstick_s(2)  # just before: the machine's load changes over a run
        t0 = time.perf_counter()
        analyze(frame, site, params=params)
        dt = time.perf_counter() - t0
        best, ratio = min(best, dt), min(ratio, dt / ys)
    return best, len(frame), ratio


def time_survey_hour(repeat: int = 2) -> tuple[float, int, float]:
    """Best wall time of ``analyze`` in survey mode on one worker-hour of real BLE RSSI."""
    data = ROOT / "tests" / "data" / "ble_tetam"
    receivers = pd.read_csv(data / "receivers.csv")
    pis = receivers[receivers["alias"].str.endswith("0")]
    site = station_site(
        receivers,
        dict(zip(pis["group"], pis["receiver_id"], strict=True)),
        "e78f135624ce",
        floor_m=(20.66, 17.64),
    )
    track = pd.read_csv(data / "rectangular_without_rotation_rssi.csv")
    span = float(track["t_seconds"].max() - track["t_seconds"].min()) + 1.0
    copies = int(np.ceil(3600.0 / span))
    hour = pd.concat(
        [track.assign(t_seconds=track["t_seconds"] + i * span) for i in range(copies)], ignore_index=True
    )
    hour = hour[hour["t_seconds"] < track["t_seconds"].min() + 3600.0]
    survey = pd.read_csv(data / "survey_points.csv").rename(columns={"rssi_mean": "rssi_dbm"})
    fp = FingerprintParams()
    params = AnalysisParams(survey_map=(build_map(survey, site, fp, (20.66, 17.64)), fp))
    frame = rssi_frame(hour, site)
    best, ratio = float("inf"), float("inf")
    for _ in range(repeat):
        params.survey_map[0].cache.clear()  # a fresh analysis, not the live server's window cache
        ys = yardstick_s(2)
        t0 = time.perf_counter()
        analyze(frame, site, params=params)
        dt = time.perf_counter() - t0
        best, ratio = min(best, dt), min(ratio, dt / ys)
    return best, len(frame), ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-week", action="store_true", help="leave out the 7-day run (memory)")
    args = ap.parse_args()
    ys = yardstick_s()
    print(f"yardstick (np.sort 1e7 floats): {ys:.3f} s")
    pilot = load_site(ROOT / "examples" / "pilot_site.yaml")
    print("\npilot site, 3 machines / 2 workers")
    print("| window | readings | analyze | per hour | x yardstick |")
    print("|---|---|---|---|---|")
    spans = [8.0, 24.0] + ([] if args.skip_week else [168.0])
    for hours in spans:
        dt, rows, ratio = time_analysis(pilot, hours, repeat=2 if hours <= 24 else 1)
        label = f"{hours:g} h" if hours < 168 else "7 days"
        print(f"| {label} | {rows:,} | {dt:.2f} s | {dt / hours:.3f} s | {ratio:.1f} |", flush=True)
    dt, rows, ratio = time_analysis(pilot, 8.0, params=AnalysisParams(lag_model="visits"))
    print(f"| 8 h, per-visit lag model | {rows:,} | {dt:.2f} s | {dt / 8:.3f} s | {ratio:.1f} |", flush=True)
    print("\nsynthetic sites, 2 h")
    print("| machines / workers | readings | analyze | per machine-hour | x yardstick |")
    print("|---|---|---|---|---|")
    for machines, workers in ((3, 2), (30, 20)):
        dt, rows, ratio = time_analysis(synthetic_site(machines, workers), 2.0)
        print(
            f"| {machines} / {workers} | {rows:,} | {dt:.2f} s | {dt / (2 * machines):.3f} s | {ratio:.1f} |",
            flush=True,
        )
    print("\nRSSI zones (target: 8 h pilot < 2 s; survey mode <= 1 s per worker-hour)")
    print("| recording | readings | analyze | per worker-hour | x yardstick |")
    print("|---|---|---|---|---|")
    dt, rows, ratio = time_analysis(pilot, 8.0, sim_params=SimParams(locator=False))
    print(
        f"| pilot 8 h, RSSI only, self-calibrated | {rows:,} | {dt:.2f} s | {dt / 16:.3f} s | {ratio:.1f} |",
        flush=True,
    )
    dt, rows, ratio = time_survey_hour()
    print(
        f"| ble_tetam 1 worker-hour, survey fingerprint map | {rows:,} | {dt:.2f} s | {dt:.3f} s "
        f"| {ratio:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
