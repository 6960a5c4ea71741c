"""Login, logout, me, API tokens and the audit log view/export (``/api/auth/*``, ``/api/audit``)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from twin_server.auth.middleware import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AuthConfig,
    client_address,
    cookie_value,
)
from twin_server.auth.store import AUDIT_COLUMNS, Principal, User

__all__ = ["csv_cell", "router"]

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenIn(BaseModel):
    label: str = Field(default="", max_length=80)
    ttl_days: float = Field(default=90.0, gt=0, le=365)
    user: str | None = Field(default=None, max_length=64, description="supervisors: a user of their site")


class _Out(BaseModel):
    # A key the route sends that the model lacks is an error, not silently dropped.
    model_config = ConfigDict(extra="forbid")


class UserOut(_Out):
    name: str
    site: str
    role: str
    worker: str | None = Field(description="the worker id of a worker's account")


class LoginOut(_Out):
    user: UserOut
    csrf_token: str = Field(description="echo it in the X-CSRF-Token header of state-changing requests")
    expires: float = Field(description="end of the session, epoch seconds")


class LogoutOut(_Out):
    ok: bool


class MeOut(_Out):
    user: UserOut
    via: str = Field(description="session (cookie) or token (bearer API token)")
    read_only: bool
    expires: float


class TokenRow(_Out):
    """An API token's metadata (never its secret)."""

    id: int
    user: str
    site: str
    label: str
    created: float
    expires: float
    revoked: bool
    expired: bool


class TokenCreated(_Out):
    id: int
    token: str = Field(description="the secret, shown only now")
    user: str
    expires: float
    read_only: bool


class AuditEntry(_Out):
    id: int
    t: float
    user: str
    role: str
    site: str
    action: str
    method: str
    route: str
    path: str
    target_worker: str | None
    target_machine: str | None
    target: str | None
    status: int
    client: str


class AuditOut(_Out):
    site: str | None = Field(description="the site filtered on; null: every site (admins)")
    count: int
    entries: list[AuditEntry]


def _cfg(request: Request) -> AuthConfig:
    return request.app.state.auth


def _me(request: Request) -> Principal:
    p = getattr(request.state, "principal", None)
    if p is None:  # the middleware puts it there; without it the route must not run
        raise HTTPException(401, "sign in first")
    return p


def _user_doc(u: User) -> dict[str, Any]:
    return {"name": u.name, "site": u.site, "role": u.role, "worker": u.worker}


