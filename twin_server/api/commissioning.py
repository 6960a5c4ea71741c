"""Commissioning API and page: the live checklist of every machine, as ``doctor`` prints it.

Routes (engineer and supervisor roles, see :mod:`twin_server.auth.policy`):

``GET /api/commissioning/{site}``
    Every machine's view (:func:`twin_server.live.commissioning.machine_view`).
``POST /api/commissioning/{site}/start?machine=M3``
    Start (or restart) that machine's commissioning: forget what was seen, so each button
    must be pressed again; returns the machine's fresh view.
``WS /ws/commissioning/{site}``
    The same document as the GET, pushed every ``push_s`` seconds.
``GET /commissioning/``
    The page (``replay/commissioning.html``), public like the viewer's static files: the
    data comes from the routes above.

The state is built from the journal (the readings the server ingested, in arrival order),
read incrementally by row id; sessions live in memory and restart with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, RedirectResponse

from twin_server.api.schemas import CommissioningDoc, MachineView
from twin_server.live.commissioning import MachineSession, device_of_machine, machine_of_reading, machine_view
from twin_server.site import Site
from twin_server.store.journal import Journal

__all__ = ["CommissioningTracker", "install_commissioning", "router"]

router = APIRouter(tags=["commissioning"])

_BATCH_ROWS = 5000
# When nobody looked for a long time, only this many of the newest readings are folded (about
# 1.5 s of work; 80 minutes of a pilot-sized site): a page must not wait for days of backlog.
MAX_CATCHUP_ROWS = 100_000
_ROW_KEYS = (
    "id",
    "site",
    "device",
    "sensor",
    "seq",
    "kind",
    "t_ns",
    "received_ns",
    "source",
    "channel",
    "value",
    "label",
    "unit",
    "count",
    "rssi_max_dbm",
    "window_ms",
)
# Files of the page (relative to replay/); nothing else is served under /commissioning/.
PAGE_FILES = {
    "commissioning.css": "text/css",
    "src/commissioning.js": "text/javascript",
    "src/commissioning-strings.js": "text/javascript",
    "src/i18n.js": "text/javascript",
}


class CommissioningTracker:
    """Commissioning sessions of a site's machines, fed from the journal (thread-safe).

    Parameters
    ----------
    site : Site
        The site served.
    journal : Journal
        The server's journal; readings and dead letters are read after the last row seen.
    clock_ns : callable
        Server time in epoch ns (tests inject one).
    offsets : callable
        The ingest's device clock offsets (``Ingest.clock.estimates()``: ``"site/device"`` ->
        ``{"offset_s", ...}``); none without ingest.
    clock_suspects : callable
        Devices whose readings carry a time far from their arrival
        (``Ingest.clock_suspects.snapshot()``: ``"site/device"`` -> ``{"readings", "offset_s"}``).
    delivery : callable
        ``delivery(device, since_ns)``: the device's sequence gaps
        (:meth:`twin_server.ingest.delivery.Delivery.device_summary`), or None.
    """

    def __init__(
        self,
        site: Site,
        journal: Journal,
        clock_ns: Callable[[], int] = time.time_ns,
        offsets: Callable[[], dict[str, dict[str, Any]]] = dict,
        clock_suspects: Callable[[], dict[str, dict[str, Any]]] = dict,
        delivery: Callable[[str, int], dict[str, Any] | None] = lambda _device, _since: None,
        simulated: str | None = None,
    ) -> None:
        self.site = site
        self.simulated = simulated  # the demo's agents replay a simulated shift
        self.journal = journal
        self.clock_ns = clock_ns
        self.offsets = offsets
        self.clock_suspects = clock_suspects
        self.delivery = delivery
        self._lock = threading.Lock()
        # Readings already in the journal when the server started are not commissioning.
        self._last_id = journal.max_id()
        self.skipped_rows = 0
        self._last_dead_id = self._max_dead_id()
        now = clock_ns()
        self.sessions = {m.id: MachineSession(m.id, now, self._last_id) for m in site.machines}
        self._devices = {m.device: m.id for m in site.machines if m.device}

    def _max_dead_id(self) -> int:
        return self.journal.max_dead_letter_id()

    def refresh(self) -> int:
        """Fold every reading and dead letter committed since the last call; returns how many."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        n = 0
        top = self.journal.max_id()
        if top - self._last_id > MAX_CATCHUP_ROWS:
            self.skipped_rows += top - MAX_CATCHUP_ROWS - self._last_id
            self._last_id = top - MAX_CATCHUP_ROWS
        while True:
            rows = self.journal.readings_after(self._last_id, _BATCH_ROWS)
            for values in rows:
                row = dict(zip(_ROW_KEYS, values, strict=True))
                self._last_id = row["id"]
                if row["site"] != self.site.site:
                    continue
                machine = machine_of_reading(self.site, row["kind"], row["source"], row["device"])
                if machine is not None:
                    self.sessions[machine].apply(row)
            n += len(rows)
            if len(rows) < _BATCH_ROWS:
                break
        dead = self.journal.dead_letter_reasons_after(self._last_dead_id)
        for dead_id, topic, reason in dead:
            self._last_dead_id = dead_id
            parts = str(topic).split("/")
            machine = self._devices.get(parts[3]) if len(parts) > 3 and parts[2] == self.site.site else None
            if machine is not None:
                self.sessions[machine].reject(str(reason))
        return n + len(dead)

    def start(self, machine_id: str) -> None:
        """Start a new session for one machine: what it sent so far no longer counts."""
        with self._lock:
            self._refresh()
            self.sessions[machine_id] = MachineSession(machine_id, self.clock_ns(), self._last_id)

    def view(self, machine_id: str | None = None) -> dict[str, Any]:
        """The site's commissioning document (optionally one machine only), after a refresh."""
        statuses = {(s["site"], s["device"]): s for s in self.journal.device_status()}
        offsets = self.offsets()
        suspects = self.clock_suspects()
        with self._lock:
            self._refresh()
            now = self.clock_ns()
            machines = []
            for m in self.site.machines:
                if machine_id is not None and m.id != machine_id:
                    continue
                session = self.sessions[m.id]
                device = device_of_machine(m, session)
                raw = statuses.get((self.site.site, device)) if device else None
                status = (
                    None
                    if raw is None
                    else {
                        "online": bool(raw["online"]),
                        "t_ns": raw["t_ns"],
                        "received_ns": raw["received_ns"],
                        "clock_synced": None if raw["clock_synced"] is None else bool(raw["clock_synced"]),
                        "agent_version": raw["agent_version"],
                        "extra": raw.get("extra") or {},
                    }
                )
                offset = offsets.get(f"{self.site.site}/{device}", {}).get("offset_s") if device else None
                suspect = suspects.get(f"{self.site.site}/{device}") if device else None
                gaps = self.delivery(device, session.started_ns) if device else None
                machines.append(
                    machine_view(self.site, m, session, status, now, offset, suspect, gaps, self.simulated)
                )
        return {
            "site": self.site.site,
            "name": self.site.name,
            "language": self.site.language,
            "timezone": self.site.timezone,
            "now_ns": now,
            "skipped_rows": self.skipped_rows,
            "machines": machines,
        }


