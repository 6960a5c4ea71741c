"""The morning review in real Chromium: every screen size, the KPI strip, 600x and skip idle,
the readable timeline, and Japanese throughout."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from typing import Any

import httpx
import pytest
from viewer_harness import ROOT, next_frame, serve, wait_ready

from twin_server.api.viewer import create_viewer_app
from twin_server.store.replay_data import FileReplayProvider

pytestmark = pytest.mark.browser
SITE = "toyama-pilot"
SIZES = {"tv": (1920, 1080, False), "tablet": (1280, 800, True), "phone": (390, 844, True)}

# Every visible label and control on the page (the timeline's own texts come from its canvas).
BOXES_JS = """() => {
  const sel = '.machine-label, .worker-label, .legend-item, .kpi-name, #clock, #title, .field > span,'
    + ' #banner, .btn, select, input, textarea, #live-status, #user-name, #split-captions .cap';
  // What is seen of an element: its box cut by every scrolling or clipping ancestor.
  const seen = (e) => {
    let r = e.getBoundingClientRect();
    let [x0, y0, x1, y1] = [r.left, r.top, r.right, r.bottom];
    for (let a = e.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const c = a.getBoundingClientRect();
      [x0, y0] = [Math.max(x0, c.left), Math.max(y0, c.top)];
      [x1, y1] = [Math.min(x1, c.right), Math.min(y1, c.bottom)];
    }
    return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1, full: r } : null;
  };
  const els = [...document.querySelectorAll(sel)].filter((e) => {
    if (!e.offsetParent && getComputedStyle(e).position !== 'fixed') return false;
    if (e.closest('[hidden]') || getComputedStyle(e).visibility === 'hidden') return false;
    return e.style.display !== 'none' && seen(e) !== null;
  });
  const top = els.filter((e) => !els.some((o) => o !== e && o.contains(e)));
  const out = top.map((e) => {
    const v = seen(e);
    const name = (e.id ? '#' + e.id : e.className || e.tagName) + ' '
      + (e.textContent || '').trim().slice(0, 24);
    // Controls are measured whole (their size), labels as seen (what could collide on screen).
    const f = v.full;
    const ctl = e.matches('.btn, select, input, textarea');
    const r = ctl ? { x0: f.left, y0: f.top, x1: f.right, y1: f.bottom } : v;
    return { what: name, x0: v.x0 + scrollX, y0: v.y0 + scrollY, x1: v.x1 + scrollX, y1: v.y1 + scrollY,
      w: r.x1 - r.x0, h: r.y1 - r.y0, control: e.matches('.btn, select, input, textarea') };
  });
  const tl = window.__replay.timeline();
  const box = document.querySelector('#timeline-scroll').getBoundingClientRect();
  for (const l of tl.labelRects()) {
    if (l.y < box.top || l.y + l.h > box.bottom) continue;  // scrolled out of its box
    out.push({ what: 'timeline ' + l.text, x0: l.x + scrollX, y0: l.y + scrollY, x1: l.x + l.w + scrollX,
      y1: l.y + l.h + scrollY, control: false });
  }
  return { boxes: out, vw: document.documentElement.clientWidth, sw: document.documentElement.scrollWidth,
    docH: document.documentElement.scrollHeight };
}"""


def _overlaps(a: dict[str, Any], b: dict[str, Any], tol: float = 0.5) -> bool:
    return (
        a["x0"] < b["x1"] - tol
        and b["x0"] < a["x1"] - tol
        and a["y0"] < b["y1"] - tol
        and b["y0"] < a["y1"] - tol
    )


def check_layout(page: Any, touch: bool) -> None:
    got = page.evaluate(BOXES_JS)
    boxes = got["boxes"]
    clashes = [(a["what"], b["what"]) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlaps(a, b)]
    assert clashes == [], clashes
    assert got["sw"] <= got["vw"], f"the page scrolls sideways ({got['sw']} > {got['vw']} px)"
    need = 56 if touch else 48
    for b in boxes:
        if not b["control"]:
            continue
        w, h = b["w"], b["h"]
        assert w >= need - 0.5 and h >= need - 0.5, f"{b['what']}: {w:.0f} x {h:.0f} px < {need}"
        assert b["x0"] >= -0.5 and b["x1"] <= got["vw"] + 0.5, b
        assert b["y0"] >= -0.5 and b["y1"] <= got["docH"] + 0.5, b


def busy_moment(truth: dict[str, Any]) -> float:
    """A moment with a task under way on some machine (labels are at their largest)."""
    t = sorted(truth["tasks"], key=lambda t: t["end"] - t["start"])[-1]
    return (t["start"] + t["end"]) / 2


@pytest.mark.parametrize("size", list(SIZES))
def test_every_screen_size_labels_apart_controls_big_and_inside(browser, viewer_url, shifts, size):
    w, h, touch = SIZES[size]
    ctx = browser.new_context(viewport={"width": w, "height": h}, has_touch=touch, is_mobile=size == "phone")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{viewer_url}/viewer/?site={SITE}&t={busy_moment(shifts.last):.0f}")
    wait_ready(page)
    page.wait_for_function("document.querySelector('#kpi-strip').dataset.ready === '1'")
    next_frame(page)
    next_frame(page)
    assert page.evaluate("matchMedia('(pointer: coarse)').matches") is touch
    check_layout(page, touch)
    if os.environ.get("TWIN_SCREENSHOTS"):  # docs/img, refreshed on demand (see docs/viewer.md)
        page.screenshot(path=str(ROOT / "docs" / "img" / f"viewer-{size}.png"), full_page=size == "phone")
    # The ideal day side by side: beside the scene on wide screens, stacked under it on the phone.
    page.locator("#ideal-btn").click()
    page.locator("#split-btn").click()
    next_frame(page)
    next_frame(page)
    side = page.locator("#side").bounding_box()
    stage = page.locator("#stage").bounding_box()
    ideal = page.locator("#ideal-labels").bounding_box()
    if size == "phone":
        assert side["y"] >= stage["y"] + stage["height"] - 1  # the panel under the scene
        assert ideal["x"] == pytest.approx(stage["x"], abs=1)
        assert ideal["y"] > stage["y"] + stage["height"] / 3  # recording above, ideal below
    else:
        assert side["x"] >= stage["x"] + stage["width"] - 1  # the panel beside the scene
        assert ideal["x"] > stage["x"] + stage["width"] / 3
    check_layout(page, touch)
    if os.environ.get("TWIN_SCREENSHOTS") and size == "phone":
        page.locator("#stage").screenshot(path=str(ROOT / "docs" / "img" / "viewer-phone-ideal.png"))
    ctx.close()
    assert not errors, errors


def test_kpi_strip_figures_are_the_routes_and_jump_to_their_moment(page, viewer_url, shifts):
    k = httpx.get(f"{viewer_url}/api/kpis/{SITE}").json()
    page.goto(f"{viewer_url}/viewer/?site={SITE}&lang=en")
    wait_ready(page)
    page.wait_for_function("document.querySelector('#kpi-strip').dataset.ready === '1'")
    m3 = k["machines"]["M3"]
    util = page.locator("#kpi-strip .kpi-fig[data-machine='M3'][data-kpi='util'] .kpi-value").inner_text()
    assert util == f"{round(m3['utilisation'] * 100)}%"
    spark = "#kpi-strip .kpi-fig[data-machine='M3'][data-kpi='util'] svg.spark polyline"
    assert page.locator(spark).count() == 1
    # The longest stop: the replay jumps to its start, on that machine's camera.
    page.locator("#kpi-strip .kpi-fig[data-machine='M3'][data-kpi='stop']").click()
    assert next_frame(page)["t"] == pytest.approx(m3["longest_stop"]["start"], abs=0.01)
    assert "cam=machine%3AM3" in page.url or "cam=machine:M3" in page.url
    # Changeovers: each tap goes to the machine's next changeover.
    starts = page.evaluate("""(async () => {
      const tl = await import('./src/timeline.js');
      return tl.changeoverStarts(window.__replay.lanes().machines[0].tasks); })()""")
    assert len(starts) == m3["changeover_count"] >= 2
    for s in starts[:2]:
        page.locator("#kpi-strip .kpi-fig[data-machine='M3'][data-kpi='changeovers']").click()
        assert next_frame(page)["t"] == pytest.approx(s, abs=0.01)
    # The shift summary: a worker's task figure jumps to their longest task of that kind.
    page.locator("#summary-btn").click()
    fig = page.locator(".sum-block[data-worker='W1'] .kpi-fig").first
    task = fig.get_attribute("data-task")
    fig.click()
    assert page.locator("#summary").is_hidden()
    longest = k["workers"]["W1"]["by_task"][task]["longest"]
    assert next_frame(page)["t"] == pytest.approx(longest["start"], abs=0.01)
    assert page.locator(".trend-day").count() == len(k["trend"]) == 3


def test_a_whole_8_hour_shift_plays_in_under_a_minute(page, viewer_url, shifts):
    w = shifts.last["window"]
    assert w["end"] - w["start"] >= 8 * 3600 - 1
    page.goto(f"{viewer_url}/viewer/?site={SITE}&lang=en&speed=600&skip=1")
    wait_ready(page)
    assert page.locator("#skip-btn").get_attribute("aria-pressed") == "true"
    assert page.locator("#speed-bar [data-speed='600']").get_attribute("aria-pressed") == "true"
    t0 = time.monotonic()
    perf0 = page.evaluate("performance.now()")
    page.locator("#play-btn").click()
    page.wait_for_function("!window.__replay.clock.playing", timeout=90000)
    wall = time.monotonic() - t0
    page_wall = (page.evaluate("window.__replay.stats.lastFrame.perf") - perf0) / 1000
    assert page.evaluate("window.__replay.clock.time(performance.now())") == pytest.approx(w["end"])
    assert wall <= 60 and page_wall <= 60, (wall, page_wall)
    frames = page.evaluate("window.__replay.stats.frames")
    assert frames > 100  # it was drawn, not skipped to the end


def test_skip_idle_jumps_over_quiet_stretches(page, viewer_url, shifts):
    page.goto(f"{viewer_url}/viewer/?site={SITE}&lang=en&speed=10")
    wait_ready(page)
    w = shifts.last["window"]
    rates = {}
    for skip in (False, True):
        page.evaluate(f"window.__replay.setSkip({str(skip).lower()}); window.__replay.seek({w['start']})")
        page.evaluate("window.__replay.play()")
        a = next_frame(page)
        time.sleep(4)
        b = next_frame(page)
        page.evaluate("window.__replay.pause()")
        rates[skip] = (b["t"] - a["t"]) / ((b["perf"] - a["perf"]) / 1000)
    assert rates[False] == pytest.approx(10, rel=0.1)
    assert rates[True] > 1.5 * rates[False], rates
    assert page.evaluate("window.__replay.stats.skips") > 0
    assert "skip=1" in page.url


@pytest.fixture(scope="module")
def uncertain_url(shifts, tmp_path_factory):
    """The last day again, with W1's location uncertain (confidence 0.3) for its first hour."""
    d = tmp_path_factory.mktemp("uncertain")
    shutil.copy(shifts.dir / "site.yaml", d / "site.yaml")
    doc = json.loads((shifts.dir / "day2.json").read_text())
    t0 = doc["window"]["start"]
    for z in doc["worker_zones"]:
        z["confidence"] = 0.3 if z["worker"] == "W1" and z["start"] < t0 + 3600 else 0.95
    (d / "day.json").write_text(json.dumps(doc))
    app = create_viewer_app(
        FileReplayProvider(d), tmp_path_factory.mktemp("uncertain-data"), build_scenes=False
    )
    with serve(app) as url:
        yield url, doc


