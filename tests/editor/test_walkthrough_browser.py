"""The hardware guide's walkthrough, driven in Chromium: from an empty site to the pilot's layout.

The server starts with ``--new-site`` semantics (no site file yet) on a real mosquitto; three
simulated Pis and a locator say hello. The test loads the floor plan, sets its scale, draws
the floor, 3 machines bound to their Pis, 3 zones, 3 receivers and the markings, fills in the
site's name, shift and workers, and saves. The saved file must equal ``examples/pilot_site.yaml``
in meaning (every coordinate within 5 cm) and validate; the clicks and keystrokes are counted
(target < 150). ``EDITOR_SHOTS=DIR`` keeps the tablet-size screenshots of each step (the guide's
come from here: ``EDITOR_SHOTS=hardware/editor-walkthrough``).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from editor_helpers import Actions, open_editor, plan_screen, publish_pis, screen, served
from viewer_harness import serve  # noqa: F401  (the harness module, for its sys.path entry)

from twin_server.api.app import create_app
from twin_server.editor.reload import empty_site
from twin_server.settings import Settings
from twin_server.site import load_site, parse_site

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "examples" / "pilot_floor_plan.png"
PILOT = ROOT / "examples" / "pilot_site.yaml"
ORIGIN_PX = (90, 690)  # scripts/draw_floor_plan.py: floor (0, 0), 60 px per metre
PX_PER_M = 60
TOL_M = 0.05


def close(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between two plain structures; numbers may differ by ``TOL_M``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in set(a) ^ set(b)]
        for k in set(a) & set(b):
            out += close(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in close(x, y, f"{path}[{i}]")]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return [] if math.isclose(a, b, abs_tol=TOL_M) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def test_walkthrough_draws_the_pilot_in_under_150_actions(page, tmp_path, mosquitto):
    site_id = f"toyama-pilot-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "site" / "pilot.yaml"
    path.parent.mkdir()
    app = create_app(
        Settings(
            site=empty_site(site_id),
            data_dir=tmp_path / "data",
            broker_host=mosquitto.host,
            broker_port=mosquitto.port,
            client_id=f"{site_id}-server",
            site_path=path,
        )
    )
    shots_env = os.environ.get("EDITOR_SHOTS")
    shots = Path(shots_env) if shots_env else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with served(app) as url:
        publish_pis(mosquitto.host, mosquitto.port, site_id)
        deadline = time.monotonic() + 10
        while len(app.state.twin.journal.dead_letters(limit=100)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        t_start = time.monotonic()
        open_editor(page, url)
        page.wait_for_function("window.__editor.devices.length >= 4")
        act = Actions(page, shots)
        act.step("empty-site")

        # 1. The floor plan, and its scale from the 16 m back wall (wall to wall).
        act.pick_file('[data-tool="plan"]', PLAN)
        page.wait_for_function(
            "window.__editor.planImg && window.__editor.lines && window.__editor.tool === 'scale'"
        )
        act.step("plan-loaded")
        wall_y = ORIGIN_PX[1] - 5 * PX_PER_M
        act.tap(*plan_screen(page, ORIGIN_PX[0] + 2, wall_y))
        act.tap(*plan_screen(page, ORIGIN_PX[0] + 16 * PX_PER_M - 3, wall_y))
        page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-distance'")
        act.type("16")
        act.step("scale")
        act.press("Enter")
        page.wait_for_function("window.__editor.tool === 'floor'")

        # 2. The floor outline, corner to corner: x = 0, y = 0 at its lower left.
        act.drag(
            plan_screen(page, *ORIGIN_PX),
            plan_screen(page, ORIGIN_PX[0] + 16 * PX_PER_M, ORIGIN_PX[1] - 10 * PX_PER_M),
        )
        page.wait_for_function("window.__editor.tool === 'machine'")
        act.step("floor")

        # 3. Machines: drag the outline on the plan, tap its Pi; the first one's names typed.
        machines = {"M3": ("pi-m3", 3.0), "M7": ("pi-m7", 8.0), "M10": ("pi-m10", 13.0)}
        for k, (mid, (pi, cx)) in enumerate(machines.items()):
            act.drag(screen(page, cx - 1.2, 5.7), screen(page, cx + 1.2, 7.3))
            page.wait_for_function(f"(window.__editor.doc.machines || []).length === {k + 1}")
            chip = f'#ed-panel button.ed-chip[data-device="{pi}"]'
            page.wait_for_selector(chip)
            act.click(chip)
            page.wait_for_function(
                f"document.getElementById('ed-f-id') && document.getElementById('ed-f-id').value === '{mid}'"
            )
            if k == 0:
                page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-f-name'")
                act.type("NC lathe No. 3")
                act.click("#ed-f-name-ja")
                act.type("NC旋盤 3号機")
        act.step("machines")

        # 4. Zones: each goes to the nearest machine without one.
        act.click('[data-tool="zone"]')
        for cx in (3.0, 8.0, 13.0):
            act.drag(screen(page, cx - 1.4, 3.6), screen(page, cx + 1.4, 5.6))
        act.step("zones")

        # 5. Receivers: tap where each Pi hangs; the Pi's own receiver id and machine are taken.
        act.click('[data-tool="receiver"]')
        for cx in (3.0, 8.0, 13.0):
            act.tap(*screen(page, cx, 5.4))
        act.step("receivers")

        # 6. Markings: two aisle lines (the second label from the recent ones) and the rack area.
        act.click('[data-tool="line"]')
        act.drag(screen(page, 0.5, 3.2), screen(page, 15.5, 3.2))
        page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-f-label'")
        act.type("aisle edge")
        act.drag(screen(page, 0.5, 1.0), screen(page, 15.5, 1.0))
        act.click('#ed-recent-labels button:has-text("aisle edge")')
        act.click('[data-tool="area"]')
        act.drag(screen(page, 0.5, 8.2), screen(page, 3.5, 9.5))
        page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-f-label'")
        act.type("material rack")
        act.click('[data-color="#f5d300"]')
        act.step("markings")

        # 7. The site: name, shift, workers from the beacons heard, the locator.
        act.click('[data-tool="site"]')
        page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-s-name'")
        act.type("Toyama machining shop (pilot)")
        act.click("#ed-s-name-ja")
        act.type("富山 機械加工工場（実証）")
        act.click("#ed-s-start")
        act.type("0830")
        act.click("#ed-s-end")
        act.type("1730")
        act.click('[data-beacon="b-01"]')
        page.wait_for_function("document.activeElement && document.activeElement.id === 'ed-w-name-0'")
        act.type("Operator A")
        act.click("#ed-w-name-ja-0")
        act.type("作業者A")
        act.click('[data-beacon="b-02"]')  # its names are suggested: Operator B, 作業者B
        act.click('[data-locator="tagsys"]')
        act.step("site")

        # 8. Save: the server runs it at once.
        page.wait_for_function(
            "window.__editor.problems.length === 0 && window.__editor.warnings.length === 0"
        )
        act.click("#ed-save")
        page.wait_for_function("window.__editor.dirty === false && window.__editor.lastSave")
        elapsed_s = time.monotonic() - t_start
        act.step("saved")
        page.locator("#ed-3d").click()
        page.wait_for_function("window.__editor.preview && window.__editor.preview.stats.machines === 3")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"{len(act.steps) + 1:02d}-3d-preview.png"))

    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    site = load_site(path)  # validates
    assert site.site == site_id and app.state.twin.settings.site.machine_ids == ["M3", "M7", "M10"]
    want = parse_site(yaml.safe_load(PILOT.read_text(encoding="utf-8"))).model_dump(mode="json")
    got = parse_site({**saved, "site": "toyama-pilot"}).model_dump(mode="json")
    assert got.pop("plan") == {
        "image": saved["plan"]["image"],
        "m_per_px": pytest.approx(1 / PX_PER_M, rel=1e-6),
        "origin_px": [ORIGIN_PX[0], ORIGIN_PX[1]],
    }
    want.pop("plan")
    diffs = close(want, got)
    assert diffs == [], diffs
    print(
        f"\nwalkthrough: {act.clicks} clicks + {act.keys} keystrokes = {act.total} actions, "
        f"{elapsed_s:.1f} s driven by Playwright"
    )
    for name, c, k in act.steps:
        print(f"  {name:14s} {c:3d} clicks {k:3d} keys")
    assert act.total < 150
