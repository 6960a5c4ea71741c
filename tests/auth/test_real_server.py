"""Over a real uvicorn socket: cookie attributes, CSRF, and WebSocket upgrades refused with 403."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from argon2 import PasswordHasher
from auth_helpers import PASSWORD, serve_in_thread

from twin_server.api.app import create_app
from twin_server.auth import AuthStore, install_auth
from twin_server.settings import Settings


@pytest.fixture
def served(tmp_path, pilot_site):
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    store = AuthStore(tmp_path / "auth.sqlite", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    install_auth(app, data_dir=tmp_path, site_ids=[pilot_site.site], store=store)
    store.add_user("sup", pilot_site.site, "supervisor", PASSWORD)
    store.add_user("w1", pilot_site.site, "worker", PASSWORD, worker="W1")
    with serve_in_thread(app) as port:
        yield port, store


async def _ws(port: int, headers: dict[str, str]) -> str | int:
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/live", additional_headers=headers) as ws:
            return (await asyncio.wait_for(ws.recv(), 30))[:30]
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


def test_over_a_socket(served, pilot_site):
    port, store = served
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        assert c.get(f"/api/sites/{pilot_site.site}/workers").status_code == 401
        r = c.post("/api/auth/login", json={"name": "sup", "password": PASSWORD})
        assert r.status_code == 200
        session = next(h for h in r.headers.get_list("set-cookie") if h.startswith("twin_session="))
        # No Secure flag over plain http (the browser would drop it); set under https.
        assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session
        note = {"t": 1.8e9, "target": "M3", "text": "x"}
        assert c.post(f"/api/notes/{pilot_site.site}", json=note).status_code == 403
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        assert c.post(f"/api/notes/{pilot_site.site}", json=note, headers=csrf).status_code == 201
        cookie = {"Cookie": f"twin_session={c.cookies.get('twin_session')}"}
    assert str(asyncio.run(_ws(port, cookie))).startswith('{"type":"snapshot"')
    assert asyncio.run(_ws(port, {**cookie, "Origin": "http://evil.example"})) == 403
    w1 = {"Authorization": f"Bearer {store.create_token(store.user('w1'), 3600)[1]}"}
    assert asyncio.run(_ws(port, w1)) == 403
    assert asyncio.run(_ws(port, {})) == 403
