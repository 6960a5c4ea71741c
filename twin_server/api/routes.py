"""REST and WebSocket routes of the twin server.

Route functions are plain ``def`` where they touch SQLite or run the analysis, so FastAPI
runs them in its thread pool and the event loop stays free for the WebSocket pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter

from twin_server.api.schemas import (
    AlignedOut,
    AnalysisOut,
    DeadLettersOut,
    HealthOut,
    LiveOut,
    ReadingsOut,
    ShiftKpisOut,
    ShiftOut,
    ShiftReplayOut,
    SiteSummary,
)
from twin_server.live.hub import day_bounds
from twin_server.result import Result
from twin_server.site import Machine, Site, Worker, polygon_centroid
from twin_server.store.replay_data import local_day, shift_window

router = APIRouter()

# Device times the wire contract accepts (2000..2200), in epoch seconds.
T_MIN_S = 946_684_800.0
T_MAX_S = 7_258_118_400.0
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DAY_MIN = date(2000, 1, 1)
DAY_END = date(2200, 1, 1)
MAX_ALIGNED_SAMPLES = 86_400
MAX_ALIGNED_DAYS = 31
DEAD_LETTERS_PAGE_BYTES = 2**20
# What FastAPI serialised an untyped dict with: the same bytes, without a model's validation.
_UNTYPED: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _ctx(request: Request | WebSocket) -> Any:
    return request.app.state.twin


def _site(request: Request, site: str) -> Site:
    s = _ctx(request).settings.site
    if site != s.site:
        raise HTTPException(404, f"unknown site {site!r}; this server serves {s.site!r}")
    return s


def _day(site: Site, day: str) -> tuple[float, float]:
    try:
        date.fromisoformat(day)
    except ValueError:
        raise HTTPException(422, f"day {day!r} is not a date YYYY-MM-DD") from None
    return day_bounds(day, site.timezone)


def _window(start: float | None, end: float | None) -> None:
    for name, v in (("start", start), ("end", end)):
        if v is not None and not math.isfinite(v):
            raise HTTPException(422, f"{name} must be finite epoch seconds")
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, "end must be after start")


def _analysis(request: Request, site: Site, day: str) -> tuple[Result, dict[str, Any]]:
    _day(site, _checked_day(day))
    try:
        got = _ctx(request).analysis.get(day)
    except ImportError as exc:
        raise HTTPException(503, f"analysis is not available: {exc}") from None
    if got is None:
        raise HTTPException(404, f"no readings of site {site.site!r} on {day}")
    return got


# --- health and sites ---------------------------------------------------------------------
@router.get(
    "/health",
    response_model=HealthOut,
    summary="Ingest counters, dead letters, clock offsets, broker and InfluxDB status",
)
def health(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    ingest = ctx.ingest
    journal = ctx.journal
    influx = None
    if ctx.influx is not None:
        influx = ctx.influx.status()
        influx["reachable"] = ctx.influx.ping()
    broker = None
    if ingest is not None:
        broker = {
            "host": ingest.host,
            "port": ingest.port,
            "connected": ingest.connected,
            "subscribed": ingest.subscribed.is_set(),
            "client_id": ingest.client_id,
        }
    stats = ingest.stats.to_dict() if ingest is not None else None
    problems = []
    if ingest is not None and not ingest.connected:
        problems.append(f"broker {ingest.host}:{ingest.port} not connected")
    if ingest is not None and ingest.stats.commits_failing:
        problems.append(f"journal commits failing, nothing acknowledged: {ingest.stats.last_error}")
    if influx is not None and not influx["reachable"]:
        problems.append("InfluxDB not reachable")
    suspects = ingest.clock_suspects.snapshot() if ingest is not None else {}
    warnings = [_clock_warning(k, v) for k, v in suspects.items()]
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "warnings": warnings,
        "site": ctx.settings.site.site,
        "uptime_s": time.monotonic() - ctx.started_s,
        "broker": broker,
        "ingest": stats,
        "journal": {
            "path": str(journal.path),
            "readings": journal.count(),
            **journal.disk(),
            "dead_letters": journal.dead_letter_counts(),
            "devices": journal.device_status(),
        },
        "clock_offsets": ingest.clock.estimates() if ingest is not None else {},
        "delivery": ctx.delivery.status() if ctx.delivery is not None else None,
        "retention": ctx.retention.status() if getattr(ctx, "retention", None) is not None else None,
        "clock_suspects": suspects,
        "influx": influx,
        "analysis": {
            "runs": ctx.analysis.runs,
            "last_run_s": ctx.analysis.last_run_s,
            "last_error": ctx.analysis.last_error,
        },
        "websocket_clients": ctx.hub.clients if ctx.hub is not None else 0,
    }


def _clock_warning(device: str, v: dict[str, Any]) -> str:
    kept = f"{v['readings']} readings journalled but kept out of the live view"
    if v["clock_wrong"]:
        return f"clock of device {device} is wrong ({v['offset_s']:+.0f} s from arrival): {kept}"
    return (
        f"device {device}: {kept}, stamped {v['offset_s']:+.0f} s before their arrival "
        "(a backlog from an outage, or a clock behind)"
    )


@router.get("/api/sites", response_model=list[SiteSummary], summary="Sites served here")
def sites(request: Request) -> list[dict[str, Any]]:
    s = _ctx(request).settings.site
    return [
        {
            "id": s.site,
            "name": s.name,
            "timezone": s.timezone,
            "machines": len(s.machines),
            "workers": len(s.workers),
        }
    ]


@router.get(
    "/api/sites/{site}",
    response_model=Site,
    summary="The site model (machines, workers, receivers, shift, markings)",
)
def site_detail(site: str, request: Request) -> Site:
    return _site(request, site)


@router.get("/api/sites/{site}/machines", response_model=list[Machine], summary="Machines of the site")
def machines(site: str, request: Request) -> list[Machine]:
    return list(_site(request, site).machines)


@router.get("/api/sites/{site}/workers", response_model=list[Worker], summary="Workers of the site")
def workers(site: str, request: Request) -> list[Worker]:
    return list(_site(request, site).workers)


@router.get(
    "/api/sites/{site}/shifts",
    response_model=list[ShiftOut],
    summary="Recorded shifts (local days with readings)",
)
def shifts(site: str, request: Request) -> list[dict[str, Any]]:
    s = _site(request, site)
    out = []
    for d in _ctx(request).analysis.days():
        lo, hi = shift_window(s, d["day"])
        out.append({**d, "shift_start": lo, "shift_end": hi})
    return out


# --- series ------------------------------------------------------------------------------
@router.get(
    "/api/sites/{site}/readings",
    response_model=ReadingsOut,
    summary="Raw readings of a time range (device time)",
)
def readings(
    site: str,
    request: Request,
    start: float | None = Query(None, ge=T_MIN_S, le=T_MAX_S, description="epoch seconds, inclusive"),
    end: float | None = Query(None, ge=T_MIN_S, le=T_MAX_S, description="epoch seconds, exclusive"),
    kind: str | None = Query(None, max_length=64),
    source: str | None = Query(None, max_length=64),
    limit: int = Query(10_000, ge=1, le=200_000),
) -> dict[str, Any]:
    s = _site(request, site)
    _window(start, end)
    rows = _ctx(request).journal.rows(s.site, start, end, kind=kind, source=source, limit=limit)
    return {"site": s.site, "count": len(rows), "truncated": len(rows) == limit, "readings": rows}


def _segments_at(segments: list[Any], key: str, value: str, times: list[float]) -> list[str | None]:
    """Sample half-open segments at the given times (None where no segment covers)."""
    mine = sorted((seg for seg in segments if getattr(seg, key) == value), key=lambda seg: seg.start)
    out: list[str | None] = []
    i = 0
    for t in times:
        while i < len(mine) and mine[i].end <= t:
            i += 1
        seg = mine[i] if i < len(mine) and mine[i].start <= t else None
        out.append(
            None
            if seg is None
            else getattr(seg, "state", None) or getattr(seg, "zone", None) or getattr(seg, "task", None)
        )
    return out


@router.get(
    "/api/sites/{site}/aligned",
    response_model=AlignedOut,
    summary="Aligned series: machine state, lag-corrected worker zone and task, sampled every step",
)
def aligned(
    site: str,
    request: Request,
    start: float = Query(..., ge=T_MIN_S, le=T_MAX_S),
    end: float = Query(..., ge=T_MIN_S, le=T_MAX_S),
    step_s: float = Query(1.0, ge=0.1, le=3600.0),
) -> dict[str, Any]:
    s = _site(request, site)
    _window(start, end)
    n = int((end - start) / step_s)
    if n > MAX_ALIGNED_SAMPLES:
        raise HTTPException(422, f"{n} samples requested; at most {MAX_ALIGNED_SAMPLES} (raise step_s)")
    times = [start + (k + 0.5) * step_s for k in range(n)]
    if end - start > MAX_ALIGNED_DAYS * 86_400:
        raise HTTPException(422, f"at most {MAX_ALIGNED_DAYS} days per request")
    days = sorted({local_day(t, s.timezone) for t in [*range(int(start), int(end), 3600), end - 1e-6]})
    results = []
    for d in days:
        got = _ctx(request).analysis.get(d)
        if got is not None:
            results.append(got[0])
    ms = [seg for r in results for seg in r.machine_states]
    wz = [seg for r in results for seg in r.worker_zones]
    tk = [seg for r in results for seg in r.tasks]
    return {
        "site": s.site,
        "t": times,
        "machine_state": {m: _segments_at(ms, "machine", m, times) for m in s.machine_ids},
        "task": {m: _segments_at(tk, "machine", m, times) for m in s.machine_ids},
        "worker_zone": {w: _segments_at(wz, "worker", w, times) for w in s.worker_ids},
    }


# --- analysis ----------------------------------------------------------------------------
@router.get(
    "/api/sites/{site}/shifts/{day}/analysis",
    response_model=AnalysisOut,
    response_model_exclude_unset=True,  # a zone's confidence stays out when the result has none
    summary="Analysis of a shift: machine states, zones, tasks, lag, KPIs",
)
def analysis(site: str, request: Request, day: str) -> dict[str, Any]:
    s = _site(request, site)
    result, kpis = _analysis(request, s, _checked_day(day))
    doc = result.to_dict()
    doc["kpis"] = kpis
    doc["day"] = day
    return doc


@router.get(
    "/api/sites/{site}/shifts/{day}/kpis",
    response_model=ShiftKpisOut,
    summary="KPIs of a shift: utilisation, changeover minutes per task and machine, idle minutes",
)
def kpis(site: str, request: Request, day: str) -> dict[str, Any]:
    s = _site(request, site)
    _result, k = _analysis(request, s, _checked_day(day))
    return {"site": s.site, "day": day, **k}


def _checked_day(day: str) -> str:
    """``day`` if it is a date YYYY-MM-DD within the wire contract's years, else a 422."""
    import re

    try:
        d = date.fromisoformat(day) if re.match(DAY_PATTERN, day) else None
    except ValueError:
        d = None
    if d is None:
        raise HTTPException(422, f"day {day!r} is not a date YYYY-MM-DD")
    # Device times are 2000..2200 (edge_agent.wire); outside it no day holds readings, and
    # 0001-01-01 or 9999-12-31 would overflow the day's bounds.
    if not DAY_MIN <= d < DAY_END:
        raise HTTPException(422, f"day {day} is outside {DAY_MIN}..{DAY_END - timedelta(days=1)}")
    return day