def _zone(doc: dict[str, Any], worker: str, low: bool) -> dict[str, Any]:
    t0 = doc["window"]["start"]
    return max(
        (
            z
            for z in doc["worker_zones"]
            if z["worker"] == worker and z["zone"] != "none" and (z["start"] < t0 + 3600) == low
        ),
        key=lambda z: z["end"] - z["start"],
    )


def test_timeline_legend_zoom_pan_tooltips_and_uncertain_location(page, uncertain_url):
    import io

    from PIL import Image

    url, doc = uncertain_url
    page.goto(f"{url}/viewer/?site={SITE}&lang=en")
    wait_ready(page)
    keys = page.locator("#legend .legend-item").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys == [
        "jig_change",
        "tool_change",
        "program_input",
        "material_setting",
        "running",
        "stopped",
        "break",
        "low",
        "note",
    ]

    def span() -> float:
        return page.evaluate("(() => { const v = window.__replay.timeline().view; return v.end-v.start })()")

    full = span()
    page.locator("#zoom-in").click()
    assert span() == pytest.approx(full / 2)
    page.locator("#pan-right").click()
    v = page.evaluate("window.__replay.timeline().view")
    assert v["end"] == pytest.approx(doc["window"]["end"], abs=1) or v["start"] > doc["window"]["start"]
    page.locator("#zoom-fit").click()
    assert span() == pytest.approx(full)
    # The wheel zooms around the pointer; a two-finger pinch too.
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 60)
    page.mouse.wheel(0, -400)
    assert span() < full * 0.6
    page.locator("#zoom-fit").click()
    page.evaluate("""(() => {
      const c = document.querySelector('#timeline');
      const r = c.getBoundingClientRect();
      const ev = (type, id, x) => c.dispatchEvent(new PointerEvent(type, { pointerId: id,
        pointerType: 'touch', clientX: r.left + x, clientY: r.top + 60, bubbles: true,
        isPrimary: id === 1 }));
      ev('pointerdown', 1, 400); ev('pointerdown', 2, 500);
      ev('pointermove', 1, 300); ev('pointermove', 2, 600);
      window.dispatchEvent(new PointerEvent('pointerup', { pointerId: 1 }));
      window.dispatchEvent(new PointerEvent('pointerup', { pointerId: 2 }));
    })()""")
    assert span() == pytest.approx(full / 3, rel=0.05)
    page.locator("#zoom-fit").click()
    # Hover a worker's zone: task or zone, worker, start, duration, confidence.
    rows = page.evaluate("window.__replay.timeline().rows.map(r => [r.kind, r.id, r.y, r.h])")
    w1 = next(r for r in rows if r[0] == "worker" and r[1] == "W1")

    def hover(z: dict[str, Any]) -> str:
        x = page.evaluate(f"window.__replay.timelineX({(z['start'] + z['end']) / 2})")
        page.mouse.move(x, box["y"] + w1[2] + 6)
        page.wait_for_selector("#timeline-tip:not([hidden])")
        return page.locator("#timeline-tip").inner_text()

    low, sure = _zone(doc, "W1", True), _zone(doc, "W1", False)
    tip = hover(low)
    assert "Operator A" in tip and "Confidence" in tip and "30% (Location uncertain)" in tip
    assert re.search(r"Start\s+\d{2}:\d{2}:\d{2}", tip) and re.search(r"Duration\s+[\d.]+ min", tip)
    assert "95%" in hover(sure)
    # Uncertain stretches are drawn hatched: dark stripes where a sure zone is one flat colour.
    png = page.locator("#timeline").screenshot()
    img = Image.open(io.BytesIO(png)).convert("RGB")

    def colours(z: dict[str, Any]) -> int:
        x0 = page.evaluate(f"window.__replay.timeline().x({z['start']})") + 3
        x1 = page.evaluate(f"window.__replay.timeline().x({z['end']})") - 3
        y = w1[2] + 8
        crop = img.crop((int(x0), int(y), int(max(x0 + 4, x1)), int(y + 10)))
        return len(crop.getcolors(1 << 16) or [])

    assert colours(low) > colours(sure) + 2
    page.mouse.move(5, 5)


