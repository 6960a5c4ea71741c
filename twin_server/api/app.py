"""The twin server as a FastAPI app: ``create_app(settings)``.

The lifespan opens the journal, starts the MQTT ingest (paho thread + writer thread), the
InfluxDB exporter, the WebSocket hub and the live analysis loop, and stops them in reverse
order, draining and acknowledging what was received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from twin_server.api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from twin_server.api.commissioning import install_commissioning
from twin_server.api.docs import install_docs
from twin_server.api.editor import BODY_LIMITS, install_editor
from twin_server.api.forecast import forecast_loop, install_forecast
from twin_server.api.routes import router
from twin_server.auth.device_scope import DeviceScope
from twin_server.ingest.delivery import Delivery
from twin_server.ingest.subscriber import Ingest
from twin_server.live.hub import AnalysisCache, LiveHub, LiveState, analysis_loop, day_bounds
from twin_server.result import Result
from twin_server.settings import Settings
from twin_server.site import Site
from twin_server.store.influx.writer import InfluxWriter
from twin_server.store.journal import Journal
from twin_server.store.replay_data import ReplayError, local_day
from twin_server.store.retention import Retention

__all__ = ["JournalReplayProvider", "TwinContext", "create_app"]

log = logging.getLogger("twin_server.api.app")


@dataclass
class TwinContext:
    """Everything the routes need, kept on ``app.state.twin``."""

    settings: Settings
    journal: Journal
    state: LiveState
    analysis: AnalysisCache
    hub: LiveHub | None = None
    ingest: Ingest | None = None
    influx: InfluxWriter | None = None
    delivery: Delivery | None = None
    retention: Retention | None = None
    started_s: float = field(default_factory=time.monotonic)
    latest_analysis: dict[str, Any] | None = None
    _exported_at: dict[str, float] = field(default_factory=dict)

    def on_result(self, day: str, result: Result, kpis: dict[str, Any]) -> None:
        """After each live analysis: keep a summary; re-export derived series now and then."""
        self.latest_analysis = {
            "day": day,
            "window": [result.window_start, result.window_end],
            "kpis": kpis,
            "tasks": len(result.tasks),
        }
        if self.influx is None:
            return
        now = time.monotonic()
        if now - self._exported_at.get(day, -1e18) >= self.settings.derived_interval_s:
            self.influx.export_result(result, kpis, day)
            self._exported_at[day] = now


class JournalReplayProvider:
    """The viewer's data source on the live server: analyses of the journal, per local day."""

    def __init__(self, site: Site, analysis: AnalysisCache, site_path: Path | None = None) -> None:
        self._site = site
        self._analysis = analysis
        self._site_path = site_path

    def _check(self, site_id: str) -> None:
        if site_id != self._site.site:
            raise ReplayError(f"unknown site {site_id!r}")

    def site(self, site_id: str) -> Site:
        self._check(site_id)
        return self._site

    def site_ids(self) -> list[str]:
        """The one site this server serves (the viewer lists it when opened without ?site=)."""
        return [self._site.site]

    def recording_day(self, site_id: str, within_s: float = 60.0) -> str | None:
        """The day of the newest reading if it arrived in the last ``within_s`` (still filling in)."""
        self._check(site_id)
        row = self._analysis.journal.newest_reading_times(site_id)
        if row is None or time.time() - row[1] / 1e9 > within_s:
            return None
        return local_day(row[0] / 1e9, self._site.timezone)

    def site_path(self, site_id: str) -> Path:
        self._check(site_id)
        if self._site_path is None:
            raise ReplayError("no site file")
        return self._site_path

    def shifts(self, site_id: str) -> list[dict[str, Any]]:
        self._check(site_id)
        return [{"day": d["day"], "start": d["start"], "end": d["end"]} for d in self._analysis.days()]

    def get_replay(self, site_id: str, start: float, end: float) -> dict[str, Any]:
        self._check(site_id)
        parts = []
        for d in self.shifts(site_id):
            lo, hi = day_bounds(d["day"], self._site.timezone)
            if lo < end and hi > start:
                got = self._analysis.get(d["day"])
                if got is not None:
                    parts.append(got[0])
        if not parts:
            raise ReplayError(f"no readings of site {site_id!r} in the requested window")
        doc: dict[str, Any] = {
            "site": site_id,
            "window": {
                "start": max(start, min(r.window_start for r in parts)),
                "end": min(end, max(r.window_end for r in parts)),
            },
            "rejected_rows": sum(r.rejected_rows for r in parts),
        }
        for key in ("machine_states", "worker_zones", "tasks", "beacon_lag"):
            doc[key] = [row for r in parts for row in r.to_dict()[key]]
        return doc


def _install_viewer(app: FastAPI, ctx: TwinContext) -> None:
    """Mount the browser viewer if its module is there (another part of the project)."""
    try:
        from twin_server.api import viewer
    except ImportError:
        return
    app.state.replay_provider = JournalReplayProvider(ctx.settings.site, ctx.analysis, ctx.settings.site_path)
    app.state.data_dir = Path(ctx.settings.data_dir)
    app.include_router(viewer.router)
    mount = getattr(viewer, "mount_static", None)
    if mount is not None:
        try:
            mount(app)
        except RuntimeError as exc:  # three.js not installed: the API still works
            log.warning("viewer static files not served: %s", exc)


#: How long shutdown waits for worker threads (a cancelled task's ``to_thread`` call) before
#: the journal is closed.
JOURNAL_CLOSE_WAIT_S = 30.0


async def _drain_threads(loop: asyncio.AbstractEventLoop, timeout_s: float) -> bool:
    """Wait until the loop's default executor has finished its threads; False on timeout."""
    try:
        await asyncio.wait_for(loop.shutdown_default_executor(), timeout_s)
    except TimeoutError:
        return False
    return True