def _tracker(app: Any, site: str) -> CommissioningTracker:
    tracker: CommissioningTracker | None = getattr(app.state, "commissioning", None)
    if tracker is None:
        raise HTTPException(503, "commissioning is not set up on this server")
    if site != tracker.site.site:
        raise HTTPException(404, f"unknown site {site!r}; this server serves {tracker.site.site!r}")
    return tracker


@router.get(
    "/api/commissioning/{site}",
    response_model=CommissioningDoc,
    summary="Live commissioning checklist of every machine",
)
def get_commissioning(site: str, request: Request) -> dict[str, Any]:
    return _tracker(request.app, site).view()


@router.post(
    "/api/commissioning/{site}/start",
    response_model=MachineView,
    summary="Start a machine's commissioning (reset its lines)",
)
def start_commissioning(
    site: str, request: Request, machine: str = Query(..., description="machine id")
) -> dict[str, Any]:
    tracker = _tracker(request.app, site)
    if machine not in tracker.site.machine_ids:
        raise HTTPException(404, f"unknown machine {machine!r} at site {site!r}")
    tracker.start(machine)
    return tracker.view(machine)["machines"][0]


@router.websocket("/ws/commissioning/{site}")
async def ws_commissioning(websocket: WebSocket, site: str) -> None:
    tracker: CommissioningTracker | None = getattr(websocket.app.state, "commissioning", None)
    if tracker is None or site != tracker.site.site:
        await websocket.close(code=1008, reason=f"unknown site {site!r}"[:120])
        return
    await websocket.accept()
    push_s = float(getattr(websocket.app.state, "commissioning_push_s", 1.0))
    # A closed client shows up at the next send (uvicorn raises ClientDisconnected, an OSError).
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            doc = await asyncio.to_thread(tracker.view)
            await websocket.send_json({"type": "commissioning", **doc})
            await asyncio.sleep(push_s)


@router.get("/commissioning", include_in_schema=False)
def page_root() -> RedirectResponse:
    return RedirectResponse("/commissioning/")


@router.get("/commissioning/", include_in_schema=False)
def page(request: Request) -> FileResponse:
    return FileResponse(
        _replay_dir(request) / "commissioning.html",
        media_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/commissioning/{path:path}", include_in_schema=False)
def page_file(path: str, request: Request) -> FileResponse:
    if path not in PAGE_FILES:
        raise HTTPException(404, "not found")
    return FileResponse(
        _replay_dir(request) / path, media_type=PAGE_FILES[path], headers={"Cache-Control": "no-cache"}
    )


def _replay_dir(request: Request) -> Path:
    from twin_server.api.viewer import REPLAY_DIR

    return Path(getattr(request.app.state, "commissioning_dir", REPLAY_DIR))


def install_commissioning(app: FastAPI, ctx: Any) -> None:
    """Add the commissioning routes and page to the server app (``ctx`` = ``app.state.twin``)."""

    def offsets() -> dict[str, dict[str, Any]]:
        ingest = getattr(ctx, "ingest", None)  # started in the app's lifespan, after this
        return ingest.clock.estimates() if ingest is not None else {}

    def suspects() -> dict[str, dict[str, Any]]:
        ingest = getattr(ctx, "ingest", None)
        return ingest.clock_suspects.snapshot() if ingest is not None else {}

    def delivery(device: str, since_ns: int) -> dict[str, Any] | None:
        tracker = getattr(ctx, "delivery", None)  # started in the app's lifespan, after this
        return tracker.device_summary(device, since_ns) if tracker is not None else None

    app.state.commissioning = CommissioningTracker(
        ctx.settings.site,
        ctx.journal,
        offsets=offsets,
        clock_suspects=suspects,
        delivery=delivery,
        simulated=ctx.settings.simulated_clock,
    )
    app.include_router(router)
