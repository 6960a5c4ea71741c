"""The commissioning page in real headless Chromium, fed by the real server over a real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from viewer_harness import serve

from edge_agent.wire import Reading, Status, encode_status
from twin_server.api.app import create_app
from twin_server.ingest.publish import Publisher
from twin_server.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.broker]


@pytest.fixture
def site(pilot_site):
    return pilot_site.model_copy(update={"site": f"cmb-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
def server(tmp_path, mosquitto, site) -> Iterator[str]:
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id=f"{site.site}-server",
        analysis_interval_s=60,
    )
    app = create_app(settings)
    with serve(app, lifespan="on") as url:
        assert app.state.twin.ingest.wait_subscribed(15), "ingest did not subscribe"
        yield url


def item(page: Any, machine: str, key: str):
    return page.locator(f'#machine-{machine} .cm-item[data-key="{key}"]')


def wait_status(page: Any, machine: str, key: str, status: str, timeout_ms: float = 10000) -> None:
    page.wait_for_selector(
        f'#machine-{machine} .cm-item[data-key="{key}"][data-status="{status}"]', timeout=timeout_ms
    )


def publish_m3(mosquitto: Any, site: str, first_seq: int = 0, switch: str = "tool_change") -> None:
    now = time.time_ns()
    sensor = {"tool_change": "sw-tool", "program_input": "sw-program"}[switch]

    def rd(
        seq: int,
        kind: str,
        value: float,
        sensor: str,
        unit: str = "raw",
        channel: str = "",
        source: str = "M3",
        **kw: Any,
    ) -> Reading:
        return Reading(
            site, "pi-m3", sensor, kind, now + seq * 1000, first_seq + seq, source, value, unit, channel, **kw
        )

    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        pub.publish_raw(*encode_status(Status(site, "pi-m3", True, t_ns=now, clock_synced=True)))
        pub.publish(
            [
                rd(0, "light", 0.12, "light"),
                rd(1, "light_state", 0.0, "light", "bool"),
                rd(2, "light", 0.81, "light"),
                rd(3, "light_state", 1.0, "light", "bool"),
                rd(0, "switch", 1.0, sensor, "bool", switch),
                rd(1, "switch", 0.0, sensor, "bool", switch),
                rd(
                    0,
                    "rssi",
                    -58.0,
                    "R3.b-01",
                    "dBm",
                    "b-01",
                    source="R3",
                    count=10,
                    rssi_max_dbm=-52.0,
                    window_ms=1000,
                ),
            ]
        )
        pub.publish_raw(f"twin/v1/{site}/pi-m3/light/light", b"{broken")
        pub.flush()
    finally:
        pub.close()


def test_page_ticks_published_lines_and_start_resets_them(page, server, mosquitto, site):
    page.goto(f"{server}/commissioning/?site={site.site}&lang=en")
    page.wait_for_selector("#machine-M3 .cm-item")
    assert page.locator(".cm-card").count() == 3
    assert item(page, "M3", "switch:sw-tool").get_attribute("data-status") == "waiting"
    assert page.evaluate("window.__commissioning.transport") == "ws"

    publish_m3(mosquitto, site.site)
    t0 = time.monotonic()
    wait_status(page, "M3", "switch:sw-tool", "pass")
    tick_s = time.monotonic() - t0
    for key in ("online", "clock", "data", "live:light", "light_on_off:light", "beacon:b-01"):
        wait_status(page, "M3", key, "pass", 5000)
    for key in ("switch:sw-program", "switch:sw-material", "beacon:b-02", "pressure_excursion:pressure"):
        assert item(page, "M3", key).get_attribute("data-status") == "waiting", key
    assert item(page, "M7", "switch:sw-tool").get_attribute("data-status") == "waiting"
    assert "pressed 1 time(s)" in item(page, "M3", "switch:sw-tool").inner_text()
    page.wait_for_selector("#machine-M3 .cm-rejected")
    assert "bad_json" in page.locator("#machine-M3 .cm-rejected").inner_text()
    row = page.locator('#machine-M3 tr[data-receiver="R3"][data-beacon="b-01"]').inner_text()
    assert row.count("dBm") == 2 and "-58 dBm" in row and "-52 dBm" in row
    assert tick_s < 5.0  # pushed every second

    # Touch targets: the buttons and every checklist line are at least 48 px high.
    # (Measured in one evaluation: the checklist lines are rebuilt every second.)
    for sel in (".cm-start", "#cm-lang", ".cm-item"):
        boxes = page.evaluate(
            "(sel) => [...document.querySelectorAll(sel)].map((e) => {"
            " const r = e.getBoundingClientRect();"
            " return {width: r.width, height: r.height}; })",
            sel,
        )
        assert boxes and min(b["height"] for b in boxes) >= 48, sel
        if sel != ".cm-item":
            assert min(b["width"] for b in boxes) >= 48, sel

    # Start commissioning M3 again: its press is forgotten; a press of another button ticks that one.
    page.locator('.cm-start[data-machine="M3"]').click()
    wait_status(page, "M3", "switch:sw-tool", "waiting", 5000)
    publish_m3(mosquitto, site.site, first_seq=10, switch="program_input")
    wait_status(page, "M3", "switch:sw-program", "pass")
    assert item(page, "M3", "switch:sw-tool").get_attribute("data-status") == "waiting"


def test_japanese_by_default_for_the_pilot_site_and_polling_works(page, server, site):
    page.goto(f"{server}/commissioning/?site={site.site}&transport=poll")
    page.wait_for_selector("#machine-M3 .cm-item")
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.locator("#cm-title").inner_text().startswith("据付チェック")
    assert page.locator("#machine-M3 h2").inner_text() == "NC旋盤 3号機"
    assert "ボタン 工具交換" in item(page, "M3", "switch:sw-tool").inner_text()
    n = page.evaluate("window.__commissioning.updates")
    page.wait_for_function(f"window.__commissioning.updates >= {n + 2}", timeout=5000)  # polled every 1 s
    assert page.evaluate("window.__commissioning.transport") == "poll"
    page.locator("#cm-lang").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "Button tool change" in item(page, "M3", "switch:sw-tool").inner_text()
    assert "lang=en" in page.url


def test_sign_in_form_then_start_sends_the_csrf_token(page, tmp_path, pilot_site):
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path / "data", broker_host=None, auth=True))
    store = app.state.auth.store
    store.add_user("eng", pilot_site.site, "engineer", "correct horse battery")
    with serve(app, lifespan="on") as url:
        page.goto(f"{url}/commissioning/?site={pilot_site.site}&lang=en")
        page.wait_for_selector("#cm-login:not([hidden])")
        assert page.locator(".cm-card").count() == 0
        page.fill("#cm-name", "eng")
        page.fill("#cm-password", "correct horse battery")
        page.locator("#cm-login button[type=submit]").click()
        page.wait_for_selector("#machine-M7 .cm-item")
        assert page.locator("#cm-login").is_hidden()
        page.locator('.cm-start[data-machine="M7"]').click()
        deadline = time.monotonic() + 10
        while not any(a["route"].endswith("/start") for a in store.audit_rows()):
            assert time.monotonic() < deadline, "no start request reached the server"
            time.sleep(0.05)
    starts = [a for a in store.audit_rows() if a["route"].endswith("/start")]
    assert [(a["user"], a["status"], a["target_machine"]) for a in starts] == [("eng", 200, "M7")]
