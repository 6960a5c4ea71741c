"""Site editor API and page: draw the site on its floor plan, save the site file, reload it live.

Routes (engineer and supervisor roles, see :mod:`twin_server.auth.policy`), all under
``/api/editor/{site}``:

``GET ""``                     the site file as a document, its version, the live check, the plan
``POST /check``                check an edited document (problems by key path, warnings)
``PUT ""``                     save (``base_version`` must still be current; warnings confirmed);
                               the server runs the new site at once
``POST /undo``, ``POST /restore``  go back to an earlier saved version
``GET /history``, ``GET /versions/{v}``, ``GET /drafts/{name}``  history and refused drafts
``POST /reload``               run the file as it is on disk (after a hand edit)
``POST /import``               read another site file's text into a document (nothing saved)
``PUT /plan``                  upload a floor plan (raw body: PNG, JPEG, PDF or SVG)
``GET /models``, ``PUT /models/{name}``  prepared GLB models next to the site file
``GET /files/{path}``          a plan or model file next to the site file
``GET /devices``               Pis, receivers and beacons heard on the broker
``POST /survey/walks`` ...     record a survey walk by tapping (see :mod:`twin_server.editor.walks`)

``GET /editor/`` serves the page (``replay/editor.html``), public like the viewer's files.

Request bodies: uploads are read here as a stream and capped per route (``PLAN_MAX_BYTES``,
``MODEL_MAX_BYTES``: 413 above); JSON bodies are at most ``DOCUMENT_MAX_BYTES``. A server-wide
body limit in front of the app must let ``BODY_LIMITS`` through.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from twin_contract.vocabulary import ID_PATTERN, is_id
from twin_server.api.schemas import file_responses
from twin_server.editor.checks import Finding, check_document
from twin_server.editor.devices import devices_seen
from twin_server.editor.plan import PlanError, convert_plan, plan_size
from twin_server.editor.reload import analysis_params_for, apply_site
from twin_server.editor.store import NEW_VERSION, SiteFileStore, StaleVersion
from twin_server.editor.walks import WalkError, WalkRecorder
from twin_server.editor.yaml_doc import load_document
from twin_server.site import Site, SiteError, load_site

__all__ = [
    "BODY_LIMITS",
    "DOCUMENT_MAX_BYTES",
    "MODEL_MAX_BYTES",
    "PLAN_MAX_BYTES",
    "EditorService",
    "install_editor",
    "router",
]

log = logging.getLogger("twin_server.editor")
router = APIRouter(tags=["editor"])

PLAN_MAX_BYTES = 30 * 1024 * 1024  # a 12-megapixel phone photo, an A0 scan as JPEG, a CAD PDF export
MODEL_MAX_BYTES = 64 * 1024 * 1024  # models3d prepare writes a few MB per machine
DOCUMENT_MAX_BYTES = 256 * 1024  # a site file (the pilot's is 3 KB)
#: Route pattern -> the largest request body it takes (for a server-wide body limit in front).
BODY_LIMITS = {"/api/editor/{site}/plan": PLAN_MAX_BYTES, "/api/editor/{site}/models/{name}": MODEL_MAX_BYTES}
_SERVED_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".glb": "model/gltf-binary",
}
PAGE_FILES = {
    "editor.css": "text/css",
    "src/editor.js": "text/javascript",
    "src/editor-geom.js": "text/javascript",
    "src/editor-strings.js": "text/javascript",
    "src/editor-3d.js": "text/javascript",
    "src/auth.js": "text/javascript",
}


# --- response and request models -------------------------------------------------------------
class FindingOut(BaseModel):
    """A validator problem or a warning, with the key path of the shape it is about."""

    path: str = Field(description="key path, e.g. machines[2].zone ('' for the whole site)")
    message: str
    code: str = Field(description="invalid, site_id, zones_overlap, bodies_overlap, outside_floor")


class PlanInfo(BaseModel):
    """The floor plan the document names."""

    image: str = Field(description="file relative to the site file")
    url: str
    width_px: float | None = None
    height_px: float | None = None


class EditorState(BaseModel):
    """The site file as the editor opens it."""

    site: str
    file: str = Field(description="the site file's name")
    version: str = Field(description="version of the file (first 16 hex of its SHA-256; 'new' if none)")
    running_version: str = Field(description="version the server runs now")
    writable: bool
    new_site: bool
    document: dict[str, Any]
    problems: list[FindingOut]
    warnings: list[FindingOut]
    plan: PlanInfo | None
    undo: str | None = Field(description="version an undo would restore")


class CheckIn(BaseModel):
    document: dict[str, Any]


class CheckOut(BaseModel):
    """The live check of an edited document."""

    ok: bool
    problems: list[FindingOut]
    warnings: list[FindingOut]


class SaveIn(BaseModel):
    document: dict[str, Any]
    base_version: str = Field(description="the version the edits started from")
    accept_warnings: bool = Field(default=False, description="save although there are warnings")


class SaveOut(BaseModel):
    """A save (or undo, restore, reload) that went through."""

    version: str
    reloaded: bool
    message: str
    warnings: list[FindingOut]
    undo: str | None
    document: dict[str, Any]


class VersionIn(BaseModel):
    base_version: str
    version: str | None = None


class HistoryItem(BaseModel):
    t: float
    action: str
    version: str
    previous: str | None
    user: str
    draft: str | None = None


class HistoryOut(BaseModel):
    current: str
    undo: str | None
    entries: list[HistoryItem] = Field(description="newest first")


class DocumentOut(BaseModel):
    """A document read from a stored version, a draft or an imported file (not saved)."""

    document: dict[str, Any]
    problems: list[FindingOut]
    warnings: list[FindingOut]
    notes: list[str] = Field(default_factory=list)


class ImportIn(BaseModel):
    text: str = Field(max_length=DOCUMENT_MAX_BYTES, description="the YAML text of a site file")
    name: str = Field(default="", max_length=200)


class PlanOut(BaseModel):
    """A stored floor plan."""

    image: str
    url: str
    width_px: float
    height_px: float
    note: str


class ModelFile(BaseModel):
    path: str
    bytes: int


class SensorSeen(BaseModel):
    id: str
    kind: str
    channel: str


class DeviceSeen(BaseModel):
    """A device heard on the broker (in the site or refused because it is not in it yet)."""

    device: str
    online: bool | None
    last_seen_ns: int
    machine: str | None = Field(description="the machine its readings name")
    receivers: list[str]
    beacons: list[str]
    sensors: list[SensorSeen]
    locator: bool
    accepted: int
    refused: int
    agent_version: str | None
    in_site: bool


class WalkIn(BaseModel):
    beacon: str = Field(pattern=ID_PATTERN)


class TapIn(BaseModel):
    x_m: float = 0.0
    y_m: float = 0.0
    repeat: bool = Field(default=False, description="still standing at the last point")


class WalkOut(BaseModel):
    walk_id: str
    beacon: str
    started_s: float
    points: list[list[float]] = Field(description="[t, x_m, y_m] per tap, server time")
    heard: dict[str, int] = Field(description="RSSI rows of the beacon per receiver so far")


class WalkDone(BaseModel):
    walk: dict[str, str] = Field(description="the survey.walks entry: readings, track, beacon")
    rows: int
    points: int
    message: str


# --- the service -------------------------------------------------------------------------------
class EditorService:
    """Everything the editor routes share (kept on ``app.state.editor``)."""

    def __init__(self, app: Any, ctx: Any) -> None:
        self.app = app
        self.ctx = ctx
        path = ctx.settings.site_path
        self.site_path: Path | None = Path(path) if path is not None else None
        self.site_id: str = ctx.settings.site.site
        data_dir = Path(ctx.settings.data_dir)
        self.store = (
            SiteFileStore(self.site_path, data_dir / "editor" / self.site_id)
            if self.site_path is not None
            else None
        )
        self.running_version = self.store.read()[1] if self.store is not None else NEW_VERSION
        self.walks = WalkRecorder(self.site_id, ctx.journal, lambda: self.base_dir)
        self._lock = threading.Lock()

    @property
    def base_dir(self) -> Path:
        if self.site_path is None:
            raise HTTPException(404, "no site file: this server was started without one (serve --site FILE)")
        return self.site_path.resolve().parent

    def need_store(self) -> SiteFileStore:
        if self.store is None:
            raise HTTPException(404, "no site file: this server was started without one (serve --site FILE)")
        return self.store

    def user(self, request: Request) -> str:
        principal = request.scope.get("state", {}).get("principal")
        return principal.user.name if principal is not None else "anonymous"

    def run(self, site: Site, params: Any, version: str) -> None:
        apply_site(self.app, site, params)
        self.running_version = version


def _svc(request: Request, site: str) -> EditorService:
    svc: EditorService | None = getattr(request.app.state, "editor", None)
    if svc is None:
        raise HTTPException(503, "the site editor is not set up on this server")
    if site != svc.site_id:
        raise HTTPException(404, f"unknown site {site!r}; this server serves {svc.site_id!r}")
    return svc


def _out(findings: list[Finding]) -> list[FindingOut]:
    return [FindingOut(**f.to_dict()) for f in findings]


def _plan_info(svc: EditorService, site: str, doc: dict[str, Any]) -> PlanInfo | None:
    plan = doc.get("plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("image"), str):
        return None
    size = plan_size(svc.base_dir / plan["image"]) if svc.site_path is not None else None
    return PlanInfo(
        image=plan["image"],
        url=f"/api/editor/{site}/files/{plan['image']}",
        width_px=size[0] if size else None,
        height_px=size[1] if size else None,
    )


def _checked(doc: dict[str, Any], site_id: str) -> tuple[list[Finding], list[Finding], Site | None]:
    return check_document(doc, site_id)


# --- routes --------------------------------------------------------------------------------------
@router.get("/api/editor/{site}", summary="The site file as an editable document", response_model=EditorState)
def get_state(site: str, request: Request) -> EditorState:
    svc = _svc(request, site)
    store = svc.need_store()
    text, version = store.read()
    try:
        doc = load_document(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HTTPException(422, f"{svc.site_path.name} cannot be opened: {exc}") from None
    if version == NEW_VERSION:
        doc = {"site": svc.site_id}
    problems, warnings, _ = _checked(doc, svc.site_id)
    writable = (
        svc.site_path.parent.is_dir()
        and (not svc.site_path.exists() or _writable(svc.site_path))
        and _writable(svc.site_path.parent)
    )
    return EditorState(
        site=svc.site_id,
        file=svc.site_path.name,
        version=version,
        running_version=svc.running_version,
        writable=writable,
        new_site=version == NEW_VERSION,
        document=doc,
        problems=_out(problems),
        warnings=_out(warnings),
        plan=_plan_info(svc, site, doc),
        undo=store.undo_target(),
    )


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)


@router.post(
    "/api/editor/{site}/check", summary="Check an edited document (nothing is saved)", response_model=CheckOut
)
def check(site: str, body: CheckIn, request: Request) -> CheckOut:
    svc = _svc(request, site)
    problems, warnings, _ = _checked(body.document, svc.site_id)
    return CheckOut(ok=not problems, problems=_out(problems), warnings=_out(warnings))


def _refuse_problems(problems: list[Finding]) -> HTTPException:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return HTTPException(
        422,
        {
            "reason": "invalid",
            "message": f"{first.path}: {first.message}{more}".lstrip(": "),
            "problems": [f.to_dict() for f in problems],
        },
    )


def _load_written(svc: EditorService) -> Site:
    try:
        return load_site(svc.site_path)
    except SiteError as exc:  # cannot happen for a document that passed the check; say so if it does
        raise HTTPException(500, f"the saved site file does not load: {exc}") from None


def _params(svc: EditorService, site: Site) -> Any:
    from twin_server.analysis.survey import SurveyError

    try:
        return analysis_params_for(site, svc.site_path, svc.ctx.settings.analysis_params)
    except SurveyError as exc:
        raise HTTPException(
            422,
            {
                "reason": "invalid",
                "message": str(exc),
                "problems": [{"path": "survey", "message": str(exc), "code": "survey"}],
            },
        ) from None


def _stale(exc: StaleVersion) -> HTTPException:
    return HTTPException(
        409,
        {
            "reason": "stale",
            "message": str(exc),
            "current_version": exc.current,
            "draft": exc.draft,
            "saved_by": exc.saved_by,
            "saved_t": exc.saved_t,
        },
    )


@router.put("/api/editor/{site}", summary="Save the site file and run it", response_model=SaveOut)
def save(site: str, body: SaveIn, request: Request) -> SaveOut:
    svc = _svc(request, site)
    store = svc.need_store()
    problems, warnings, checked = _checked(body.document, svc.site_id)
    if problems:
        raise _refuse_problems(problems)
    if warnings and not body.accept_warnings:
        raise HTTPException(
            409,
            {
                "reason": "warnings",
                "message": f"{len(warnings)} warning(s): confirm to save",
                "warnings": [w.to_dict() for w in warnings],
            },
        )
    with svc._lock:
        params = _params(svc, checked)
        try:
            _, version = store.save(body.document, body.base_version, svc.user(request))
        except StaleVersion as exc:
            raise _stale(exc) from None
        svc.run(_load_written(svc), params, version)
    doc, _ = store.document()
    return SaveOut(
        version=version,
        reloaded=True,
        warnings=_out(warnings),
        undo=store.undo_target(),
        document=doc,
        message=f"saved {svc.site_path.name} (version {version}); the server runs it now",
    )


def _go_back(svc: EditorService, request: Request, body: VersionIn, undo: bool) -> SaveOut:
    store = svc.need_store()
    with svc._lock:
        target = store.undo_target() if undo else body.version
        if target is None:
            raise HTTPException(
                409, {"reason": "nothing", "message": "nothing to undo: no earlier saved version"}
            )
        try:
            text = store.version_text(target)
        except KeyError:
            raise HTTPException(404, f"no stored version {target!r}") from None
        problems, _, checked = _checked(load_document(text), svc.site_id)
        if problems:
            raise _refuse_problems(problems)
        params = _params(svc, checked)
        try:
            if undo:
                _, version = store.undo(body.base_version, svc.user(request))
            else:
                _, version = store.restore(target, body.base_version, svc.user(request))
        except StaleVersion as exc:
            raise _stale(exc) from None
        svc.run(_load_written(svc), params, version)
    doc, _ = store.document()
    _, warnings, _ = _checked(doc, svc.site_id)
    what = "undone" if undo else "restored"
    return SaveOut(
        version=version,
        reloaded=True,
        warnings=_out(warnings),
        undo=store.undo_target(),
        document=doc,
        message=f"{what}: version {version} of {svc.site_path.name}; the server runs it now",
    )


@router.post(
    "/api/editor/{site}/undo",
    summary="Undo the last save (restore the version it replaced)",
    response_model=SaveOut,
)
def undo(site: str, body: VersionIn, request: Request) -> SaveOut:
    return _go_back(_svc(request, site), request, body, undo=True)


@router.post(
    "/api/editor/{site}/restore", summary="Make a stored version the site file again", response_model=SaveOut
)
def restore(site: str, body: VersionIn, request: Request) -> SaveOut:
    if not body.version:
        raise HTTPException(422, "name the version to restore")
    return _go_back(_svc(request, site), request, body, undo=False)


@router.post(
    "/api/editor/{site}/reload", summary="Run the site file as it is on disk now", response_model=SaveOut
)
def reload_file(site: str, request: Request) -> SaveOut:
    svc = _svc(request, site)
    store = svc.need_store()
    with svc._lock:
        text, version = store.read()
        if version == NEW_VERSION:
            raise HTTPException(
                409, {"reason": "nothing", "message": f"{svc.site_path.name} does not exist yet"}
            )
        try:
            site_obj = load_site(svc.site_path)
        except SiteError as exc:
            raise HTTPException(
                422,
                {
                    "reason": "invalid",
                    "message": str(exc),
                    "problems": [{"path": "", "message": p, "code": "invalid"} for p in exc.problems],
                },
            ) from None
        if site_obj.site != svc.site_id:
            raise HTTPException(
                422,
                {
                    "reason": "invalid",
                    "message": f"the file is for site {site_obj.site!r}; this server serves {svc.site_id!r}",
                    "problems": [],
                },
            )
        svc.run(site_obj, _params(svc, site_obj), version)
    doc = load_document(text)
    _, warnings, _ = _checked(doc, svc.site_id)
    return SaveOut(
        version=version,
        reloaded=True,
        warnings=_out(warnings),
        undo=store.undo_target(),
        document=doc,
        message=f"the server runs {svc.site_path.name} as it is on disk (version {version})",
    )


@router.get(
    "/api/editor/{site}/history",
    summary="Saved versions and refused drafts, newest first",
    response_model=HistoryOut,
)
def history(site: str, request: Request) -> HistoryOut:
    svc = _svc(request, site)
    store = svc.need_store()
    _, current = store.read()
    entries = [HistoryItem(**e.to_dict()) for e in reversed(store.log())]
    return HistoryOut(current=current, undo=store.undo_target(), entries=entries)


def _document_out(svc: EditorService, text: str, notes: list[str] | None = None) -> DocumentOut:
    try:
        doc = load_document(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HTTPException(422, f"not a site file: {exc}") from None
    problems, warnings, _ = _checked(doc, svc.site_id)
    return DocumentOut(document=doc, problems=_out(problems), warnings=_out(warnings), notes=notes or [])


@router.get(
    "/api/editor/{site}/versions/{version}",
    summary="A stored version as a document",
    response_model=DocumentOut,
)
def get_version(site: str, version: str, request: Request) -> DocumentOut:
    svc = _svc(request, site)
    try:
        return _document_out(svc, svc.need_store().version_text(version))
    except KeyError:
        raise HTTPException(404, f"no stored version {version!r}") from None


@router.get(
    "/api/editor/{site}/drafts/{name}",
    summary="A refused save's draft as a document",
    response_model=DocumentOut,
)
def get_draft(site: str, name: str, request: Request) -> DocumentOut:
    svc = _svc(request, site)
    try:
        return _document_out(svc, svc.need_store().draft_text(name))
    except KeyError:
        raise HTTPException(404, f"no draft {name!r}") from None


@router.post(
    "/api/editor/{site}/import",
    summary="Read a site file's text into a document (not saved)",
    response_model=DocumentOut,
)
def import_file(site: str, body: ImportIn, request: Request) -> DocumentOut:
    svc = _svc(request, site)
    try:
        doc = load_document(body.text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HTTPException(422, f"{body.name or 'the file'} is not a site file: {exc}") from None
    notes = []
    if doc.get("site") != svc.site_id:
        notes.append(f"site id {doc.get('site')!r} of the file replaced by this server's {svc.site_id!r}")
        doc = {"site": svc.site_id, **{k: v for k, v in doc.items() if k != "site"}}
    problems, warnings, _ = _checked(doc, svc.site_id)
    return DocumentOut(document=doc, problems=_out(problems), warnings=_out(warnings), notes=notes)


async def _read_body(request: Request, limit: int, what: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            413, f"{what} is {int(declared) / 2**20:.1f} MiB; at most {limit / 2**20:.0f} MiB"
        )
    buf = bytearray()
    async for chunk in request.stream():
        buf.extend(chunk)
        if len(buf) > limit:
            raise HTTPException(413, f"{what} is larger than {limit / 2**20:.0f} MiB")
    return bytes(buf)


@router.put(
    "/api/editor/{site}/plan",
    summary="Upload a floor plan (raw body: PNG, JPEG, PDF or SVG)",
    response_model=PlanOut,
)
async def upload_plan(site: str, request: Request) -> PlanOut:
    svc = _svc(request, site)
    base = svc.base_dir
    data = await _read_body(request, PLAN_MAX_BYTES, "the floor plan")
    try:
        stored = await asyncio.to_thread(convert_plan, data)
    except PlanError as exc:
        raise HTTPException(415, str(exc)) from None
    name = f"plans/{stored.name(svc.site_path.stem)}"
    target = base / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(stored.data)
        tmp.replace(target)
    return PlanOut(
        image=name,
        url=f"/api/editor/{site}/files/{name}",
        width_px=stored.width_px,
        height_px=stored.height_px,
        note=stored.note,
    )


@router.get(
    "/api/editor/{site}/files/{path:path}",
    summary="A plan or model file next to the site file",
    include_in_schema=True,
    response_class=FileResponse,
    responses=file_responses("the file", *sorted(set(_SERVED_SUFFIXES.values()))),
)
def get_file(site: str, path: str, request: Request) -> FileResponse:
    svc = _svc(request, site)
    base = svc.base_dir
    try:
        target = (base / path).resolve()
    except (OSError, ValueError):
        raise HTTPException(404, f"no plan or model file {path!r} next to the site file") from None
    media = _SERVED_SUFFIXES.get(target.suffix.lower())
    if media is None or not target.is_relative_to(base) or not target.is_file():
        raise HTTPException(404, f"no plan or model file {path!r} next to the site file")
    # An SVG opened on its own must not run scripts on this origin.
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(target, media_type=media, headers=headers)


@router.get(
    "/api/editor/{site}/models", summary="GLB models next to the site file", response_model=list[ModelFile]
)
def list_models(site: str, request: Request) -> list[ModelFile]:
    svc = _svc(request, site)
    base = svc.base_dir
    out = []
    for p in sorted(base.rglob("*.glb")):
        rel = p.relative_to(base)
        if len(rel.parts) > 4 or any(part.startswith(".") for part in rel.parts):
            continue
        out.append(ModelFile(path=rel.as_posix(), bytes=p.stat().st_size))
        if len(out) >= 500:
            break
    return out


@router.put(
    "/api/editor/{site}/models/{name}",
    summary="Upload a prepared GLB (raw body) to models/NAME.glb",
    response_model=ModelFile,
)
async def upload_model(site: str, name: str, request: Request) -> ModelFile:
    svc = _svc(request, site)
    stem = name.removesuffix(".glb")
    if not is_id(stem) or stem.startswith("."):
        raise HTTPException(422, "a model name is letters, digits, '_', '-' and '.' (at most 64)")
    data = await _read_body(request, MODEL_MAX_BYTES, "the model")
    if len(data) < 20 or data[:4] != b"glTF" or int.from_bytes(data[4:8], "little") != 2:
        raise HTTPException(
            415, "not a GLB model (binary glTF 2.0): make one with python -m models3d prepare"
        )
    if int.from_bytes(data[8:12], "little") != len(data):
        raise HTTPException(
            415,
            "the GLB is incomplete: its header says "
            f"{int.from_bytes(data[8:12], 'little')} bytes, {len(data)} arrived",
        )
    target = svc.base_dir / "models" / f"{stem}.glb"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return ModelFile(path=target.relative_to(svc.base_dir).as_posix(), bytes=len(data))


@router.get(
    "/api/editor/{site}/devices",
    summary="Pis, receivers and beacons heard on the broker",
    response_model=list[DeviceSeen],
)
def devices(site: str, request: Request) -> list[DeviceSeen]:
    svc = _svc(request, site)
    from twin_server.auth.device_scope import DeviceScope

    scope = DeviceScope.of(svc.ctx.settings.site)
    known = {*scope.machine_of_device, *scope.receivers_of_device, *scope.locators}
    return [DeviceSeen(**d, in_site=d["device"] in known) for d in devices_seen(svc.ctx.journal, svc.site_id)]


def _walk_out(svc: EditorService, walk_id: str) -> WalkOut:
    try:
        s = svc.walks.get(walk_id)
    except KeyError:
        raise HTTPException(404, f"no walk {walk_id!r} in progress") from None
    heard: dict[str, int] = {}
    for r in svc.walks.heard(s):
        heard[r["source"]] = heard.get(r["source"], 0) + 1
    return WalkOut(
        walk_id=s.walk_id,
        beacon=s.beacon,
        started_s=s.started_s,
        points=[list(p) for p in s.points],
        heard=heard,
    )


@router.post(
    "/api/editor/{site}/survey/walks", summary="Start a survey walk with a beacon", response_model=WalkOut
)
def start_walk(site: str, body: WalkIn, request: Request) -> WalkOut:
    svc = _svc(request, site)
    session = svc.walks.start(body.beacon, svc.user(request))
    return _walk_out(svc, session.walk_id)


@router.get("/api/editor/{site}/survey/walks/{walk_id}", summary="A walk in progress", response_model=WalkOut)
def get_walk(site: str, walk_id: str, request: Request) -> WalkOut:
    svc = _svc(request, site)
    return _walk_out(svc, walk_id)


@router.post(
    "/api/editor/{site}/survey/walks/{walk_id}/taps", summary="I stand here now", response_model=WalkOut
)
def tap_walk(site: str, walk_id: str, body: TapIn, request: Request) -> WalkOut:
    svc = _svc(request, site)
    try:
        svc.walks.tap(walk_id, body.x_m, body.y_m, repeat=body.repeat)
    except KeyError:
        raise HTTPException(404, f"no walk {walk_id!r} in progress") from None
    except WalkError as exc:
        raise HTTPException(422, str(exc)) from None
    return _walk_out(svc, walk_id)


@router.post(
    "/api/editor/{site}/survey/walks/{walk_id}/finish",
    summary="Finish a walk: write its files",
    response_model=WalkDone,
)
def finish_walk(site: str, walk_id: str, request: Request) -> WalkDone:
    svc = _svc(request, site)
    try:
        session, readings, rows = svc.walks.finish(walk_id)
    except KeyError:
        raise HTTPException(404, f"no walk {walk_id!r} in progress") from None
    except WalkError as exc:
        raise HTTPException(422, str(exc)) from None
    base = svc.base_dir
    walk = {
        "readings": readings.relative_to(base).as_posix(),
        "track": session.track_path.relative_to(base).as_posix(),
        "beacon": session.beacon,
    }
    return WalkDone(
        walk=walk,
        rows=rows,
        points=len(session.points),
        message=f"walk recorded: {len(session.points)} taps, {rows} RSSI rows; save the site to use it",
    )


@router.delete("/api/editor/{site}/survey/walks/{walk_id}", status_code=204, summary="Cancel a walk")
def cancel_walk(site: str, walk_id: str, request: Request) -> Response:
    svc = _svc(request, site)
    try:
        svc.walks.cancel(walk_id)
    except KeyError:
        raise HTTPException(404, f"no walk {walk_id!r} in progress") from None
    return Response(status_code=204)


# --- the page ------------------------------------------------------------------------------------
@router.get("/editor", include_in_schema=False)
def page_root() -> RedirectResponse:
    return RedirectResponse("/editor/")


@router.get("/editor/", include_in_schema=False)
def page(request: Request) -> FileResponse:
    return FileResponse(
        _replay_dir(request) / "editor.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/editor/{path:path}", include_in_schema=False)
def page_file(path: str, request: Request) -> FileResponse:
    if path not in PAGE_FILES:
        raise HTTPException(404, "not found")
    return FileResponse(
        _replay_dir(request) / path, media_type=PAGE_FILES[path], headers={"Cache-Control": "no-cache"}
    )


def _replay_dir(request: Request) -> Path:
    from twin_server.api.viewer import REPLAY_DIR

    return Path(getattr(request.app.state, "editor_dir", REPLAY_DIR))


def install_editor(app: FastAPI, ctx: Any) -> None:
    """Add the site editor's routes and page to the server app (``ctx`` = ``app.state.twin``)."""
    app.state.editor = EditorService(app, ctx)
    app.include_router(router)
