"""The append-only audit log: entries for reads of worker data and for changes, view and CSV."""

from __future__ import annotations

import csv
import io
import sqlite3

import pytest


def test_reads_changes_and_refusals_are_audited(env):
    s = env.site
    before = env.clock()
    sup, csrf = env.login("sup", address="10.0.5.1")
    assert sup.get(f"/api/worker/{s}/W2").status_code == 200
    note = sup.post(
        f"/api/notes/{s}",
        json={"t": 1.8e9, "target": "W1", "text": "nice jig change"},
        headers={"X-CSRF-Token": csrf},
    )
    assert note.status_code == 201
    w1, _ = env.login("w1", address="10.0.5.2")
    assert w1.get(f"/api/worker/{s}/W2").status_code == 403
    assert sup.get(f"/api/sites/{s}/machines").status_code == 200  # no worker data: not audited
    assert sup.get(f"/api/sites/{s}/workers").status_code == 200  # names and beacons: audited
    rows = [r for r in env.store.audit_rows(site=s, since=before) if r["client"] in ("10.0.5.1", "10.0.5.2")]
    got = [
        (r["user"], r["role"], r["action"], r["method"], r["route"], r["target_worker"], r["status"])
        for r in rows
    ]
    assert got == [
        ("sup", "supervisor", "login", "POST", "/api/auth/login", None, 200),
        ("sup", "supervisor", "read", "GET", "/api/worker/{site}/{worker}", "W2", 200),
        ("sup", "supervisor", "change", "POST", "/api/notes/{site}", "W1", 201),
        ("w1", "worker", "login", "POST", "/api/auth/login", None, 200),
        ("w1", "worker", "deny", "GET", "/api/worker/{site}/{worker}", "W2", 403),
        ("sup", "supervisor", "read", "GET", "/api/sites/{site}/workers", None, 200),
    ]
    assert all(r["site"] == s and before <= r["t"] <= env.clock() for r in rows)
    assert rows[1]["path"] == f"/api/worker/{s}/W2"
    # A failed login is recorded under the name that was tried.
    env.client.post("/api/auth/login", json={"name": "sup", "password": "wrong-wrong"})
    assert env.store.audit_rows(site=s, since=before, user="sup")[-1]["action"] == "login_failed"


def test_audit_log_cannot_be_changed_or_deleted(env):
    env.client.get(f"/api/worker/{env.site}/W1", headers=env.token("sup"))
    # Through the server's connection and through any other one: the triggers are in the file.
    other = sqlite3.connect(env.store.path, isolation_level=None)
    for db in (env.store.raw_connection(), other):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET user = 'nobody'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
    other.close()
    assert env.store.audit_rows(site=env.site, user="nobody") == []
    assert len(env.store.audit_rows(site=env.site)) > 0


def test_supervisors_view_and_export_their_sites_audit(env):
    s = env.site
    sup = env.token("sup")
    env.client.get(f"/api/worker/{s}/W2", headers=sup)
    view = env.client.get("/api/audit", params={"worker": "W2"}, headers=sup)
    assert view.status_code == 200
    entries = view.json()["entries"]
    assert entries and all(e["target_worker"] == "W2" and e["site"] == s for e in entries)
    export = env.client.get("/api/audit.csv", params={"worker": "W2"}, headers=sup)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in entries]
    assert rows[-1]["route"] == "/api/worker/{site}/{worker}" and rows[-1]["user"] == "sup"
    # Only supervisors of the site (and admins) see it.
    for name in ("w1", "eng", "integ"):
        assert env.client.get("/api/audit", headers=env.token(name)).status_code == 403
    assert env.client.get("/api/audit", params={"site": s}, headers=env.token("other-sup")).status_code == 404
    assert env.client.get("/api/audit", params={"site": "other-site"}, headers=sup).status_code == 404
    every = env.client.get("/api/audit", headers=env.token("root")).json()["entries"]
    assert len(every) >= len(entries)