async def _return_free_memory(period_s: float = 60.0) -> None:
    """Give the C heap's free pages back to the system now and then (glibc keeps them, and a
    long-running server with many threads creeps up otherwise)."""
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(period_s)
        await asyncio.to_thread(trim, 0)


def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _delivery(ctx: TwinContext) -> Delivery:
    """Sequence tracking of the journal; acknowledgements go out on the ingest's connection."""
    ingest, influx, journal = ctx.ingest, ctx.influx, ctx.journal
    export = None
    if influx is not None:

        def export(lines: list[str]) -> None:
            journal.outbox_add([("write", "\n".join(lines))], time.time_ns())
            influx.notify()

    return Delivery(
        journal,
        ctx.settings.site.site,
        publish=None if ingest is None or not ctx.settings.end_to_end_ack else ingest.publish,
        connects=(lambda: ingest.stats.connects) if ingest is not None else (lambda: 0),
        export=export,
        export_s=ctx.settings.derived_interval_s,
    )


def create_app(settings: Settings) -> FastAPI:
    """Build the server app for one site; services start in the lifespan."""
    max_bytes = None if settings.journal_max_mb is None else int(settings.journal_max_mb * 2**20)
    journal = Journal(settings.journal_path, synchronous=settings.sqlite_synchronous, max_bytes=max_bytes)
    ctx = TwinContext(
        settings=settings,
        journal=journal,
        state=LiveState(),
        analysis=AnalysisCache(
            settings.site,
            journal,
            settings.analysis_params,
            isolated=settings.analysis_isolated,
            simulated_clock=settings.clock_tolerance_s is None,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        ctx.hub = LiveHub(loop, settings.ws_flush_s)
        ctx.hub.start()
        if settings.influx_url:
            ctx.influx = InfluxWriter(
                journal,
                settings.influx_url,
                settings.influx_db,
                token=settings.influx_token,
                user=settings.influx_user,
                password=settings.influx_password,
                create_db=settings.influx_create_db,
                batch_lines=settings.influx_batch_lines,
                timeout_s=settings.influx_timeout_s,
                backoff_max_s=settings.influx_backoff_max_s,
                replace_derived=settings.influx_replace_derived,
            )
            ctx.influx.start()
        if settings.broker_host:
            listeners = [ctx.state.update, lambda r, s: ctx.hub.publish_readings(r)]
            if ctx.influx is not None:
                listeners.append(lambda r, s: ctx.influx.notify())
            ctx.ingest = Ingest(
                journal,
                settings.broker_host,
                settings.broker_port,
                site=settings.site.site,
                client_id=settings.mqtt_client_id,
                keepalive_s=settings.mqtt_keepalive_s,
                listeners=listeners,
                username=settings.mqtt_username,
                password=settings.mqtt_password,
                scope=DeviceScope.of(settings.site) if settings.device_scope else None,
                share_group=settings.share_group,
                clock_tolerance_s=settings.clock_tolerance_s,
            )
            ctx.ingest.start()
        ctx.delivery = _delivery(ctx)
        ctx.delivery.start()
        if settings.retention_days is not None:
            exported = (lambda: journal.export_cursor()) if ctx.influx is not None else (lambda: None)
            ctx.retention = Retention(
                journal,
                settings.site.site,
                settings.retention_days,
                settings.replay_days,
                exported_id=exported,
            )
            ctx.retention.start()
        trimmer = asyncio.create_task(_return_free_memory())
        task = asyncio.create_task(
            analysis_loop(ctx.analysis, ctx.hub, settings.analysis_interval_s, ctx.on_result)
        )
        forecasting = asyncio.create_task(
            forecast_loop(app, settings.forecast_interval_s, settings.derived_interval_s)
        )
        try:
            yield
        finally:
            forecasting.cancel()
            task.cancel()
            trimmer.cancel()
            for t in (forecasting, task, trimmer):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            if ctx.retention is not None:
                await asyncio.to_thread(ctx.retention.stop)
            if ctx.delivery is not None:
                await asyncio.to_thread(ctx.delivery.stop)
            if ctx.ingest is not None:
                await asyncio.to_thread(ctx.ingest.stop)
            if ctx.influx is not None:
                await asyncio.to_thread(ctx.influx.stop)
            await ctx.hub.stop()
            # A cancelled task leaves its ``to_thread`` call running (e.g. the analysis loop in
            # ``journal.time_range``); closing the journal under it crashed the process
            # (SIGSEGV in CI). Wait for those threads first.
            if await _drain_threads(asyncio.get_running_loop(), JOURNAL_CLOSE_WAIT_S):
                journal.close()
            else:
                log.warning(
                    "journal left open at shutdown: a worker thread still runs after %.0f s",
                    JOURNAL_CLOSE_WAIT_S,
                )

    app = FastAPI(
        title="factory twin server",
        version="0.1.0",
        lifespan=lifespan,
        description="Ingest, journal, analysis and live state of one site's digital twin.",
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)  # Swagger UI from the project's own files (no CDN)
    app.state.twin = ctx
    app.include_router(router)
    _install_viewer(app, ctx)
    install_commissioning(app, ctx)
    install_forecast(app, ctx)
    install_editor(app, ctx)
    # Last: the route-policy check must see every route, the viewer's included.
    from twin_server.auth import install_auth

    install_auth(app, data_dir=Path(settings.data_dir), site_ids=[settings.site.site], enabled=settings.auth)
    # Outermost (added last): an oversized body is refused before sign-in reads it.
    # The editor's uploads are streamed and capped by their routes (BODY_LIMITS).
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=(DEFAULT_MAX_BODY_BYTES if settings.max_body_bytes is None else settings.max_body_bytes),
        path_limits=BODY_LIMITS,
    )
    return app
