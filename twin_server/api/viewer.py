"""The browser replay's HTTP side: replay data, coaching notes, the scene GLB, static files.

Use it in any FastAPI app::

    from twin_server.api import viewer
    viewer.install(app, provider=my_provider, data_dir=settings.data_dir)

or piecewise: ``app.include_router(viewer.router)`` + ``viewer.mount_static(app)`` with
``app.state.replay_provider`` (a :class:`twin_server.store.replay_data.ReplayProvider`) and
``app.state.notes_store`` (:class:`NotesStore`) set. The page is served at ``/viewer/`` and
three.js from the npm package at ``/viewer/vendor/three/`` (no CDN: shop networks are offline).

Run a stand-alone viewer over a directory with ``site.yaml`` and result JSON files::

    python -m twin_server.api.viewer --dir DIR [--data-dir DIR] [--port 8765] [--auth]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator

from twin_contract import vocabulary as vocab
from twin_server.api.schemas import NoteOut, ViewerSites, file_responses
from twin_server.store.replay_data import (
    FileReplayProvider,
    ReplayError,
    ReplayProvider,
    pick_window,
    recording_of,
    replay_payload,
    to_json_bytes,
    worker_days,
)
from twin_server.store.replay_schema import ReplayPayload, ShiftSpan, WorkerDays

__all__ = ["NoteIn", "NotesStore", "create_viewer_app", "install", "mount_static", "router"]

log = logging.getLogger(__name__)

REPLAY_DIR = Path(os.environ.get("TWIN_REPLAY_DIR", Path(__file__).resolve().parents[2] / "replay"))
# Responses smaller than this are not worth compressing.
_GZIP_MIN_BYTES = 1024

router = APIRouter(tags=["viewer"])


# --- notes ----------------------------------------------------------------------------------
class NoteIn(BaseModel):
    """A coaching note pinned to a moment and to one machine or worker."""

    t: float = Field(description="moment, epoch seconds")
    target: str = Field(pattern=vocab.ID_PATTERN, description="machine or worker id")
    text: str = Field(min_length=1, max_length=2000)
    author: str = Field(default="", max_length=80)

    @field_validator("t")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("t must be a finite number of epoch seconds")
        return v

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        return v.strip()


class NotesStore:
    """Notes in SQLite (one file under the data dir); safe to share between request threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL,"
            " t REAL NOT NULL, target_kind TEXT NOT NULL, target TEXT NOT NULL, text TEXT NOT NULL,"
            " author TEXT NOT NULL DEFAULT '', created REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS notes_site_t ON notes (site, t)")
        self._db.commit()

    @staticmethod
    def _row(r: tuple[Any, ...]) -> dict[str, Any]:
        keys = ("id", "site", "t", "target_kind", "target", "text", "author", "created")
        return dict(zip(keys, r, strict=True))

    def list(self, site: str, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """Notes of a site, by time, optionally within ``[start, end)``."""
        lo = -math.inf if start is None else start
        hi = math.inf if end is None else end
        with self._lock:
            rows = self._db.execute(
                "SELECT id, site, t, target_kind, target, text, author, created FROM notes"
                " WHERE site = ? AND t >= ? AND t < ? ORDER BY t, id",
                (site, lo, hi),
            ).fetchall()
        return [self._row(r) for r in rows]

    def add(self, site: str, note: NoteIn, target_kind: str) -> dict[str, Any]:
        """Store a note; returns it with its id."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO notes (site, t, target_kind, target, text, author, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (site, note.t, target_kind, note.target, note.text, note.author, time.time()),
            )
            self._db.commit()
            row = self._db.execute(
                "SELECT id, site, t, target_kind, target, text, author, created FROM notes WHERE id = ?",
                (cur.lastrowid,),
            ).fetchone()
        return self._row(row)

    def delete(self, site: str, note_id: int) -> bool:
        """Delete a note; False if there was none with that id at that site."""
        with self._lock:
            cur = self._db.execute("DELETE FROM notes WHERE site = ? AND id = ?", (site, note_id))
            self._db.commit()
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --- helpers --------------------------------------------------------------------------------
def _provider(request: Request) -> ReplayProvider:
    provider = getattr(request.app.state, "replay_provider", None)
    if provider is None:
        raise HTTPException(503, "no replay data source is configured on this server")
    return provider


def _notes(request: Request) -> NotesStore:
    store = getattr(request.app.state, "notes_store", None)
    if store is None:
        data_dir = getattr(request.app.state, "data_dir", None)
        if data_dir is None:
            raise HTTPException(503, "no data directory is configured for notes")
        store = NotesStore(Path(data_dir) / "notes.sqlite")
        request.app.state.notes_store = store
    return store


def _json(request: Request, doc: Any) -> Response:
    body = to_json_bytes(doc)
    headers = {"Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if len(body) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        # Compressed here rather than by middleware: this router must not change the host app.
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


def _site_or_404(provider: ReplayProvider, site: str) -> Any:
    try:
        return provider.site(site)
    except ReplayError as exc:
        raise HTTPException(404, str(exc)) from None


# --- routes ---------------------------------------------------------------------------------
@router.get(
    "/api/viewer/sites",
    response_model=ViewerSites,
    summary="Sites the viewer can show: ids and display names",
)
def list_sites(request: Request) -> dict[str, Any]:
    provider = _provider(request)
    ids = getattr(provider, "site_ids", None)
    sites = list(ids()) if ids is not None else []
    names, names_ja = {}, {}
    for sid in sites:
        try:
            s = provider.site(sid)
            names[sid], names_ja[sid] = s.name or sid, s.name_ja or s.name or sid
        except ReplayError:  # listed but unreadable right now: the id will do
            names[sid] = names_ja[sid] = sid
    return {"sites": sites, "names": names, "names_ja": names_ja}


@router.get("/api/replay/{site}/shifts", response_model=list[ShiftSpan], summary="Recorded shifts of a site")
def list_shifts(site: str, request: Request) -> list[dict[str, Any]]:
    provider = _provider(request)
    _site_or_404(provider, site)
    return provider.shifts(site)


# The replay and the worker's days are serialised once and gzipped by ``_json`` (the replay is
# the biggest document the server sends): the model documents them and is not run on them.
@router.get(
    "/api/replay/{site}",
    response_model=ReplayPayload,
    summary="Replay data: site layout, shift, breaks, analysis result",
)
def get_replay(
    site: str,
    request: Request,
    start: float | None = Query(None, description="window start, epoch seconds"),
    end: float | None = Query(None, description="window end, epoch seconds"),
    day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day of a shift"),
) -> Response:
    provider = _provider(request)
    site_obj = _site_or_404(provider, site)
    for name, v in (("start", start), ("end", end)):
        if v is not None and not math.isfinite(v):
            raise HTTPException(422, f"{name} must be a finite number of epoch seconds")
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, "end must be after start")
    shifts = provider.shifts(site)
    try:
        lo, hi = pick_window(shifts, day, start, end)
        doc = provider.get_replay(site, lo, hi)
        payload = replay_payload(site_obj, doc, lo, hi, shifts, recording_of(provider, site))
    except ReplayError as exc:
        raise HTTPException(404, str(exc)) from None
    return _json(request, payload)


@router.get(
    "/api/worker/{site}/{worker}", response_model=WorkerDays, summary="One worker's own tasks per day"
)
def get_worker(site: str, worker: str, request: Request) -> Response:
    provider = _provider(request)
    try:
        doc = worker_days(provider, site, worker)
    except ReplayError as exc:
        raise HTTPException(404, str(exc)) from None
    # The layout names only this worker: their timeline must not list colleagues' ids and names.
    own = [w for w in doc["site"].get("workers", []) if w.get("id") == worker]
    doc["site"] = {**doc["site"], "workers": own}
    return _json(request, doc)


@router.get("/api/notes/{site}", response_model=list[NoteOut], summary="Coaching notes of a site")
def list_notes(
    site: str, request: Request, start: float | None = None, end: float | None = None
) -> list[dict[str, Any]]:
    _site_or_404(_provider(request), site)
    return _notes(request).list(site, start, end)


@router.post(
    "/api/notes/{site}",
    status_code=201,
    response_model=NoteOut,
    summary="Pin a note to a moment and a machine or worker",
)
def add_note(site: str, note: NoteIn, request: Request) -> dict[str, Any]:
    site_obj = _site_or_404(_provider(request), site)
    if note.target in site_obj.machine_ids:
        kind = "machine"
    elif note.target in site_obj.worker_ids:
        kind = "worker"
    else:
        raise HTTPException(422, f"target {note.target!r} is neither a machine nor a worker of {site!r}")
    return _notes(request).add(site, note, kind)


@router.delete("/api/notes/{site}/{note_id}", status_code=204, summary="Delete a note")
def delete_note(site: str, note_id: int, request: Request) -> Response:
    _site_or_404(_provider(request), site)
    if not _notes(request).delete(site, note_id):
        raise HTTPException(404, f"no note {note_id} at site {site!r}")
    return Response(status_code=204)


_scene_lock = threading.Lock()


def _build_scene(site_path: Path, out: Path, timeout_s: float = 120.0) -> str | None:
    """Run ``python -m models3d scene``; returns an error line, or None on success."""
    tmp = out.with_name(out.name + ".tmp.glb")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "models3d", "scene", "--site", str(site_path), "--out", str(tmp)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"models3d scene did not run: {exc}"
    if proc.returncode != 0 or not tmp.is_file():
        lines = (proc.stderr or proc.stdout or "no output").strip().splitlines()
        return f"models3d scene failed (exit {proc.returncode}): {lines[-1] if lines else ''}"
    tmp.replace(out)
    return None


@router.get(
    "/api/scene/{site}.glb",
    summary="The factory scene made by models3d (404: draw from layout)",
    response_class=Response,
    responses=file_responses("a binary glTF scene", "model/gltf-binary"),
)
def get_scene(site: str, request: Request) -> Response:
    provider = _provider(request)
    _site_or_404(provider, site)
    getter = getattr(provider, "scene_glb", None)
    if getter is not None:  # a provider that knows better (e.g. the live server's cache)
        data = getter(site)
        if data is None:
            raise HTTPException(404, "no scene for this site")
        return Response(data, media_type="model/gltf-binary")
    site_path_of = getattr(provider, "site_path", None)
    data_dir = getattr(request.app.state, "data_dir", None)
    if site_path_of is None or data_dir is None:
        raise HTTPException(404, "no scene for this site; the viewer draws it from the layout")
    try:
        site_path = Path(site_path_of(site))
    except ReplayError as exc:  # e.g. a live server started without a site file
        raise HTTPException(404, f"no scene: {exc}") from None
    out = Path(data_dir) / "scenes" / f"{site}.glb"
    failed = getattr(request.app.state, "scene_failures", {})
    with _scene_lock:
        fresh = out.is_file() and out.stat().st_mtime >= site_path.stat().st_mtime
        if not fresh and site not in failed and getattr(request.app.state, "build_scenes", True):
            out.parent.mkdir(parents=True, exist_ok=True)
            err = _build_scene(site_path, out)
            if err is not None:
                # Remember the failure: the viewer asks on every load and falls back anyway.
                failed[site] = err
                request.app.state.scene_failures = failed
                log.warning("scene for %s: %s", site, err)
    if not out.is_file():
        raise HTTPException(404, failed.get(site, "no scene for this site"))
    return Response(out.read_bytes(), media_type="model/gltf-binary")


@router.get("/viewer", include_in_schema=False)
def viewer_root() -> RedirectResponse:
    return RedirectResponse("/viewer/")


# The KPI strip's route lives in its own module; it is part of this router.
from twin_server.api.viewer_kpis import router as _kpi_router  # noqa: E402

router.include_router(_kpi_router)


# --- app wiring -----------------------------------------------------------------------------
def mount_static(app: FastAPI, replay_dir: str | Path = REPLAY_DIR) -> None:
    """Serve ``replay/`` at ``/viewer/`` and its npm three.js at ``/viewer/vendor/three/``.

    Raises
    ------
    RuntimeError
        ``replay/node_modules/three`` is missing (run ``npm ci`` in ``replay/``).
    """
    root = Path(replay_dir)
    three = root / "node_modules" / "three"
    if not (three / "build" / "three.module.js").is_file():
        raise RuntimeError(f"three.js is not installed at {three}: run `npm ci` in {root}")
    # The vendor mount must come first: /viewer would otherwise swallow /viewer/vendor/...
    app.mount("/viewer/vendor/three", StaticFiles(directory=three), name="viewer-three")
    app.mount("/viewer", StaticFiles(directory=root, html=True), name="viewer")


def install(
    app: FastAPI,
    provider: ReplayProvider | None = None,
    data_dir: str | Path | None = None,
    replay_dir: str | Path = REPLAY_DIR,
) -> None:
    """Add the viewer to an app: state, routes, static files."""
    if provider is not None:
        app.state.replay_provider = provider
    if data_dir is not None:
        app.state.data_dir = Path(data_dir)
    app.include_router(router)
    mount_static(app, replay_dir)


def create_viewer_app(
    provider: ReplayProvider,
    data_dir: str | Path,
    replay_dir: str | Path = REPLAY_DIR,
    build_scenes: bool = True,
    auth: bool = False,
) -> FastAPI:
    """A stand-alone app serving only the viewer (tests, benchmarks, a laptop in a meeting room).

    ``build_scenes=False`` serves a scene GLB only if one is already in ``DATA_DIR/scenes/``
    instead of running ``models3d scene`` on the first request. ``auth=True`` requires sign-in
    (``twin_server.auth``; users in ``DATA_DIR/auth.sqlite``, for the provider's sites).
    """
    app = FastAPI(title="factory twin viewer", docs_url=None, redoc_url=None)
    from twin_server.api.docs import install_docs

    install_docs(app, Path(replay_dir))
    app.state.build_scenes = build_scenes
    install(app, provider, data_dir, replay_dir)
    if not auth:  # with sign-in every route must be in the policy table; "/" is not

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/viewer/")

    else:
        from twin_server.auth import install_auth

        ids = getattr(provider, "site_ids", None)
        install_auth(app, data_dir=Path(data_dir), site_ids=list(ids()) if ids is not None else [])
    from twin_server.api.body_limit import BodyLimitMiddleware

    app.add_middleware(BodyLimitMiddleware)  # outermost: before sign-in reads a body
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twin_server.api.viewer", description="Serve the browser replay over result files."
    )
    parser.add_argument(
        "--dir",
        action="append",
        required=True,
        help="directory with site.yaml and result JSON files (repeatable)",
    )
    parser.add_argument("--data-dir", default="twin-data", help="where notes and scenes are kept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--auth",
        action="store_true",
        help="require sign-in (create users with python -m twin_server.auth add-user --data-dir DATA_DIR)",
    )
    args = parser.parse_args(argv)
    import uvicorn

    try:
        app = create_viewer_app(FileReplayProvider(*args.dir), args.data_dir, auth=args.auth)
    except (ReplayError, RuntimeError) as exc:
        print(f"viewer: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
