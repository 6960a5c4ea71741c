"""The editor API on the real server app: save, conflicts, warnings, undo, uploads, roles."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from editor_helpers import make_app
from fastapi.testclient import TestClient
from PIL import Image

from twin_server.auth import AuthStore, install_auth
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]
SITE = "toyama-pilot"
API = f"/api/editor/{SITE}"


@pytest.fixture
def client(site_dir):
    app = make_app(site_dir / "site.yaml", site_dir / "data")
    with TestClient(app) as c:
        c.app_ = app
        yield c


def _state(c):
    r = c.get(API)
    assert r.status_code == 200, r.text
    return r.json()


def test_open_save_and_the_server_runs_the_new_site(client, site_dir):
    st = _state(client)
    assert st["problems"] == [] and st["warnings"] == [] and st["new_site"] is False
    doc = st["document"]
    doc["machines"][0]["position"] = [3.2, 6.5]
    r = client.put(API, json={"document": doc, "base_version": st["version"]})
    assert r.status_code == 200, r.text
    assert r.json()["reloaded"] and r.json()["undo"] == st["version"]
    assert load_site(site_dir / "site.yaml").machine("M3").position == (3.2, 6.5)
    assert client.app_.state.twin.settings.site.machine("M3").position == (3.2, 6.5)
    assert client.app_.state.commissioning.site.machine("M3").position == (3.2, 6.5)
    assert "# The Toyama pilot" in (site_dir / "site.yaml").read_text()
    # Undo: the earlier file again, and the server runs it.
    u = client.post(f"{API}/undo", json={"base_version": r.json()["version"]})
    assert u.status_code == 200 and u.json()["version"] == st["version"]
    assert client.app_.state.twin.settings.site.machine("M3").position == (3.0, 6.5)
    assert (site_dir / "site.yaml").read_text() == (ROOT / "examples" / "pilot_site.yaml").read_text()
    hist = client.get(f"{API}/history").json()
    assert [e["action"] for e in hist["entries"]] == ["undo", "save", "external"]


def test_overlapping_zones_are_not_saved_without_confirmation(client, site_dir):
    st = _state(client)
    doc = st["document"]
    doc["machines"][1]["zone"] = [[4.0, 3.6], [9.4, 3.6], [9.4, 5.6], [4.0, 5.6]]
    check = client.post(f"{API}/check", json={"document": doc}).json()
    assert check["ok"] and [w["code"] for w in check["warnings"]] == ["zones_overlap"]
    before = (site_dir / "site.yaml").read_bytes()
    r = client.put(API, json={"document": doc, "base_version": st["version"]})
    assert r.status_code == 409 and r.json()["detail"]["reason"] == "warnings"
    assert (site_dir / "site.yaml").read_bytes() == before
    r = client.put(API, json={"document": doc, "base_version": st["version"], "accept_warnings": True})
    assert r.status_code == 200


@pytest.mark.parametrize("scale", [0, -0.02])
def test_zero_or_negative_scale_is_refused(client, site_dir, scale):
    st = _state(client)
    doc = st["document"]
    doc["plan"] = {"image": "plans/x.png", "m_per_px": scale, "origin_px": [0, 700]}
    r = client.put(API, json={"document": doc, "base_version": st["version"]})
    assert r.status_code == 422
    assert r.json()["detail"]["problems"][0]["path"] == "plan.m_per_px"
    assert "plan" not in yaml.safe_load((site_dir / "site.yaml").read_text())


def test_two_editors_saving_at_once_the_second_is_told_to_reload(client, site_dir):
    st = _state(client)
    results = []
    gate = threading.Barrier(2)

    def save(x):
        doc = _state(client)["document"]
        doc["machines"][0]["position"] = [x, 6.5]
        gate.wait()
        results.append((x, client.put(API, json={"document": doc, "base_version": st["version"]})))

    threads = [threading.Thread(target=save, args=(x,)) for x in (2.9, 3.1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    codes = sorted(r.status_code for _, r in results)
    assert codes == [200, 409]
    (x_ok, _), (x_late, late) = sorted(results, key=lambda p: p[1].status_code)
    detail = late.json()["detail"]
    assert detail["reason"] == "stale" and "reload" in detail["message"]
    assert load_site(site_dir / "site.yaml").machine("M3").position == (x_ok, 6.5)
    draft = client.get(f"{API}/drafts/{detail['draft']}").json()["document"]
    assert draft["machines"][0]["position"] == [x_late, 6.5]  # nothing typed is lost
    assert any(e["draft"] == detail["draft"] for e in client.get(f"{API}/history").json()["entries"])


def test_the_site_id_cannot_change_and_import_takes_the_servers(client):
    st = _state(client)
    doc = dict(st["document"], site="elsewhere")
    r = client.put(API, json={"document": doc, "base_version": st["version"]})
    assert r.status_code == 422 and r.json()["detail"]["problems"][0]["path"] == "site"
    text = (ROOT / "examples" / "contract_site.yaml").read_text()
    imp = client.post(f"{API}/import", json={"text": text, "name": "contract_site.yaml"}).json()
    assert imp["document"]["site"] == SITE and imp["problems"] == []
    assert "'demo'" in imp["notes"][0]
    bad = client.post(f"{API}/import", json={"text": "site: [unclosed", "name": "x.yaml"})
    assert bad.status_code == 422 and "not a site file" in bad.json()["detail"]


def test_plan_upload_checks_the_file_and_caps_its_size(client, site_dir, monkeypatch):
    r = client.put(f"{API}/plan", content=b"this is a shopping list\n")
    assert r.status_code == 415 and "not a floor-plan image" in r.json()["detail"]
    data = (ROOT / "examples" / "pilot_floor_plan.png").read_bytes()
    r = client.put(f"{API}/plan", content=data)
    assert r.status_code == 200 and (r.json()["width_px"], r.json()["height_px"]) == (1140, 780)
    got = client.get(r.json()["url"])
    assert got.status_code == 200 and got.content == data
    assert (site_dir / r.json()["image"]).read_bytes() == data
    assert client.get(f"{API}/files/../../etc/passwd").status_code == 404
    assert client.get(f"{API}/files/site.yaml").status_code == 404  # only plans and models
    from twin_server.api import editor

    monkeypatch.setattr(editor, "PLAN_MAX_BYTES", 1000)
    big = io.BytesIO()
    Image.new("RGB", (400, 400), "white").save(big, "JPEG", quality=100)
    r = client.put(f"{API}/plan", content=big.getvalue())
    assert r.status_code == 413 and "MiB" in r.json()["detail"]


def test_models_are_listed_uploaded_and_checked(client, site_dir):
    import trimesh

    glb = trimesh.creation.box(extents=[2.4, 1.8, 1.6]).export(file_type="glb")
    r = client.put(f"{API}/models/M3", content=glb)
    assert r.status_code == 200 and r.json() == {"path": "models/M3.glb", "bytes": len(glb)}
    assert client.put(f"{API}/models/M7", content=b"not a model").status_code == 415
    assert client.put(f"{API}/models/M7", content=glb[:-10]).status_code == 415  # truncated
    assert client.put(f"{API}/models/..%2Fevil", content=glb).status_code in (404, 422)
    assert [m["path"] for m in client.get(f"{API}/models").json()] == ["models/M3.glb"]
    assert client.get(f"{API}/files/models/M3.glb").content == glb


def test_devices_seen_include_pis_not_in_the_site_yet(client):
    from edge_agent.wire import Reading, Status, encode_reading, encode_status
    from twin_server.auth.device_scope import DeviceScope
    from twin_server.ingest.subscriber import ScopeFilter, classify

    app = client.app_
    journal = app.state.twin.journal
    scope = ScopeFilter(DeviceScope.of(app.state.twin.settings.site))
    now = 1_800_000_000 * 10**9
    msgs = [
        encode_status(Status(SITE, "pi-m11", True, t_ns=now, agent_version="0.3")),
        encode_reading(
            Reading(SITE, "pi-m11", "sw-tool", "switch", now, 1, "M11", 1.0, "bool", "tool_change")
        ),
        encode_reading(Reading(SITE, "pi-m11", "ble", "rssi", now, 2, "R11", -60.0, "dBm", "b-01")),
        encode_reading(Reading(SITE, "pi-m3", "light", "light", now, 3, "M3", 0.5, "raw")),
    ]
    readings, dead = [], []
    for topic, payload in msgs:
        item = classify(topic, payload, now, scope)
        (dead if type(item).__name__ == "DeadLetter" else readings).append(item)
    journal.write_batch([(r, now) for r in readings if isinstance(r, Reading)], dead)
    devs = {d["device"]: d for d in client.get(f"{API}/devices").json()}
    new = devs["pi-m11"]
    assert not new["in_site"] and new["online"] and new["machine"] == "M11" and new["refused"] == 2
    assert new["receivers"] == ["R11"] and new["beacons"] == ["b-01"]
    assert new["sensors"] == [{"id": "sw-tool", "kind": "switch", "channel": "tool_change"}]
    assert devs["pi-m3"]["in_site"] and devs["pi-m3"]["accepted"] == 1


@pytest.fixture
def secured(site_dir):
    app = make_app(site_dir / "site.yaml", site_dir / "data")
    store = AuthStore(
        site_dir / "data" / "auth.sqlite", hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    install_auth(app, data_dir=site_dir / "data", site_ids=[SITE], store=store)
    for name, role in (("eng", "engineer"), ("sup", "supervisor"), ("integ", "integrator")):
        store.add_user(name, SITE, role, "pw-1234567890")
    store.add_user("w1", SITE, "worker", "pw-1234567890", worker="W1")
    with TestClient(app):
        yield app
    store.close()


@pytest.mark.parametrize(("user", "allowed"), [("eng", True), ("sup", True), ("integ", False), ("w1", False)])
def test_engineers_and_supervisors_edit_others_may_not(secured, user, allowed):
    c = TestClient(secured)
    login = c.post("/api/auth/login", json={"name": user, "password": "pw-1234567890"})
    assert login.status_code == 200
    csrf = login.json()["csrf_token"]
    got = c.get(API)
    assert (got.status_code == 200) is allowed
    if not allowed:
        assert got.status_code == 403
        return
    st = got.json()
    no_csrf = c.put(API, json={"document": st["document"], "base_version": st["version"]})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    ok = c.put(
        API, json={"document": st["document"], "base_version": st["version"]}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 200
    assert TestClient(secured).get(API).status_code == 401
    assert TestClient(secured).get("/editor/").status_code == 200  # the page itself is public


def test_a_server_without_a_site_file_says_so(tmp_path, pilot_site):
    from twin_server.api.app import create_app
    from twin_server.settings import Settings

    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    with TestClient(app) as c:
        r = c.get(API)
        assert r.status_code == 404 and "site file" in r.json()["detail"]
