"""A worker's own replay: ``GET /api/worker/{site}/{worker}/replay`` (the shift, only their rows).

The site-wide ``/api/replay/{site}`` holds every worker's zones, tasks and lag, so the policy
forbids it to workers; this route serves the same document cut down to one worker, so a
worker can replay their own shift in the viewer. The cut is an allow-list: result keys it
does not know are dropped, so a field added later cannot leak a colleague's data.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from twin_server.store.replay_data import ReplayError, pick_window, recording_of, replay_payload
from twin_server.store.replay_schema import ReplayPayload

__all__ = ["own_replay", "router"]

router = APIRouter(tags=["auth"])

# Result keys kept as they are (no worker in them) and those cut to the worker's rows.
_SHARED_KEYS = ("site", "window", "rejected_rows", "machine_states")
_PER_WORKER_KEYS = ("worker_zones", "tasks", "beacon_lag")
_TOP_KEYS = ("site", "shift", "breaks", "shifts", "result")


def own_replay(payload: dict[str, Any], worker_id: str) -> dict[str, Any]:
    """The viewer's replay document reduced to one worker (pure).

    Parameters
    ----------
    payload : dict
        A :func:`twin_server.store.replay_data.replay_payload` document.
    worker_id : str
        The worker whose rows are kept.

    Returns
    -------
    dict
        Same schema; ``site.workers`` lists only that worker, ``result`` keeps machine states
        and the worker's own zones, tasks and lag estimates; unknown keys are dropped.
    """
    out = {k: payload[k] for k in _TOP_KEYS if k in payload}
    layout = dict(out.get("site") or {})
    layout["workers"] = [w for w in layout.get("workers", []) if w.get("id") == worker_id]
    out["site"] = layout
    result = payload.get("result") or {}
    cut = {k: result[k] for k in _SHARED_KEYS if k in result}
    for key in _PER_WORKER_KEYS:
        cut[key] = [r for r in result.get(key, []) if r.get("worker") == worker_id]
    out["result"] = cut
    return out


@router.get(
    "/api/worker/{site}/{worker}/replay",
    summary="One worker's own replay of a shift",
    response_model=ReplayPayload,
    response_model_exclude_unset=True,  # keys the document leaves out (shift.recording, confidence) stay out
)
def worker_replay(
    site: str,
    worker: str,
    request: Request,
    start: float | None = Query(None, description="window start, epoch seconds"),
    end: float | None = Query(None, description="window end, epoch seconds"),
    day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day of a shift"),
) -> dict[str, Any]:
    provider = getattr(request.app.state, "replay_provider", None)
    if provider is None:
        raise HTTPException(503, "no replay data source is configured on this server")
    for name, v in (("start", start), ("end", end)):
        if v is not None and not math.isfinite(v):
            raise HTTPException(422, f"{name} must be a finite number of epoch seconds")
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, "end must be after start")
    try:
        site_obj = provider.site(site)
        if worker not in site_obj.worker_ids:
            raise ReplayError(f"site {site!r} has no worker {worker!r}")
        shifts = provider.shifts(site)
        lo, hi = pick_window(shifts, day, start, end)
        payload = replay_payload(
            site_obj, provider.get_replay(site, lo, hi), lo, hi, shifts, recording_of(provider, site)
        )
    except ReplayError as exc:
        raise HTTPException(404, str(exc)) from None
    return own_replay(payload, worker)
