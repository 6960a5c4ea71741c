"""Every route, every case: the routes come from ``/openapi.json`` (and the WebSocket routes
from the app's route table, which OpenAPI does not list), so a new route is tried at once and
fails here until it has a row in ``ROUTES``.

Each route is called as: nobody (no session), a forged session cookie, an expired one, a
supervisor (the route works), worker W1 asking for W2's data, a cookie session without the
CSRF header (state-changing methods), path-traversal ids (``..``, ``%2e%2e``, ``../``,
``..%2F`` ... in each path parameter, sent raw as a server receives them) and an oversized
body. Every status is checked against the table; no response may carry a traceback, and a
worker's 2xx must hold nothing of a colleague.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from auth_helpers import Env, foreign_data
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from twin_server.api.body_limit import DEFAULT_MAX_BODY_BYTES
from twin_server.auth.policy import app_routes, is_public
from twin_server.site import Site

# Status expected per route and case; a case not named in a row takes DEFAULTS. "sup" is a
# supervisor with a live session (and the CSRF header), "worker" is W1 asking for W2 (W2 in
# every worker slot, W2's token for a token id). "traversal" is the status for a traversal
# id in each path parameter that stays one path segment; one that adds a segment ("../",
# "..%2F") matches no route (403 for a signed-in caller), unless the parameter is a path
# ("path/" names its status then).
DEFAULTS = {
    "anonymous": 401,
    "forged_cookie": 401,
    "expired_cookie": 401,
    "no_csrf": 403,
    "oversized_body": 413,
}
WS_DEFAULTS = {"anonymous": 403, "forged_cookie": 403, "expired_cookie": 403}
SITE_404 = {"site": 404}


def _editor(sup: int, oversized_body: int | None = None, **traversal: int) -> dict[str, Any]:
    """A site-editor row: workers refused, the site 404 in traversal (``path_slash``: "path/")."""
    named = {k.replace("_slash", "/"): v for k, v in traversal.items()}
    row: dict[str, Any] = {"sup": sup, "worker": 403, "traversal": {"site": 404, **named}}
    if oversized_body is not None:
        row["oversized_body"] = oversized_body
    return row


ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/health"): {
        "anonymous": 200,
        "forged_cookie": 200,
        "expired_cookie": 200,
        "sup": 200,
        "worker": 200,
    },
    ("POST", "/api/auth/login"): {
        "anonymous": 401,
        "forged_cookie": 401,
        "expired_cookie": 401,
        "sup": 200,
        "worker": 401,
        "no_csrf": 401,
    },
    ("GET", "/api/sites"): {"sup": 200, "worker": 200},
    ("GET", "/api/sites/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/machines"): {"sup": 200, "worker": 200, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/workers"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/shifts"): {"sup": 200, "worker": 200, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/readings"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/aligned"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/sites/{site}/shifts/{day}/analysis"): {
        "sup": 200,
        "worker": 403,
        "traversal": {"site": 404, "day": 422},
    },
    ("GET", "/api/sites/{site}/shifts/{day}/kpis"): {
        "sup": 200,
        "worker": 403,
        "traversal": {"site": 404, "day": 422},
    },
    ("GET", "/api/sites/{site}/shifts/{day}/replay"): {
        "sup": 200,
        "worker": 403,
        "traversal": {"site": 404, "day": 422},
    },
    # Without ?at= it forecasts the server's today, which has no readings here: 404 naming the day.
    ("GET", "/api/sites/{site}/forecast"): {"sup": 404, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/dead-letters"): {"sup": 200, "worker": 403},
    ("GET", "/api/live"): {"sup": 200, "worker": 403},
    ("GET", "/api/viewer/sites"): {"sup": 200, "worker": 200},
    ("GET", "/api/kpis/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/viewer/layout/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/replay/{site}/shifts"): {"sup": 200, "worker": 200, "traversal": SITE_404},
    ("GET", "/api/replay/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("GET", "/api/worker/{site}/{worker}"): {
        "sup": 200,
        "worker": 403,
        "traversal": {"site": 404, "worker": 404},
    },
    ("GET", "/api/worker/{site}/{worker}/replay"): {
        "sup": 200,
        "worker": 403,
        "traversal": {"site": 404, "worker": 404},
    },
    ("GET", "/api/notes/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("POST", "/api/notes/{site}"): {"sup": 201, "worker": 403, "traversal": SITE_404},
    ("DELETE", "/api/notes/{site}/{note_id}"): {
        "sup": 404,
        "worker": 403,
        "traversal": {"site": 404, "note_id": 422},
    },
    # No scene is built here (no site file): 404 for whoever may ask.
    ("GET", "/api/scene/{site}.glb"): {"sup": 404, "worker": 404, "traversal": SITE_404},
    ("GET", "/api/commissioning/{site}"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("POST", "/api/commissioning/{site}/start"): {"sup": 200, "worker": 403, "traversal": SITE_404},
    ("POST", "/api/auth/logout"): {"sup": 200, "worker": 200},
    ("GET", "/api/auth/me"): {"sup": 200, "worker": 200},
    ("GET", "/api/auth/tokens"): {"sup": 200, "worker": 200},
    ("POST", "/api/auth/tokens"): {"sup": 201, "worker": 404},  # a token for W2's user: no such user here
    ("DELETE", "/api/auth/tokens/{token_id}"): {"sup": 404, "worker": 404, "traversal": {"token_id": 422}},
    ("GET", "/api/audit"): {"sup": 200, "worker": 403},
    ("GET", "/api/audit.csv"): {"sup": 200, "worker": 403},
    # The site editor (engineers and supervisors). No site file here: most answers are 404;
    # the uploads stream and cap their own bodies (a 256 KiB JSON body is the wrong type: 415).
    ("DELETE", "/api/editor/{site}/survey/walks/{walk_id}"): _editor(404, walk_id=404),
    ("GET", "/api/editor/{site}"): _editor(404),
    ("GET", "/api/editor/{site}/devices"): _editor(200),
    ("GET", "/api/editor/{site}/drafts/{name}"): _editor(404, name=404),
    ("GET", "/api/editor/{site}/files/{path}"): _editor(404, path=404, path_slash=404),
    ("GET", "/api/editor/{site}/history"): _editor(404),
    ("GET", "/api/editor/{site}/models"): _editor(404),
    ("GET", "/api/editor/{site}/survey/walks/{walk_id}"): _editor(404, walk_id=404),
    ("GET", "/api/editor/{site}/versions/{version}"): _editor(404, version=404),
    ("POST", "/api/editor/{site}/check"): _editor(422),
    ("POST", "/api/editor/{site}/import"): _editor(422),
    ("POST", "/api/editor/{site}/reload"): _editor(404),
    ("POST", "/api/editor/{site}/restore"): _editor(422),
    ("POST", "/api/editor/{site}/survey/walks"): _editor(422),
    ("POST", "/api/editor/{site}/survey/walks/{walk_id}/finish"): _editor(404, walk_id=404),
    ("POST", "/api/editor/{site}/survey/walks/{walk_id}/taps"): _editor(422, walk_id=422),
    ("POST", "/api/editor/{site}/undo"): _editor(422),
    ("PUT", "/api/editor/{site}"): _editor(422),
    ("PUT", "/api/editor/{site}/models/{name}"): _editor(415, name=422, oversized_body=415),
    ("PUT", "/api/editor/{site}/plan"): _editor(404, oversized_body=404),
    ("WS", "/ws/live"): {"sup": 101, "worker": 403},
    ("WS", "/ws/commissioning/{site}"): {"sup": 101, "worker": 403, "traversal": {"site": 403}},
}
# One path segment after the server decodes it / more than one.
TRAVERSAL_SEGMENT = ["..", "%2e%2e", "%2E%2E", ".%2e", "%252e%252e", "..;", "..%5c..%5c"]
TRAVERSAL_SLASH = ["../", "..%2F", "%2e%2e%2f", "..%2F..%2F..%2Fetc%2Fpasswd"]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
TRACEBACK = re.compile(rb'Traceback \(most recent call last\)|File "[^"]+", line \d+')


def _routes(env: Env) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, OpenAPI operation)`` of every HTTP route in ``/openapi.json``, plus WebSockets."""
    doc = env.client.get("/openapi.json").json()
    out = [(m.upper(), path, op) for path, ops in doc["paths"].items() for m, op in ops.items()]
    out += [("WS", path, {}) for method, path in app_routes(env.app) if method == "WS"]
    return out


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _query(op: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The operation's required query parameters, and ``worker`` wherever one can be named."""
    out = {}
    for p in op.get("parameters", []):
        if p["in"] == "query" and (p.get("required") or p["name"] == "worker"):
            out[p["name"]] = values[p["name"]]
    return out


def _body(path: str, case: str) -> dict[str, Any] | None:
    if path == "/api/notes/{site}":
        return {"t": 1.8e9, "target": "M3", "text": "walk route"}
    if path == "/api/auth/tokens":
        return {"label": "walk", "ttl_days": 1, **({"user": "w2"} if case == "worker" else {})}
    if path == "/api/auth/login":
        ok = case == "sup"
        return {
            "name": "sup" if ok else f"nobody-{case}",
            "password": "correct horse battery" if ok else "wrong-guess",
        }
    return None


class Walk:
    """Calls routes as each case's caller and collects every mismatch with the table."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.client = TestClient(env.app, client=("10.0.9.1", 40000))
        self.mismatches: list[str] = []
        self.calls = 0
        store = env.store
        w2_token_id, _, _ = store.create_token(store.user("w2"), 3600)
        site: Site = env.app.state.twin.settings.site
        lo = min(
            s["start"]
            for s in env.client.get(f"/api/sites/{env.site}/shifts", headers=env.token("sup")).json()
        )
        self.values = {
            "site": env.site,
            "day": env.day,
            "worker": "W1",
            "note_id": "999999",
            "token_id": "999999",
            "machine": "M3",
            "start": str(lo),
            "end": str(lo + 600),
            "walk_id": "999999",
            "name": "nosuch",
            "path": "nosuch.png",
            "version": "999999",
        }
        self.worker_values = {**self.values, "worker": "W2", "token_id": str(w2_token_id)}
        colleague = next(w for w in site.workers if w.id == "W2")
        self.colleague = [f'"{colleague.id}"', colleague.name, colleague.beacon, '"w2"']

    def session(self, user: str, ttl_s: float = 3600.0) -> tuple[str, str]:
        sid, csrf, _ = self.env.store.create_session(self.env.store.user(user), ttl_s)
        return sid, csrf

    def headers(self, case: str) -> dict[str, str]:
        if case == "anonymous":
            return {}
        if case == "forged_cookie":
            return {"Cookie": f"twin_session={secrets.token_urlsafe(32)}"}
        if case == "expired_cookie":
            sid, csrf = self.session("sup", ttl_s=1.0)
            cookie = {"Cookie": f"twin_session={sid}"}
            assert self.client.get("/api/auth/me", headers=cookie).status_code == 200  # live, then not
            self.env.clock.advance(2.0)
            return {**cookie, "X-CSRF-Token": csrf}
        # "oversized_body" as the supervisor too: refused by size, whoever may call the route.
        sid, csrf = self.session("w1" if case == "worker" else "sup")
        headers = {"Cookie": f"twin_session={sid}"}
        return headers if case == "no_csrf" else {**headers, "X-CSRF-Token": csrf}

    def expect(self, method: str, path: str, case: str) -> int | None:
        row = ROUTES[(method, path)]
        defaults = WS_DEFAULTS if method == "WS" else DEFAULTS
        return row.get(case, defaults.get(case))

    def check(self, what: str, want: int | None, got: int, body: bytes) -> None:
        self.calls += 1
        if want is not None and got != want:
            self.mismatches.append(f"{what}: {got}, table says {want}: {body[:160]!r}")
        if TRACEBACK.search(body):
            self.mismatches.append(f"{what}: the response carries a traceback: {body[:300]!r}")

    def call(self, method: str, path: str, op: dict[str, Any], case: str) -> None:
        values = self.worker_values if case == "worker" else self.values
        url, params = _fill(path, values), _query(op, values)
        headers = self.headers(case)
        what = f"{case} {method} {path}"
        if method == "WS":
            self.check(what, self.expect(method, path, case), self.ws(url, headers), b"")
            return
        self.client.cookies.clear()
        if case == "oversized_body":
            body = b"{" + b" " * DEFAULT_MAX_BODY_BYTES + b"}"
            r = self.client.request(
                method,
                url,
                params=params,
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
        else:
            r = self.client.request(method, url, params=params, json=_body(path, case), headers=headers)
        self.check(what, self.expect(method, path, case), r.status_code, r.content)
        if case == "worker" and r.status_code < 300 and not is_public(path):
            text = r.text
            doc = r.json() if "json" in r.headers.get("content-type", "") else None
            if foreign_data(doc) or any(marker in text for marker in self.colleague):
                self.mismatches.append(f"{what}: W1 got W2's data: {text[:300]}")

    def ws(self, url: str, headers: dict[str, str]) -> int:
        try:
            with self.client.websocket_connect(url, headers=headers) as ws:
                ws.receive_json()
            return 101
        except WebSocketDisconnect:
            return 403

    def traversal(self, method: str, path: str, op: dict[str, Any]) -> None:
        """Each path parameter replaced by traversal ids, sent as raw bytes (no client-side
        normalisation of ``../``), as a supervisor with a live session and CSRF header."""
        for name in re.findall(r"\{(\w+)\}", path):
            expected = ROUTES[(method, path)].get("traversal", {})
            for raw, want in [(v, expected.get(name)) for v in TRAVERSAL_SEGMENT] + [
                (v, expected.get(f"{name}/", 403)) for v in TRAVERSAL_SLASH
            ]:
                url = _fill(path, {**self.values, name: raw})
                what = f"traversal {name}={raw!r} {method} {path}"
                if want is None:
                    self.mismatches.append(f"{what}: no traversal status in the table for {name!r}")
                    continue
                status, body = self.raw(method, url, self.headers("sup"))
                self.check(what, want, status, body)

    def raw(self, method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request straight into the ASGI app, with the path as a server decodes it."""
        if method == "WS":
            return 403 if self.ws_raw(raw_path, headers) else 101, b""
        sent: list[dict[str, Any]] = []
        scope = {**_scope("http", raw_path, headers), "method": method, "http_version": "1.1"}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        anyio.run(self.env.app, scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], body

    def ws_raw(self, raw_path: str, headers: dict[str, str]) -> bool:
        """Whether a WebSocket upgrade on a raw path is refused."""
        sent: list[dict[str, Any]] = []
        incoming = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            if incoming:
                return incoming.pop()
            await anyio.sleep(0.5)
            return {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        anyio.run(self.env.app, {**_scope("websocket", raw_path, headers), "subprotocols": []}, receive, send)
        return not any(m["type"] == "websocket.accept" for m in sent)


def _scope(kind: str, raw_path: str, headers: dict[str, str]) -> dict[str, Any]:
    """An ASGI scope as uvicorn builds it: ``path`` percent-decoded, ``raw_path`` as sent."""
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "scheme": "http" if kind == "http" else "ws",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("10.0.9.2", 40000),
        "server": ("testserver", 80),
        "state": {},
    }


def test_every_route_of_openapi_is_in_the_table(env: Env):
    routes = {(m, p) for m, p, _ in _routes(env)}
    assert len(routes) >= 30
    missing = sorted(routes - set(ROUTES))
    assert not missing, f"routes without a row in ROUTES (add their expected statuses): {missing}"
    assert not sorted(set(ROUTES) - routes), "rows of ROUTES that are no longer routes"


@pytest.mark.parametrize(
    "case",
    [
        "anonymous",
        "forged_cookie",
        "expired_cookie",
        "sup",
        "worker",
        "no_csrf",
        "oversized_body",
        "traversal",
    ],
)
def test_every_route_every_case(env: Env, case: str):
    walk = Walk(env)
    for method, path, op in _routes(env):
        if (method, path) not in ROUTES:
            continue  # the test above names it
        if case == "traversal":
            walk.traversal(method, path, op)
        elif (case == "no_csrf" and method not in UNSAFE) or (case == "oversized_body" and method == "WS"):
            continue
        else:
            walk.call(method, path, op, case)
    assert walk.calls >= (6 if case == "no_csrf" else 30)  # the walk covered the real table
    assert not walk.mismatches, "\n".join(walk.mismatches)


def test_the_walk_sees_a_leak_and_a_traceback(env: Env):
    """The checks above can fail: a colleague's data and a traceback are both caught."""
    walk = Walk(env)
    r = env.client.get(f"/api/sites/{env.site}/workers", headers=env.token("sup"))
    assert any(marker in r.text for marker in walk.colleague)
    walk.check("probe", 200, 200, b'Traceback (most recent call last):\n  File "x.py", line 3')
    walk.check("probe", 200, 500, json.dumps({"detail": "x"}).encode())
    assert len(walk.mismatches) == 2
