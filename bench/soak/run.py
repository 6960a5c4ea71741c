"""Soak benchmark: the server's memory over a long steady run at 25x pilot load.

    .venv/bin/python bench/soak/run.py [--minutes 30] [--rate 500] [--machines 20 --workers 14]

Runs the real ``python -m twin_server serve`` process against a real mosquitto, with:

- simulated agents: a simulated shift of a synthetic site (20 machines, 14 workers by
  default, about 500 readings/s) published by one QoS 1 client per device, restamped to
  the wall clock so the server analyses them live as today's shift;
- the live analysis re-running every ``--analysis-interval`` seconds;
- one WebSocket client on ``/ws/live`` reading every push.

The server process's RSS is sampled every ``--sample-s`` seconds (10 s); its analysis
children (``twin_server.live.analysis_worker``: one per analysis run, gone after it) are sampled
too and printed beside it, as the machine's view. The figure is the slope of
a least-squares line through the second half of the samples, in MiB per hour (target
<= 5 MiB/h); the first half's slope is printed beside it (warm-up: caches, the day's
analysis growing), as are the readings published and journalled and the WebSocket
messages received, so a server that fell behind cannot pass for a flat one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from services import free_port, run_mosquitto, wait_for_port  # noqa: E402

from edge_agent.wire import encode_reading  # noqa: E402
from twin_server.ingest.publish import Publisher, frame_to_wire  # noqa: E402
from twin_server.simulate import simulate  # noqa: E402
from twin_server.simulate.site_gen import synthetic_site_dict  # noqa: E402
from twin_server.site import parse_site  # noqa: E402

TARGET_MIB_PER_H = 5.0


def slope_mib_per_h(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, MiB)`` samples, in MiB per hour (nan if < 3)."""
    if len(samples) < 3:
        return float("nan")
    t = np.array([s for s, _ in samples])
    m = np.array([v for _, v in samples])
    return float(np.polyfit(t, m, 1)[0] * 3600.0)


class Feed:
    """Publishes the simulated shift restamped to the wall clock, one client per device."""

    def __init__(self, host: str, port: int, site, minutes: float, rate: float, seed: int) -> None:
        sim = simulate(site, minutes / 60.0 + 0.05, seed)
        readings = frame_to_wire(sim.readings, site)
        t_first = readings[0].t_ns
        natural = len(readings) / max(1e-9, (readings[-1].t_ns - t_first) / 1e9)
        self.speed = rate / natural  # time scale: the shift's structure, at the asked rate
        self.natural_rate = natural
        self.readings = readings
        self.t_first = t_first
        self.clients: dict[str, Publisher] = {}
        self.host, self.port = host, port
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def start(self) -> None:
        for r in self.readings:
            if r.device not in self.clients:
                self.clients[r.device] = Publisher(
                    self.host, self.port, client_id=f"soak-{r.device}", max_inflight=500
                )
        self._thread.start()

    def _run(self) -> None:
        import dataclasses

        t0_wall = time.time()
        for r in self.readings:
            if self._stop.is_set():
                return
            due = t0_wall + (r.t_ns - self.t_first) / 1e9 / self.speed
            ahead = due - time.time()
            if ahead > 0:
                time.sleep(ahead)
            # Stamped now: the device clock tells the truth, the server sees today's shift.
            topic, payload = encode_reading(dataclasses.replace(r, t_ns=time.time_ns()))
            self.clients[r.device].publish_raw(topic, payload)
            self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for c in self.clients.values():
            c.flush(30)
            c.close()


