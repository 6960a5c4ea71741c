"""The replay page in real headless Chromium (software WebGL), served by uvicorn."""

from __future__ import annotations

import io
import math
import time
from typing import Any

import httpx
import pytest
from fastapi import WebSocket, WebSocketDisconnect  # module level: annotations are resolved here
from viewer_harness import next_frame, serve, wait_ready, write_scene_glb

from twin_server.api.viewer import create_viewer_app
from twin_server.store.replay_data import FileReplayProvider

pytestmark = pytest.mark.browser

SITE = "toyama-pilot"
EN = {
    "jig_change": "Jig change",
    "tool_change": "Tool change",
    "program_input": "Program input",
    "material_setting": "Material setting",
}


def long_task(truth: dict[str, Any], machine: str | None = None, min_s: float = 150) -> dict[str, Any]:
    """A task long enough to hit with a click on the timeline (about 25 s per pixel)."""
    for t in sorted(truth["tasks"], key=lambda t: t["start"]):
        if t["end"] - t["start"] >= min_s and (machine is None or t["machine"] == machine):
            return t
    raise AssertionError("the simulated shift has no long task")


def open_replay(page: Any, url: str, query: str = "") -> None:
    page.goto(f"{url}/viewer/?site={SITE}{query}")
    wait_ready(page)


def test_page_loads_a_simulated_shift_and_the_canvas_renders(page, viewer_url, shifts):
    from PIL import Image

    open_replay(page, viewer_url, "&lang=en")
    truth = shifts.last
    lanes = page.evaluate(
        "window.__replay.lanes().machines.map(m => [m.id, m.tasks.length, m.states.length])"
    )
    for machine, n_tasks, n_states in lanes:
        assert n_tasks == sum(t["machine"] == machine for t in truth["tasks"])
        assert n_states == sum(s["machine"] == machine for s in truth["machine_states"])
    assert page.evaluate("window.__replay.lanes().start") == pytest.approx(truth["window"]["start"])
    # One label per machine, one figure label per worker.
    assert page.locator(".machine-label").count() == 3
    assert sorted(page.locator(".worker-label .name").all_inner_texts()) == ["Operator A", "Operator B"]
    png = page.locator("#scene-canvas").screenshot()
    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 22)
    assert colours is not None
    # A blank canvas has one colour; the floor, markings, zones, machines and shaded figures many.
    assert len(colours) >= 50, f"only {len(colours)} distinct colours: the scene did not render"
    # The clock shows the shift's start in site time (08:30 Asia/Tokyo).
    assert page.locator("#clock").inner_text() == "08:30:00"


def test_playing_at_10x_advances_ten_times_faster_than_1x(page, viewer_url, shifts):
    open_replay(page, viewer_url, "&lang=en")
    page.evaluate(f"window.__replay.seek({shifts.last['window']['start'] + 600})")
    page.locator("#play-btn").click()
    ratios = {}
    for speed in (1, 10):
        page.locator(f"#speed-bar [data-speed='{speed}']").click()
        a = next_frame(page)
        time.sleep(3.0)
        b = next_frame(page)
        # Replay-clock advance per second of the page's own clock, both read from rendered
        # frames: robust to a loaded CPU, unlike a comparison with the test's wall clock.
        ratios[speed] = (b["t"] - a["t"]) / ((b["perf"] - a["perf"]) / 1000)
        assert b["perf"] - a["perf"] > 2000
    assert ratios[1] == pytest.approx(1.0, rel=0.1)
    assert ratios[10] / ratios[1] == pytest.approx(10.0, rel=0.1)
    assert "speed=10" in page.url  # the speed is part of the shareable moment
    assert "day=2023-02-08" in page.url


