"""The site editor in Chromium: bad input, live messages by the shape, conflicts, import, 3D, touch."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from editor_helpers import Actions, make_app, open_editor, plan_screen, screen, served
from PIL import Image

from twin_server.site import load_site

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "examples" / "pilot_floor_plan.png"


@pytest.fixture
def server(site_dir):
    app = make_app(site_dir / "site.yaml", site_dir / "data")
    with served(app) as url:
        yield url


def _msg(page) -> str:
    return page.locator("#ed-msg").inner_text()


def test_a_plan_that_is_not_an_image_and_a_zero_or_negative_scale_are_refused(
    page, server, site_dir, tmp_path
):
    open_editor(page, server)
    notes = tmp_path / "plan.png"
    notes.write_text("3 lathes, 2 operators, aisle 2 m\n")  # a text file named like an image
    Actions(page).pick_file('[data-tool="plan"]', notes)
    page.wait_for_function("document.getElementById('ed-msg').className === 'bad'")
    assert "not a floor-plan image" in _msg(page) and "text, not an image" in _msg(page)
    assert page.evaluate("window.__editor.doc.plan") is None
    Actions(page).pick_file('[data-tool="plan"]', PLAN)
    page.wait_for_function("window.__editor.planImg && window.__editor.tool === 'scale'")
    page.mouse.click(*plan_screen(page, 92, 400))
    page.mouse.click(*plan_screen(page, 1047, 400))
    for bad in ("0", "-16", "abc"):
        page.fill("#ed-distance", bad)
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('ed-msg').textContent.includes('greater than 0')")
        assert page.evaluate("window.__editor.doc.plan.m_per_px") is None
        page.evaluate("document.getElementById('ed-msg').textContent = ''")
    page.fill("#ed-distance", "16")
    page.keyboard.press("Enter")
    assert page.evaluate("window.__editor.doc.plan.m_per_px") == pytest.approx(1 / 60, rel=1e-6)
    assert page.evaluate("window.__editor.tool") == "machine"  # the pilot has its floor already


def test_messages_appear_next_to_their_shape_and_overlapping_zones_need_confirmation(page, server, site_dir):
    open_editor(page, server)
    before = (site_dir / "site.yaml").read_bytes()
    # Select M3 and give it a zero-width body: the validator's message sits by the machine.
    page.mouse.click(*screen(page, 3.0, 6.8))
    page.wait_for_selector("#ed-f-w")
    page.fill("#ed-f-w", "0")
    note = page.locator('.ed-note.bad[data-path="machines[0].footprint"]')
    note.wait_for(timeout=10000)
    assert "footprint sides must be > 0 m" in note.inner_text()
    box = note.bounding_box()
    mx, my = screen(page, 3.0, 6.5)
    assert abs(box["x"] + box["width"] / 2 - mx) < 40 and 0 < box["y"] - my < 80
    page.locator("#ed-save").click()
    page.wait_for_function("document.getElementById('ed-msg').textContent.includes('Fix the problems')")
    page.fill("#ed-f-w", "2.4")
    page.wait_for_selector(".ed-note.bad", state="detached")
    # Drag M7's zone over M3's: a warning by the zone, and Save asks first.
    page.locator('[data-tool="select"]').click()
    a = screen(page, 8.0, 4.6)
    b = screen(page, 5.6, 4.6)
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=6)
    page.mouse.up()
    warn = page.locator('.ed-note.warn[data-path="machines[1].zone"]')
    warn.wait_for(timeout=10000)
    assert "overlaps the zone of M3" in warn.inner_text()
    page.locator("#ed-save").click()
    page.wait_for_selector("#ed-save-anyway")
    assert "warnings" in _msg(page)
    assert (site_dir / "site.yaml").read_bytes() == before  # not saved silently
    page.locator("#ed-save-anyway").click()
    page.wait_for_function("window.__editor.dirty === false")
    zone = load_site(site_dir / "site.yaml").machine("M7").zone
    assert zone[0] == pytest.approx((4.2, 3.6), abs=0.051)
    assert "# The Toyama pilot" in (site_dir / "site.yaml").read_text()


def test_two_editors_saving_at_once_the_second_is_told_and_loses_nothing(browser, server, site_dir):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    a, b = ctx.new_page(), ctx.new_page()
    try:
        for p in (a, b):
            open_editor(p, server)
        a.evaluate("window.__editor.doc.machines[0].position = [2.5, 6.5]; window.__editor.dirty = true")
        b.evaluate("window.__editor.doc.machines[2].position = [13.5, 6.5]; window.__editor.dirty = true")
        a.locator("#ed-save").click()
        a.wait_for_function("window.__editor.dirty === false")
        b.locator("#ed-save").click()
        b.wait_for_selector("#ed-reload")
        assert "Someone else saved first" in b.locator("#ed-msg").inner_text()
        site = load_site(site_dir / "site.yaml")
        assert site.machine("M3").position == (2.5, 6.5) and site.machine("M10").position == (13.0, 6.5)
        b.locator("#ed-reload").click()
        b.wait_for_function("window.__editor.doc.machines[0].position[0] === 2.5")
        assert b.evaluate("window.__editor.doc.machines[2].position") == [13.0, 6.5]
        b.locator("#ed-undo").click()  # the page's own edit is one Undo away
        assert b.evaluate("window.__editor.doc.machines[2].position") == [13.5, 6.5]
        b.locator("#ed-history").click()
        b.wait_for_selector('#ed-history-list li[data-action="conflict"] [data-open-draft]')
    finally:
        ctx.close()


def test_contract_site_opens_and_a_plan_is_added_afterwards(page, tmp_path):
    d = tmp_path / "contract"
    d.mkdir()
    shutil.copy(ROOT / "examples" / "contract_site.yaml", d / "site.yaml")
    app = make_app(d / "site.yaml", d / "data")
    with served(app) as url:
        open_editor(page, url)
        assert page.evaluate("window.__editor.problems") == []
        m3 = page.locator('polygon.machine.implicit[data-id="M3"]')  # no position: drawn at its zone
        assert m3.count() == 1
        assert page.locator('circle.receiver[data-id="R3"]').count() == 1
        Actions(page).pick_file('[data-tool="plan"]', PLAN)
        page.wait_for_function("window.__editor.planImg && window.__editor.tool === 'scale'")
        page.mouse.click(*plan_screen(page, 92, 400))
        page.mouse.click(*plan_screen(page, 1047, 400))
        page.fill("#ed-distance", "16")
        page.keyboard.press("Enter")
        page.wait_for_function("window.__editor.tool === 'floor'")
        page.mouse.move(*plan_screen(page, 90, 690))
        page.mouse.down()
        page.mouse.move(*plan_screen(page, 1050, 90), steps=6)
        page.mouse.up()
        page.wait_for_function("window.__editor.tool === 'machine'")
        page.locator("#ed-save").click()
        page.wait_for_function(
            "window.__editor.lastSave || document.getElementById('ed-msg').className === 'bad'"
        )
        assert page.evaluate("window.__editor.dirty") is False, _msg(page)
    saved = yaml.safe_load((d / "site.yaml").read_text())
    site = load_site(d / "site.yaml")
    assert site.plan.m_per_px == pytest.approx(1 / 60, rel=1e-6) and site.plan.origin_px == (90.0, 690.0)
    assert site.floor == (16.0, 10.0) and (d / saved["plan"]["image"]).read_bytes() == PLAN.read_bytes()
    assert site.machine("M3").zone == [(0.0, 0.0), (2.0, 0.0), (2.0, 1.5), (0.0, 1.5)]  # untouched
    assert "# The minimal site file of docs/analyze-contract.md" in (d / "site.yaml").read_text()


def test_import_replaces_the_drawing_until_saved(page, server, site_dir):
    open_editor(page, server)
    with page.expect_file_chooser() as fc:
        page.locator('[data-tool="import"]').click()
    fc.value.set_files(str(ROOT / "examples" / "contract_site.yaml"))
    page.wait_for_function("window.__editor.doc.machines.length === 1")
    assert "Imported" in _msg(page) and "'demo'" in _msg(page)
    assert page.evaluate("window.__editor.doc.site") == "toyama-pilot"
    assert len(load_site(site_dir / "site.yaml").machines) == 3  # nothing saved yet
    page.locator("#ed-undo").click()
    assert page.evaluate("window.__editor.doc.machines.length") == 3


def test_a_prepared_glb_is_attached_and_shown_in_3d(page, server, site_dir, tmp_path):
    import trimesh

    glb = tmp_path / "lathe.glb"
    body = trimesh.creation.box(extents=[2.4, 1.7, 1.6])
    body.apply_translation([0, 0.85, 0])
    body.visual.face_colors = [40, 160, 60, 255]
    glb.write_bytes(body.export(file_type="glb"))
    open_editor(page, server)
    page.mouse.click(*screen(page, 8.0, 6.8))
    page.wait_for_selector("#ed-upload-model")
    with page.expect_file_chooser() as fc:
        page.locator("#ed-upload-model").click()
    fc.value.set_files(str(glb))
    page.wait_for_function("window.__editor.doc.machines[1].model === 'models/M7.glb'")
    page.locator("#ed-3d").click()
    page.wait_for_function(
        "window.__editor.preview && window.__editor.preview.stats.modelsLoaded === 1", timeout=20000
    )
    assert page.evaluate("window.__editor.preview.stats.modelErrors") == []
    shot = Image.open(io.BytesIO(page.locator("#ed-3d-canvas").screenshot())).convert("RGB")
    green = sum(1 for r, g, b in shot.get_flattened_data() if g > 110 and r < 90 and b < 100)
    assert green > 500, green  # the model's green body is drawn
    page.locator("#ed-save").click()
    page.wait_for_function("window.__editor.dirty === false")
    assert load_site(site_dir / "site.yaml").machine("M7").model == "models/M7.glb"


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 800, "height": 1280}])
def test_tablet_touch_targets_and_japanese(browser, server, viewport):
    ctx = browser.new_context(viewport=viewport)
    page = ctx.new_page()
    try:
        page.goto(f"{server}/editor/")
        page.wait_for_function("window.__editor && window.__editor.ready")
        assert page.evaluate("document.documentElement.lang") == "ja"  # the pilot's language
        assert page.locator('[data-tool="machine"]').inner_text() == "機械"
        assert page.locator("#ed-title").inner_text().startswith("レイアウト編集")
        page.mouse.click(*screen(page, 3.0, 6.8))
        page.wait_for_selector("[data-front]")
        boxes = page.evaluate(
            "[...document.querySelectorAll('.ed-tool, .ed-btn, .ed-chip, [data-front]')]"
            ".filter((e) => e.offsetParent).map((e) => { const r = e.getBoundingClientRect();"
            " return [e.textContent, r.width, r.height]; })"
        )
        small = [b for b in boxes if b[1] < 48 or b[2] < 48]
        assert boxes and not small, small
        plan = page.locator("#ed-svg").bounding_box()
        assert plan["width"] > 300 and plan["height"] > 300
    finally:
        ctx.close()
