"""``python -m twin_server demo``: the whole pipeline on one machine, nothing to install.

1. simulates a shift of the site (``--hours``, ``--seed``);
2. starts an embedded MQTT broker (amqtt, MQTT 3.1.1, bound to 127.0.0.1) unless
   ``--broker host:port`` names one;
3. starts the twin server (ingest, journal, live analysis, API, viewer);
4. once the server is subscribed, starts one simulated edge agent per device (each
   machine's Pi with its light, pressure, switch and BLE sensors, and the commercial
   locator) running the real edge agent (``python -m edge_agent run``: replay driver,
   processing, SQLite outbox, QoS 1 publisher with last will), replaying the simulated
   shift at ``--speed`` times real time;
5. prints the URL where a browser shows the site, and runs until Ctrl-C (SIGINT/SIGTERM),
   then stops the agents, the server and the broker in order.

The machines are drawn from a real 3D scan (``examples/models/``, made with
``models3d prepare``) wherever the site file names no model, and the commissioning page
knows the agents replay simulated time. ``--auth`` turns sign-in on with demo users
(a supervisor, two workers, an engineer) whose passwords are printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tomli_w

from twin_contract import vocabulary as vocab
from twin_server.settings import Settings, parse_hostport
from twin_server.site import Site, SiteError, load_site

__all__ = ["EmbeddedBroker", "add_arguments", "agent_configs", "run"]

log = logging.getLogger("twin_server.cli.demo")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SITE = ROOT / "examples" / "pilot_site.yaml"
DEFAULT_MODEL = ROOT / "examples" / "models" / "hammer_scan.glb"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``demo`` command."""
    parser.add_argument("--site", default=str(DEFAULT_SITE), help="site YAML (default: the pilot site)")
    parser.add_argument("--hours", type=float, default=8.0, help="length of the simulated shift (default 8)")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="replay speed, times real time (default 60: an 8-hour shift in 8 minutes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument(
        "--broker", default=None, metavar="HOST:PORT", help="use this MQTT broker instead of the embedded one"
    )
    parser.add_argument(
        "--broker-port",
        type=int,
        default=0,
        help="port of the embedded broker on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--data-dir", default=None, help="journal and agent outboxes (default: a temp dir)")
    parser.add_argument("--influx", default=None, metavar="URL", help="also export to this InfluxDB")
    parser.add_argument(
        "--machine-model",
        default=str(DEFAULT_MODEL),
        metavar="GLB",
        help="models3d model for machines the site file gives none (default: the scanned "
        "model in examples/models; 'none' draws boxes)",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="require sign-in; demo users (supervisor, two workers, engineer) are created "
        "and their passwords printed",
    )
    parser.add_argument("--log-level", default="WARNING")


