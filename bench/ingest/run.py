"""Ingest benchmark: broker -> journal (-> InfluxDB) throughput against a mosquitto_sub ceiling,
memory over a steady run, and publish -> WebSocket push latency at pilot load.

    .venv/bin/python bench/ingest/run.py [--messages 100000] [--soak-s 60] [--latency-s 30]

Throughput is measured by draining a backlog: the broker holds N QoS 1 messages for a
persistent session that is offline, then the subscriber connects and the clock runs until
it has all N. The same backlog is drained once by ``mosquitto_sub`` (the C client: the
ceiling) and once by the server's ingest (paho + decode + SQLite commit + PUBACK after
commit), so the publisher's speed does not enter either figure. Figures are printed as a
ratio to the ceiling measured in the same run (target >= 0.3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from services import free_port, run_influxd, run_mosquitto  # noqa: E402

from edge_agent.wire import Reading, encode_reading  # noqa: E402
from twin_server.ingest.publish import Publisher  # noqa: E402
from twin_server.ingest.subscriber import Ingest  # noqa: E402
from twin_server.store.influx.writer import InfluxWriter  # noqa: E402
from twin_server.store.journal import Journal  # noqa: E402

SITE = "bench"
T0_NS = 1_795_996_800 * 10**9


def make_messages(n: int, site: str = SITE) -> list[tuple[str, bytes]]:
    """N encoded readings over 30 sensors of 3 devices (realistic ~120-byte payloads)."""
    out = []
    for i in range(n):
        dev = f"pi-m{i % 3}"
        kind = ("light", "pressure", "rssi")[i % 3]
        r = Reading(
            site=site,
            device=dev,
            sensor=f"{kind}{i % 10}",
            kind=kind,
            t_ns=T0_NS + i * 10**6,
            seq=i // 30,
            source=f"R{i % 3}" if kind == "rssi" else f"M{i % 3}",
            value=-70.0 + (i % 20) if kind == "rssi" else float(i % 1000),
            unit="dBm" if kind == "rssi" else "raw",
            channel="b-01" if kind == "rssi" else "",
        )
        out.append(encode_reading(r))
    return out


def preload(host: str, port: int, messages: list[tuple[str, bytes]]) -> float:
    pub = Publisher(host, port, max_inflight=1000)
    t = time.perf_counter()
    for topic, payload in messages:
        pub.publish_raw(topic, payload)
    pub.close()
    return len(messages) / (time.perf_counter() - t)


def ceiling_mosquitto_sub(host: str, port: int, messages: list[tuple[str, bytes]]) -> float:
    """Messages/s at which mosquitto_sub drains the backlog of a persistent QoS 1 session."""
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        raise SystemExit("mosquitto_sub is missing: apt-get install mosquitto-clients")
    base = [
        exe,
        "-h",
        host,
        "-p",
        str(port),
        "-i",
        "bench-ceiling",
        "-c",
        "-q",
        "1",
        "-t",
        f"twin/v1/{SITE}/#",
    ]
    # Create the persistent session, then go offline.
    subprocess.run([*base, "-C", "1", "-W", "1"], capture_output=True, check=False)
    preload(host, port, messages)
    t = time.perf_counter()
    proc = subprocess.run(
        [*base, "-C", str(len(messages))], stdout=subprocess.DEVNULL, check=True, timeout=600
    )
    dt = time.perf_counter() - t
    assert proc.returncode == 0
    return len(messages) / dt


def bare_paho_drain(host: str, port: int, messages: list[tuple[str, bytes]]) -> float:
    """Messages/s of a paho subscriber that does nothing with its messages (auto PUBACK).

    Not the target's baseline, but it shows how close the ingest is to what a Python MQTT
    client can receive at all on this machine.
    """
    import paho.mqtt.client as mqtt

    def client() -> mqtt.Client:
        return mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="bench-paho",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )

    c = client()
    subscribed = threading.Event()
    c.on_connect = lambda cl, *a: cl.subscribe(f"twin/v1/{SITE}/#", 1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect(host, port)
    c.loop_start()
    subscribed.wait(10)
    c.disconnect()
    c.loop_stop()
    preload(host, port, messages)
    n = len(messages)
    got = [0]
    done = threading.Event()

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] >= n:
            done.set()

    c = client()
    c.on_message = on_message
    t = time.perf_counter()
    c.connect(host, port)
    c.loop_start()
    if not done.wait(600):
        raise SystemExit(f"bare paho stalled at {got[0]}/{n}")
    dt = time.perf_counter() - t
    c.disconnect()
    c.loop_stop()
    return n / dt


def server_drain(
    host: str, port: int, messages: list[tuple[str, bytes]], workdir: Path, *, fast: bool = True
) -> tuple[float, Journal, float]:
    """Messages/s at which the server's ingest drains the same backlog into the journal.

    ``fast=False`` runs the ingest on stock paho (no buffered reads, ``on_message``).
    Also returns the CPU time of this process per message (µs; all threads), a figure less
    sensitive than wall time to other jobs on a shared machine.
    """
    name = "journal.sqlite" if fast else "journal-stock.sqlite"
    journal = Journal(workdir / name)
    client_id = "bench-server" if fast else "bench-server-stock"
    ing = Ingest(journal, host, port, site=SITE, client_id=client_id, fast_mqtt=fast)
    ing.start()  # create the persistent session
    deadline = time.monotonic() + 10
    while not ing.stats.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    ing.stop()
    preload(host, port, messages)
    ing = Ingest(journal, host, port, site=SITE, client_id=client_id, fast_mqtt=fast)
    t = time.perf_counter()
    cpu = time.process_time()
    ing.start()
    n = len(messages)
    while ing.stats.accepted < n:
        time.sleep(0.005)
        if time.perf_counter() - t > 600:
            raise SystemExit(f"ingest stalled at {ing.stats.accepted}/{n}")
    dt = time.perf_counter() - t
    cpu_us = (time.process_time() - cpu) / n * 1e6
    ing.stop()
    assert journal.count(SITE) == n
    return n / dt, journal, cpu_us


def influx_export(journal: Journal, workdir: Path) -> float:
    with run_influxd(workdir / "influxd") as influxd:
        w = InfluxWriter(journal, influxd.url, "bench")
        t = time.perf_counter()
        n = 0
        while w.step():
            pass
        dt = time.perf_counter() - t
        res = influxd.query('SELECT count("seq") FROM /.*/', "bench")["results"][0]
        n = sum(s["values"][0][1] for s in res.get("series", []))
        w.stop()
    assert n == journal.count(SITE), (n, journal.count(SITE))
    return n / dt


def soak(host: str, port: int, seconds: float, rate_per_s: float, workdir: Path) -> list[tuple[float, float]]:
    """Steady publishing into the ingest; RSS of this process sampled every few seconds."""
    journal = Journal(workdir / "soak.sqlite")
    ing = Ingest(journal, host, port, site="soak", client_id="bench-soak")
    ing.start()
    time.sleep(0.5)
    proc = psutil.Process()
    samples = []
    pub = Publisher(host, port)
    t0 = time.perf_counter()
    i = 0
    next_sample = 0.0
    while (el := time.perf_counter() - t0) < seconds:
        batch = max(1, int(rate_per_s / 10))
        for _ in range(batch):
            r = Reading(
                site="soak",
                device=f"pi-{i % 5}",
                sensor="light",
                kind="light",
                t_ns=T0_NS + i * 10**6,
                seq=i // 5,
                source="M3",
                value=float(i % 1000),
                unit="raw",
            )
            pub.publish_raw(*encode_reading(r))
            i += 1
        if el >= next_sample:
            samples.append((el, proc.memory_info().rss / 2**20))
            next_sample += max(1.0, seconds / 20)
        ahead = t0 + i / rate_per_s - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    pub.close()
    deadline = time.monotonic() + 60
    while ing.stats.accepted < i and time.monotonic() < deadline:
        time.sleep(0.05)
    samples.append((time.perf_counter() - t0, proc.memory_info().rss / 2**20))
    ing.stop()
    print(f"soak: {i} messages at {rate_per_s:.0f}/s for {seconds:.0f} s, accepted {ing.stats.accepted}")
    return samples


def ws_latency(host: str, port: int, seconds: float, rate_per_s: float, workdir: Path) -> list[float]:
    """Publish -> /ws/live push latency (ms) of the real server process at pilot load."""
    from websockets.sync.client import connect

    site_yaml = ROOT / "examples" / "pilot_site.yaml"
    http_port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin_server",
            "serve",
            "--site",
            str(site_yaml),
            "--broker",
            f"{host}:{port}",
            "--data-dir",
            str(workdir / "ws-data"),
            "--port",
            str(http_port),
            "--log-level",
            "WARNING",
            "--client-id",
            "bench-ws",
        ],
        cwd=ROOT,
    )
    try:
        from services import wait_for_port

        wait_for_port(http_port, 30, server)
        time.sleep(1.0)
        sent: dict[int, int] = {}
        lat_ms: list[float] = []
        with connect(f"ws://127.0.0.1:{http_port}/ws/live", open_timeout=10) as ws:
            ws.recv(timeout=10)  # snapshot
            done = threading.Event()

            def receive() -> None:
                while not done.is_set():
                    try:
                        msg = json.loads(ws.recv(timeout=1))
                    except TimeoutError:
                        continue
                    except Exception:
                        return
                    now = time.time_ns()
                    if msg.get("type") == "readings":
                        for r in msg["readings"]:
                            if r["device"] == "pi-m3" and r["sensor"] == "bench" and r["seq"] in sent:
                                lat_ms.append((now - sent[r["seq"]]) / 1e6)

            th = threading.Thread(target=receive, daemon=True)
            th.start()
            pub = Publisher(host, port)
            n = int(seconds * rate_per_s)
            t0 = time.perf_counter()
            for i in range(n):
                # pi-m3 reporting on its own machine: in the device scope the server enforces.
                r = Reading(
                    site="toyama-pilot",
                    device="pi-m3",
                    sensor="bench",
                    kind="light",
                    t_ns=time.time_ns(),
                    seq=i,
                    source="M3",
                    value=float(i),
                    unit="raw",
                )
                topic, payload = encode_reading(r)
                sent[i] = time.time_ns()
                pub.publish_raw(topic, payload)
                ahead = t0 + (i + 1) / rate_per_s - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            pub.close()
            time.sleep(2.0)
            done.set()
            th.join(5)
        return lat_ms
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--soak-s", type=float, default=60.0, help="steady-load run for the memory figure")
    ap.add_argument("--soak-rate", type=float, default=2000.0)
    ap.add_argument("--latency-s", type=float, default=30.0)
    ap.add_argument("--pilot-rate", type=float, default=20.0, help="pilot load, messages/s (~13 sensors)")
    ap.add_argument("--no-influx", action="store_true", help="skip the InfluxDB export figures")
    ap.add_argument("--no-stock", action="store_true", help="skip the ingest on stock paho")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"bench/ingest: {args.messages} messages, {os.cpu_count()} cores, load average {load}, "
        f"work dir {work}"
    )
    msgs = make_messages(args.messages)
    print(f"payload {sum(len(p) for _, p in msgs) / len(msgs):.0f} B average")
    with run_mosquitto(work / "mq") as mq:
        ceiling = ceiling_mosquitto_sub(mq.host, mq.port, msgs)
        print(f"ceiling  mosquitto_sub drain : {ceiling:10.0f} msg/s")
        paho_rate = bare_paho_drain(mq.host, mq.port, msgs)
        print(
            f"python   bare paho drain     : {paho_rate:10.0f} msg/s   ratio to ceiling "
            f"{paho_rate / ceiling:.2f}  (a Python client doing nothing)"
        )
        if not args.no_stock:
            stock, _, stock_cpu = server_drain(mq.host, mq.port, msgs, work, fast=False)
            print(
                f"server   broker -> journal   : {stock:10.0f} msg/s   ratio to ceiling "
                f"{stock / ceiling:.2f}  on stock paho (on_message, unbuffered reads), "
                f"{stock_cpu:.1f} µs CPU/msg"
            )
        rate, journal, cpu_us = server_drain(mq.host, mq.port, msgs, work)
        print(
            f"server   broker -> journal   : {rate:10.0f} msg/s   ratio to ceiling {rate / ceiling:.2f}"
            f"  (target >= 0.3); to bare paho {rate / paho_rate:.2f}, {cpu_us:.1f} µs CPU/msg"
            + (
                ""
                if args.no_stock
                else f"; to stock paho ingest {rate / stock:.2f}, CPU/msg {cpu_us / stock_cpu:.2f}"
            )
        )
        print(f"load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.no_influx:
            shutil.rmtree(work, ignore_errors=True)
            return 0
        influx_rate = influx_export(journal, work)
        print(
            f"server   journal -> InfluxDB : {influx_rate:10.0f} points/s ratio to ceiling "
            f"{influx_rate / ceiling:.2f}"
        )
        end_to_end = 1 / (1 / rate + 1 / influx_rate)
        print(
            f"server   broker -> InfluxDB  : {end_to_end:10.0f} msg/s   ratio to ceiling "
            f"{end_to_end / ceiling:.2f} (sequential; the two run concurrently in the server)"
        )
        if args.soak_s > 0:
            samples = soak(mq.host, mq.port, args.soak_s, args.soak_rate, work)
            first_half = [m for t, m in samples if t < args.soak_s / 2]
            second_half = [m for t, m in samples if t >= args.soak_s / 2]
            print("memory   RSS MiB over the soak: " + " ".join(f"{m:.0f}" for _, m in samples))
            if first_half and second_half:
                print(
                    f"memory   mean first half {sum(first_half) / len(first_half):.1f} MiB, second half "
                    f"{sum(second_half) / len(second_half):.1f} MiB"
                )
        if args.latency_s > 0:
            lat = sorted(ws_latency(mq.host, mq.port, args.latency_s, args.pilot_rate, work))
            if not lat:
                print("latency  no WebSocket pushes received")
                return 1
            p95 = lat[int(0.95 * (len(lat) - 1))]
            print(
                f"latency  publish -> /ws/live push at {args.pilot_rate:.0f} msg/s: n={len(lat)} "
                f"p50 {lat[len(lat) // 2]:.0f} ms, p95 {p95:.0f} ms, max {lat[-1]:.0f} ms"
                " (target p95 < 500 ms)"
            )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
