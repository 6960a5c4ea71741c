"""Cost of the commissioning page's state: folding journal rows, and one refresh + view.

Baseline in the same run: reading the same rows from the journal without folding them
(``Journal.readings_after``), so the ratio says what the fold adds to the unavoidable read.

    .venv/bin/python bench/commissioning/bench_tracker.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edge_agent.wire import Reading
from twin_server.api.commissioning import CommissioningTracker
from twin_server.site import load_site
from twin_server.store.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def pilot_rows(site_id: str, n: int, t0_ns: int) -> list[tuple[Reading, int]]:
    """A pilot-like mix: levels every second, state changes, presses, RSSI windows."""
    out = []
    kinds = [
        ("light", "light", "raw", ""),
        ("pressure", "pressure", "raw", ""),
        ("light_state", "light", "bool", ""),
        ("switch", "sw-tool", "bool", "tool_change"),
        ("rssi", "R{m}.b-01", "dBm", "b-01"),
    ]
    seq: dict[tuple[str, str], int] = {}
    for i in range(n):
        m = (3, 7, 10)[i % 3]
        kind, sensor, unit, channel = kinds[(i // 3) % len(kinds)]
        sensor = sensor.format(m=m)
        key = (f"pi-m{m}", sensor)
        seq[key] = seq.get(key, -1) + 1
        value = -60.0 if kind == "rssi" else float(i % 2)
        source = f"R{m}" if kind == "rssi" else f"M{m}"
        t = t0_ns + i * 10_000_000
        out.append((Reading(site_id, f"pi-m{m}", sensor, kind, t, seq[key], source, value, unit, channel), t))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    site = load_site(ROOT / "examples" / "pilot_site.yaml")
    with tempfile.TemporaryDirectory() as d:
        journal = Journal(Path(d) / "journal.sqlite")
        tracker = CommissioningTracker(site, journal)  # starts before the rows: all of them count
        rows = pilot_rows(site.site, args.rows, time.time_ns() - args.rows * 10_000_000)
        for i in range(0, len(rows), 5000):
            journal.write_batch(rows[i : i + 5000])

        t = time.perf_counter()
        after = 0
        while batch := journal.readings_after(after, 5000):
            after = batch[-1][0]
        read_s = time.perf_counter() - t

        t = time.perf_counter()
        tracker.refresh()
        fold_s = time.perf_counter() - t

        t = time.perf_counter()
        n_views = 50
        for _ in range(n_views):
            doc = tracker.view()
        view_ms = (time.perf_counter() - t) / n_views * 1e3
        journal.close()
    lines = sum(len(m["checklist"]) for m in doc["machines"])
    print(f"rows: {args.rows:,}")
    print(f"baseline: read the rows from the journal        {args.rows / read_s:12,.0f} rows/s")
    print(
        f"read + fold into the commissioning sessions     {args.rows / fold_s:12,.0f} rows/s"
        f"  ({fold_s / read_s:.2f} x the read alone)"
    )
    machines = len(doc["machines"])
    print(
        f"one refresh with nothing new + the full view    {view_ms:8.2f} ms"
        f"  ({machines} machines, {lines} lines)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