def test_a_shared_moment_shows_the_task_under_way(page, viewer_url, shifts):
    task = long_task(shifts.last)
    mid = (task["start"] + task["end"]) / 2
    open_replay(page, viewer_url, f"&t={mid:.0f}&lang=en&cam=machine:{task['machine']}")
    label = page.locator(f".machine-label[data-machine='{task['machine']}'] .task")
    assert label.inner_text() == EN[task["task"]]
    assert label.get_attribute("data-task") == task["task"]
    state = page.locator(f".machine-label[data-machine='{task['machine']}'] .state").inner_text()
    assert state in ("Stopped", "Running")
    # The worker doing it stands in the machine's zone, facing the machine (+y on the floor,
    # which is a heading of about +90 degrees).
    assert task["worker"] is not None
    zone = next(
        z
        for z in shifts.last["worker_zones"]
        if z["worker"] == task["worker"] and z["start"] <= mid < z["end"]
    )
    assert zone["zone"] == task["machine"]
    heading = page.evaluate(f"window.__replay.scene().workers['{task['worker']}'].group.rotation.y")
    assert heading == pytest.approx(math.pi / 2, abs=0.35)
    tag = page.locator(f".worker-label[data-worker='{task['worker']}'] .task").inner_text()
    assert tag == EN[task["task"]]
    # Machines with nothing under way at that moment show no task.
    busy = {t["machine"] for t in shifts.last["tasks"] if t["start"] <= mid < t["end"]}
    for m in {"M3", "M7", "M10"} - busy:
        assert page.locator(f".machine-label[data-machine='{m}'] .task").inner_text() == ""


def test_scrubbing_the_timeline_seeks_to_the_task(page, viewer_url, shifts):
    open_replay(page, viewer_url, "&lang=en")
    task = long_task(shifts.last, "M7")
    mid = (task["start"] + task["end"]) / 2
    x = page.evaluate(f"window.__replay.timelineX({mid})")
    box = page.locator("#timeline").bounding_box()
    page.mouse.click(x, box["y"] + 60)
    frame = next_frame(page)
    assert abs(frame["t"] - mid) < 60  # within a couple of pixels of the click
    assert page.locator(".machine-label[data-machine='M7'] .task").inner_text() == EN[task["task"]]
    assert f"t={round(frame['t'])}" in page.url
    page.locator("#camera-bar [data-cam='machine:M7']").click()
    assert page.evaluate("window.__replay.scene().cameraName") == "machine:M7"
    assert "cam=machine%3AM7" in page.url or "cam=machine:M7" in page.url
    page.locator("#camera-bar [data-cam='overview']").click()
    assert "cam=" not in page.url


def test_next_and_previous_changeover_jump_between_task_starts(page, viewer_url, shifts):
    start = shifts.last["window"]["start"]
    open_replay(page, viewer_url, "&lang=en")
    firsts = sorted(t["start"] for t in shifts.last["tasks"])
    page.locator("#next-btn").click()
    t1 = next_frame(page)["t"]
    assert t1 == pytest.approx(firsts[0], abs=0.2)
    page.locator("#next-btn").click()
    t2 = next_frame(page)["t"]
    assert t2 > t1 + 120  # tasks of one changeover are one jump
    assert t2 in [pytest.approx(s, abs=0.2) for s in firsts]
    page.locator("#prev-btn").click()
    assert next_frame(page)["t"] == pytest.approx(t1, abs=0.2)
    assert t1 > start
    page.keyboard.press("k")  # the same jumps from the keyboard: K next, J previous
    assert next_frame(page)["t"] == pytest.approx(t2, abs=0.2)
    page.keyboard.press("j")
    assert next_frame(page)["t"] == pytest.approx(t1, abs=0.2)
    # Arrows step 10 s (Shift: 1 min); space plays and pauses.
    page.keyboard.press("ArrowRight")
    assert next_frame(page)["t"] == pytest.approx(t1 + 10, abs=0.2)
    page.keyboard.press("Shift+ArrowLeft")
    assert next_frame(page)["t"] == pytest.approx(max(start, t1 - 50), abs=0.2)
    page.keyboard.press(" ")
    assert page.evaluate("window.__replay.clock.playing") is True
    page.keyboard.press(" ")
    assert page.evaluate("window.__replay.clock.playing") is False


