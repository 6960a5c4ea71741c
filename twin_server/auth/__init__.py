"""Authentication, roles, multi-site isolation and the audit log of the twin server.

One call adds it to the FastAPI app::

    from twin_server.auth import install_auth
    install_auth(app, data_dir=settings.data_dir, site_ids=[settings.site.site])

See ``docs/auth.md`` and :mod:`twin_server.auth.policy` for the roles and the route table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from twin_server.auth.device_scope import DeviceScope, check_device_scope
from twin_server.auth.middleware import AuthConfig, AuthMiddleware
from twin_server.auth.policy import POLICY, RoutePolicy, uncovered_routes
from twin_server.auth.store import ROLES, AuthError, AuthStore, LoginLimits, Principal, User

__all__ = [
    "POLICY",
    "ROLES",
    "AuthConfig",
    "AuthError",
    "AuthStore",
    "DeviceScope",
    "LoginLimits",
    "Principal",
    "RoutePolicy",
    "User",
    "check_device_scope",
    "install_auth",
]

log = logging.getLogger("twin_server.auth")
DB_NAME = "auth.sqlite"


def install_auth(
    app: FastAPI,
    *,
    data_dir: Path,
    site_ids: list[str],
    enabled: bool = True,
    store: AuthStore | None = None,
    clock: Callable[[], float] = time.time,
    session_ttl_s: float = 8 * 3600.0,
    login_limits: LoginLimits | None = None,
) -> None:
    """Add login/logout/me/token/audit routes and enforce the route policy on every request.

    Parameters
    ----------
    app : FastAPI
        The server app, before it starts.
    data_dir : Path
        The server's data directory; users, sessions, tokens and the audit log go to
        ``DATA_DIR/auth.sqlite``.
    site_ids : list of str
        The sites this app serves; users of other sites cannot sign in here.
    enabled : bool
        False leaves the app exactly as it was (open API; a warning is logged).
    store : AuthStore, optional
        An already opened store (tests: a fast hasher, an injected clock).
    clock : callable
        Epoch seconds, for the store opened here.
    session_ttl_s : float
        Session lifetime (absolute; default one shift of 8 h).
    login_limits : LoginLimits, optional
        Failed logins allowed within a window before 429 (default: 5 per user name and
        address, 50 per address, 20 per name, in 15 min).
    """
    if not enabled:
        log.warning("authentication is disabled: every route is open")
        return
    if store is None:
        store = AuthStore(Path(data_dir) / DB_NAME, clock=clock)
    from twin_server.auth.routes import router
    from twin_server.auth.worker_replay import router as worker_replay_router

    app.state.auth = AuthConfig(
        store=store,
        site_ids=list(site_ids),
        session_ttl_s=session_ttl_s,
        login_limits=login_limits or LoginLimits(),
    )
    app.include_router(router)
    if getattr(app.state, "replay_provider", None) is not None:  # the viewer is there
        app.include_router(worker_replay_router)
    app.add_middleware(AuthMiddleware, config=app.state.auth)
    for method, path in uncovered_routes(app):
        log.warning("route %s %s is not in the auth policy table: every call is refused", method, path)
