"""Scale-out benchmark: 1 vs 2 ingest processes on one MQTT shared subscription.

    .venv/bin/python bench/ingest/scale.py [--messages 100000] [--repeat 2]

Each drain runs on a fresh mosquitto (an earlier drain's offline sessions would keep being
dealt messages) and drains a backlog, as ``run.py`` does: every member's persistent session
subscribes to ``$share/GROUP/twin/v1/bench/+/+/+`` and goes offline, N QoS 1 messages are
published (mosquitto queues each for one member, round robin), then all members start at
once and the clock runs until the journal holds N distinct ``(device, sensor, seq)``.
Members are separate processes (one interpreter lock each), started and warmed up before
the clock starts. Printed per round, for the same backlog:

- 1 process -> one journal (the baseline);
- 2 processes -> one shared SQLite journal (WAL, ``BEGIN IMMEDIATE``, short-poll wait for
  the other's write lock);
- 2 processes -> one journal each (merged on read), to see what sharing the SQLite write
  lock costs;

as msg/s, as a ratio to the 1-process figure, with the CPU time per message of the
members and of the broker, the cores they used and the cores left idle during the drain
(what other jobs took is the rest of the machine), and with the check that nothing was lost
or duplicated: rows and distinct keys against the messages published (exit code 1 on a
mismatch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GROUP = "bench-share"


def worker(args: argparse.Namespace) -> int:
    """One member: create its session (``--create``), or wait for ``go`` and ingest until ``stop``."""
    from run import SITE

    import twin_server.store.journal as journal_mod
    from twin_server.ingest.subscriber import Ingest
    from twin_server.store.journal import Journal

    waited = [0.0]
    begin = journal_mod._begin_immediate

    def timed_begin(conn: object) -> None:  # time spent waiting for the other member's write lock
        t = time.perf_counter()
        begin(conn)
        waited[0] += time.perf_counter() - t

    journal_mod._begin_immediate = timed_begin
    journal = Journal(args.journal)
    ing = Ingest(journal, args.host, args.port, site=SITE, client_id=args.client_id, share_group=args.group)
    if args.create:
        ing.start()
        deadline = time.monotonic() + 10
        while not ing.stats.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # SUBACK
        ing.stop()
        return 0 if ing.stats.connects else 1
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    cpu = time.process_time()
    ing.start()
    sys.stdin.readline()  # "stop"
    cpu = time.process_time() - cpu
    ing.stop()
    print(
        json.dumps(
            {
                "accepted": ing.stats.accepted,
                "duplicates": ing.stats.duplicates,
                "received": ing.stats.received,
                "cpu_s": cpu,
                "lock_wait_s": waited[0],
                "batches": ing.stats.batches,
            }
        ),
        flush=True,
    )
    return 0


def _spawn(host: str, port: int, journal: Path, client_id: str, create: bool, group: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--host",
        host,
        "--port",
        str(port),
        "--journal",
        str(journal),
        "--client-id",
        client_id,
        "--group",
        group,
    ]
    if create:
        cmd.append("--create")
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _rows(journals: list[Path]) -> int:
    """Rows over the journals, from their newest rowid (O(1) per journal)."""
    total = 0
    for path in journals:
        with sqlite3.connect(path) as db:
            total += db.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
    return total


def _counts(journals: list[Path]) -> tuple[int, int]:
    """Rows and distinct (device, sensor, seq) over the journals (merged on read)."""
    db = sqlite3.connect(":memory:")
    parts = []
    for i, path in enumerate(journals):
        if not path.exists():
            return 0, 0
        db.execute(f"ATTACH DATABASE ? AS j{i}", (str(path),))
        parts.append(f"SELECT device, sensor, seq FROM j{i}.readings")
    union = " UNION ALL ".join(parts)
    rows = db.execute(f"SELECT count(*) FROM ({union})").fetchone()[0]
    distinct = db.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT device, sensor, seq FROM ({union}))"
    ).fetchone()[0]
    db.close()
    return int(rows), int(distinct)


def drain(messages: list[tuple[str, bytes]], workdir: Path, n_procs: int, split: bool, tag: str) -> dict:
    """Time ``n_procs`` members draining the backlog of ``messages`` on a fresh mosquitto; check counts."""
    from services import run_mosquitto

    workdir.mkdir(parents=True, exist_ok=True)
    with run_mosquitto(workdir / "mq") as mq:
        return _drain(mq, messages, workdir, n_procs, split, tag)


def _drain(
    mq: object, messages: list[tuple[str, bytes]], workdir: Path, n_procs: int, split: bool, tag: str
) -> dict:
    import psutil
    from run import preload

    host, port = mq.host, mq.port  # type: ignore[attr-defined]
    broker = psutil.Process(mq.proc.pid)  # type: ignore[attr-defined]
    journals = [workdir / (f"journal-{i}.sqlite" if split else "journal.sqlite") for i in range(n_procs)]
    ids = [f"bench-{tag}-{i}" for i in range(n_procs)]
    # A group per round: the offline sessions of an earlier round's members would otherwise
    # keep being dealt their share of the messages (mosquitto queues for them).
    group = f"{GROUP}-{tag}"
    for proc in [_spawn(host, port, j, cid, True, group) for j, cid in zip(journals, ids, strict=True)]:
        if proc.wait(60) != 0:
            raise SystemExit("a member could not create its session")
    preload(host, port, messages)
    procs = [_spawn(host, port, j, cid, False, group) for j, cid in zip(journals, ids, strict=True)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a member did not start")
    n = len(messages)
    broker_cpu = sum(broker.cpu_times()[:2])
    machine = psutil.cpu_times()
    t0 = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    distinct = 0
    while distinct < n:
        time.sleep(0.02)
        # Cheap poll (the newest rowid: rows are never deleted, ignored duplicates take no
        # rowid), then the exact distinct count once the rows are all there.
        if _rows(sorted(set(journals))) >= n:
            distinct = _counts(sorted(set(journals)))[1]
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"stalled at {_counts(sorted(set(journals)))}/{n}")
    dt = time.perf_counter() - t0
    broker_cpu = sum(broker.cpu_times()[:2]) - broker_cpu
    now = psutil.cpu_times()
    idle_cores = (now.idle + now.iowait - machine.idle - machine.iowait) / dt
    time.sleep(0.5)  # a duplicate would arrive now
    stats = []
    for proc in procs:
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        stats.append(json.loads(proc.stdout.readline()))
        proc.wait(30)
    rows, distinct = _counts(sorted(set(journals)))
    return {
        "rate": n / dt,
        "rows": rows,
        "distinct": distinct,
        "published": n,
        "shares": [s["accepted"] for s in stats],
        "duplicates": sum(s["duplicates"] for s in stats),
        "cpu_us": sum(s["cpu_s"] for s in stats) / n * 1e6,
        "broker_cpu_us": broker_cpu / n * 1e6,
        "ours_cores": (sum(s["cpu_s"] for s in stats) + broker_cpu) / dt,
        "idle_cores": idle_cores,
        "lock_wait": [round(s["lock_wait_s"] / dt, 2) for s in stats],
        "batch": [round(s["accepted"] / max(1, s["batches"])) for s in stats],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument(
        "--repeat", type=int, default=2, help="rounds (the machine is shared: compare within a round)"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--create", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--host", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--journal", help=argparse.SUPPRESS)
    ap.add_argument("--client-id", help=argparse.SUPPRESS)
    ap.add_argument("--group", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    from run import make_messages

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    msgs = make_messages(args.messages)
    print(
        f"bench/ingest/scale: {args.messages} messages, {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    ok = True
    for r in range(args.repeat):
        one = drain(msgs, work / f"r{r}-1", 1, False, f"r{r}-1")
        two = drain(msgs, work / f"r{r}-2", 2, False, f"r{r}-2")
        split = drain(msgs, work / f"r{r}-2s", 2, True, f"r{r}-2s")
        for name, res in (
            ("1 process,   one journal ", one),
            ("2 processes, one journal ", two),
            ("2 processes, 2 journals  ", split),
        ):
            exact = res["rows"] == res["distinct"] == res["published"]
            ok &= exact
            check = (
                f"rows {res['rows']} distinct {res['distinct']} of {res['published']} "
                f"{'exact' if exact else 'MISMATCH'}"
            )
            cpu = (
                f"CPU/msg: ingest {res['cpu_us']:.1f} µs, broker {res['broker_cpu_us']:.1f} µs; cores: "
                f"ours {res['ours_cores']:.2f}, idle {res['idle_cores']:.2f}; "
                f"{res['rate'] / res['ours_cores']:.0f} msg/s per core used"
            )
            print(
                f"round {r + 1}  {name}: {res['rate']:8.0f} msg/s  x{res['rate'] / one['rate']:.2f} "
                f"of 1 process  shares {res['shares']}  {check}  {cpu}; share of the time waiting for "
                f"the write lock {res['lock_wait']}, rows per commit {res['batch']}"
            )
        print(f"round {r + 1}  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