def test_a_note_survives_a_reload_and_jumps_to_its_moment(page, viewer_url, shifts):
    task = long_task(shifts.last, "M10")
    open_replay(page, viewer_url, f"&t={task['start'] + 30:.0f}&lang=en")
    page.locator("#note-target").select_option("M10")
    text = f"start the long run before lunch ({time.monotonic_ns()})"
    page.locator("#note-text").fill(text)
    page.locator("#note-add").click()
    page.locator(f"#notes-list .note-text:text-is('{text}')").wait_for()
    # Stored on the server, not in the browser.
    notes = httpx.get(f"{viewer_url}/api/notes/{SITE}").json()
    mine = [n for n in notes if n["text"] == text]
    assert len(mine) == 1
    assert mine[0]["target"] == "M10"
    assert mine[0]["target_kind"] == "machine"
    assert mine[0]["t"] == pytest.approx(task["start"] + 30, abs=1)
    page.goto(f"{viewer_url}/viewer/?site={SITE}&lang=en")  # a fresh load at the shift start
    wait_ready(page)
    item = page.locator("#notes-list li", has=page.locator(f".note-text:text-is('{text}')"))
    item.wait_for()
    item.locator(".note-jump").click()
    assert next_frame(page)["t"] == pytest.approx(task["start"] + 30, abs=1)
    assert page.locator(".machine-label[data-machine='M10'] .task").inner_text() == EN[task["task"]]
    item.locator(".note-delete").click()
    item.wait_for(state="detached")
    assert not [n for n in httpx.get(f"{viewer_url}/api/notes/{SITE}").json() if n["text"] == text]


def test_worker_view_shows_that_worker_only(page, viewer_url, shifts):
    open_replay(page, viewer_url, "&lang=en")
    page.locator("#worker-select").select_option("W2")  # the supervisor opens W2's own page
    page.wait_for_url("**view=worker**")
    wait_ready(page)
    assert "worker=W2" in page.url
    assert "Operator B" in page.locator("#worker-title").inner_text()
    body = page.locator("body").inner_text()
    assert "Operator A" not in body
    days = page.locator(".gantt-row")
    assert days.count() == 3
    for k, truth in enumerate(shifts.truths):
        mine = [t for t in truth["tasks"] if t["worker"] == "W2"]
        bars = days.nth(k).locator(".gantt-task")
        assert bars.count() == len(mine)
    # Every task row of every day belongs to W2's own tasks; W1's are never sent.
    n_rows = page.locator("#worker-days .task-row").count()
    assert n_rows == sum(t["worker"] == "W2" for tr in shifts.truths for t in tr["tasks"])
    api = httpx.get(f"{viewer_url}/api/worker/{SITE}/W2").json()
    assert "W1" not in str([d["tasks"] for d in api["days"]])
    # The latest day is compared with the earlier ones.
    latest = page.locator("#worker-days .worker-day").first
    assert "Saved vs earlier days" in latest.locator("h3").inner_text()
    assert "nothing earlier" not in latest.locator("h3").inner_text()
    assert page.locator("#worker-pertask tr[data-task]").count() >= 2


def test_japanese_by_default_big_touch_targets_and_switchable(page, viewer_url, shifts):
    task = long_task(shifts.last)
    open_replay(page, viewer_url, f"&t={(task['start'] + task['end']) / 2:.0f}")
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.locator("#play-btn").inner_text() == "再生"
    ja = {
        "jig_change": "治具交換",
        "tool_change": "工具交換",
        "program_input": "プログラム入力",
        "material_setting": "材料設置",
    }
    label = page.locator(f".machine-label[data-machine='{task['machine']}'] .task")
    assert label.inner_text() == ja[task["task"]]
    small = page.evaluate(
        "[...document.querySelectorAll("
        "'#replay-view button, #replay-view select, #topbar button, #topbar select')]"
        ".filter(e => e.offsetParent !== null)"
        ".map(e => [e.id || e.textContent.trim(), e.getBoundingClientRect().width,"
        " e.getBoundingClientRect().height])"
        ".filter(([, w, h]) => w < 48 || h < 48)"
    )
    assert small == [], f"touch targets under 48 px: {small}"
    page.locator("#lang-btn").click()
    assert page.locator("#play-btn").inner_text() == "Play"
    assert label.inner_text() == EN[task["task"]]
    assert "lang=en" in page.url


