"""Command line: ``python -m edge_agent COMMAND``.

Commands: ``sample-config``, ``check-config FILE``, ``probe SENSOR``, ``calibrate [SENSOR]``,
``run``, ``doctor``. Exit codes: 0 ok, 1 a check failed, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from edge_agent.config import ConfigError, load_config, sample_config_text

DEFAULT_CONFIG = "/etc/edge-agent/agent.toml"


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge_agent", description="Raspberry Pi edge agent")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sample-config", help="print the documented sample config")
    p = sub.add_parser("check-config", help="validate a config file; names the bad key")
    p.add_argument("file")
    p = sub.add_parser("probe", help="read one sensor once and print it")
    p.add_argument("sensor")
    p.add_argument("--seconds", type=float, default=2.0, help="listening time for BLE sensors")
    _config_arg(p)
    p = sub.add_parser("calibrate", help="record light levels lamp on/off and write thresholds")
    p.add_argument("sensor", nargs="?", default=None, help="light sensor id (default: the first)")
    p.add_argument("--seconds", type=float, default=3.0, help="recording time per lamp state")
    p.add_argument("--dry-run", action="store_true", help="print the thresholds, do not write")
    _config_arg(p)
    p = sub.add_parser("run", help="run the agent")
    p.add_argument("-v", "--verbose", action="store_true")
    _config_arg(p)
    p = sub.add_parser("doctor", help="commissioning checklist (pass/fail)")
    p.add_argument("--seconds", type=float, default=5.0, help="time to press each button / hear beacons")
    p.add_argument("--no-interactive", action="store_true", help="skip steps that need a person")
    _config_arg(p)
    return parser


def _load(path: str):
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sample-config":
        sys.stdout.write(sample_config_text())
        return 0
    if args.command == "check-config":
        cfg = _load(args.file)
        if cfg is None:
            return 2
        kinds = ", ".join(f"{s['id']} ({s['driver']})" for s in cfg.sensors)
        print(f"{args.file}: ok: site {cfg.agent.site}, device {cfg.agent.device}, sensors: {kinds}")
        return 0
    cfg = _load(args.config)
    if cfg is None:
        return 2
    if args.command == "probe":
        from edge_agent.tools import probe

        return probe(cfg, args.sensor, args.seconds)
    if args.command == "calibrate":
        from edge_agent.calibrate import calibrate_cli

        return calibrate_cli(cfg, Path(args.config), args.sensor, args.seconds, args.dry_run)
    if args.command == "doctor":
        from edge_agent.doctor import doctor_cli

        return doctor_cli(cfg, args.seconds, interactive=not args.no_interactive)
    if args.command == "run":
        return _run(cfg, args.verbose)
    return 2


def _run(cfg, verbose: bool) -> int:
    from edge_agent.agent import Agent

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent = Agent(cfg)
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
