"""A worker replays their own shift: the site-wide replay cut down to their rows."""

from __future__ import annotations

from auth_helpers import foreign_data

from twin_server.auth.worker_replay import own_replay


def test_worker_replays_their_own_shift_only(env):
    s, day = env.site, env.day
    full = env.client.get(f"/api/replay/{s}", params={"day": day}, headers=env.token("sup")).json()
    w1 = env.token("w1")
    assert env.client.get(f"/api/replay/{s}", params={"day": day}, headers=w1).status_code == 403
    r = env.client.get(f"/api/worker/{s}/W1/replay", params={"day": day}, headers=w1)
    assert r.status_code == 200
    mine = r.json()
    assert not foreign_data(mine)
    assert mine["result"]["machine_states"] == full["result"]["machine_states"]
    for key in ("worker_zones", "tasks", "beacon_lag"):
        assert mine["result"][key] == [row for row in full["result"][key] if row.get("worker") == "W1"], key
    assert mine["result"]["worker_zones"]  # the simulated shift has W1 moving about
    assert [w["id"] for w in mine["site"]["workers"]] == ["W1"]
    assert mine["shift"] == full["shift"] and mine["site"]["machines"] == full["site"]["machines"]
    assert env.client.get(f"/api/worker/{s}/W2/replay", params={"day": day}, headers=w1).status_code == 403
    sup = env.client.get(f"/api/worker/{s}/W2/replay", params={"day": day}, headers=env.token("sup"))
    assert sup.status_code == 200 and not foreign_data(sup.json(), "W1", "b-01")
    assert env.client.get(f"/api/worker/{s}/W9/replay", headers=env.token("sup")).status_code == 404


def test_unknown_result_fields_are_dropped():
    payload = {
        "site": {"workers": [{"id": "W1"}, {"id": "W2"}]},
        "shift": {},
        "debug": {"W2": 1},
        "result": {
            "machine_states": [{"machine": "M3"}],
            "tasks": [{"worker": "W2"}, {"worker": None}],
            "worker_zones": [{"worker": "W1"}],
            "new_per_worker_field": [{"worker": "W2"}],
        },
    }
    got = own_replay(payload, "W1")
    assert got == {
        "site": {"workers": [{"id": "W1"}]},
        "shift": {},
        "result": {
            "machine_states": [{"machine": "M3"}],
            "worker_zones": [{"worker": "W1"}],
            "tasks": [],
            "beacon_lag": [],
        },
    }
