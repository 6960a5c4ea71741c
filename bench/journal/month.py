"""Journal growth at pilot load, and what a month of it costs to back up and prune.

    .venv/bin/python bench/journal/month.py [--days 3] [--hours 8]

Simulates the pilot site (3 machines, 2 workers, ~16 readings/s) for ``--days`` shifts of
``--hours``, journals them as the server does (``Journal.write_batch`` in ingest-sized
batches, WAL, unique index), and prints:

- journal bytes per reading and per machine-day, beside the same readings as the readings
  CSV (the same-run baseline: a ratio of 1 would mean SQLite costs what the CSV does);
- the size projected to 30 days (one shift a day), for the simulated rate and for the
  pilot's measured ~18 readings/s;
- ``python -m twin_server backup`` time and throughput on the journal;
- pruning one day (``twin_server.store.retention.prune``) time.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from twin_server.ingest.publish import frame_to_wire  # noqa: E402
from twin_server.simulate import simulate  # noqa: E402
from twin_server.site import load_site  # noqa: E402
from twin_server.store.backup import backup  # noqa: E402
from twin_server.store.journal import Journal  # noqa: E402
from twin_server.store.retention import DAY_NS, prune  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--hours", type=float, default=8.0)
    args = ap.parse_args()
    site = load_site(ROOT / "examples" / "pilot_site.yaml")
    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    journal = Journal(work / "data" / "journal.sqlite")
    n = 0
    csv_bytes = 0
    seq_base: dict[tuple[str, str], int] = {}
    t_write = 0.0
    for day in range(args.days):
        sim = simulate(site, args.hours, seed=day + 1, start=1_764_000_000 + day * 86_400)
        csv_bytes += len(sim.readings.to_csv(index=False).encode())
        readings = frame_to_wire(sim.readings, site)
        shifted = []
        for r in readings:  # sequence numbers continue across days, as on a real agent
            key = (r.device, r.sensor)
            shifted.append(dataclasses.replace(r, seq=seq_base.get(key, 0) + r.seq))
        for r in shifted:
            seq_base[(r.device, r.sensor)] = max(seq_base.get((r.device, r.sensor), 0), r.seq + 1)
        t0 = time.perf_counter()
        for i in range(0, len(shifted), 2000):
            journal.write_batch([(r, r.t_ns + 50_000_000) for r in shifted[i : i + 2000]])
        t_write += time.perf_counter() - t0
        n += len(shifted)
        print(f"day {day + 1}: {len(shifted)} readings", flush=True)
    journal.checkpoint()
    size = journal.disk()["size_bytes"]
    machines = len(site.machines)
    per_day = size / args.days
    print(
        f"journal: {n} readings, {size / 2**20:.1f} MiB: {size / n:.0f} B per reading; readings CSV "
        f"{csv_bytes / n:.0f} B per reading (journal / CSV = {size / csv_bytes:.2f})"
    )
    print(
        f"per pilot day ({args.hours:g} h, {machines} machines): {per_day / 2**20:.1f} MiB = "
        f"{per_day / machines / 2**20:.1f} MiB per machine-day; 30 days: {30 * per_day / 2**30:.2f} GiB"
    )
    rate = n / (args.days * args.hours * 3600)
    pilot = 18.0 * args.hours * 3600 * size / n  # the pilot shop's measured ~18 readings/s
    print(
        f"the simulated shifts make {rate:.1f} readings/s; at the pilot's 18 readings/s: "
        f"{pilot / machines / 2**20:.1f} MiB per machine-day, 30 days {30 * pilot / 2**30:.2f} GiB"
    )
    print(f"write: {n / t_write:.0f} readings/s into the journal (batches of 2,000)")
    t0 = time.perf_counter()
    backup(work / "data", work / "backup.tar", say=lambda _m: None)
    dt = time.perf_counter() - t0
    print(
        f"backup: {dt:.2f} s for {size / 2**20:.1f} MiB ({size / 2**20 / dt:.0f} MiB/s), "
        f"file {(work / 'backup.tar').stat().st_size / 2**20:.1f} MiB"
    )
    first = sqlite3.connect(journal.path).execute("SELECT min(t_ns) FROM readings").fetchone()[0]
    t0 = time.perf_counter()
    pruned = prune(journal, site.site, first + DAY_NS // 2, journal.max_id())
    dt = time.perf_counter() - t0
    print(f"prune: {pruned} readings (one day) in {dt:.2f} s ({pruned / dt:.0f} readings/s)")
    db = sqlite3.connect(journal.path)
    free = db.execute("PRAGMA freelist_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    print(f"after pruning, {free / 2**20:.1f} MiB of the file are free pages, reused by the next readings")
    journal.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