def positions(site: Site, result: Result, step_s: float = 1.0) -> dict[str, list[list[float] | None]]:
    """Per-second floor position of each worker: the centroid of the corrected zone, else None."""
    centres = {m.id: polygon_centroid(m.zone) for m in site.machines}
    n = max(0, math.ceil((result.window_end - result.window_start) / step_s))
    times = [result.window_start + k * step_s for k in range(n)]
    out: dict[str, list[list[float] | None]] = {}
    for w in site.worker_ids:
        zones = _segments_at(result.worker_zones, "worker", w, times)
        out[w] = [
            None if z is None or z not in centres else [round(centres[z][0], 2), round(centres[z][1], 2)]
            for z in zones
        ]
    return out


# Per-second positions of a shift: validating them through the model takes 2.1-3.1x the untyped
# serialisation (bench/api/bench_response_models.py), so the model documents the answer and
# the document is serialised as before; tests/twin_server/test_api.py checks it against the model.
@router.get(
    "/api/sites/{site}/shifts/{day}/replay",
    response_model=ShiftReplayOut,
    summary="Replay frames for the viewer: the analysis plus per-second worker positions",
)
def replay(site: str, request: Request, day: str) -> Response:
    return Response(_UNTYPED.dump_json(replay_document(site, request, day)), media_type="application/json")


