"""``GET /api/kpis/{site}``: the viewer's KPI strip and shift summary, with a trend.

The figures are computed from exactly the document ``GET /api/replay/{site}`` sends for the
same shift (the provider's result clipped to the shift), so the strip and the replay never
disagree.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from twin_server.api.schemas import ViewerKpis
from twin_server.kpis import shift_kpis, with_trend
from twin_server.result import Result, ResultError
from twin_server.store.replay_data import ReplayError, clip_result, site_layout
from twin_server.store.replay_schema import SiteLayout

__all__ = ["kpi_document", "router"]

router = APIRouter()


def kpi_document(provider: Any, site_id: str, day: str | None = None, days: int = 10) -> dict[str, Any]:
    """KPIs of a recorded shift (default the latest) and the trend over up to ``days`` shifts.

    Raises
    ------
    ReplayError
        Unknown site, no recorded shift, or no shift on ``day``.
    """
    site = provider.site(site_id)
    shifts = provider.shifts(site_id)
    if not shifts:
        raise ReplayError("no recorded shift")
    if day is None:
        k = len(shifts) - 1
    else:
        k = next((i for i, s in enumerate(shifts) if s["day"] == day), -1)
        if k < 0:
            raise ReplayError(f"no recorded shift on {day}")
    machines, workers = site.machine_ids, site.worker_ids
    docs = []
    for sh in shifts[max(0, k + 1 - days) : k + 1]:
        try:
            lo, hi = sh["start"], sh["end"]
            clipped = clip_result(provider.get_replay(site_id, lo, hi), lo, hi)
            docs.append((sh["day"], shift_kpis(Result.from_dict(clipped), machines, workers)))
        except (ReplayError, ResultError):
            if sh is shifts[k]:
                raise
    out = with_trend(docs)
    out["shift"] = {"day": shifts[k]["day"], "start": shifts[k]["start"], "end": shifts[k]["end"]}
    return out


# Serialised and gzipped by the viewer's ``_json``: the model documents the answer.
@router.get(
    "/api/kpis/{site}",
    response_model=ViewerKpis,
    summary="KPI strip and shift summary of a shift, with a trend",
)
def get_kpis(
    site: str,
    request: Request,
    day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="shift day (default: latest)"),
    days: int = Query(10, ge=1, le=20, description="shifts in the trend, this one included"),
) -> Response:
    from twin_server.api.viewer import _json, _provider

    try:
        return _json(request, kpi_document(_provider(request), site, day, days))
    except ReplayError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get(
    "/api/viewer/layout/{site}",
    response_model=SiteLayout,
    summary="Site layout: machines, worker names, time zone",
)
def get_layout(site: str, request: Request) -> dict[str, Any]:
    from twin_server.api.viewer import _provider, _site_or_404

    return site_layout(_site_or_404(_provider(request), site))
