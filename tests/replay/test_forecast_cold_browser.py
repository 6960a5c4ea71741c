"""Cold start where the supervisor looks: a machine never seen running, a worker with no history.

The pilot recorded over three days, but on the first two the Pi of M10 was not installed yet and
operator B (beacon b-02) was not on the site: on the third day M10 runs for the first time
and B does changeovers. At such moments the panel (real Chromium, through the twin server)
says why the range is wide, shows a range wider than the same moment forecast with the first two days
complete (M10 and B known), and shows no NaN / undefined and no page error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import urllib.request
from zoneinfo import ZoneInfo

import pytest
from viewer_harness import ROOT, serve, wait_ready

pytestmark = pytest.mark.browser
DAYS = (dt.date(2026, 11, 20), dt.date(2026, 11, 23), dt.date(2026, 11, 24))
PARAMS = {"run_model": "parts", "shop_seed": 5, "run_median_min": 30.0, "rssi": False}
EN_EVENT = re.compile(r"^(ends|runs again) ~\d\d:\d\d \(\d\d:\d\d–(\d\d:\d\d|\?)\)$|after the shift")
NEW_MACHINE, NEW_WORKER, NEW_BEACON = "M10", "W2", "b-02"


def _simulate(site, k, day):
    from twin_server.simulate import SimParams, simulate
    from twin_server.simulate.core import default_start

    return simulate(site, 2.0, 60 + k, start=default_start(site, day), params=SimParams(**PARAMS)).readings


def _absent(frame, site):
    """The day without M10's Pi and without operator B's beacon."""
    dev = next(m.device for m in site.machines if m.id == NEW_MACHINE)
    keep = ~(
        (frame["source"] == NEW_MACHINE)
        | ((frame["kind"] == "zone") & (frame["channel"].astype(str) == NEW_BEACON))
    )
    out = frame[keep]
    assert len(out) < len(frame) and dev  # something was left out
    return out


@pytest.fixture(scope="module")
def days(pilot_site):
    return [_simulate(pilot_site, k, day) for k, day in enumerate(DAYS)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, pilot_site, days):
    from twin_server.ingest.publish import frame_to_wire
    from twin_server.store.journal import Journal

    d = tmp_path_factory.mktemp("forecast-cold")
    journal = Journal(d / "journal.sqlite")
    for k, frame in enumerate(days):
        frame = _absent(frame, pilot_site) if k < 2 else frame
        wire = [dataclasses.replace(r, seq=r.seq + k * 10_000_000) for r in frame_to_wire(frame, pilot_site)]
        journal.write_batch([(r, 0) for r in wire])
    journal.close()
    return d


@pytest.fixture(scope="module")
def known(pilot_site, days):
    """The forecast at a moment of the third day by the pure functions, as if the newcomers were
    known: the first two days with nothing left out."""
    from twin_server.analysis import analyze
    from twin_server.forecast.service import forecast_result, records_of

    def history(frames):
        return [
            records_of(pilot_site, analyze(f, pilot_site), d.isoformat())
            for f, d in zip(frames, DAYS[:2], strict=True)
        ]

    full = history(days[:2])
    today = analyze(days[2], pilot_site)
    return lambda at: forecast_result(pilot_site, today, full, at)


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


def _api(server, site, at):
    with urllib.request.urlopen(f"{server}/api/sites/{site}/forecast?at={at:.0f}", timeout=120) as r:
        return json.load(r)


def _moment(server, site, tz, want):
    """The first whole minute of the third day (from 08:31) where ``want(machine doc)`` holds."""
    t0 = dt.datetime.combine(DAYS[2], dt.time(8, 31), ZoneInfo(tz)).timestamp()
    for k in range(0, 118):
        doc = _api(server, site, t0 + 60 * k)
        hit = next((m for m in doc["machines"] if want(m)), None)
        if hit is not None:
            return doc, hit
    raise AssertionError("no such moment on the third day")


def _show(browser, server, site, at):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/viewer/?site={site}&day={DAYS[2].isoformat()}&t={at + 20}&lang=en")
    wait_ready(page, timeout_ms=120000)
    page.evaluate("window.__replay.pause()")
    page.wait_for_selector(f'#forecast-panel[data-ready="1"][data-at="{at:.0f}"]', timeout=120000)
    return page, errors


def _row(page, machine):
    li = page.locator(f'#forecast-panel .fc-machines li[data-machine="{machine}"]')
    return {
        "text": li.locator(".fc-end").text_content(),
        "cold": "cold" in (li.get_attribute("class") or ""),
        "why": li.locator(".fc-why").all_text_contents(),
        "all": li.inner_text(),
    }


def _no_nonsense(page, errors):
    panel = page.inner_text("#forecast-panel")
    for bad in ("NaN", "undefined", "null", "Infinity"):
        assert bad not in panel, panel
    assert not errors, errors


def test_machine_never_seen_running(server, browser, pilot_site, known):
    site, tz = pilot_site.site, pilot_site.timezone
    doc, m = _moment(
        server,
        site,
        tz,
        lambda m: (
            m["machine"] == NEW_MACHINE
            and m["event"] == "run_end"
            and "machine_never_seen_running" in m["cold"]
            and m["p90"] is not None
        ),
    )
    at = doc["at"]
    # wider than the same moment with M10's earlier days known
    seen = known(at).machine(NEW_MACHINE)
    assert seen.event == "run_end" and "machine_never_seen_running" not in seen.cold
    assert m["p90"] - m["p10"] > seen.p90 - seen.p10, (m, seen)
    page, errors = _show(browser, server, site, at)
    row = _row(page, NEW_MACHINE)
    assert row["cold"] and EN_EVENT.search(row["text"]), row
    assert "this machine never seen running: from the other machines and priors" in row["why"], row
    assert "wide range" in row["all"].lower() or row["cold"], row
    _no_nonsense(page, errors)
    page.close()


def test_worker_with_no_history(server, browser, pilot_site, known):
    site, tz = pilot_site.site, pilot_site.timezone
    doc, m = _moment(
        server,
        site,
        tz,
        lambda m: (
            m["event"] == "restart"
            and m["worker"] == NEW_WORKER
            and f"worker_no_history:{NEW_WORKER}" in m["cold"]
            and m["p90"] is not None
        ),
    )
    at = doc["at"]
    other = known(at).machine(m["machine"])
    assert other.worker == NEW_WORKER and not other.cold and other.event == "restart"
    assert m["p90"] - m["p10"] > other.p90 - other.p10, (m, other)
    page, errors = _show(browser, server, site, at)
    row = _row(page, m["machine"])
    assert row["cold"] and EN_EVENT.search(row["text"]), row
    assert "Operator B has no history yet: from everyone's" in row["why"], row
    _no_nonsense(page, errors)
    page.close()
