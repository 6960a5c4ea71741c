"""The declarative route policy: who may call which route, and where its site and worker are.

Every ``/api/`` and ``/ws/`` route of the twin server must have a row here; a route without
one is refused (default deny), and ``tests/auth`` fails when a route of the app is missing.

Roles
-----
``supervisor``  everything of their site, notes, the audit log.
``worker``      the site layout and their OWN timeline (``/api/worker/{site}/{their id}``);
                routes returning several workers' data are FORBIDDEN to workers (not
                filtered): a response filter would have to understand every payload, a 403 cannot
                leak.
``engineer``    commissioning: site model, raw readings, live values, dead letters, KPIs.
``integrator``  read-only API tokens (any session of theirs is read-only too): site model,
                readings, aligned series, analyses, KPIs, replays, worker timelines.
``admin``       optional operator account on site ``*``: every route of every site.

Whatever the role, a user sees only their own site: a ``{site}`` that is not theirs is a 404
(the site is invisible, not forbidden). Routes without a site in the path serve the server's
own sites; they are open to a site's users only when the server serves exactly their site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import compile_path

__all__ = ["POLICY", "PUBLIC_PATHS", "PUBLIC_PREFIXES", "RoutePolicy", "is_public", "match_policy"]

ALL = frozenset({"supervisor", "worker", "engineer", "integrator"})
STAFF = frozenset({"supervisor", "engineer", "integrator"})
SUP = frozenset({"supervisor"})
SUP_INT = frozenset({"supervisor", "integrator"})
ENG_SUP = frozenset({"engineer", "supervisor"})
ANY_USER = ALL  # auth routes: any signed-in user (admin passes every role check)

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/viewer",
        "/commissioning",
        "/editor",
        "/api/auth/login",
    }
)
# Static files of the viewer, the commissioning page and the site editor; their data is behind auth.
PUBLIC_PREFIXES = ("/viewer/", "/commissioning/", "/editor/")


@dataclass(frozen=True)
class RoutePolicy:
    """One row of the table.

    Parameters
    ----------
    path : str
        The route's path pattern exactly as declared (``/api/sites/{site}/readings``).
    methods : frozenset of str
        HTTP methods (``WS`` for a WebSocket route); HEAD counts as GET.
    roles : frozenset of str
        Roles that may call it (``admin`` may always).
    site : str or None
        Where the site is: ``path:NAME`` or ``query:NAME``; None = the server's own site(s).
    worker : str or None
        Where the worker is (``path:worker``); a worker user may only name themselves.
    worker_data : bool
        The response holds workers' data (positions, zones, tasks, beacon readings, notes):
        every call is audited. A route with several workers' data must not list ``worker``
        in ``roles`` unless it has a ``worker`` locator (checked at import).
    machine : str or None
        Where a machine is named (``query:source``), recorded in the audit log.
    """

    path: str
    methods: frozenset[str]
    roles: frozenset[str]
    site: str | None = "path:site"
    worker: str | None = None
    worker_data: bool = False
    machine: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_path(self.path)[0])
        if self.worker_data and "worker" in self.roles and self.worker is None:
            raise ValueError(f"{self.path}: several workers' data cannot be open to the worker role")


def _p(path: str, roles: frozenset[str], methods: str = "GET", **kw: Any) -> RoutePolicy:
    return RoutePolicy(path, frozenset(methods.split()), roles, **kw)


POLICY: tuple[RoutePolicy, ...] = (
    # --- twin_server/api/routes.py ---
    _p("/api/sites", ALL, site=None),
    _p("/api/sites/{site}", STAFF, worker_data=True),  # lists workers and their beacons
    _p("/api/sites/{site}/machines", ALL),
    _p("/api/sites/{site}/workers", STAFF, worker_data=True),
    _p("/api/sites/{site}/shifts", ALL),
    _p("/api/sites/{site}/readings", STAFF, worker_data=True, machine="query:source"),  # beacon RSSI
    _p("/api/sites/{site}/aligned", SUP_INT, worker_data=True),
    _p("/api/sites/{site}/shifts/{day}/analysis", SUP_INT, worker_data=True),
    _p("/api/sites/{site}/shifts/{day}/kpis", STAFF),  # per machine, no worker data
    _p("/api/sites/{site}/shifts/{day}/replay", SUP_INT, worker_data=True),
    _p("/api/dead-letters", STAFF, site=None, worker_data=True),
    _p("/api/live", STAFF, site=None, worker_data=True),
    _p("/ws/live", STAFF, "WS", site=None, worker_data=True),
    # --- twin_server/api/forecast.py (names the worker doing each changeover) ---
    _p("/api/sites/{site}/forecast", STAFF, worker_data=True),
    # --- twin_server/api/viewer.py ---
    _p("/api/viewer/sites", ALL, site=None),
    _p("/api/replay/{site}/shifts", ALL),
    _p("/api/replay/{site}", SUP_INT, worker_data=True),
    _p(
        "/api/worker/{site}/{worker}",
        frozenset({"supervisor", "integrator", "worker"}),
        worker="path:worker",
        worker_data=True,
    ),
    _p("/api/notes/{site}", SUP, "GET POST", worker_data=True),
    _p("/api/notes/{site}/{note_id}", SUP, "DELETE", worker_data=True),
    _p("/api/scene/{site}.glb", ALL),
    _p("/api/kpis/{site}", SUP_INT, worker_data=True),  # per worker changeover minutes too
    _p("/api/viewer/layout/{site}", STAFF),  # machines, worker names, time zone (the access-log page)
    # --- twin_server/api/commissioning.py (the installer's live checklist; beacon RSSI per worker) ---
    _p("/api/commissioning/{site}", ENG_SUP, worker_data=True),
    _p("/api/commissioning/{site}/start", ENG_SUP, "POST", machine="query:machine"),
    _p("/ws/commissioning/{site}", ENG_SUP, "WS", worker_data=True),
    # --- twin_server/api/editor.py (the site editor: layout, workers and their beacons) ---
    _p("/api/editor/{site}", ENG_SUP, "GET PUT", worker_data=True),
    _p("/api/editor/{site}/check", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/undo", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/restore", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/reload", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/history", ENG_SUP),
    _p("/api/editor/{site}/versions/{version}", ENG_SUP, worker_data=True),
    _p("/api/editor/{site}/drafts/{name}", ENG_SUP, worker_data=True),
    _p("/api/editor/{site}/import", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/plan", ENG_SUP, "PUT"),
    _p("/api/editor/{site}/files/{path:path}", ENG_SUP),
    _p("/api/editor/{site}/models", ENG_SUP),
    _p("/api/editor/{site}/models/{name}", ENG_SUP, "PUT"),
    _p("/api/editor/{site}/devices", ENG_SUP, worker_data=True),  # beacons heard
    _p("/api/editor/{site}/survey/walks", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/survey/walks/{walk_id}", ENG_SUP, "GET DELETE", worker_data=True),
    _p("/api/editor/{site}/survey/walks/{walk_id}/taps", ENG_SUP, "POST", worker_data=True),
    _p("/api/editor/{site}/survey/walks/{walk_id}/finish", ENG_SUP, "POST", worker_data=True),
    # --- twin_server/auth/worker_replay.py (the worker's own replay) ---
    _p(
        "/api/worker/{site}/{worker}/replay",
        frozenset({"supervisor", "integrator", "worker"}),
        worker="path:worker",
        worker_data=True,
    ),
    # --- twin_server/auth (this package) ---
    _p("/api/auth/logout", ANY_USER, "POST", site=None),
    _p("/api/auth/me", ANY_USER, site=None),
    _p("/api/auth/tokens", ANY_USER, "GET POST", site=None),
    _p("/api/auth/tokens/{token_id}", ANY_USER, "DELETE", site=None),
    _p("/api/audit", SUP, site="query:site", worker_data=True),
    _p("/api/audit.csv", SUP, site="query:site", worker_data=True),
)

# Auth routes live on every server whatever sites it serves: the site check is done inside.
SITE_NEUTRAL = frozenset(
    {"/api/auth/logout", "/api/auth/me", "/api/auth/tokens", "/api/auth/tokens/{token_id}"}
)


def is_public(path: str) -> bool:
    """Paths anyone may call: health, API docs, the viewer's static files, the login."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def match_policy(
    path: str, method: str, table: tuple[RoutePolicy, ...] = POLICY
) -> tuple[RoutePolicy | None, dict[str, str], bool]:
    """The row for a request: ``(row or None, path params, path known but method not allowed)``."""
    method = "GET" if method == "HEAD" else method
    known_path = False
    for row in table:
        m = row.regex.match(path)
        if m is None:
            continue
        known_path = True
        if method in row.methods:
            return row, m.groupdict(), False
    return None, {}, known_path


