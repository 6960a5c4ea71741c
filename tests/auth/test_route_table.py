"""Walk the real app's route table: every route is in the policy, and no worker or site
can reach another's data on any of them (status AND response content are checked)."""

from __future__ import annotations

import re

import pytest
from auth_helpers import OTHER_SITE, Env, foreign_data
from starlette.websockets import WebSocketDisconnect

from twin_server.auth.policy import POLICY, app_routes, is_public, uncovered_routes

SKIP = {"/api/auth/logout"}  # would end the session the walk runs on; tested in test_auth_api


def _fill(path: str, **values: str) -> str:
    # Parameters the walk does not name (a version, a file name) get a dummy value.
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


def _guarded(env: Env) -> list[tuple[str, str]]:
    return [(m, p) for m, p in app_routes(env.app) if m != "MOUNT" and not is_public(p) and p not in SKIP]


def _call(client, method: str, url: str, headers: dict[str, str]):
    if method == "WS":
        try:
            with client.websocket_connect(url, headers=headers) as ws:
                ws.receive_json()
            return 101, None
        except WebSocketDisconnect:
            return 403, None
    body = {"t": 1.8e9, "target": "W2", "text": "walk"} if method == "POST" else None
    r = client.request(method, url, headers=headers, json=body)
    try:
        doc = r.json()
    except ValueError:
        doc = None
    return r.status_code, doc


def test_every_route_is_in_the_policy_and_every_row_is_a_route(env):
    assert uncovered_routes(env.app) == []
    served = set(app_routes(env.app))
    stale = [(row.path, m) for row in POLICY for m in row.methods if (m, row.path) not in served]
    assert stale == []
    assert len(_guarded(env)) >= 25  # the walk below covers the real table, not an empty one


def test_foreign_data_detector_sees_w2_in_a_supervisors_replay(env):
    """The content check below could fail: the full replay does hold W2's data."""
    r = env.client.get(f"/api/sites/{env.site}/shifts/{env.day}/replay", headers=env.token("sup"))
    assert r.status_code == 200 and foreign_data(r.json())
    assert not foreign_data(r.json(), worker="W9", beacon="b-09")


@pytest.mark.parametrize("via", ["session", "token"])
def test_worker_never_gets_another_workers_data(env, via):
    if via == "session":
        client, csrf = env.login("w1", address="10.0.1.1")
        headers = {"X-CSRF-Token": csrf}
    else:
        client, headers = env.client, env.token("w1")
    allowed = []
    for method, path in _guarded(env):
        values = {"site": env.site, "worker": "W2", "day": env.day, "note_id": "1", "token_id": "1"}
        status, doc = _call(client, method, _fill(path, **values), headers)
        if "{worker}" in path:
            assert status in (403, 404), (method, path, status)
        if 200 <= status < 300 or status == 101:
            assert not foreign_data(doc), (method, path)
            allowed.append((method, path))
        if "{site}" in path:
            status, _ = _call(client, method, _fill(path, **{**values, "site": OTHER_SITE}), headers)
            assert status in (403, 404) if method == "WS" else status == 404, (method, path, "foreign site")
    # Their own timeline is the worker's, and it holds only their tasks.
    own = client.get(f"/api/worker/{env.site}/W1", headers=headers)
    assert own.status_code == 200 and own.json()["worker"]["id"] == "W1" and not foreign_data(own.json())
    assert ("GET", "/api/replay/{site}") not in allowed
    assert ("GET", "/api/sites/{site}/machines") in allowed


def test_other_sites_users_see_nothing_of_this_site(env):
    """A supervisor and a worker W1 of another site (same worker id!) against every route."""
    for name in ("other-sup", "other-w1"):
        headers = env.token(name)
        for method, path in _guarded(env):
            if path.startswith("/api/auth/"):
                continue  # their own account, not site data
            url = _fill(path, site=env.site, worker="W1", day=env.day, note_id="1", token_id="1")
            status, _ = _call(env.client, method, url, headers)
            # Invisible: 404 everywhere (a refused WebSocket upgrade is always a 403).
            assert status == (403 if method == "WS" else 404), (name, method, path, status)
    # and they cannot sign in to this site's server at all
    r = env.client.post("/api/auth/login", json={"name": "other-sup", "password": "correct horse battery"})
    assert r.status_code == 401


def test_supervisor_sees_every_worker_of_their_site_only(env):
    headers = env.token("sup")
    for w in ("W1", "W2"):
        r = env.client.get(f"/api/worker/{env.site}/{w}", headers=headers)
        assert r.status_code == 200 and r.json()["worker"]["id"] == w
    rep = env.client.get(f"/api/replay/{env.site}", params={"day": env.day}, headers=headers)
    assert rep.status_code == 200 and foreign_data(rep.json(), "W1", "b-01") and foreign_data(rep.json())
    for method, path in _guarded(env):
        if "{site}" in path:
            url = _fill(path, site=OTHER_SITE, worker="W1", day=env.day, note_id="1", token_id="1")
            assert _call(env.client, method, url, headers)[0] in ((403,) if method == "WS" else (404,)), path
    # The admin account sees every site served.
    assert env.client.get(f"/api/worker/{env.site}/W2", headers=env.token("root")).status_code == 200