def test_ideal_day_shortening_the_last_task_gains_exactly_that(page, viewer_url, shifts):
    open_replay(page, viewer_url, "&lang=en")
    page.locator("#ideal-btn").click()
    assert page.locator("#ideal-gain").inner_text() == "0.0 min"
    last = max((t for t in shifts.last["tasks"] if t["machine"] == "M3"), key=lambda t: t["start"])
    mid = (last["start"] + last["end"]) / 2
    x = page.evaluate(f"window.__replay.timelineX({mid})")
    box = page.locator("#timeline").bounding_box()
    # Rows: axis 26 px, M3 40 px, then M3's ideal lane (48 px).
    page.mouse.click(x, box["y"] + 26 + 40 + 24)
    assert "M3" in page.locator("#ideal-selected").inner_text()
    page.locator("#ideal-edit [data-resize='-60']").click()
    assert page.locator("#ideal-gain").inner_text() == "1.0 min"
    assert page.locator("#ideal-table tr[data-machine='M3'] .gain-min").inner_text() == "1.0 min"
    # The ideal day is part of the shareable URL: a reload (or another tablet) shows it again.
    assert "ideal=M3" in page.url
    page.reload()
    wait_ready(page)
    assert page.locator("#ideal-btn").get_attribute("aria-pressed") == "true"
    assert page.locator("#ideal-gain").inner_text() == "1.0 min"
    page.locator("#ideal-reset").click()
    assert page.locator("#ideal-gain").inner_text() == "0.0 min"


def test_live_mode_says_unavailable_without_a_live_socket(page, viewer_url):
    open_replay(page, viewer_url, "&lang=en")
    page.locator("#live-btn").click()
    page.wait_for_function("document.querySelector('#live-status').dataset.state === 'liveUnavailable'")
    assert page.locator("#live-status").inner_text() == "Live unavailable"


def test_live_mode_follows_the_servers_live_frames(page, shifts, tmp_path):
    """A /ws/live speaking the twin server's frame format: the replay follows the live edge."""
    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=False)
    w = shifts.last["window"]
    edge = w["start"] + 3 * 3600

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"type": "snapshot", "site": SITE, "sensors": {}, "devices": {}, "analysis": None})
        reading = {"device": "pi-m3", "t": edge, "kind": "light"}
        await ws.send_json({"type": "readings", "readings": [reading]})
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            return

    with serve(app) as url:
        open_replay(page, url, "&lang=en&speed=30")
        page.locator("#live-btn").click()
        page.wait_for_function("document.querySelector('#live-status').dataset.state === 'liveOn'")
        page.wait_for_function(f"window.__replay.stats.lastFrame.t >= {edge - 1}")
        a = next_frame(page)
        assert a["t"] == pytest.approx(edge, abs=5)
        assert page.evaluate("[window.__replay.clock.playing, window.__replay.clock.speed]") == [True, 1]
        assert "live=1" in page.url


@pytest.mark.parametrize("z_sign", [1.0, -1.0])
def test_the_models3d_scene_replaces_the_boxes_and_is_fitted_to_the_layout(page, shifts, tmp_path, z_sign):
    write_scene_glb(tmp_path / "scenes" / f"{SITE}.glb", z_sign=z_sign)
    app = create_viewer_app(FileReplayProvider(shifts.dir), tmp_path, build_scenes=False)
    with serve(app) as url:
        open_replay(page, url, "&lang=en")
        page.wait_for_function("window.__replay.stats.glb !== 'pending'")
        assert page.evaluate("window.__replay.stats.glb") == "loaded (3 machines)"
        # The viewer draws floor point (x, y) at (x, 0, -y); a GLB using +y is mirrored to fit.
        assert page.evaluate("window.__replay.scene().glb.scale.z") == (-1 if z_sign > 0 else 1)
        assert page.locator(".machine-label").count() == 3


def _label(page: Any, layer: str, machine: str) -> dict[str, str]:
    """State and task shown by a machine's label in one view (``scene-labels`` or ``ideal-labels``)."""
    el = page.locator(f"#{layer} .machine-label[data-machine='{machine}']")
    return {"state": el.get_attribute("data-state"), "task": el.get_attribute("data-task")}