def _ascii_only_labels(page: Any, ids: set[str]) -> list[str]:
    texts = page.evaluate("""() => {
      const out = [];
      const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const el = n.parentElement;
        if (!el || el.closest('[hidden], script, style')) continue;
        if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
        const s = n.textContent.trim();
        if (s) out.push(s);
      }
      for (const el of document.querySelectorAll('[title], [placeholder], [aria-label]')) {
        if (el.closest('[hidden]') || !el.offsetParent) continue;
        for (const a of ['title', 'placeholder']) if (el.getAttribute(a)) out.push(el.getAttribute(a));
      }
      for (const o of document.querySelectorAll('select option')) {
        if (o.closest('select').offsetParent) out.push(o.textContent);
      }
      for (const l of window.__replay.timeline().labelRects()) out.push(l.text);
      return out;
    }""")
    bad = []
    for s in texts:
        if not re.search(r"[A-Za-z]", s) or re.search(r"[^\x00-\x7f]", s):
            continue  # numbers and times, or Japanese in it
        if all(w in ids for w in re.findall(r"[A-Za-z][A-Za-z0-9_.-]*", s)):
            continue  # machine, worker and site ids
        bad.append(s)
    return bad


def test_no_ascii_only_label_on_the_japanese_screen(page, viewer_url, shifts):
    ids = {"M3", "M7", "M10", "W1", "W2", SITE}
    page.goto(f"{viewer_url}/viewer/?site={SITE}&t={busy_moment(shifts.last):.0f}")
    wait_ready(page)
    page.wait_for_function("document.querySelector('#kpi-strip').dataset.ready === '1'")
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.locator("#title").inner_text() == "作業リプレイ · 富山 機械加工工場（実証）"
    names = page.locator("#scene-labels .worker-label .name").all_inner_texts()
    assert sorted(names) == ["作業者A", "作業者B"]
    day = page.locator("#shift-select option:checked").inner_text()
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日\(.\)", day), day
    assert page.locator("#speed-bar [data-speed='600']").inner_text() == "600倍"
    # Everything on screen, the ideal day with its reasons, the summary and a tooltip included.
    page.locator("#ideal-btn").click()
    last = max((t for t in shifts.last["tasks"] if t["machine"] == "M3"), key=lambda t: t["start"])
    page.mouse.click(
        page.evaluate(f"window.__replay.timelineX({(last['start'] + last['end']) / 2})"),
        page.locator("#timeline").bounding_box()["y"] + 26 + 40 + 24,
    )
    page.locator("#ideal-edit [data-resize='-60']").click()
    assert page.locator("#ideal-reasons li").count() >= 1
    assert "分" in page.locator("#ideal-gain").inner_text()
    assert _ascii_only_labels(page, ids) == []
    page.locator("#summary-btn").click()
    assert _ascii_only_labels(page, ids) == []
    page.locator("#summary-close").click()
    box = page.locator("#timeline").bounding_box()
    x = page.evaluate(f"window.__replay.timelineX({(last['start'] + last['end']) / 2})")
    page.mouse.move(x, box["y"] + 26 + 10)
    page.wait_for_selector("#timeline-tip:not([hidden])")
    assert _ascii_only_labels(page, ids) == []
    # The same check catches English left over: switch to English and it finds plenty.
    page.locator("#lang-btn").click()
    assert len(_ascii_only_labels(page, ids)) > 10


def test_screenshots_in_the_docs_are_there():
    doc = (ROOT / "docs" / "viewer.md").read_text()
    for size in SIZES:
        assert (ROOT / "docs" / "img" / f"viewer-{size}.png").is_file()
        assert f"img/viewer-{size}.png" in doc