class WsClient:
    """Reads every ``/ws/live`` push until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages = 0
        self.readings = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ws", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, open_timeout=30, max_size=None) as ws:
                while not self._stop.is_set():
                    try:
                        msg = json.loads(ws.recv(timeout=1))
                    except TimeoutError:
                        continue
                    self.messages += 1
                    if msg.get("type") == "readings":
                        self.readings += len(msg.get("readings", []))
        except Exception as exc:  # reported in the summary
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    ap.add_argument("--rate", type=float, default=500.0, help="readings per second (default 500)")
    ap.add_argument("--machines", type=int, default=20)
    ap.add_argument("--workers", type=int, default=14)
    ap.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    ap.add_argument("--analysis-interval", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"bench/soak: {args.minutes:g} min at {args.rate:g} readings/s, synthetic site "
        f"{args.machines} machines / {args.workers} workers, {os.cpu_count()} cores, load {load}, "
        f"work dir {work}",
        flush=True,
    )
    site_doc = synthetic_site_dict(args.machines, args.workers, "soak")
    site_path = work / "site.yaml"
    site_path.write_text(yaml.safe_dump(site_doc, sort_keys=False))
    site = parse_site(site_doc, str(site_path))
    status = 0
    with run_mosquitto(work / "mq") as mq:
        http_port = free_port()
        log = open(work / "server.log", "ab")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twin_server",
                "serve",
                "--site",
                str(site_path),
                "--broker",
                f"{mq.host}:{mq.port}",
                "--data-dir",
                str(work / "data"),
                "--port",
                str(http_port),
                "--analysis-interval",
                str(args.analysis_interval),
                "--log-level",
                "WARNING",
                "--client-id",
                "soak-server",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_port(http_port, 60, server)
            feed = Feed(mq.host, mq.port, site, args.minutes, args.rate, args.seed)
            devices = len({r.device for r in feed.readings})
            print(
                f"feed: {len(feed.readings)} simulated readings, natural rate {feed.natural_rate:.0f}/s, "
                f"time scale x{feed.speed:.2f}, {devices} devices",
                flush=True,
            )
            ws = WsClient(f"ws://127.0.0.1:{http_port}/ws/live")
            ws.start()
            proc = psutil.Process(server.pid)
            feed.start()
            t0 = time.monotonic()
            samples: list[tuple[float, float]] = []
            totals: list[tuple[float, float]] = []  # the server with its children (analysis processes)
            end_s = args.minutes * 60
            next_print = 0.0
            while (el := time.monotonic() - t0) < end_s:
                rss = proc.memory_info().rss / 2**20
                samples.append((el, rss))
                kids = 0.0
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        kids += child.memory_info().rss / 2**20
                totals.append((el, rss + kids))
                if el >= next_print:
                    h = health(http_port)
                    ing = h.get("ingest") or {}
                    print(
                        f"  t={el:6.0f} s  RSS {rss:7.1f} MiB (with children {rss + kids:7.1f})  "
                        f"published {feed.sent:9d}  journalled "
                        f"{ing.get('accepted', 0):9d}  analyses {h['analysis']['runs']:4d} "
                        f"(last {h['analysis']['last_run_s'] or 0:.1f} s)  ws messages {ws.messages}",
                        flush=True,
                    )
                    next_print += max(60.0, args.minutes * 60 / 30)
                time.sleep(max(0.0, t0 + len(samples) * args.sample_s - time.monotonic()))
            feed.stop()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                h = health(http_port)
                if (h.get("ingest") or {}).get("accepted", 0) >= feed.sent:
                    break
                time.sleep(1)
            ws.stop()
            h = health(http_port)
            half = [s for s in samples if s[0] >= end_s / 2]
            first = [s for s in samples if s[0] < end_s / 2]
            second_slope = slope_mib_per_h(half)
            ing = h.get("ingest") or {}
            print("RSS MiB every {:g} s: {}".format(args.sample_s, " ".join(f"{m:.0f}" for _, m in samples)))
            an = h["analysis"]
            print(
                f"readings published {feed.sent}, journalled {ing.get('accepted')}, dead letters "
                f"{ing.get('dead_letters')}, analyses {an['runs']} (last {an['last_run_s']}"
                f" s, error {an['last_error']}), ws messages {ws.messages} "
                f"({ws.readings} readings){'; ws errors ' + '; '.join(ws.errors) if ws.errors else ''}"
            )
            print(
                f"RSS start {samples[0][1]:.1f} MiB, end {samples[-1][1]:.1f} MiB, max "
                f"{max(m for _, m in samples):.1f} MiB"
            )
            print(
                f"RSS with children (the analysis processes, alive only while analysing) every "
                f"{args.sample_s:g} s: " + " ".join(f"{m:.0f}" for _, m in totals)
            )
            print(
                f"RSS with children: max {max(m for _, m in totals):.1f} MiB, second-half slope "
                f"{slope_mib_per_h([s for s in totals if s[0] >= end_s / 2]):+.1f} MiB/h (grows with the "
                f"day's readings: one analysis holds the day)"
            )
            print(
                f"RSS slope first half {slope_mib_per_h(first):+.1f} MiB/h, second half "
                f"{second_slope:+.1f} MiB/h (target <= {TARGET_MIB_PER_H:g} MiB/h; ratio "
                f"{second_slope / TARGET_MIB_PER_H:.2f})"
            )
            if ing.get("accepted", 0) < feed.sent:
                print("server did not journal every published reading")
                status = 1
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    if args.keep:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