def app_routes(app: Any) -> list[tuple[str, str]]:
    """Every ``(method, path pattern)`` an app serves (``WS`` for WebSockets, ``MOUNT`` for mounts).

    Walks included routers too (FastAPI >= 0.16x keeps them as nested ``_IncludedRouter``
    entries instead of copying their routes).
    """
    from starlette.routing import Mount, WebSocketRoute

    out: list[tuple[str, str]] = []

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            original = getattr(r, "original_router", None)
            if original is not None:
                ctx = getattr(r, "include_context", None)
                walk(original.routes, prefix + (getattr(ctx, "prefix", "") or ""))
            elif isinstance(r, Mount):
                out.append(("MOUNT", prefix + r.path))
            elif isinstance(r, WebSocketRoute) or type(r).__name__ == "APIWebSocketRoute":
                out.append(("WS", prefix + r.path))
            else:
                path = prefix + getattr(r, "path", "")
                out.extend((m, path) for m in sorted(set(getattr(r, "methods", None) or ()) - {"HEAD"}))

    walk(app.router.routes, "")
    return out


def uncovered_routes(app: Any, table: tuple[RoutePolicy, ...] = POLICY) -> list[tuple[str, str]]:
    """Routes of the app that are neither public nor exactly a row of the table (they are refused)."""
    missing = []
    for method, path in app_routes(app):
        if is_public(path) or (method == "MOUNT" and is_public(path + "/")):
            continue
        if not any(row.path == path and method in row.methods for row in table):
            missing.append((method, path))
    return missing
