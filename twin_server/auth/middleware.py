"""The ASGI middleware that enforces :mod:`twin_server.auth.policy` on every request.

Order of checks: public path -> who is calling (bearer token, else session cookie) -> the
policy row (default deny) -> site (a foreign site is a 404) -> role -> read-only (tokens,
integrators) -> CSRF (cookie sessions, state-changing methods) -> WebSocket origin -> worker
(a worker may only name themselves). Reads of workers' data and every change are written to the audit log
with the status the route returned; refusals on such routes are audited too.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twin_server.auth.policy import POLICY, SITE_NEUTRAL, RoutePolicy, is_public, match_policy
from twin_server.auth.store import AuthStore, LoginLimits, Principal

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AuthConfig",
    "AuthMiddleware",
    "Denied",
    "authenticate",
    "authorize",
    "client_address",
    "cookie_value",
]

SESSION_COOKIE = "twin_session"
CSRF_COOKIE = "twin_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "WS"})
_BODY_AUDIT_MAX = 64 * 1024


@dataclass
class AuthConfig:
    """What the middleware and the auth routes share (kept on ``app.state.auth``)."""

    store: AuthStore
    site_ids: list[str]
    session_ttl_s: float = 8 * 3600.0
    token_ttl_max_s: float = 365 * 86_400.0
    login_limits: LoginLimits = field(default_factory=LoginLimits)
    table: tuple[RoutePolicy, ...] = POLICY


@dataclass(frozen=True)
class Denied:
    """A refusal: HTTP status and a message for the caller."""

    status: int
    reason: str


def client_address(scope: Scope) -> str:
    """The peer address (behind a reverse proxy, run uvicorn with ``--proxy-headers``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def authenticate(store: AuthStore, headers: Headers) -> tuple[Principal | None, bool]:
    """``(principal, credentials were presented)``; a bearer token wins over a cookie."""
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None, True
        return store.token(secret.strip()), True
    sid = cookie_value(headers, SESSION_COOKIE)
    if sid:
        return store.session(sid), True
    return None, False


def cookie_value(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


def _locate(where: str | None, params: dict[str, str], query: dict[str, list[str]]) -> str | None:
    if where is None:
        return None
    kind, _, name = where.partition(":")
    if kind == "path":
        return params.get(name)
    vals = query.get(name)
    return vals[0] if vals else None


def authorize(
    p: Principal,
    row: RoutePolicy,
    method: str,
    params: dict[str, str],
    query: dict[str, list[str]],
    headers: Headers,
    site_ids: list[str],
) -> Denied | None:
    """The policy decision for an authenticated caller (pure: no I/O); None = allowed."""
    user = p.user
    admin = user.role == "admin"
    auth_route = row.path in SITE_NEUTRAL
    # The site first: another site's routes answer 404 whatever the role (invisible, not forbidden).
    if not admin and not auth_route:
        if row.site is None:
            if site_ids != [user.site]:
                return Denied(404, "not found")
        else:
            site = _locate(row.site, params, query)
            if site is not None and site != user.site:
                return Denied(404, f"unknown site {site!r}")
            if site is None and user.site not in site_ids:
                return Denied(404, "not found")
    if not admin and user.role not in row.roles:
        return Denied(403, f"role {user.role!r} may not call {method} {row.path}")
    unsafe = method not in SAFE_METHODS
    if unsafe and p.read_only:
        return Denied(403, "API tokens are read-only")
    if unsafe and user.role == "integrator" and not auth_route:
        return Denied(403, "integrators have read-only access")
    if p.via == "session" and unsafe:
        sent = headers.get(CSRF_HEADER, "")
        # Bytes: compare_digest refuses non-ASCII str, and a header may hold any latin-1.
        if not sent or not p.csrf or not secrets.compare_digest(sent.encode("latin-1"), p.csrf.encode()):
            return Denied(403, f"missing or wrong {CSRF_HEADER} header (CSRF protection)")
    if method == "WS" and p.via == "session":
        # Cross-site WebSocket hijacking: browsers send Origin; it must be this host.
        origin = headers.get("origin")
        if origin and urlsplit(origin).netloc != headers.get("host", ""):
            return Denied(403, "WebSocket from another origin")
    if row.worker is not None and user.role == "worker" and _locate(row.worker, params, query) != user.worker:
        return Denied(403, "a worker sees only their own data")
    return None


def _site_model(app: Any, site: str | None) -> Any:
    """The Site of a served site id, to tell a note's worker target from a machine one."""
    twin = getattr(getattr(app, "state", None), "twin", None)
    if twin is not None and getattr(twin.settings.site, "site", None) == site:
        return twin.settings.site
    provider = getattr(getattr(app, "state", None), "replay_provider", None)
    try:
        return provider.site(site) if provider is not None and site else None
    except Exception:
        return None


class AuthMiddleware:
    """Pure ASGI middleware (HTTP and WebSocket); see the module docstring."""

    def __init__(self, app: ASGIApp, config: AuthConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["type"] == "http" else "WS"
        headers = Headers(scope=scope)
        store = self.config.store
        principal, presented = authenticate(store, headers)
        row, params, known = match_policy(path, method, self.config.table)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if principal is None:
            msg = "session expired or credentials invalid" if presented else "sign in first"
            await self._refuse(scope, receive, send, Denied(401, msg))
            return
        if row is None:
            await self._refuse(
                scope,
                receive,
                send,
                Denied(
                    403, f"{method} {path} is not allowed" if known else f"{path} is not in the route policy"
                ),
            )
            return
        denied = authorize(principal, row, method, params, query, headers, self.config.site_ids)
        audited = (row.worker_data or method not in SAFE_METHODS) and row.path not in SITE_NEUTRAL
        if denied is not None:
            if audited:
                self._audit(scope, principal, row, method, params, query, denied.status, "deny", None)
            await self._refuse(scope, receive, send, denied)
            return
        scope.setdefault("state", {})["principal"] = principal
        if not audited:
            await self.app(scope, receive, send)
            return
        status = {"code": 101 if method == "WS" else 500}
        body = bytearray()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            elif message["type"] == "websocket.close" and status["code"] == 101:
                status["code"] = 403
            await send(message)

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _BODY_AUDIT_MAX:
                body.extend(message.get("body", b"")[: _BODY_AUDIT_MAX - len(body)])
            return message

        action = "read" if method in SAFE_METHODS else "change"
        if method == "WS":
            # A live stream is audited when it opens (not per push).
            self._audit(scope, principal, row, method, params, query, 101, action, None)
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            self._audit(scope, principal, row, method, params, query, status["code"], action, bytes(body))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, denied: Denied) -> None:
        if scope["type"] == "websocket":
            # Closing before accept makes the server answer the upgrade with HTTP 403.
            await send({"type": "websocket.close", "code": 1008, "reason": denied.reason[:120]})
            return
        headers = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
        await JSONResponse({"detail": denied.reason}, denied.status, headers=headers)(scope, receive, send)

    def _audit(
        self,
        scope: Scope,
        p: Principal,
        row: RoutePolicy,
        method: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        status: int,
        action: str,
        body: bytes | None,
    ) -> None:
        site = _locate(row.site, params, query) if row.site else None
        if site is None:
            site = p.user.site if p.user.site in self.config.site_ids else ",".join(self.config.site_ids)
        worker = _locate(row.worker, params, query)
        machine = _locate(row.machine, params, query)
        target = params.get("note_id")
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("target"), str):
                target = doc["target"][:64]
                model = _site_model(scope.get("app"), site)
                if model is not None and target in model.worker_ids:
                    worker = target
                elif model is not None and target in model.machine_ids:
                    machine = target
        self.config.store.audit(
            user=p.user.name,
            role=p.user.role,
            site=site,
            action=action,
            method=method,
            route=row.path,
            path=scope["path"],
            status=status,
            client=client_address(scope),
            target_worker=worker,
            target_machine=machine,
            target=target,
        )