# --- embedded broker --------------------------------------------------------------------
class EmbeddedBroker:
    """amqtt in a thread with its own event loop, bound to 127.0.0.1 (MQTT 3.1.1 only)."""

    def __init__(self, port: int, log_path: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.log_path = log_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker: Any = None

    def start(self) -> None:
        from amqtt.broker import Broker

        if self.log_path is not None:
            # amqtt 0.12 gives up on a delivery after a fixed 5 s without PUBACK and logs each
            # one with a traceback; on a busy machine that floods the console. The agents'
            # end-to-end acknowledgement re-sends what it dropped (/health "delivery" counts
            # gaps), so its log goes to a file, whole.
            handler = logging.FileHandler(self.log_path)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            amqtt_log = logging.getLogger("amqtt")
            amqtt_log.addHandler(handler)
            amqtt_log.propagate = False

            def to_broker_log(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
                # amqtt 0.12 can crash one client's connection handler when another client
                # subscribes at the same moment ("dictionary changed size during iteration" in
                # Broker._handle_client_session); the client reconnects. asyncio would print
                # that traceback on the console: it goes to the broker's log with the rest.
                amqtt_log.error("broker loop: %s", context.get("message"), exc_info=context.get("exception"))

            self._loop.set_exception_handler(to_broker_log)
        config = {
            # Always bind explicitly: amqtt's default listener is 0.0.0.0:1883.
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._thread.start()

        async def _start() -> Any:
            broker = Broker(config)
            await broker.start()
            return broker

        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(30)

    def stop(self) -> None:
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
            except Exception:
                log.exception("embedded broker did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


# --- simulated edge agents --------------------------------------------------------------
def agent_configs(
    site: Site, readings_csv: Path, host: str, port: int, data_dir: Path, speed: float
) -> list[str]:
    """TOML configs of the edge agents an installation of the site has, replaying a CSV.

    One per machine with a Pi (light, pressure, the three switches, and the BLE scanner of
    the receiver at that machine), one per receiver not at a machine (its BLE scanner bridge)
    and one per commercial locator (its zone reports), named as :meth:`Site.publishing_devices`.
    """
    common: dict[str, Any] = {
        "mqtt": {
            "host": host,
            "port": port,
            "keepalive_s": 30,
            "max_inflight": 200,
            "reconnect_min_s": 1,
            "reconnect_max_s": 5,
        },
        "outbox": {"synchronous": "NORMAL"},
        "replay": {"file": str(readings_csv), "speed": float(speed)},
    }

    def config(device: str, machine: str, receiver: str, sensors: list[dict[str, Any]]) -> str:
        agent = {
            "site": site.site,
            "device": device,
            "machine": machine,
            "receiver": receiver,
            "data_dir": str(data_dir / device),
            "stop_drain_s": 2.0,
        }
        return tomli_w.dumps({"agent": agent, **common, "sensors": sensors})

    ble = {"id": "ble", "kind": "ble", "driver": "replay", "window_ms": 1000}
    out = []
    receivers = {r.machine: r.id for r in site.receivers if r.machine}
    for m in site.machines:
        wired = {(s.kind, s.channel): s.id for s in m.sensors}
        sensors: list[dict[str, Any]] = [
            {"id": wired.get(("light", ""), "light"), "kind": "light", "driver": "replay"},
            {"id": wired.get(("pressure", ""), "pressure"), "kind": "pressure", "driver": "replay"},
        ]
        sensors += [
            {
                "id": wired.get(("switch", task), "sw-" + task),
                "kind": "switch",
                "driver": "replay",
                "channel": task,
            }
            for task in vocab.SWITCH_TASKS
        ]
        if m.id in receivers:
            sensors.append(ble)
        out.append(config(m.device_id, m.id, receivers.get(m.id, f"rx-{m.id}"), sensors))
    for r in site.receivers:  # a receiver not at a machine: its BLE scanner bridge
        if r.machine is None:
            out.append(config(site.receiver_device(r.id), site.machines[0].id, r.id, [ble]))
    for loc in site.locators:
        zone = {"id": "zone", "kind": "zone", "driver": "replay", "locator": loc}
        out.append(config(loc, site.machines[0].id, "none-rx", [zone]))
    return out


class Agents:
    """The simulated edge agents: one ``python -m edge_agent run -c FILE`` process each.

    Separate processes, as on the real Pis: the agents then use the second core instead of
    competing with the server for one interpreter lock. They get a session of their own so
    a terminal's Ctrl-C reaches only the demo, which stops them in order (SIGTERM: each
    drains its outbox for up to ``stop_drain_s`` and exits).
    """

    def __init__(self, configs: list[str], folder: Path) -> None:
        from edge_agent.config import parse_config

        folder.mkdir(parents=True, exist_ok=True)
        self.paths = []
        for text in configs:
            device = parse_config(text).agent.device  # validates before anything starts
            path = folder / f"{device}.toml"
            path.write_text(text, encoding="utf-8")
            self.paths.append(path)
        self.procs: list[subprocess.Popen[bytes]] = []
        self._log = folder / "agents.log"

    def start(self) -> None:
        log_file = self._log.open("ab")
        for path in self.paths:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "edge_agent", "run", "-c", str(path)],
                    cwd=ROOT,
                    stdout=log_file,
                    stderr=log_file,
                    start_new_session=True,
                )
            )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def site_with_models(site_path: Path, model: Path | None, out: Path) -> Path:
    """A copy of the site file where every machine without a ``model`` gets ``model``.

    Returns the site file to serve: ``site_path`` itself when there is nothing to add.
    """
    import yaml

    if model is None:
        return site_path
    doc = yaml.safe_load(site_path.read_text(encoding="utf-8"))
    machines = doc.get("machines") or []
    if all(m.get("model") for m in machines):
        return site_path
    for m in machines:
        if m.get("model"):  # relative to the original file
            m["model"] = str((site_path.parent / m["model"]).resolve())
        else:
            m["model"] = str(model.resolve())
    survey = doc.get("survey")
    if isinstance(survey, dict):  # paths in the survey are relative to the site file too
        if survey.get("points"):
            survey["points"] = str((site_path.parent / survey["points"]).resolve())
        for w in survey.get("walks") or []:
            for key in ("readings", "track"):
                w[key] = str((site_path.parent / w[key]).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_site(out)  # still valid
    return out


DEMO_USERS = (
    ("supervisor", "supervisor", None),
    ("worker-a", "worker", 0),
    ("worker-b", "worker", 1),
    ("engineer", "engineer", None),
)


def demo_users(site: Site, data_dir: Path) -> list[tuple[str, str, str, str | None]]:
    """Create the demo's users (new passwords each run); ``(name, role, password, worker)``."""
    import secrets

    from twin_server.auth import AuthStore

    store = AuthStore(data_dir / "auth.sqlite")
    out = []
    try:
        for name, role, k in DEMO_USERS:
            worker = site.workers[k].id if k is not None and k < len(site.workers) else None
            if role == "worker" and worker is None:
                continue
            password = secrets.token_urlsafe(9)
            if store.user(name) is None:
                store.add_user(name, site.site, role, password, worker=worker)
            else:
                store.set_password(name, password)
            out.append((name, role, password, worker))
    finally:
        store.close()
    return out


def _start_agents_when_subscribed(app: Any, agents: Agents, stop: threading.Event) -> None:
    """Agents start once the server's persistent session exists, so nothing is published unheard."""
    ctx = app.state.twin
    while not stop.is_set():
        if ctx.ingest is not None and ctx.ingest.stats.connected:
            break
        time.sleep(0.1)
    if stop.wait(0.5):  # the SUBACK follows the CONNACK
        return
    agents.start()
    print(
        f"demo: {len(agents.paths)} simulated edge agents (python -m edge_agent run) replaying the shift",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C; 0 on a clean stop, 2 on bad options."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        site = load_site(args.site)
        if not args.hours > 0 or not args.speed > 0:
            raise ValueError("--hours and --speed must be > 0")
        external = parse_hostport(args.broker) if args.broker else None
    except (SiteError, ValueError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="twin-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)

    from twin_server.readings import write_readings_csv
    from twin_server.simulate import simulate

    sim = simulate(site, hours=args.hours, seed=args.seed)
    csv_path = data_dir / "simulated" / "readings.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_readings_csv(sim.readings, csv_path)
    sim.truth.write(csv_path.with_name("truth.json"))
    print(
        f"demo: simulated {args.hours:g} h of {site.site!r} ({len(sim.readings)} readings, "
        f"seed {args.seed}) in {csv_path.parent}",
        flush=True,
    )

    broker = None
    if external is None:
        broker = EmbeddedBroker(args.broker_port or _free_port(), log_path=data_dir / "broker.log")
        try:
            broker.start()
        except Exception as exc:  # e.g. the port is taken
            print(f"demo: cannot start the embedded MQTT broker: {exc}", file=sys.stderr)
            return 1
        host, port = broker.host, broker.port
        print(
            f"demo: embedded MQTT broker (amqtt, MQTT 3.1.1) on {host}:{port}, its log in "
            f"{data_dir / 'broker.log'}",
            flush=True,
        )
    else:
        host, port = external

    from twin_server.api.app import create_app
    from twin_server.cli.serve import serve_app

    model = None if args.machine_model == "none" else Path(args.machine_model)
    if model is not None and not model.is_file():
        print(f"demo: no machine model at {model} (--machine-model none draws boxes)", file=sys.stderr)
        return 2
    served_site = site_with_models(Path(args.site).resolve(), model, data_dir / "site" / "site.yaml")
    if model is not None:
        print(f"demo: machines drawn from the scanned model {model.name} ({served_site})", flush=True)
    settings = Settings(
        site=site,
        data_dir=data_dir / "server",
        broker_host=host,
        broker_port=port,
        client_id=f"twin-demo-{site.site}"[:64],
        influx_url=args.influx,
        analysis_interval_s=2.0,
        derived_interval_s=30.0,
        auth=args.auth,
        clock_tolerance_s=None,  # a recorded shift replayed: simulated time
        site_path=served_site,
        simulated_clock=f"replay at {args.speed:g}x",
    )
    if args.auth:
        (data_dir / "server").mkdir(parents=True, exist_ok=True)
        print("demo: sign-in is on; demo users (new passwords each run):", flush=True)
        for name, role, password, worker in demo_users(site, data_dir / "server"):
            print(f"demo:   {name:<11} {password}   {role}{f' ({worker})' if worker else ''}", flush=True)
    app = create_app(settings)
    agents = Agents(
        agent_configs(site, csv_path, host, port, data_dir / "agents", args.speed), data_dir / "agents"
    )
    stop = threading.Event()
    starter = threading.Thread(
        target=_start_agents_when_subscribed, args=(app, agents, stop), name="agent-starter", daemon=True
    )
    starter.start()
    base = f"http://{args.host}:{args.port}"
    viewer = _viewer_available()
    print(
        f"demo: open {base}/viewer/?site={site.site} in a browser"
        if viewer
        else f"demo: the site's live state is at {base}/api/live",
        flush=True,
    )
    print(f"demo: API docs at {base}/docs, health at {base}/health; Ctrl-C stops", flush=True)

    def stop_agents_first() -> None:
        # The agents drain their outboxes on SIGTERM; give the server a moment to take
        # those last readings before it stops.
        stop.set()
        agents.stop()
        time.sleep(1.0)

    try:
        rc = serve_app(app, args.host, args.port, args.log_level, before_exit=stop_agents_first)
    finally:
        stop.set()
        starter.join(5)
        agents.stop()
        if broker is not None:
            broker.stop()
    print(f"demo: stopped (data kept in {data_dir})", flush=True)
    return rc


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _viewer_available() -> bool:
    try:
        from twin_server.api import viewer  # noqa: F401
    except ImportError:
        return False
    return (ROOT / "replay" / "index.html").is_file()
