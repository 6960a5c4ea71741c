"""``python -m twin_server.auth add-user|add-token|list-users|disable-user|set-password``.

Passwords are read from stdin with ``--password-stdin`` (one line), else generated and
printed once; API tokens are printed once. Nothing secret is stored in clear.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from twin_server.auth.store import ADMIN_SITE, ROLES, AuthError, AuthStore

__all__ = ["main"]

DB_NAME = "auth.sqlite"


def _store(args: argparse.Namespace) -> AuthStore:
    return AuthStore(Path(args.data_dir) / DB_NAME)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """``(password, generated)``."""
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise AuthError("--password-stdin: no password on stdin")
        return line, False
    return secrets.token_urlsafe(15), True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twin_server.auth", description="Manage the twin server's users and API tokens."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="create a user of one site")
    add.add_argument("--data-dir", required=True, help="the server's data directory")
    add.add_argument("--site", required=True, help=f"site id ({ADMIN_SITE!r} for an admin)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--worker", default=None, help="the worker id of the site (role worker)")
    add.add_argument("--name", required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--no-password", action="store_true", help="token-only user (e.g. an integrator)")
    tok = sub.add_parser("add-token", help="create a read-only API token for a user (printed once)")
    tok.add_argument("--data-dir", required=True)
    tok.add_argument("--name", required=True, help="the user")
    tok.add_argument("--days", type=float, default=90.0, help="lifetime in days (default 90, max 365)")
    tok.add_argument("--label", default="")
    lst = sub.add_parser("list-users", help="users (and their token counts)")
    lst.add_argument("--data-dir", required=True)
    lst.add_argument("--site", default=None)
    dis = sub.add_parser("disable-user", help="disable a user: sessions and tokens stop at once")
    dis.add_argument("--data-dir", required=True)
    dis.add_argument("--name", required=True)
    pw = sub.add_parser("set-password", help="set a user's password (stdin, else generated)")
    pw.add_argument("--data-dir", required=True)
    pw.add_argument("--name", required=True)
    pw.add_argument("--password-stdin", action="store_true")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except AuthError as exc:
        print(f"auth: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if args.command == "add-user":
            password, generated = (None, False) if args.no_password else _password(args)
            user = store.add_user(args.name, args.site, args.role, password, worker=args.worker)
            print(
                f"user {user.name}: role {user.role}, site {user.site}"
                + (f", worker {user.worker}" if user.worker else "")
            )
            if generated:
                print(f"password (shown once): {password}")
        elif args.command == "add-token":
            user = store.user(args.name)
            if user is None:
                raise AuthError(f"no user {args.name!r}")
            if not 0 < args.days <= 365:
                raise AuthError("--days: more than 0, at most 365")
            token_id, secret, _ = store.create_token(user, args.days * 86_400.0, args.label)
            print(f"token {token_id} for {user.name} (read-only, {args.days:g} days), shown once:")
            print(secret)
        elif args.command == "list-users":
            tokens: dict[str, int] = {}
            for t in store.tokens():
                if not t["revoked"] and not t["expired"]:
                    tokens[t["user"]] = tokens.get(t["user"], 0) + 1
            for u in store.users(args.site):
                print(
                    f"{u.name}\t{u.site}\t{u.role}\t{u.worker or '-'}\t"
                    f"{'disabled' if u.disabled else 'active'}\ttokens={tokens.get(u.name, 0)}"
                )
        elif args.command == "disable-user":
            store.set_disabled(args.name)
            print(f"user {args.name} disabled")
        elif args.command == "set-password":
            password, generated = _password(args)
            store.set_password(args.name, password)
            print(f"password of {args.name} set" + (f" (shown once): {password}" if generated else ""))
    finally:
        store.close()
    return 0
