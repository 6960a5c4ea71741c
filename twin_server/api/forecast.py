"""Forecast API: ``GET /api/sites/{site}/forecast[?at=EPOCH_S]`` and the live forecast loop.

The route answers for any moment of any recorded day (the replay's clock) or, without ``at``,
for the newest reading of the day being recorded. The live loop re-forecasts after every
live analysis, pushes ``{"type": "forecast", ...}`` to ``/ws/live`` clients and queues the
``forecast`` measurement for InfluxDB (``docs/integrators.md``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

from twin_server.forecast.engine import Forecast
from twin_server.forecast.influx import forecast_lines
from twin_server.forecast.model import ForecastParams
from twin_server.forecast.service import ForecastError, ForecastService
from twin_server.result import Result
from twin_server.store.replay_data import local_day

__all__ = ["ForecastDoc", "forecast_loop", "install_forecast", "router"]

log = logging.getLogger("twin_server.forecast")
router = APIRouter(tags=["forecast"])

T_MIN_S = 946_684_800.0
T_MAX_S = 7_258_118_400.0


class LaneSegment(BaseModel):
    state: str = Field(
        description="running, waiting (for the operator or a break), changeover, fix, "
        "off (stopped until the next shift) or unknown"
    )
    start: float
    end: float
    p: float = Field(description="share of the draws in that state, averaged over the segment")


class MachineForecastDoc(BaseModel):
    machine: str
    phase: str = Field(
        description="running, changeover (a task in progress), between (tasks), waiting "
        "(stopped, no task yet) or unknown"
    )
    since: float
    event: str | None = Field(description="run_end (running) or restart (stopped); null: state unknown")
    p10: float | None = Field(description="epoch s; null: after the forecast's horizon")
    p50: float | None
    p90: float | None
    p_after_shift: float
    cold: list[str] = Field(
        description="why the range leans on priors: first_day, "
        "machine_never_seen_running, few_runs, few_stops, "
        "worker_no_history:ID, worker_unknown"
    )
    basis: int
    task: str | None
    worker: str | None
    context: str | None = Field(
        description="running: new (the changeover before had program input: a new "
        "part), same (it had none), unknown"
    )
    need_at: float | None
    p_need: float
    wait_p50_min: float | None
    wait_p90_min: float | None
    running_min: list[float | None]
    changeovers: list[float | None]
    lane: list[LaneSegment]


class QueueItemDoc(BaseModel):
    machine: str
    need_at: float
    p_need: float
    wait_p50_min: float
    wait_p90_min: float


class ForecastDoc(BaseModel):
    """A forecast of the site at ``at`` (epoch s); ranges are ``[p10, p50, p90]``."""

    site: str
    at: float
    day: str
    shift_end: float
    history_days: int
    cold: bool
    machines: list[MachineForecastDoc]
    queue: list[QueueItemDoc]
    running_min: list[float | None]
    changeovers: list[float | None]
    running_min_so_far: float
    changeovers_so_far: int
    horizon_s: float
    samples: int
    compute_ms: float


class _Memo:
    """The last few forecasts by (day, moment, data marker): scrubbing a replay asks again."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[Any, ...], doc: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = doc
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _service(request: Request) -> ForecastService:
    return request.app.state.forecast


@router.get(
    "/api/sites/{site}/forecast",
    response_model=ForecastDoc,
    summary="Forecast: when each run ends or machine runs again (80 % ranges), the next hour's "
    "lane and operator queue, the shift end",
)
def get_forecast(
    site: str,
    request: Request,
    at: float | None = Query(
        None,
        ge=T_MIN_S,
        le=T_MAX_S,
        description="moment of the forecast, epoch s (default: the newest reading); "
        "a past moment uses only what was known then",
    ),
) -> dict[str, Any]:
    svc = _service(request)
    if site != svc.site.site:
        raise HTTPException(404, f"unknown site {site!r}; this server serves {svc.site.site!r}")
    if at is not None and not math.isfinite(at):
        raise HTTPException(422, "at must be finite epoch seconds")
    memo: _Memo = request.app.state.forecast_memo
    day = local_day(at, svc.site.timezone) if at is not None else None
    days = {d["day"]: d for d in svc.analysis.days()}
    key_day = day or (max(days) if days else None)
    marker = (days[key_day]["readings"], days[key_day]["end"]) if key_day in days else None
    key = (key_day, None if at is None else round(at), marker)
    hit = memo.get(key)
    if hit is not None:
        return hit
    try:
        fc = svc.forecast_at(at)
    except ForecastError as exc:
        raise HTTPException(404, str(exc)) from None
    except ImportError as exc:
        raise HTTPException(503, f"analysis is not available: {exc}") from None
    doc = fc.to_dict()
    memo.put(key, doc)
    return doc


def install_forecast(app: FastAPI, ctx: Any) -> None:
    """Add the forecast route and service to the server app (``ctx`` = ``app.state.twin``)."""
    data_dir = Path(ctx.settings.data_dir)
    params = ctx.settings.forecast_params or ForecastParams()
    app.state.forecast = ForecastService(
        ctx.settings.site, ctx.analysis, params, data_dir / "forecast-history.json"
    )
    app.state.forecast_memo = _Memo()
    app.include_router(router)


def _live_forecast(svc: ForecastService, day: str, result: Result) -> Forecast:
    return svc.forecast_live(day, result)


async def forecast_loop(app: FastAPI, interval_s: float = 2.0, influx_interval_s: float = 60.0) -> None:
    """Re-forecast after each live analysis: push it to ``/ws/live`` and queue it for InfluxDB."""
    ctx = app.state.twin
    svc: ForecastService = app.state.forecast
    last_key = None
    last_error = None
    last_influx = -math.inf
    while True:
        await asyncio.sleep(interval_s)
        try:
            day = await asyncio.to_thread(ctx.analysis.current_day)
            hit = ctx.analysis.cached(day) if day is not None else None
            if hit is None:
                continue
            result = hit[0]
            key = (day, result.window_end, len(result.machine_states), len(result.tasks))
            if key == last_key or result.window_end <= result.window_start:
                continue
            last_key = key
            fc = await asyncio.to_thread(_live_forecast, svc, day, result)
            svc.last_error = last_error = None
            doc = fc.to_dict()
            if ctx.hub is not None:
                ctx.hub.publish({"type": "forecast", "day": day, "forecast": doc})
            now = time.monotonic()
            if ctx.influx is not None and now - last_influx >= influx_interval_s:
                ctx.journal.outbox_add([("write", "\n".join(forecast_lines(fc)))], time.time_ns())
                ctx.influx.notify()
                last_influx = now
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            svc.last_error = text
            if text != last_error:
                log.warning("live forecast failed (retrying on the next analysis): %s", text)
                last_error = text
            log.debug("live forecast failure", exc_info=True)
