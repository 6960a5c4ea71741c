"""Settings of one twin server process (one site), with defaults for a single small shop.

:class:`Settings` is a pydantic-settings model: every field can also come from an environment
variable ``TWIN_<FIELD>`` (``TWIN_INFLUX_URL``, ``TWIN_WS_FLUSH_S``, ...; table in
``docs/server.md``). Values given to the constructor (the command line's options) win over the
environment, which wins over the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from twin_server.site import Site

__all__ = ["Settings", "parse_hostport"]


def parse_hostport(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``host:port`` (or ``host``) -> ``(host, port)``; raises ValueError with a clear message."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host:
        raise ValueError(f"broker {text!r}: host is empty")
    try:
        port_n = int(port)
    except ValueError:
        raise ValueError(f"broker {text!r}: port {port!r} is not a number") from None
    if not 0 < port_n < 65536:
        raise ValueError(f"broker {text!r}: port {port_n} is out of range")
    return host, port_n


class Settings(BaseSettings):
    """Everything :func:`twin_server.api.app.create_app` needs.

    Parameters
    ----------
    site : Site
        The site this server serves (one site per process).
    data_dir : Path
        Holds ``journal.sqlite`` (readings, dead letters, InfluxDB outbox).
    broker_host, broker_port : str, int
        MQTT broker; ``broker_host=None`` runs without ingest (API over the journal only).
    client_id : str
        Fixed MQTT client id: with ``clean_session=False`` the broker keeps the session and
        redelivers every QoS 1 message not yet acknowledged (we acknowledge after commit).
    mqtt_username, mqtt_password : str or None
        The server's broker login (the production broker's ACL lets only this user read
        every device's topics).
    influx_url : str or None
        InfluxDB base URL (``http://host:8086``); ``None`` disables the export.
    influx_db : str
        Database (1.x) or bucket mapped by DBRP (2.x/3.x v1-compatible API).
    influx_token : str or None
        Sends ``Authorization: Token ...`` (2.x/3.x); ``influx_user``/``influx_password`` for
        1.x with auth enabled.
    influx_create_db : bool
        Send ``CREATE DATABASE`` at start (1.x; harmless elsewhere, failures are ignored).
    analysis_interval_s : float
        How often the live analysis of the current shift is re-run when new data arrived.
    derived_interval_s : float
        How often the derived series (states, zones, tasks, lag, KPIs) are re-exported.
    sqlite_synchronous : str
        ``NORMAL`` survives a killed process (WAL); ``FULL`` also survives power loss.
    auth : bool
        Require sign-in (sessions, tokens, roles, audit log: ``twin_server.auth``).
    device_scope : bool
        Dead-letter readings and statuses from outside a device's own site and station
        (``twin_server.auth.device_scope``), counted per reason in ``/health``.
    clock_tolerance_s : float or None
        How far a reading's device time may be from its arrival (default one day) before its
        device is flagged (``/health``, the commissioning page) and the reading kept out of
        the live view (it is still journalled). The live day is the server's today in the
        site's time zone. None: simulated time (a recorded shift replayed, as in the demo):
        no check, and the live day is the day of the newest reading.
    share_group : str or None
        Scale-out: several processes of one site share the readings through the MQTT
        shared subscription ``$share/GROUP/...``, each with its own ``client_id``, all on
        one ``data_dir`` (see ``docs/scale-out.md``).
    retention_days : float or None
        Prune readings older than this many days (device time) once InfluxDB has them
        (``twin_server.store.retention``); None keeps everything.
    replay_days : float
        How far back the viewer replays shifts from the journal: never pruned sooner.
    analysis_isolated : bool
        Run each analysis in a short-lived child process (``twin_server.live.analysis_worker``):
        the server's memory stays flat however large the day's analysis gets.
    journal_max_mb : float or None
        Cap on the journal file, MiB (None: the disk is the limit). When reached, ingest
        stops acknowledging (the broker keeps the messages) and ``/health`` says so.
    end_to_end_ack : bool
        Publish each device's retained acknowledgement (``twin/v1/SITE/DEVICE/ack``: per
        sensor, how far the journal holds every reading), so agents keep readings until
        the journal has them (``twin_server.ingest.delivery``).
    site_path : Path or None
        The site file served (the editor saves it, the viewer reloads it); None: none.
    analysis_params : AnalysisParams or None
        The analysis's parameters (e.g. the survey's fingerprint map); None: the defaults.
    simulated_clock : str or None
        Says why the clock is simulated (``"replay at 60x"`` in the demo), for the
        commissioning page.
    influx_replace_derived : bool
        Re-export a day's derived series by replacing what InfluxDB holds for it.
    max_body_bytes : int or None
        Request body limit of the server (None: ``api.body_limit.DEFAULT_MAX_BODY_BYTES``).
    forecast_interval_s : float
        Seconds between live forecast refreshes.
    forecast_params : ForecastParams or None
        The forecast's parameters (:class:`twin_server.forecast.ForecastParams`); None: defaults.
    """

    model_config = SettingsConfigDict(env_prefix="TWIN_", arbitrary_types_allowed=True)

    site: Site
    data_dir: Path = Path("twin-data")
    broker_host: str | None = "127.0.0.1"
    broker_port: int = 1883
    client_id: str | None = None
    mqtt_keepalive_s: int = 30
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    influx_url: str | None = None
    influx_db: str = "twin"
    influx_token: str | None = None
    influx_user: str | None = None
    influx_password: str | None = None
    influx_create_db: bool = True
    influx_batch_lines: int = 5000
    influx_timeout_s: float = 10.0
    influx_backoff_max_s: float = 30.0
    analysis_interval_s: float = 5.0
    derived_interval_s: float = 60.0
    ws_flush_s: float = 0.2
    sqlite_synchronous: str = "NORMAL"
    auth: bool = False
    device_scope: bool = True
    share_group: str | None = None
    end_to_end_ack: bool = True
    journal_max_mb: float | None = None
    analysis_isolated: bool = True
    retention_days: float | None = None
    replay_days: float = 31.0
    clock_tolerance_s: float | None = 86_400.0
    site_path: Path | None = None
    # twin_server.analysis.AnalysisParams: typed loosely, the shared models import no layer.
    analysis_params: Any = None
    simulated_clock: str | None = None
    influx_replace_derived: bool = True
    max_body_bytes: int | None = None
    forecast_interval_s: float = 2.0
    # twin_server.forecast.ForecastParams, typed loosely like analysis_params.
    forecast_params: Any = None

    @property
    def journal_path(self) -> Path:
        """The SQLite journal file."""
        return Path(self.data_dir) / "journal.sqlite"

    @property
    def mqtt_client_id(self) -> str:
        """The fixed client id (one per site by default)."""
        return self.client_id or f"twin-server-{self.site.site}"[:64]
