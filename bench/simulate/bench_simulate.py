"""Benchmark: how fast the simulator makes an 8 h shift (pilot site, and 8 machines / 4 workers).

Run: ``.venv/bin/python bench/simulate/bench_simulate.py [--hours 8]``

Prints wall-clock seconds per phase (schedule + sensor rendering in memory, CSV writing via
``twin_server.readings.write_readings_csv``), the real-time factor (simulated seconds per wall
second), and each time as a ratio against a yardstick measured in the same run (sorting 10
million random floats with numpy), so figures from machines of different speed compare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from twin_server.readings import write_readings_csv
from twin_server.simulate import simulate, synthetic_site
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]


def _yardstick_s() -> float:
    rng = np.random.default_rng(0)
    data = rng.random(10_000_000)
    began = time.perf_counter()
    np.sort(data)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    args = parser.parse_args()
    yard = min(_yardstick_s() for _ in range(3))
    print(f"yardstick (np.sort of 1e7 floats): {yard:.3f} s")
    cases = [
        ("pilot 3 machines / 2 workers", load_site(ROOT / "examples" / "pilot_site.yaml")),
        ("synthetic 8 machines / 4 workers", synthetic_site(8, 4)),
    ]
    head = f"{'case':<34}{'rows':>10}{'simulate s':>12}{'x yard':>8}{'write s':>10}{'x yard':>8}"
    print(head + f"{'realtime x':>12}")
    for name, site in cases:
        began = time.perf_counter()
        sim = simulate(site, hours=args.hours, seed=1)
        sim_s = time.perf_counter() - began
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            write_readings_csv(sim.readings, Path(tmp) / "readings.csv")
            write_s = time.perf_counter() - began
        realtime = args.hours * 3600 / (sim_s + write_s)
        print(
            f"{name:<34}{len(sim.readings):>10}{sim_s:>12.2f}{sim_s / yard:>8.1f}"
            f"{write_s:>10.2f}{write_s / yard:>8.1f}{realtime:>12.0f}"
        )


if __name__ == "__main__":
    main()
