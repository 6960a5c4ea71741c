"""The compose stack's simulated shop floor: real edge agents replaying a simulated shift.

One edge agent per device of the site (each machine's Pi and each locator), running the real
edge code (replay driver, processing, SQLite outbox, QoS 1 publisher) against the stack's
broker, logged in like a real installation:

- with ``--credentials FILE`` (``deploy_acl``'s credentials.txt) each agent uses its own
  device's user (``DEVICE`` or ``DEVICE@SITE``), so the broker's per-device ACL applies;
- otherwise every agent uses ``TWIN_MQTT_USERNAME`` / ``TWIN_MQTT_PASSWORD`` from the
  environment: the ``edge-sim`` user of ``deploy_acl --simulator``, which may publish as any
  device of this site and nothing else.

Unlike ``python -m twin_server demo`` it starts no broker and no server: the stack has both.

    python deploy/edge-sim/edge_sim.py --site SITE.yaml --broker mosquitto:1883 \
        [--speed 1 --restamp --loop] [--credentials credentials.txt]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import tomllib
from pathlib import Path

import tomli_w

from twin_server.cli.deploy_acl import parse_credentials
from twin_server.settings import parse_hostport
from twin_server.site import SiteError, load_site

__all__ = ["agent_logins", "build_parser", "main", "with_login", "with_replay_options"]


class ThreadedAgents:
    """The simulated edge agents, one thread each in this process.

    In a container one process is simpler to supervise than one per agent, and the
    replay driver's ``done`` event tells when a non-looping replay has been published.
    """

    def __init__(self, configs: list[str]) -> None:
        from edge_agent.agent import Agent
        from edge_agent.config import parse_config

        self.agents = [Agent(parse_config(text)) for text in configs]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=a.run, args=(self._stop,), name=f"agent-{a.cfg.agent.device}", daemon=True
            )
            for a in self.agents
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def replay_done(self) -> bool:
        return all(a.replay is None or a.replay.done.is_set() for a in self.agents)


def with_login(config_toml: str, username: str, password: str) -> str:
    """An agent config with MQTT credentials added to its ``[mqtt]`` table."""
    doc = tomllib.loads(config_toml)
    if not isinstance(doc.get("mqtt"), dict):
        raise ValueError("agent config has no [mqtt] table")
    doc["mqtt"].update(username=username, password=password)
    return tomli_w.dumps(doc)


def with_replay_options(config_toml: str, restamp: bool, loop: bool) -> str:
    """An agent config whose ``[replay]`` table restamps rows with the clock and/or loops."""
    doc = tomllib.loads(config_toml)
    if not isinstance(doc.get("replay"), dict):
        raise ValueError("agent config has no [replay] table")
    doc["replay"].update(restamp=restamp, loop=loop)
    return tomli_w.dumps(doc)


def agent_logins(
    devices: list[str], site_id: str, credentials: dict[str, str] | None, env: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """device -> (username, password): its own user from ``credentials``, else the env's user."""
    out = {}
    for device in devices:
        if credentials is not None:
            for user in (f"{device}@{site_id}", device):
                if user in credentials:
                    out[device] = (user, credentials[user])
                    break
            else:
                raise KeyError(f"no credentials for device {device!r} (run deploy_acl for this site)")
        else:
            user, password = env.get("TWIN_MQTT_USERNAME", ""), env.get("TWIN_MQTT_PASSWORD", "")
            if not user:
                raise KeyError("set TWIN_MQTT_USERNAME/TWIN_MQTT_PASSWORD or pass --credentials")
            out[device] = (user, password)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line (also used by tests/deploy/test_compose.py on the compose command)."""
    parser = argparse.ArgumentParser(prog="edge_sim.py", description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, type=Path, help="site YAML")
    parser.add_argument("--broker", required=True, metavar="HOST:PORT")
    parser.add_argument("--credentials", type=Path, help="deploy_acl's credentials.txt (per-device users)")
    parser.add_argument("--hours", type=float, default=8.0, help="simulated shift length (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed, times real time (default 1)")
    parser.add_argument("--restamp", action="store_true", help="stamp readings with the current time")
    parser.add_argument("--loop", action="store_true", help="replay the shift again when it ends")
    parser.add_argument("--data-dir", type=Path, help="agent outboxes (default: a temp dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.loop and not args.restamp:
        parser.error("--loop needs --restamp (a second pass would repeat the same timestamps)")

    from twin_server.cli.demo import agent_configs
    from twin_server.readings import write_readings_csv
    from twin_server.simulate import simulate

    try:
        site = load_site(args.site)
        host, port = parse_hostport(args.broker)
        credentials = parse_credentials(args.credentials.read_text()) if args.credentials else None
    except (SiteError, ValueError, OSError) as e:
        print(f"edge_sim: {e}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="edge-sim-"))
    csv_path = data_dir / "readings.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    write_readings_csv(simulate(site, hours=args.hours, seed=args.seed).readings, csv_path)
    configs = agent_configs(site, csv_path, host, port, data_dir / "agents", args.speed)
    devices = site.publishing_devices()  # the order of agent_configs
    try:
        logins = agent_logins(devices, site.site, credentials, dict(os.environ))
    except KeyError as e:
        print(f"edge_sim: {e.args[0]}", file=sys.stderr)
        return 2
    configs = [
        with_replay_options(with_login(text, *logins[device]), args.restamp, args.loop)
        for device, text in zip(devices, configs, strict=True)
    ]
    agents = ThreadedAgents(configs)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agents.start()
    print(f"edge_sim: {len(configs)} agents of {site.site!r} publishing to {host}:{port}", flush=True)
    while not stop.wait(0.5):
        if not args.loop and agents.replay_done():
            break
    agents.stop()  # drains each outbox (stop_drain_s) before disconnecting
    print("edge_sim: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