def test_side_by_side_the_shortened_task_ends_earlier_in_the_ideal_view(page, viewer_url, shifts):
    from PIL import Image

    truth = shifts.last
    # A task of 8 min or more on M3: shortened by 5 min, the ideal day has finished it (and may
    # be at the next task of the changeover, always another kind) while the recording is at it.
    task = long_task(truth, "M3", min_s=480)
    open_replay(page, viewer_url, "&lang=en")
    page.locator("#ideal-btn").click()
    page.locator("#split-btn").click()
    assert page.locator("#split-btn").get_attribute("aria-pressed") == "true"
    assert page.locator("#ideal-labels .machine-label").count() == 3
    x = page.evaluate(f"window.__replay.timelineX({(task['start'] + task['end']) / 2})")
    box = page.locator("#timeline").bounding_box()
    page.mouse.click(x, box["y"] + 26 + 40 + 24)  # M3's ideal lane
    assert "M3" in page.locator("#ideal-selected").inner_text()
    page.locator("#ideal-edit [data-resize='-300']").click()
    t_in = task["end"] - 150  # inside the 5 minutes cut off the task
    page.evaluate(f"window.__replay.seek({t_in})")
    next_frame(page)
    real, ideal = _label(page, "scene-labels", "M3"), _label(page, "ideal-labels", "M3")
    assert real == {"state": real["state"], "task": task["task"]}
    assert ideal != real, "the two views show the same state inside the shortened part"
    assert ideal["task"] != task["task"]
    # Both views agree with the pure model (replay/src/ideal.js) at that moment, and the minutes
    # gained on screen are what it computes.
    breaks = httpx.get(f"{viewer_url}/api/replay/{SITE}").json()["breaks"]
    model = page.evaluate(
        """async ([breaks, t]) => {
          const ideal = await import('./src/ideal.js');
          const tl = await import('./src/timeline.js');
          const lanes = window.__replay.lanes();
          const day = ideal.idealDay(lanes, breaks, window.__replay.edits());
          const st = tl.machineStatusAt(day.machines[0], t);
          return { gain: tl.formatMinutes(day.totalGainedMin), min: day.totalGainedMin,
                   state: st.state, task: st.task ?? '' };
        }""",
        [breaks, t_in],
    )
    assert ideal == {"state": model["state"], "task": model["task"]}
    assert model["min"] > 0
    assert page.locator("#split-gain").inner_text() == model["gain"]
    assert page.locator("#ideal-gain").inner_text() == model["gain"]
    # The worker who did it: at the task in the recording, done with it on the ideal day.
    w = task["worker"]
    tags = page.evaluate(
        f"[...document.querySelectorAll(\".worker-label[data-worker='{w}']\")].map(e => e.dataset.task)"
    )
    assert tags[0] == task["task"] and tags[1] != task["task"]
    # The right half of the canvas is a rendered scene too, not the clear colour.
    img = Image.open(io.BytesIO(page.locator("#scene-canvas").screenshot())).convert("RGB")
    right = img.crop((img.width // 2 + 4, 0, img.width, img.height))
    assert len(right.getcolors(maxcolors=1 << 22) or []) >= 50
    assert "split=1" in page.url
    page.locator("#ideal-btn").click()  # ideal day off: side by side off too
    assert page.locator("#ideal-labels").is_hidden()
    assert "split=1" not in page.url


def test_without_a_site_the_page_lists_the_servers_sites(page, viewer_url, shifts, tmp_path):
    # One site: it opens at once, and the address says which.
    page.goto(f"{viewer_url}/viewer/?lang=en")
    wait_ready(page)
    assert page.evaluate("window.__replay.view") == "replay"
    assert f"site={SITE}" in page.url
    # Two sites (one of them with no data yet): a list of both, by name; a tap opens one.
    other = tmp_path / "other"
    other.mkdir()
    text = (shifts.dir / "site.yaml").read_text()
    (other / "site.yaml").write_text(
        text.replace(f"site: {SITE}", "site: second-shop").replace(
            "en: Toyama machining shop (pilot)", "en: Second shop"
        )
    )
    app = create_viewer_app(FileReplayProvider(shifts.dir, other), tmp_path / "data", build_scenes=False)
    with serve(app) as url:
        page.goto(f"{url}/viewer/?lang=en")
        wait_ready(page)
        assert page.evaluate("window.__replay.view") == "sites"
        assert page.locator("#site-list h2").inner_text() == "Choose a site"
        links = page.locator("#sites a")
        assert links.count() == 2
        assert [links.nth(k).get_attribute("data-site") for k in range(2)] == [SITE, "second-shop"]
        assert "Second shop" in links.nth(1).inner_text()
        links.nth(0).click()
        page.wait_for_url(f"**site={SITE}**")
        wait_ready(page)
        assert page.evaluate("window.__replay.view") == "replay"
        assert page.locator(".machine-label").count() == 3