def _audit(
    request: Request, user: User | None, name: str, action: str, status: int, target: str | None = None
) -> None:
    cfg = _cfg(request)
    site = user.site if user is not None else ",".join(cfg.site_ids)
    cfg.store.audit(
        user=user.name if user else name,
        role=user.role if user else "",
        site=site,
        action=action,
        method=request.method,
        route=request.url.path,
        path=request.url.path,
        status=status,
        client=client_address(request.scope),
        target=target,
    )


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, http_only: bool
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post(
    "/api/auth/login",
    response_model=LoginOut,
    summary="Sign in with name and password: session cookie + CSRF token",
)
def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    cfg = _cfg(request)
    store = cfg.store
    client = client_address(request.scope)
    wait_s, attempt = store.begin_login(body.name, client, cfg.login_limits)
    if attempt is None:
        _audit(request, None, body.name, "login_blocked", 429)
        raise HTTPException(
            429,
            f"too many failed logins; retry in {math.ceil(wait_s)} s",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    user = store.verify_password(body.name, body.password)
    if user is not None and user.role != "admin" and user.site not in cfg.site_ids:
        # A user of another site: to this server they do not exist.
        _audit(request, user, body.name, "login_foreign_site", 401)
        user = None
    elif user is None:
        _audit(request, None, body.name, "login_failed", 401)
    if user is None:  # the try stays counted as a failure
        raise HTTPException(401, "wrong name or password")
    store.end_login(attempt, body.name, client)
    sid, csrf, expires = store.create_session(user, cfg.session_ttl_s)
    max_age = int(cfg.session_ttl_s)
    _set_cookie(response, request, SESSION_COOKIE, sid, max_age, http_only=True)
    # Readable by the page's script, which echoes it in the X-CSRF-Token header (double submit).
    _set_cookie(response, request, CSRF_COOKIE, csrf, max_age, http_only=False)
    _audit(request, user, body.name, "login", 200)
    return {"user": _user_doc(user), "csrf_token": csrf, "expires": expires}


@router.post("/api/auth/logout", response_model=LogoutOut, summary="End the session")
def logout(request: Request, response: Response) -> dict[str, bool]:
    p = _me(request)
    sid = cookie_value(request.headers, SESSION_COOKIE)
    if sid:
        _cfg(request).store.end_session(sid)
    response.delete_cookie(SESSION_COOKIE, path="/", samesite="strict", httponly=True)
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    _audit(request, p.user, p.user.name, "logout", 200)
    return {"ok": True}


@router.get("/api/auth/me", response_model=MeOut, summary="Who is signed in, how, and until when")
def me(request: Request) -> dict[str, Any]:
    p = _me(request)
    return {
        "user": _user_doc(p.user),
        "via": p.via,
        "read_only": p.read_only or p.user.role == "integrator",
        "expires": p.expires,
    }


@router.get(
    "/api/auth/tokens",
    response_model=list[TokenRow],
    summary="API tokens (yours; a supervisor sees the site's)",
)
def list_tokens(request: Request) -> list[dict[str, Any]]:
    p = _me(request)
    store = _cfg(request).store
    if p.user.role == "admin":
        return store.tokens()
    if p.user.role == "supervisor":
        return store.tokens(site=p.user.site)
    return store.tokens(user_id=p.user.id)


@router.post(
    "/api/auth/tokens",
    status_code=201,
    response_model=TokenCreated,
    summary="A new read-only API token (shown once)",
)
def create_token(body: TokenIn, request: Request) -> dict[str, Any]:
    p = _me(request)
    store = _cfg(request).store
    owner = p.user
    if body.user is not None and body.user != p.user.name:
        other = store.user(body.user)
        allowed = other is not None and (
            p.user.role == "admin" or (p.user.role == "supervisor" and other.site == p.user.site)
        )
        if not allowed or other is None:
            raise HTTPException(404, f"no user {body.user!r} at your site")
        owner = other
    token_id, secret, expires = store.create_token(owner, body.ttl_days * 86_400.0, body.label)
    _audit(request, p.user, p.user.name, "token_create", 201, target=f"token {token_id} for {owner.name}")
    return {"id": token_id, "token": secret, "user": owner.name, "expires": expires, "read_only": True}


@router.delete("/api/auth/tokens/{token_id}", status_code=204, summary="Revoke an API token")
def revoke_token(token_id: int, request: Request) -> Response:
    p = _me(request)
    store = _cfg(request).store
    mine = next((t for t in store.tokens() if t["id"] == token_id), None)
    allowed = mine is not None and (
        p.user.role == "admin"
        or mine["user"] == p.user.name
        or (p.user.role == "supervisor" and mine["site"] == p.user.site)
    )
    if not allowed:
        raise HTTPException(404, f"no token {token_id}")
    store.revoke_token(token_id)
    _audit(request, p.user, p.user.name, "token_revoke", 204, target=f"token {token_id}")
    return Response(status_code=204)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text that would start a formula gets a leading ``'``.

    A user name, path or target in the audit log is chosen by whoever sent the request
    (a failed login with the name ``=HYPERLINK(...)`` is audited as such).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _audit_rows(
    request: Request,
    site: str | None,
    since: float | None,
    until: float | None,
    user: str | None,
    worker: str | None,
    limit: int,
) -> tuple[str | None, list[dict[str, Any]]]:
    p = _me(request)
    if p.user.role != "admin":
        site = p.user.site  # the middleware already refused another site
    return site, _cfg(request).store.audit_rows(
        site=site, since=since, until=until, user=user, worker=worker, limit=limit
    )


_FILTERS: dict[str, Any] = {
    "site": Query(None, max_length=64),
    "since": Query(None, description="epoch seconds, inclusive"),
    "until": Query(None, description="epoch seconds, exclusive"),
    "user": Query(None, max_length=64),
    "worker": Query(None, max_length=64),
    "limit": Query(10_000, ge=1, le=1_000_000),
}


@router.get("/api/audit", response_model=AuditOut, summary="The audit log of your site (supervisors)")
def audit_view(
    request: Request,
    site: str | None = _FILTERS["site"],
    since: float | None = _FILTERS["since"],
    until: float | None = _FILTERS["until"],
    user: str | None = _FILTERS["user"],
    worker: str | None = _FILTERS["worker"],
    limit: int = _FILTERS["limit"],
) -> dict[str, Any]:
    site, rows = _audit_rows(request, site, since, until, user, worker, limit)
    return {"site": site, "count": len(rows), "entries": rows}


@router.get(
    "/api/audit.csv",
    summary="The audit log of your site as CSV (supervisors)",
    response_class=Response,
    responses={
        200: {"description": "CSV with a header row", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def audit_csv(
    request: Request,
    site: str | None = _FILTERS["site"],
    since: float | None = _FILTERS["since"],
    until: float | None = _FILTERS["until"],
    user: str | None = _FILTERS["user"],
    worker: str | None = _FILTERS["worker"],
    limit: int = _FILTERS["limit"],
) -> Response:
    site, rows = _audit_rows(request, site, since, until, user, worker, limit)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    name = f"audit-{site or 'all'}.csv"
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
