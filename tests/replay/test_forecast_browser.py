"""The forecast where the supervisor looks: the viewer on the twin server, in real Chromium.

At a moment of a replay, the side panel says per machine "ends ~10:42 (10:35–10:55)" (the
same as the API for that minute), the operator's next hour and the shift end; the timeline has
a forecast lane under each machine; scrubbing to another moment forecasts that moment; the
first day says it has no history; live mode shows the forecast the server pushes; ja/en.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from viewer_harness import ROOT, serve, wait_ready

pytestmark = pytest.mark.browser
DAYS = (dt.date(2026, 11, 20), dt.date(2026, 11, 23), dt.date(2026, 11, 24))
EN_EVENT = re.compile(
    r"^(ends|runs again) ~\d\d:\d\d \(\d\d:\d\d–(\d\d:\d\d|\?)\)$"
    r"|after the shift|state unknown"
)
JA_EVENT = re.compile(r"^(終了|再開) ~\d\d:\d\d \(\d\d:\d\d–(\d\d:\d\d|\?)\)$|シフト後|状態不明")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, pilot_site):
    from twin_server.ingest.publish import frame_to_wire
    from twin_server.simulate import SimParams, simulate
    from twin_server.simulate.core import default_start
    from twin_server.store.journal import Journal

    d = tmp_path_factory.mktemp("forecast-viewer")
    journal = Journal(d / "journal.sqlite")
    params = SimParams(run_model="parts", shop_seed=5, run_median_min=30.0, rssi=False)
    for k, day in enumerate(DAYS):
        sim = simulate(pilot_site, 2.0, 60 + k, start=default_start(pilot_site, day), params=params)
        wire = [
            dataclasses.replace(r, seq=r.seq + k * 10_000_000)
            for r in frame_to_wire(sim.readings, pilot_site)
        ]
        journal.write_batch([(r, 0) for r in wire])
    journal.close()
    return d


@pytest.fixture(scope="module")
def server(recorded, pilot_site):
    from twin_server.api.app import create_app
    from twin_server.settings import Settings

    settings = Settings(
        site=pilot_site,
        data_dir=recorded,
        broker_host=None,
        clock_tolerance_s=None,
        analysis_interval_s=0.5,
        forecast_interval_s=0.5,
        site_path=ROOT / "examples" / "pilot_site.yaml",
    )
    with serve(create_app(settings), lifespan="on") as url:
        yield url


def _at(site, day, hh, mm):
    return dt.datetime.combine(day, dt.time(hh, mm), ZoneInfo(site.timezone)).timestamp()


def _panel(page):
    return page.evaluate("""() => [...document.querySelectorAll('#forecast-panel .fc-machines li')]
        .map(li => ({
        machine: li.dataset.machine, text: li.querySelector('.fc-end').textContent,
        why: [...li.querySelectorAll('.fc-why')].map(x => x.textContent)}))""")


def _api(server, site, at):
    with urllib.request.urlopen(f"{server}/api/sites/{site}/forecast?at={at}", timeout=120) as r:
        return json.load(r)


def _hm(t, tz):
    return dt.datetime.fromtimestamp(t, ZoneInfo(tz)).strftime("%H:%M")


def test_replay_moment_panel_lane_scrub_and_language(server, browser, pilot_site):
    site = pilot_site.site
    at = _at(pilot_site, DAYS[2], 9, 40)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/viewer/?site={site}&day=2026-11-24&t={at + 20}&lang=en")
    wait_ready(page, timeout_ms=120000)
    page.evaluate("window.__replay.pause()")
    page.wait_for_selector(f'#forecast-panel[data-ready="1"][data-at="{at:.0f}"]', timeout=120000)
    rows = _panel(page)
    assert [r["machine"] for r in rows] == ["M3", "M7", "M10"]
    doc = _api(server, site, at)
    for r, m in zip(rows, doc["machines"], strict=True):
        assert EN_EVENT.search(r["text"]), r
        if m["p50"] is not None:  # the page says what the API says for that minute
            assert _hm(m["p50"], pilot_site.timezone) in r["text"]
            assert _hm(m["p10"], pilot_site.timezone) in r["text"]
    panel = page.inner_text("#forecast-panel")
    assert "Operator's next hour" in panel and "By the shift end 17:30" in panel
    assert "learnt from 2 earlier days" in panel
    queue = page.evaluate(
        "[...document.querySelectorAll('#forecast-panel .fc-queue li[data-machine]')]"
        ".map(li => [li.dataset.machine, li.textContent])"
    )
    assert [m for m, _ in queue] == [q["machine"] for q in doc["queue"]]
    for (_m, text), q in zip(queue, doc["queue"], strict=True):
        assert _hm(q["need_at"], pilot_site.timezone) in text
        assert re.search(r"will wait ~\d+ min for the operator at|needs the operator at", text), text
    # the timeline: a forecast lane under each machine, drawn from the moment on
    rows = page.evaluate(
        "window.__replay.timeline().rows.filter(r => r.kind === 'forecast')"
        ".map(r => ({id: r.id, at: r.at, n: r.lane ? r.lane.lane.length : 0,"
        " text: r.text}))"
    )
    assert [r["id"] for r in rows] == ["M3", "M7", "M10"]
    assert all(r["at"] == at and r["n"] >= 1 and EN_EVENT.search(r["text"]) for r in rows), rows
    labels = [x["text"] for x in page.evaluate("window.__replay.timeline().labelRects()")]
    assert {"M3 forecast", "M7 forecast", "M10 forecast"} <= set(labels)
    # the panel says what the lane's colours and its bracket mean
    key = page.inner_text("#forecast-panel .fc-key")
    assert "Forecast:" in key and "waiting" in key and "minor fix" in key and "median, 80 %" in key
    assert "most likely state" in page.get_attribute('#forecast-panel [data-key="forecast-waiting"]', "title")
    # a pixel of the lane just after the moment is a lane colour, not the row's background
    px = page.evaluate(f"""() => {{
        const tv = window.__replay.timeline();
        const row = tv.rows.find(r => r.kind === 'forecast' && r.id === 'M3');
        const x = Math.round((tv.x({at}) + 8) * tv.dpr), y = Math.round((row.y + row.h / 2) * tv.dpr);
        return [...tv.off.getContext('2d').getImageData(x, y, 1, 1).data];
    }}""")
    assert px[:3] != [251, 248, 242] and px[:3] != [255, 255, 255], px
    # scrub to another moment: that moment is forecast
    later = _at(pilot_site, DAYS[2], 10, 7)
    page.evaluate(f"window.__replay.seek({later + 30})")
    page.wait_for_selector(f'#forecast-panel[data-ready="1"][data-at="{later:.0f}"]', timeout=120000)
    assert page.evaluate("window.__replay.forecast().at") == later
    # Japanese
    page.click("#lang-btn")
    page.wait_for_function("document.documentElement.lang === 'ja'")
    for r in _panel(page):
        assert JA_EVENT.search(r["text"]), r
    panel = page.inner_text("#forecast-panel")
    assert "作業者の次の1時間" in panel and "シフト終了 17:30 まで" in panel
    labels = [x["text"] for x in page.evaluate("window.__replay.timeline().labelRects()")]
    assert "M3 予測" in labels
    key = page.inner_text("#forecast-panel .fc-key")
    assert "予測:" in key and "作業者待ち" in key and "Forecast" not in key
    Path(ROOT / "docs" / "img").mkdir(exist_ok=True)
    page.click("#lang-btn")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.screenshot(path=str(ROOT / "docs" / "img" / "viewer-forecast.png"))
    assert not errors, errors
    page.close()


def test_first_day_says_it_has_no_history(server, browser, pilot_site):
    at = _at(pilot_site, DAYS[0], 9, 30)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server}/viewer/?site={pilot_site.site}&day=2026-11-20&t={at}&lang=en")
    wait_ready(page, timeout_ms=120000)
    page.evaluate("window.__replay.pause()")
    page.wait_for_selector(f'#forecast-panel[data-ready="1"][data-at="{at:.0f}"]', timeout=120000)
    assert "no history yet (first day)" in page.inner_text("#forecast-panel .fc-cold")
    assert "learnt from 0 earlier days" in page.inner_text("#forecast-panel")
    for r in _panel(page):
        assert EN_EVENT.search(r["text"]), r
    assert page.locator("#forecast-panel .fc-machines li.cold").count() == 3
    page.close()


def test_live_view_shows_the_pushed_forecast(server, browser, pilot_site):
    """Live: the server forecasts after its analysis of the day being recorded and pushes it."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server}/viewer/?site={pilot_site.site}&live=1&lang=ja")
    wait_ready(page, timeout_ms=120000)
    page.wait_for_function(
        "window.__replay.forecast() && window.__replay.forecast().day === '2026-11-24'", timeout=180000
    )
    doc = page.evaluate("window.__replay.forecast()")
    # the live forecast is made at the newest reading, not at a whole minute of a replay
    end = _at(pilot_site, DAYS[2], 10, 30)
    assert end - 5 <= doc["at"] <= end + 1
    assert doc["history_days"] == 2
    page.wait_for_selector('#forecast-panel[data-ready="1"]')
    # the timeline reaches past the data to show the forecast's hour
    assert page.evaluate("window.__replay.timeline().data.lanes.end") >= doc["at"] + 3600
    for r in _panel(page):
        assert JA_EVENT.search(r["text"]), r
    assert page.evaluate("window.__replay.forecastFetches()") <= 1  # the newest once, then the pushes
    # a pushed forecast (as /ws/live frames it) replaces the shown one
    page.evaluate("""() => { const d = structuredClone(window.__replay.forecast()); d.at += 60;
        d.machines[0].p50 = d.at + 600; d.machines[0].p10 = d.at + 300; d.machines[0].p90 = d.at + 900;
        d.machines[0].event = 'run_end';
        window.__replay.liveMessage({type: 'forecast', day: d.day, forecast: d}); }""")
    page.wait_for_selector(f'#forecast-panel[data-at="{doc["at"] + 60}"]')
    first = _panel(page)[0]["text"]
    assert first.startswith("終了 ~") and _hm(doc["at"] + 660, pilot_site.timezone) in first
    page.close()
