"""Logins, roles, read-only tokens, CSRF, rate limiting and expiry through the real API."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from auth_helpers import PASSWORD
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from twin_server.api.app import create_app
from twin_server.auth import AuthStore, install_auth
from twin_server.auth.policy import uncovered_routes
from twin_server.settings import Settings


def test_login_me_logout_cookies(env):
    c = TestClient(env.app, client=("10.0.2.1", 1))
    assert c.get("/api/auth/me").status_code == 401
    r = c.post("/api/auth/login", json={"name": "sup", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"] == {
        "name": "sup",
        "site": env.site,
        "role": "supervisor",
        "worker": None,
    }
    cookies = [h.lower() for h in r.headers.get_list("set-cookie")]
    session = next(h for h in cookies if h.startswith("twin_session="))
    csrf = next(h for h in cookies if h.startswith("twin_csrf="))
    assert "httponly" in session and "samesite=strict" in session and "max-age=28800" in session
    assert "httponly" not in csrf and "samesite=strict" in csrf  # the page reads it to echo it
    assert c.cookies.get("twin_csrf") == r.json()["csrf_token"]
    me = c.get("/api/auth/me").json()
    assert me["via"] == "session" and me["user"]["name"] == "sup" and not me["read_only"]
    # Only a digest of the session id is stored.
    sid = c.cookies.get("twin_session")
    rows = env.store.raw_connection().execute("SELECT id_hash FROM sessions").fetchall()
    assert sid not in {r[0] for r in rows}
    assert c.post("/api/auth/logout").status_code == 403  # CSRF header required
    assert c.post("/api/auth/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]}).status_code == 200
    c.cookies.set("twin_session", sid)  # the old cookie no longer opens anything
    assert c.get("/api/auth/me").status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(env):
    c = TestClient(env.app, client=("10.0.2.2", 1))
    a = c.post("/api/auth/login", json={"name": "sup", "password": "nope-nope"})
    b = c.post("/api/auth/login", json={"name": "nobody", "password": "nope-nope"})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()


def test_role_checks(env):
    s, day = env.site, env.day
    eng = env.token("eng")
    light = {"kind": "light"}
    assert env.client.get(f"/api/sites/{s}/readings", params=light, headers=eng).status_code == 200
    assert env.client.get(f"/api/sites/{s}/shifts/{day}/kpis", headers=eng).status_code == 200
    assert env.client.get(f"/api/sites/{s}/shifts/{day}/replay", headers=eng).status_code == 403
    assert env.client.get(f"/api/worker/{s}/W1", headers=eng).status_code == 403
    assert env.client.get("/api/audit", headers=eng).status_code == 403
    integ = env.token("integ")
    assert env.client.get(f"/api/sites/{s}/shifts/{day}/analysis", headers=integ).status_code == 200
    assert env.client.get(f"/api/notes/{s}", headers=integ).status_code == 403
    w1 = env.token("w1")
    assert env.client.get(f"/api/sites/{s}/readings", headers=w1).status_code == 403
    assert env.client.get("/api/auth/me", headers=w1).json()["user"]["worker"] == "W1"


def test_integrator_is_read_only(env):
    s = env.site
    integ = env.token("integ")
    note = {"t": 1.8e9, "target": "M3", "text": "x"}
    assert env.client.post(f"/api/notes/{s}", json=note, headers=integ).status_code == 403
    assert env.client.delete(f"/api/notes/{s}/1", headers=integ).status_code == 403
    # A token cannot mint tokens.
    assert env.client.post("/api/auth/tokens", json={}, headers=integ).status_code == 403
    # Even a signed-in integrator with the CSRF token cannot change data...
    c, csrf = env.login("integ", address="10.0.2.3")
    assert c.post(f"/api/notes/{s}", json=note, headers={"X-CSRF-Token": csrf}).status_code == 403
    # ...but can make their own read-only token, which then reads the series.
    r = c.post("/api/auth/tokens", json={"label": "grafana", "ttl_days": 30}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["read_only"] and r.json()["user"] == "integ"
    tok = {"Authorization": f"Bearer {r.json()['token']}"}
    assert env.client.get(f"/api/sites/{s}/readings", params={"kind": "M3"}, headers=tok).status_code == 200
    assert env.client.get("/api/auth/me", headers=tok).json()["via"] == "token"
    # Supervisors' tokens are read-only too.
    assert env.client.post(f"/api/notes/{s}", json=note, headers=env.token("sup")).status_code == 403


def test_csrf_on_cookie_sessions(env):
    s = env.site
    c, csrf = env.login("sup", address="10.0.2.4")
    note = {"t": 1.8e9, "target": "M3", "text": "start the long run before lunch"}
    assert c.post(f"/api/notes/{s}", json=note).status_code == 403
    assert c.post(f"/api/notes/{s}", json=note, headers={"X-CSRF-Token": "forged"}).status_code == 403
    # A copy of the cookie in the header is not enough: it must be this session's token.
    other_csrf = env.login("sup", address="10.0.2.4")[1]
    assert c.post(f"/api/notes/{s}", json=note, headers={"X-CSRF-Token": other_csrf}).status_code == 403
    r = c.post(f"/api/notes/{s}", json=note, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert c.delete(f"/api/notes/{s}/{r.json()['id']}").status_code == 403
    assert c.delete(f"/api/notes/{s}/{r.json()['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert c.get(f"/api/notes/{s}").status_code == 200  # reads need no CSRF header


def test_failed_logins_are_limited_per_user_and_address(env):
    c = TestClient(env.app, client=("10.0.3.1", 1))
    for _ in range(5):
        assert c.post("/api/auth/login", json={"name": "w2", "password": "guess-guess"}).status_code == 401
    r = c.post("/api/auth/login", json={"name": "w2", "password": PASSWORD})  # even the right one
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 900
    # The lock is per user AND address: a colleague behind the same address (one NAT, one
    # proxy) still signs in, and so does w2 from another address.
    assert c.post("/api/auth/login", json={"name": "eng", "password": PASSWORD}).status_code == 200
    assert (
        TestClient(env.app, client=("10.0.3.2", 1))
        .post("/api/auth/login", json={"name": "w2", "password": PASSWORD})
        .status_code
        == 200
    )
    # A success forgets that pair's failures: 4 + success + 4 is not a lock.
    e = TestClient(env.app, client=("10.0.3.5", 1))
    for expected in [401] * 4 + [200] + [401] * 4 + [200]:
        pw = PASSWORD if expected == 200 else "guess-guess"
        assert e.post("/api/auth/login", json={"name": "integ", "password": pw}).status_code == expected
    env.clock.advance(15 * 60 + 1)  # the window has passed
    assert c.post("/api/auth/login", json={"name": "w2", "password": PASSWORD}).status_code == 200


def test_guessing_many_names_from_one_address_or_one_name_from_many_is_bounded(env):
    limits = env.app.state.auth.login_limits
    # Spraying: one address, a new name each time; the address is stopped at its own limit.
    d = TestClient(env.app, client=("10.0.5.1", 1))
    for i in range(limits.per_address):
        assert d.post("/api/auth/login", json={"name": f"x{i}", "password": "guess-guess"}).status_code == 401
    assert d.post("/api/auth/login", json={"name": "eng", "password": PASSWORD}).status_code == 429
    # Distributed guessing of one name: each address below its pair limit, the name is stopped.
    for i in range(limits.per_name):
        r = TestClient(env.app, client=(f"10.0.6.{i}", 1)).post(
            "/api/auth/login", json={"name": "sup", "password": "guess-guess"}
        )
        assert r.status_code == 401
    assert (
        TestClient(env.app, client=("10.0.7.1", 1))
        .post("/api/auth/login", json={"name": "sup", "password": PASSWORD})
        .status_code
        == 429
    )
    env.clock.advance(15 * 60 + 1)
    assert d.post("/api/auth/login", json={"name": "eng", "password": PASSWORD}).status_code == 200
    assert (
        TestClient(env.app, client=("10.0.7.1", 1))
        .post("/api/auth/login", json={"name": "sup", "password": PASSWORD})
        .status_code
        == 200
    )


def test_sessions_and_tokens_expire_and_can_be_revoked(env):
    c, _ = env.login("w1", address="10.0.4.1")
    tok = env.token("w1", ttl_s=3600)
    own = f"/api/worker/{env.site}/W1"
    assert c.get(own).status_code == 200 and env.client.get(own, headers=tok).status_code == 200
    env.clock.advance(3601)
    assert env.client.get(own, headers=tok).status_code == 401
    assert c.get(own).status_code == 200
    env.clock.advance(8 * 3600 - 3600)
    assert c.get(own).status_code == 401
    tok_id, secret, _ = env.store.create_token(env.store.user("w1"), 86_400)
    hdr = {"Authorization": f"Bearer {secret}"}
    assert env.client.get(own, headers=hdr).status_code == 200
    sup, csrf = env.login("sup", address="10.0.4.2")
    assert sup.delete(f"/api/auth/tokens/{tok_id}", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert env.client.get(own, headers=hdr).status_code == 401
    assert env.client.get(own, headers={"Authorization": "Bearer twt_made_up"}).status_code == 401


def test_disabled_user_is_locked_out_at_once(env):
    env.store.add_user("leaver", env.site, "engineer", PASSWORD)
    tok = env.token("leaver")
    c, _ = env.login("leaver", address="10.0.4.3")
    assert c.get("/api/auth/me").status_code == 200
    env.store.set_disabled("leaver")
    assert c.get("/api/auth/me").status_code == 401
    assert env.client.get("/api/auth/me", headers=tok).status_code == 401


def test_websocket_needs_a_staff_role_and_the_same_origin(env):
    with env.client.websocket_connect("/ws/live", headers=env.token("sup")) as ws:
        assert ws.receive_json()["type"] == "snapshot"
    w1 = env.token("w1")
    with pytest.raises(WebSocketDisconnect), env.client.websocket_connect("/ws/live", headers=w1):
        pass
    with pytest.raises(WebSocketDisconnect), env.client.websocket_connect("/ws/live"):
        pass
    c, _ = env.login("eng", address="10.0.4.4")
    cookie = {"Cookie": f"twin_session={c.cookies.get('twin_session')}"}
    with (
        pytest.raises(WebSocketDisconnect),
        env.client.websocket_connect("/ws/live", headers={**cookie, "Origin": "http://evil.example"}),
    ):
        pass
    with env.client.websocket_connect("/ws/live", headers={**cookie, "Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "snapshot"


def test_public_paths_stay_open(env):
    assert env.client.get("/health").status_code == 200
    assert env.client.get("/openapi.json").status_code == 200
    assert env.client.get("/viewer/").status_code == 200


def test_route_not_in_policy_is_refused(tmp_path):
    app = FastAPI()

    @app.get("/api/secret/{site}")
    def secret(site: str) -> dict[str, str]:
        return {"site": site}

    store = AuthStore(tmp_path / "auth.sqlite", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    install_auth(app, data_dir=tmp_path, site_ids=["s1"], store=store)
    assert uncovered_routes(app) == [("GET", "/api/secret/{site}")]
    store.add_user("boss", "s1", "supervisor", PASSWORD)
    _id, token, _ = store.create_token(store.user("boss"), 3600)
    c = TestClient(app)
    assert c.get("/api/secret/s1").status_code == 401
    r = c.get("/api/secret/s1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "not in the route policy" in r.json()["detail"]


def test_disabled_auth_keeps_todays_behaviour(tmp_path, pilot_site):
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    install_auth(app, data_dir=tmp_path, site_ids=[pilot_site.site], enabled=False)
    with TestClient(app) as c:
        assert [w["id"] for w in c.get(f"/api/sites/{pilot_site.site}/workers").json()] == ["W1", "W2"]
        assert c.post("/api/auth/login", json={"name": "a", "password": "b"}).status_code in (404, 405)
    assert not (tmp_path / "auth.sqlite").exists()


def test_non_ascii_csrf_header_is_a_403_not_a_crash(env):
    c, _ = env.login("sup", address="10.0.6.1")
    r = c.post(
        f"/api/notes/{env.site}",
        json={"t": 1.8e9, "target": "M3", "text": "x"},
        headers={"X-CSRF-Token": b"caf\xe9"},
    )
    assert r.status_code == 403
