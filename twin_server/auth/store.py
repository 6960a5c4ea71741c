"""SQLite storage of users, sessions, API tokens, login failures and the append-only audit log.

One file, ``DATA_DIR/auth.sqlite``. Passwords are hashed with argon2id (``argon2-cffi``);
session ids and API tokens are random 256-bit strings stored only as SHA-256 digests (they
carry enough entropy that a slow hash adds nothing), so a copy of the database lets nobody
log in. Every time comes from an injectable ``clock`` (epoch seconds) so expiry is testable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "ADMIN_SITE",
    "AUDIT_COLUMNS",
    "ROLES",
    "AuthError",
    "AuthStore",
    "LoginLimits",
    "Principal",
    "User",
]

ROLES = ("supervisor", "worker", "engineer", "integrator", "admin")
# The site of an ``admin`` user: sees every site served.
ADMIN_SITE = "*"
AUDIT_COLUMNS = (
    "id",
    "t",
    "user",
    "role",
    "site",
    "action",
    "method",
    "route",
    "path",
    "target_worker",
    "target_machine",
    "target",
    "status",
    "client",
)
_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    role TEXT NOT NULL,
    worker TEXT,
    password_hash TEXT,
    created REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS login_failures (
    t REAL NOT NULL,
    name TEXT NOT NULL,
    client TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_name ON login_failures (name, t);
CREATE INDEX IF NOT EXISTS login_failures_client ON login_failures (client, t);
CREATE INDEX IF NOT EXISTS login_failures_pair ON login_failures (name, client, t);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t REAL NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    site TEXT NOT NULL,
    action TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    path TEXT NOT NULL,
    target_worker TEXT,
    target_machine TEXT,
    target TEXT,
    status INTEGER NOT NULL,
    client TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_site_t ON audit (site, t);
-- Append-only: the database itself refuses to change or remove an audit entry.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed within ``window_s`` before a login answers 429.

    ``per_name_and_address`` is the lock a user meets after mistyping; the other two are
    higher, so one person's failures do not lock out colleagues behind the same address
    (a shop's NAT or proxy), yet guessing many names from one address, or one name from
    many addresses, is still bounded.
    """

    per_name_and_address: int = 5
    per_address: int = 50
    per_name: int = 20
    window_s: float = 15 * 60.0


class AuthError(ValueError):
    """A bad user name, role, site or worker given to the store (a clear message)."""


