"""``python -m twin_server COMMAND``: the server's command line.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so a broken or
heavy part never slows the others down. The command modules sit together in
:mod:`twin_server.cli` (``simulate`` and ``evaluate`` keep theirs next to their code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("twin_server.cli.analyze", "analyse a recorded shift (docs/analyze-contract.md)"),
    "simulate": ("twin_server.simulate.cli", "simulate a shift: readings.csv + truth.json"),
    "evaluate": ("twin_server.evaluate", "score a result against a truth file"),
    "serve": ("twin_server.cli.serve", "run the twin server (ingest, journal, API, viewer)"),
    "demo": ("twin_server.cli.demo", "embedded broker + simulated agents + server, in one process"),
    "forecast": ("twin_server.forecast.cli", "forecast runs, changeovers and the shift end from a journal"),
    "backup": ("twin_server.cli.backup", "online, consistent backup of a data directory into one file"),
    "restore": ("twin_server.cli.restore", "restore a data directory from a backup file"),
    "deploy-acl": ("twin_server.cli.deploy_acl", "mosquitto users, passwords and ACLs for a site's devices"),
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m twin_server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Import only the module of the command being run (help lists them all cheaply).
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            modules[name] = module
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
