"""``python -m twin_server serve --site SITE.yaml [--broker host:port] [--influx URL] ...``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from twin_server.settings import Settings, parse_hostport
from twin_server.site import SiteError, load_site

log = logging.getLogger("twin_server.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``serve`` command."""
    parser.add_argument("--site", required=True, help="site YAML file")
    parser.add_argument(
        "--new-site",
        default=None,
        metavar="ID",
        help="the site file does not exist yet: serve an empty site ID and draw it in the "
        "site editor (/editor/), whose first save writes the file",
    )
    parser.add_argument(
        "--broker",
        default="127.0.0.1:1883",
        help="MQTT broker host:port (default 127.0.0.1:1883); 'none' for no ingest",
    )
    parser.add_argument("--client-id", default=None, help="fixed MQTT client id (default twin-server-SITE)")
    parser.add_argument(
        "--mqtt-username",
        default=os.environ.get("TWIN_MQTT_USERNAME") or None,
        help="broker login (default: env TWIN_MQTT_USERNAME)",
    )
    parser.add_argument(
        "--mqtt-password",
        default=os.environ.get("TWIN_MQTT_PASSWORD") or None,
        help="broker password (default: env TWIN_MQTT_PASSWORD; prefer the env var: "
        "a command line is visible to every local user)",
    )
    parser.add_argument(
        "--influx", default=None, metavar="URL", help="InfluxDB base URL (default: no export)"
    )
    parser.add_argument("--influx-db", default="twin", help="InfluxDB database / DBRP-mapped bucket")
    parser.add_argument(
        "--influx-token",
        default=os.environ.get("TWIN_INFLUX_TOKEN") or None,
        help="InfluxDB 2.x/3.x token (Authorization: Token; default: env TWIN_INFLUX_TOKEN)",
    )
    parser.add_argument("--influx-user", default=None)
    parser.add_argument("--influx-password", default=None)
    parser.add_argument("--influx-no-create-db", action="store_true", help="do not send CREATE DATABASE")
    parser.add_argument(
        "--influx-keep-derived",
        action="store_true",
        help="do not DELETE a shift's derived series before re-exporting (InfluxDB 3.x)",
    )
    parser.add_argument("--data-dir", default="twin-data", help="journal folder (default ./twin-data)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--analysis-interval", type=float, default=5.0, help="live re-analysis period, s")
    parser.add_argument(
        "--derived-interval",
        type=float,
        default=60.0,
        help="period of the derived-series export to InfluxDB, s",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        default="NORMAL",
        choices=["NORMAL", "FULL"],
        help="NORMAL survives a killed process; FULL also a power cut",
    )
    parser.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("TWIN_AUTH", "").lower() in ("1", "true", "yes", "on"),
        help="require sign-in: users, roles, tokens, audit log (default: env TWIN_AUTH; "
        "create users with python -m twin_server.auth add-user)",
    )
    parser.add_argument(
        "--device-scope",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dead-letter readings from a device outside its own site and station (default on)",
    )
    parser.add_argument(
        "--share-group",
        default=None,
        metavar="NAME",
        help="scale-out: share the site's readings with the other processes of this MQTT "
        "shared-subscription group (each needs its own --client-id; same --data-dir)",
    )
    parser.add_argument(
        "--journal-max-mb",
        type=float,
        default=None,
        metavar="MIB",
        help="cap on the journal file: beyond it ingest stops acknowledging (the broker "
        "keeps the messages) until space is made (default: the disk is the limit)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="prune readings older than DAYS (device time) from the journal once they are "
        "exported to InfluxDB and older than --replay-days (default: keep all)",
    )
    parser.add_argument(
        "--replay-days",
        type=float,
        default=31.0,
        metavar="DAYS",
        help="shifts stay replayable in the viewer this long: never pruned sooner (default 31)",
    )
    parser.add_argument(
        "--analysis-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each analysis in a short-lived child process, so the server's memory "
        "stays flat (default on; off: in the server process)",
    )
    parser.add_argument(
        "--end-to-end-ack",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="publish each device's retained acknowledgement (twin/v1/SITE/DEVICE/ack), so "
        "agents keep readings until the journal has them (default on)",
    )
    parser.add_argument(
        "--clock-tolerance",
        type=float,
        default=86_400.0,
        metavar="S",
        help="flag a device whose readings' time is more than S seconds from their arrival "
        "and keep those readings out of the live view (default 86400; 0: simulated "
        "time, e.g. a recorded shift replayed: no check, live day = newest reading's)",
    )
    parser.add_argument("--log-level", default="INFO")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build :class:`Settings`; raises SiteError or ValueError with a clear message."""
    site_path = Path(args.site)
    if getattr(args, "new_site", None):
        if site_path.exists():
            raise ValueError(f"--new-site: {site_path} exists already; open it without --new-site")
        if not site_path.resolve().parent.is_dir():
            raise ValueError(f"--new-site: folder {site_path.resolve().parent} does not exist")
        from pydantic import ValidationError

        from twin_server.editor.reload import empty_site

        try:
            site = empty_site(args.new_site)
        except ValidationError:
            raise ValueError(
                f"--new-site {args.new_site!r}: a site id is 1-64 letters, digits, '_', '.' or '-'"
            ) from None
    elif not site_path.exists():
        raise ValueError(
            f"cannot read site file {site_path}: it does not exist (to draw a new site there in "
            f"the browser, add --new-site ID and open /editor/)"
        )
    else:
        site = load_site(site_path)
    if args.broker.lower() == "none":
        host, port = None, 0
    else:
        host, port = parse_hostport(args.broker)
    if args.share_group is not None:
        from twin_server.ingest.subscriber import check_share_group

        check_share_group(args.share_group)
        if not args.client_id:
            raise ValueError(
                "--share-group needs a --client-id of its own for each process "
                f"(e.g. twin-server-{site.site}-1, -2, ...)"
            )
    analysis_params = None
    if site.survey is not None:  # RSSI zones from the site survey (a SurveyError names the file)
        from twin_server.analysis import AnalysisParams
        from twin_server.analysis.survey import survey_map

        analysis_params = AnalysisParams(
            survey_map=survey_map(site, site_path.resolve().parent, say=log.info)
        )
    if args.retention_days is not None and not args.retention_days > 0:
        raise ValueError(f"--retention-days must be > 0, got {args.retention_days}")
    if args.retention_days is not None and not args.influx:
        log.warning(
            "--retention-days prunes only readings exported to InfluxDB: without --influx "
            "nothing is pruned (the journal is the only copy)"
        )
    if args.clock_tolerance < 0:
        raise ValueError(f"--clock-tolerance {args.clock_tolerance:g}: must be >= 0 s (0: no check)")
    if args.mqtt_password and not args.mqtt_username:
        raise ValueError(
            "--mqtt-password (or TWIN_MQTT_PASSWORD) needs --mqtt-username (or TWIN_MQTT_USERNAME)"
        )
    return Settings(
        site=site,
        data_dir=Path(args.data_dir),
        broker_host=host,
        broker_port=port,
        client_id=args.client_id,
        mqtt_username=args.mqtt_username,
        mqtt_password=args.mqtt_password,
        auth=args.auth,
        device_scope=args.device_scope,
        share_group=args.share_group,
        end_to_end_ack=args.end_to_end_ack,
        journal_max_mb=args.journal_max_mb,
        analysis_isolated=args.analysis_process,
        retention_days=args.retention_days,
        replay_days=args.replay_days,
        influx_url=args.influx,
        influx_db=args.influx_db,
        influx_token=args.influx_token,
        influx_user=args.influx_user,
        influx_password=args.influx_password,
        influx_create_db=not args.influx_no_create_db,
        analysis_interval_s=args.analysis_interval,
        derived_interval_s=args.derived_interval,
        sqlite_synchronous=args.sqlite_synchronous,
        clock_tolerance_s=args.clock_tolerance or None,
        site_path=site_path.resolve(),
        influx_replace_derived=not args.influx_keep_derived,
        analysis_params=analysis_params,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; exit code 2 on a bad site file or option."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_args(args)
    except (SiteError, ValueError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    _fewer_malloc_arenas()
    from twin_server.api.app import create_app

    app = create_app(settings)
    if not settings.site.machines:
        print(
            f"new site {settings.site.site!r}: draw it at http://{args.host}:{args.port}/editor/", flush=True
        )
    print(
        f"twin server for site {settings.site.site!r}: http://{args.host}:{args.port}/viewer/ "
        f"(API docs at /docs, health at /health; sign-in {'required' if settings.auth else 'off'})",
        flush=True,
    )
    return serve_app(app, args.host, args.port, args.log_level)


def _fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own heap arena (up to 8 per core); with the server's dozens
    of threads their fragmentation adds up. Two arenas keep RSS flat (``MALLOC_ARENA_MAX``
    in the environment still wins)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def serve_app(
    app: object, host: str, port: int, log_level: str = "info", before_exit: Callable[[], None] | None = None
) -> int:
    """Run uvicorn until SIGINT/SIGTERM, shut down gracefully, and return 0.

    uvicorn re-raises a captured signal after its graceful shutdown, which turns a clean
    Ctrl-C into exit code 130 / -15; the server here treats the signal as "stop" and exits 0.
    ``before_exit`` (e.g. the demo stopping its agents so their last readings still reach
    the server) runs in a thread on the first signal; a second Ctrl-C does not wait for it.
    """
    import uvicorn

    class _Server(uvicorn.Server):
        stopping = False

        def handle_exit(self, sig: int, frame: object) -> None:
            if self.stopping or self.should_exit:
                if sig == signal.SIGINT:
                    self.force_exit = True  # second Ctrl-C: do not wait for connections
                self.should_exit = True
                return
            self.stopping = True
            if before_exit is None:
                self.should_exit = True
                return

            def _then_exit() -> None:
                try:
                    before_exit()
                finally:
                    self.should_exit = True

            threading.Thread(target=_then_exit, name="before-exit", daemon=True).start()

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
    server = _Server(config)
    server.run()
    return 0 if server.started else 1