def replay_document(site: str, request: Request, day: str) -> dict[str, Any]:
    """The replay route's document (a :class:`~twin_server.api.schemas.ShiftReplayOut`)."""
    s = _site(request, site)
    result, k = _analysis(request, s, _checked_day(day))
    return {
        "site": s.site,
        "day": day,
        "result": result.to_dict(),
        "kpis": k,
        "step_s": 1.0,
        "t0": result.window_start,
        "positions": positions(s, result),
    }


@router.get(
    "/api/dead-letters",
    response_model=DeadLettersOut,
    summary="Messages that broke the wire contract (newest first), in pages",
)
def dead_letters(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    reason: str | None = Query(None, max_length=64),
    before_id: int | None = Query(
        None, ge=1, le=2**63 - 1, description="next page: the next_before_id of the previous answer"
    ),
    max_bytes: int = Query(
        DEAD_LETTERS_PAGE_BYTES,
        ge=4096,
        le=8 * 2**20,
        description="stop before the page's rows pass this many bytes of JSON",
    ),
) -> dict[str, Any]:
    j = _ctx(request).journal
    rows = j.dead_letters(limit, reason, before_id=before_id, max_bytes=max_bytes)
    more = bool(rows) and bool(j.dead_letters(1, reason, before_id=rows[-1]["id"]))
    # counts: every dead letter received, per reason; kept: rows stored within the caps.
    return {
        "counts": j.dead_letter_counts(),
        "kept": j.dead_letters_kept(),
        "dead_letters": rows,
        "next_before_id": rows[-1]["id"] if more else None,
    }


@router.get(
    "/api/live",
    response_model=LiveOut,
    summary="Latest value of every sensor and the current analysis summary",
)
def live(request: Request) -> dict[str, Any]:
    ctx = _ctx(request)
    return {"site": ctx.settings.site.site, **ctx.state.snapshot(), "analysis": ctx.latest_analysis}


# --- WebSocket ---------------------------------------------------------------------------
@router.websocket("/ws/live")
async def ws_live(websocket: WebSocket) -> None:
    """Pushes ``readings`` within ``ws_flush_s`` of their commit, and ``analysis`` updates."""
    ctx = _ctx(websocket)
    await websocket.accept()
    q = ctx.hub.subscribe()
    try:
        await websocket.send_json(
            {
                "type": "snapshot",
                "site": ctx.settings.site.site,
                **ctx.state.snapshot(),
                "analysis": ctx.latest_analysis,
            }
        )
        receiver = asyncio.create_task(_drain(websocket))
        while True:
            getter = asyncio.create_task(q.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            await websocket.send_json(getter.result())
    except WebSocketDisconnect:
        return
    finally:
        ctx.hub.unsubscribe(q)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