@dataclass(frozen=True)
class User:
    """A user of one site."""

    id: int
    name: str
    site: str
    role: str
    worker: str | None
    disabled: bool = False


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user and how they authenticated.

    ``via`` is ``"session"`` (cookie; state-changing requests need the CSRF token) or
    ``"token"`` (bearer API token; read-only).
    """

    user: User
    via: str
    csrf: str | None = None
    expires: float = 0.0
    token_id: int | None = None

    @property
    def read_only(self) -> bool:
        return self.via == "token"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise AuthError(f"{what} {value!r}: use 1-64 letters, digits, '_', '.', '-', '@'")
    return value


class AuthStore:
    """Users, sessions, tokens, failures and audit in one SQLite file; thread-safe.

    Parameters
    ----------
    path : str or Path
        The database file (created with its parent directory).
    clock : callable
        Epoch seconds now; injected by tests to make sessions and tokens expire.
    hasher : argon2.PasswordHasher, optional
        Defaults to argon2-cffi's RFC 9106 low-memory profile.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        # Verified against for unknown names, so a miss costs as much as a wrong password.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _x(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # --- users ------------------------------------------------------------------------------
    def add_user(
        self, name: str, site: str, role: str, password: str | None, worker: str | None = None
    ) -> User:
        """Create a user; ``password=None`` makes a token-only user (e.g. an integrator).

        Raises
        ------
        AuthError
            Bad name/site/role, a worker without a worker id (or another role with one), a
            name already taken, an admin not on site ``*``.
        """
        _check_name("user name", name)
        if role not in ROLES:
            raise AuthError(f"role {role!r}: one of {', '.join(ROLES)}")
        if role == "admin":
            if site != ADMIN_SITE:
                raise AuthError(f"an admin sees every site: give --site {ADMIN_SITE!r}")
        else:
            _check_name("site", site)
        if role == "worker":
            if not worker:
                raise AuthError("a worker user needs the worker id of the site (e.g. --worker W1)")
            _check_name("worker id", worker)
        elif worker:
            raise AuthError(f"only worker users have a worker id (role {role!r})")
        if password is not None and len(password) < 8:
            raise AuthError("password: at least 8 characters")
        pw_hash = self.hasher.hash(password) if password is not None else None
        try:
            cur = self._x(
                "INSERT INTO users (name, site, role, worker, password_hash, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, site, role, worker, pw_hash, self.clock()),
            )
        except sqlite3.IntegrityError:
            raise AuthError(f"user {name!r} exists") from None
        return User(int(cur.lastrowid or 0), name, site, role, worker)

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 8:
            raise AuthError("password: at least 8 characters")
        if (
            self._x(
                "UPDATE users SET password_hash = ? WHERE name = ?", (self.hasher.hash(password), name)
            ).rowcount
            == 0
        ):
            raise AuthError(f"no user {name!r}")

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or re-enable) a user; their sessions and tokens stop working at once."""
        if self._x("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name)).rowcount == 0:
            raise AuthError(f"no user {name!r}")

    @staticmethod
    def _user(row: tuple[Any, ...]) -> User:
        return User(int(row[0]), row[1], row[2], row[3], row[4], bool(row[5]))

    def user(self, name: str) -> User | None:
        rows = self._q("SELECT id, name, site, role, worker, disabled FROM users WHERE name = ?", (name,))
        return self._user(rows[0]) if rows else None

    def users(self, site: str | None = None) -> list[User]:
        sql = "SELECT id, name, site, role, worker, disabled FROM users"
        if site:
            rows = self._q(sql + " WHERE site = ? ORDER BY name", (site,))
        else:
            rows = self._q(sql + " ORDER BY name")
        return [self._user(r) for r in rows]

    def verify_password(self, name: str, password: str) -> User | None:
        """The user if the password matches (and the user is enabled), else None."""
        rows = self._q(
            "SELECT id, name, site, role, worker, disabled, password_hash FROM users WHERE name = ?", (name,)
        )
        stored = rows[0][6] if rows and rows[0][6] else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if not rows or not rows[0][6] or rows[0][5]:
            return None
        if self.hasher.check_needs_rehash(stored):  # parameters raised since it was stored
            self._x(
                "UPDATE users SET password_hash = ? WHERE id = ?", (self.hasher.hash(password), rows[0][0])
            )
        return self._user(rows[0][:6])

    # --- sessions -----------------------------------------------------------------------------
    def create_session(self, user: User, ttl_s: float) -> tuple[str, str, float]:
        """A new session: ``(session id, CSRF token, expiry epoch s)``; only a digest is stored."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        self._x("DELETE FROM sessions WHERE expires <= ?", (now,))
        self._x(
            "INSERT INTO sessions (id_hash, user_id, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
            (_digest(sid), user.id, csrf, now, now + ttl_s),
        )
        return sid, csrf, now + ttl_s

    def session(self, sid: str) -> Principal | None:
        """The caller of a live session of an enabled user, else None (expired sessions are removed)."""
        rows = self._q(
            "SELECT u.id, u.name, u.site, u.role, u.worker, u.disabled, s.csrf, s.expires"
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
            (_digest(sid),),
        )
        if not rows:
            return None
        r = rows[0]
        if r[7] <= self.clock():
            self._x("DELETE FROM sessions WHERE id_hash = ?", (_digest(sid),))
            return None
        if r[5]:
            return None
        return Principal(self._user(r[:6]), "session", csrf=r[6], expires=r[7])

    def end_session(self, sid: str) -> None:
        self._x("DELETE FROM sessions WHERE id_hash = ?", (_digest(sid),))

    # --- API tokens ---------------------------------------------------------------------------
    def create_token(self, user: User, ttl_s: float, label: str = "") -> tuple[int, str, float]:
        """A new read-only API token: ``(token id, secret shown once, expiry epoch s)``."""
        secret = "twt_" + secrets.token_urlsafe(32)
        now = self.clock()
        cur = self._x(
            "INSERT INTO tokens (token_hash, user_id, label, created, expires) VALUES (?, ?, ?, ?, ?)",
            (_digest(secret), user.id, label[:80], now, now + ttl_s),
        )
        return int(cur.lastrowid or 0), secret, now + ttl_s

    def token(self, secret: str) -> Principal | None:
        """The caller of a live, unrevoked token of an enabled user, else None."""
        rows = self._q(
            "SELECT u.id, u.name, u.site, u.role, u.worker, u.disabled, t.id, t.expires, t.revoked"
            " FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
            (_digest(secret),),
        )
        if not rows:
            return None
        r = rows[0]
        if r[8] or r[5] or r[7] <= self.clock():
            return None
        return Principal(self._user(r[:6]), "token", expires=r[7], token_id=int(r[6]))

    def tokens(self, *, user_id: int | None = None, site: str | None = None) -> list[dict[str, Any]]:
        """Token metadata (never the secret), of one user or of a site's users."""
        sql = (
            "SELECT t.id, u.name, u.site, t.label, t.created, t.expires, t.revoked FROM tokens t"
            " JOIN users u ON u.id = t.user_id"
        )
        if user_id is not None:
            rows = self._q(sql + " WHERE u.id = ? ORDER BY t.id", (user_id,))
        elif site is not None:
            rows = self._q(sql + " WHERE u.site = ? ORDER BY t.id", (site,))
        else:
            rows = self._q(sql + " ORDER BY t.id")
        now = self.clock()
        keys = ("id", "user", "site", "label", "created", "expires", "revoked")
        return [
            {**dict(zip(keys, r, strict=True)), "revoked": bool(r[6]), "expired": r[5] <= now} for r in rows
        ]

    def revoke_token(self, token_id: int) -> None:
        self._x("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))

    # --- failed logins ------------------------------------------------------------------------
    def begin_login(self, name: str, client: str, limits: LoginLimits) -> tuple[float, int | None]:
        """Check the failure limits and, if a try is allowed, count it as a failure, atomically.

        The try is recorded *before* the (slow) password check, in the same transaction as
        the check of the limits, so concurrent tries cannot all pass a limit that none of
        them has reached yet. A successful login then takes it back (:meth:`end_login`).

        Returns
        -------
        (wait_s, attempt_id)
            ``wait_s > 0``: refused, nothing recorded, retry in that many seconds.
            Else ``attempt_id`` is the recorded try.
        """
        now = self.clock()
        since = now - limits.window_s
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # also atomic across server processes on one file
            try:
                self._db.execute("DELETE FROM login_failures WHERE t <= ?", (since,))
                wait = 0.0
                for where, args, limit in (
                    ("name = ? AND client = ?", (name, client), limits.per_name_and_address),
                    ("client = ?", (client,), limits.per_address),
                    ("name = ?", (name,), limits.per_name),
                ):
                    rows = self._db.execute(
                        f"SELECT t FROM login_failures WHERE {where} AND t > ? ORDER BY t DESC LIMIT ?",
                        (*args, since, limit),
                    ).fetchall()
                    if len(rows) >= limit:
                        # The oldest of the last N failures leaves the window first.
                        wait = max(wait, rows[-1][0] + limits.window_s - now, 1e-3)
                attempt = None
                if wait == 0.0:
                    attempt = self._db.execute(
                        "INSERT INTO login_failures (t, name, client) VALUES (?, ?, ?)", (now, name, client)
                    ).lastrowid
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return wait, attempt

    def end_login(self, attempt_id: int, name: str, client: str) -> None:
        """A login succeeded: forget its try and the earlier failures of that name from that address."""
        with self._lock:
            self._db.execute(
                "DELETE FROM login_failures WHERE rowid = ? OR (name = ? AND client = ?)",
                (attempt_id, name, client),
            )

    # --- audit ---------------------------------------------------------------------------------
    def audit(
        self,
        *,
        user: str,
        role: str,
        site: str,
        action: str,
        method: str,
        route: str,
        path: str,
        status: int,
        client: str,
        target_worker: str | None = None,
        target_machine: str | None = None,
        target: str | None = None,
    ) -> None:
        """Append one audit entry (time from the store's clock)."""
        self._x(
            "INSERT INTO audit (t, user, role, site, action, method, route, path, target_worker,"
            " target_machine, target, status, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.clock(),
                user,
                role,
                site,
                action,
                method,
                route,
                path,
                target_worker,
                target_machine,
                target,
                int(status),
                client,
            ),
        )

    def audit_rows(
        self,
        *,
        site: str | None = None,
        since: float | None = None,
        until: float | None = None,
        user: str | None = None,
        worker: str | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first, filtered; ``site=None`` means every site."""
        where, args = [], []
        for col, op, v in (
            ("site", "=", site),
            ("t", ">=", since),
            ("t", "<", until),
            ("user", "=", user),
            ("target_worker", "=", worker),
        ):
            if v is not None:
                where.append(f"{col} {op} ?")
                args.append(v)
        sql = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._q(sql + " ORDER BY id LIMIT ?", (*args, limit))
        return [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in rows]

    def raw_connection(self) -> sqlite3.Connection:
        """The underlying connection (tests prove the triggers refuse UPDATE/DELETE)."""
        return self._db
