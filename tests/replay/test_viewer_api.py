"""The viewer's HTTP side without a browser: replay payload, notes, worker data, errors."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import httpx
import pytest
from viewer_harness import serve, write_scene_glb

from twin_server.api.viewer import NoteIn, NotesStore, create_viewer_app
from twin_server.store.replay_data import FileReplayProvider, ReplayError, clip_result

SITE = "toyama-pilot"


@pytest.fixture(scope="module")
def api(shifts, tmp_path_factory):
    app = create_viewer_app(
        FileReplayProvider(shifts.dir), tmp_path_factory.mktemp("api-data"), build_scenes=False
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_replay_payload_is_the_days_result_with_layout_and_breaks(api, shifts):
    r = api.get(f"/api/replay/{SITE}", params={"day": "2023-02-08"}, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    doc = r.json()
    truth = shifts.last
    assert doc["shift"]["day"] == "2023-02-08"
    assert doc["result"]["window"] == truth["window"]
    assert len(doc["result"]["tasks"]) == len(truth["tasks"])
    first = min(truth["tasks"], key=lambda t: t["start"])
    assert doc["result"]["tasks"][0]["start"] == pytest.approx(first["start"], abs=0.05)
    assert [m["id"] for m in doc["site"]["machines"]] == ["M3", "M7", "M10"]
    assert doc["site"]["language"] == "ja"
    assert [mk["kind"] for mk in doc["site"]["markings"]] == ["line", "line", "area"]
    lunch = next(b for b in doc["breaks"] if b["name"] == "lunch")
    assert lunch["end"] - lunch["start"] == 3600
    assert [s["day"] for s in doc["shifts"]] == ["2023-02-06", "2023-02-07", "2023-02-08"]
    # The default is the latest shift.
    assert api.get(f"/api/replay/{SITE}").json()["shift"]["day"] == "2023-02-08"


def test_an_8_hour_shift_is_far_under_1_mb_compressed(api):
    r = api.get(f"/api/replay/{SITE}", headers={"Accept-Encoding": "gzip"})
    raw = json.dumps(r.json()).encode()
    assert len(gzip.compress(raw)) < 1_000_000


def test_window_requests_clip_and_bad_requests_are_clear(api, shifts):
    w = shifts.last["window"]
    r = api.get(f"/api/replay/{SITE}", params={"start": w["start"] + 3600, "end": w["start"] + 7200})
    res = r.json()["result"]
    assert all(
        w["start"] + 3600 <= i["start"] < i["end"] <= w["start"] + 7200
        for key in ("machine_states", "worker_zones", "tasks")
        for i in res[key]
    )
    assert api.get("/api/replay/nowhere").status_code == 404
    assert api.get(f"/api/replay/{SITE}", params={"day": "2020-01-01"}).status_code == 404
    assert api.get(f"/api/replay/{SITE}", params={"start": 10, "end": 5}).status_code == 422
    assert api.get(f"/api/replay/{SITE}", params={"day": "yesterday"}).status_code == 422
    assert api.get(f"/api/replay/{SITE}", params={"start": 0, "end": 100}).status_code == 404


def test_notes_are_validated_stored_and_deleted(api, shifts):
    t = shifts.last["window"]["start"] + 100
    ok = api.post(f"/api/notes/{SITE}", json={"t": t, "target": "W1", "text": "  good jig order  "})
    assert ok.status_code == 201
    note = ok.json()
    assert (note["target_kind"], note["text"]) == ("worker", "good jig order")
    for bad in (
        {"t": t, "target": "M99", "text": "x"},
        {"t": t, "target": "M3", "text": "   "},
        {"t": "soon", "target": "M3", "text": "x"},
        {"target": "M3", "text": "x"},
    ):
        assert api.post(f"/api/notes/{SITE}", json=bad).status_code == 422, bad
    assert api.post("/api/notes/nowhere", json={"t": t, "target": "M3", "text": "x"}).status_code == 404
    listed = api.get(f"/api/notes/{SITE}", params={"start": t - 1, "end": t + 1}).json()
    assert [n["id"] for n in listed] == [note["id"]]
    assert api.delete(f"/api/notes/{SITE}/{note['id']}").status_code == 204
    assert api.delete(f"/api/notes/{SITE}/{note['id']}").status_code == 404


def test_notes_store_persists_across_reopen(tmp_path):
    store = NotesStore(tmp_path / "n.sqlite")
    store.add("s", NoteIn(t=5.0, target="M3", text="a"), "machine")
    store.close()
    again = NotesStore(tmp_path / "n.sqlite")
    assert [n["text"] for n in again.list("s")] == ["a"]
    assert again.list("other") == []


def test_worker_endpoint_returns_only_that_workers_tasks(api, shifts):
    doc = api.get(f"/api/worker/{SITE}/W1").json()
    assert doc["worker"] == {"id": "W1", "name": "Operator A", "name_ja": "作業者A"}
    assert [d["day"] for d in doc["days"]] == ["2023-02-06", "2023-02-07", "2023-02-08"]
    for d, truth in zip(doc["days"], shifts.truths, strict=True):
        assert len(d["tasks"]) == sum(t["worker"] == "W1" for t in truth["tasks"])
        assert all("worker" not in t for t in d["tasks"])
    assert api.get(f"/api/worker/{SITE}/W9").status_code == 404


def test_scene_is_404_without_a_scene_and_served_when_there_is_one(shifts, tmp_path):
    import trimesh

    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=False)
    with serve(app) as url:
        assert httpx.get(f"{url}/api/scene/{SITE}.glb").status_code == 404
        write_scene_glb(tmp_path / "scenes" / f"{SITE}.glb")
        r = httpx.get(f"{url}/api/scene/{SITE}.glb")
        assert r.status_code == 200
        assert r.headers["content-type"] == "model/gltf-binary"
        loaded = trimesh.load(io.BytesIO(r.content), file_type="glb")
        assert {"machine:M3", "machine:M7", "machine:M10"} <= set(loaded.graph.nodes)


def test_scene_is_built_by_models3d_on_first_request_and_cached(shifts, tmp_path):
    import trimesh

    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=True)
    with serve(app) as url:
        r = httpx.get(f"{url}/api/scene/{SITE}.glb", timeout=180)
        assert r.status_code == 200, r.text
        loaded = trimesh.load(io.BytesIO(r.content), file_type="glb")
        assert {"floor", "machine:M3", "machine:M7", "machine:M10"} <= set(loaded.graph.nodes)
        cached = tmp_path / "scenes" / f"{SITE}.glb"
        assert cached.read_bytes() == r.content
        stamp = cached.stat().st_mtime_ns
        assert httpx.get(f"{url}/api/scene/{SITE}.glb").content == r.content
        assert cached.stat().st_mtime_ns == stamp  # served from the cache, not rebuilt


def test_static_page_and_three_are_served_without_a_cdn(api):
    page = api.get("/viewer/")
    assert page.status_code == 200
    assert "./vendor/three/build/three.module.js" in page.text
    assert "http" not in page.text.split("importmap")[1].split("</script>")[0]
    three = api.get("/viewer/vendor/three/build/three.module.js")
    assert three.status_code == 200
    assert "REVISION" in three.text


def test_provider_skips_bad_files_and_refuses_unknown_sites(shifts, tmp_path):
    d = tmp_path / "site"
    d.mkdir()
    shutil.copy(shifts.dir / "site.yaml", d / "site.yaml")
    shutil.copy(shifts.dir / "day2.json", d / "result.json")
    (d / "broken.json").write_text("{not json")
    p = FileReplayProvider(d)
    assert [s["day"] for s in p.shifts(SITE)] == ["2023-02-08"]
    assert any("broken.json" in k for k in p.skipped)
    with pytest.raises(ReplayError):
        p.site("nowhere")
    with pytest.raises(ReplayError):
        FileReplayProvider(Path(tmp_path / "empty"))._find(SITE)
    # The list of sites leaves out a directory without a valid site file instead of failing.
    (tmp_path / "nosite").mkdir()
    (tmp_path / "badsite").mkdir()
    (tmp_path / "badsite" / "site.yaml").write_text("site: [not, a, site]\n")
    p = FileReplayProvider(tmp_path / "nosite", d, tmp_path / "badsite")
    assert p.site_ids() == [SITE]
    assert any("nosite" in k for k in p.skipped) and any("badsite" in k for k in p.skipped)


def test_clip_result_cuts_intervals_at_the_window():
    doc = {
        "site": "s",
        "window": {"start": 0, "end": 100},
        "tasks": [
            {"machine": "M3", "task": "tool_change", "worker": None, "start": 10.04, "end": 60},
            {"machine": "M3", "task": "jig_change", "worker": "W1", "start": 80, "end": 120},
        ],
    }
    out = clip_result(doc, 50, 90)
    assert [(t["start"], t["end"]) for t in out["tasks"]] == [(50, 60), (80, 90)]
    assert out["window"] == {"start": 50, "end": 90}
    with pytest.raises(ReplayError):
        clip_result(doc, 5, 5)


def test_the_twin_server_app_serves_the_viewer_over_its_journal(tmp_path, pilot_site):
    """The server includes this router: page, three.js, notes, and clear 404s before any data."""
    from twin_server.api.app import create_app
    from twin_server.settings import Settings

    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    with serve(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/viewer/").status_code == 200
        assert c.get("/viewer/vendor/three/build/three.module.js").status_code == 200
        # The page opened without ?site= lists the server's sites (JournalReplayProvider.site_ids).
        assert c.get("/api/viewer/sites").json() == {
            "sites": [SITE],
            "names": {SITE: pilot_site.name},
            "names_ja": {SITE: pilot_site.name_ja},
        }
        assert c.get(f"/api/replay/{SITE}/shifts").json() == []
        empty = c.get(f"/api/replay/{SITE}")
        assert empty.status_code == 404
        assert "no recorded shift" in empty.json()["detail"]
        assert c.post(f"/api/notes/{SITE}", json={"t": 1.0, "target": "M3", "text": "x"}).status_code == 201
        assert [n["text"] for n in c.get(f"/api/notes/{SITE}").json()] == ["x"]
        assert (tmp_path / "notes.sqlite").is_file()  # under the server's data dir


def test_the_stand_alone_viewer_can_require_sign_in(shifts, tmp_path):
    from twin_server.auth import AuthStore

    store = AuthStore(tmp_path / "auth.sqlite")
    store.add_user("sato", SITE, "supervisor", "correct horse battery")
    store.close()
    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=False, auth=True)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/viewer/").status_code == 200  # the page itself is public
        assert c.get(f"/api/replay/{SITE}").status_code == 401
        r = c.post("/api/auth/login", json={"name": "sato", "password": "correct horse battery"})
        assert r.status_code == 200
        assert c.get(f"/api/replay/{SITE}").status_code == 200
        assert c.get("/api/viewer/sites").json()["sites"] == [SITE]
