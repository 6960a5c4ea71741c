"""The replay page with sign-in on: a real uvicorn server with ``install_auth``, real Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from viewer_harness import serve, wait_ready

pytestmark = pytest.mark.browser

SITE = "toyama-pilot"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def auth_url(shifts, tmp_path_factory) -> Iterator[str]:
    from argon2 import PasswordHasher

    from twin_server.api.viewer import create_viewer_app
    from twin_server.auth import AuthStore, install_auth
    from twin_server.store.replay_data import FileReplayProvider

    data = tmp_path_factory.mktemp("viewer-auth")
    app = create_viewer_app(FileReplayProvider(shifts.dir), data, build_scenes=False)
    # Cheap argon2 parameters keep the test fast; production uses argon2-cffi's defaults.
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store = AuthStore(data / "auth.sqlite", hasher=hasher)
    install_auth(app, data_dir=data, site_ids=[SITE], store=store)
    store.add_user("sato", SITE, "supervisor", PASSWORD)
    store.add_user("alice", SITE, "worker", PASSWORD, worker="W1")
    with serve(app) as url:
        yield url
    store.close()


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    form = page.locator("#signin")
    form.wait_for(state="visible")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()


def post_without_csrf(page: Any) -> int:
    return page.evaluate(
        f"fetch('/api/notes/{SITE}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},"
        " body: JSON.stringify({t: 1675817400, target: 'M3', text: 'no token'})}).then(r => r.status)"
    )


def test_supervisor_signs_in_adds_a_note_with_csrf_and_signs_out(page, auth_url, shifts):
    page.goto(f"{auth_url}/viewer/?site={SITE}&lang=en")
    # The API answers 401: the page asks for a sign-in instead of showing an error.
    sign_in(page, "sato", "wrong password")
    msg = page.locator("#signin .signin-msg")
    page.wait_for_function("document.querySelector('#signin .signin-msg').textContent.startsWith('Wrong')")
    assert msg.inner_text() == "Wrong user name or password"
    sign_in(page, "sato")
    wait_ready(page)
    assert page.locator("#signin").is_hidden()
    assert page.locator("#user-name").inner_text() == "sato"
    assert page.locator("#signout-btn").inner_text() == "Sign out"
    # The server refuses a change without the CSRF header, so a stored note proves the page sent it.
    assert post_without_csrf(page) == 403
    text = f"start the long run before lunch ({time.monotonic_ns()})"
    page.locator("#note-target").select_option("M7")
    page.locator("#note-text").fill(text)
    page.locator("#note-add").click()
    page.locator(f"#notes-list .note-text:text-is('{text}')").wait_for()
    page.reload()
    wait_ready(page)
    page.locator(f"#notes-list .note-text:text-is('{text}')").wait_for()  # still signed in, still there
    # The session ends under the page (expired, or signed out elsewhere): the next change asks
    # for a sign-in and then goes through, with the new session's CSRF token.
    page.context.clear_cookies()
    later = f"{text} (after a new sign-in)"
    page.locator("#note-text").fill(later)
    page.locator("#note-add").click()
    sign_in(page, "sato")
    page.locator(f"#notes-list .note-text:text-is('{later}')").wait_for()
    page.locator("#signout-btn").click()
    page.locator("#signin").wait_for(state="visible")
    assert page.evaluate(f"fetch('/api/notes/{SITE}').then(r => r.status)") == 401


def test_a_worker_lands_on_their_own_page_and_cannot_open_anothers(page, auth_url, shifts):
    # Asked for W2's page, in the site's default language (Japanese).
    page.goto(f"{auth_url}/viewer/?site={SITE}&view=worker&worker=W2")
    sign_in(page, "alice", "wrong")
    page.wait_for_function(
        "document.querySelector('#signin .signin-msg').textContent.length > 5"
        " && !document.querySelector('#signin .signin-msg').textContent.endsWith('…')"
    )
    assert page.locator("#signin .signin-msg").inner_text() == "ユーザー名またはパスワードが違います"
    assert page.locator("#signin button[type=submit]").inner_text() == "サインイン"
    sign_in(page, "alice")
    wait_ready(page)
    assert page.evaluate("window.__replay.worker") == "W1"
    assert "worker=W1" in page.url
    assert "Operator A" in page.locator("#worker-title").inner_text()
    assert "Operator B" not in page.locator("body").inner_text()
    bars = page.locator(".gantt-row").last.locator(".gantt-task")
    assert bars.count() == sum(t["worker"] == "W1" for t in shifts.last["tasks"])
    assert page.locator("#status-msg").inner_text() == "自分のページだけを表示できます"
    assert page.locator("#signout-btn").inner_text() == "サインアウト"
    # The server agrees: another worker's timeline and the site replay are refused.
    assert page.evaluate(f"fetch('/api/worker/{SITE}/W2').then(r => r.status)") == 403
    assert page.evaluate(f"fetch('/api/replay/{SITE}').then(r => r.status)") == 403
    # Opening the plain replay address lands on the worker's page again.
    page.goto(f"{auth_url}/viewer/?site={SITE}&lang=en")
    wait_ready(page)
    assert page.evaluate("window.__replay.worker") == "W1"
    # Their own replay of the shift: machines, and of the people only them.
    page.locator("#view-btn").click()
    page.wait_for_url("**view=mine**")
    wait_ready(page)
    assert page.evaluate("window.__replay.lanes().workers.map(w => w.id)") == ["W1"]
    assert page.locator(".worker-label").count() == 1
    assert page.locator(".machine-label").count() == 3
    mine = sorted(t["start"] for t in shifts.last["tasks"] if t["worker"] == "W1")
    shown = page.evaluate("window.__replay.lanes().machines.flatMap(m => m.tasks.map(t => t.start))")
    assert sorted(shown) == pytest.approx(mine, abs=0.1)
    assert page.locator("#notes-panel").is_hidden() and page.locator("#live-btn").is_hidden()
    assert page.locator("#worker-select").is_hidden()
    # Another worker's replay asked for by address: their own instead.
    page.goto(f"{auth_url}/viewer/?site={SITE}&view=mine&worker=W2&lang=en")
    wait_ready(page)
    assert page.evaluate("window.__replay.lanes().workers.map(w => w.id)") == ["W1"]
    assert "worker=W1" in page.url
    page.locator("#view-btn").click()  # back to the timeline
    page.wait_for_url("**view=worker**")


def test_the_twin_server_with_auth_on_serves_the_viewer_over_its_journal(
    page, tmp_path, pilot_site, pilot_site_path
):
    """`serve --auth` as the server runs it: create_app with Settings(auth=True), a journal holding
    a few simulated minutes of readings, the live analysis in the lifespan."""
    import subprocess
    import sys

    from viewer_harness import ROOT

    from twin_server.api.app import create_app
    from twin_server.auth import AuthStore
    from twin_server.ingest.publish import frame_to_wire
    from twin_server.readings import load_readings_csv
    from twin_server.settings import Settings
    from twin_server.store.journal import Journal

    subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_server",
            "simulate",
            "--site",
            str(pilot_site_path),
            "--hours",
            "0.2",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "sim"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    data = tmp_path / "data"
    loaded = load_readings_csv(tmp_path / "sim" / "readings.csv", pilot_site)
    journal = Journal(data / "journal.sqlite")
    journal.write_batch([(r, 1_800_000_000 * 10**9) for r in frame_to_wire(loaded.frame, pilot_site)], [])
    journal.close()
    store = AuthStore(data / "auth.sqlite")
    store.add_user("sato", SITE, "supervisor", PASSWORD)
    store.close()
    app = create_app(
        Settings(site=pilot_site, data_dir=data, broker_host=None, auth=True, analysis_interval_s=0.5)
    )
    with serve(app, lifespan="on") as url:
        page.goto(f"{url}/viewer/?lang=en")  # no ?site=: the server's one site, after a sign-in
        sign_in(page, "sato")
        wait_ready(page)
        assert f"site={SITE}" in page.url
        assert page.locator(".machine-label").count() == 3
        assert page.evaluate("window.__replay.lanes().machines.some(m => m.states.length > 0)")
        assert page.locator("#user-name").inner_text() == "sato"


def test_access_log_page_for_supervisors_filters_and_exports(browser, auth_url):
    import re
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = ctx.new_page()
    # Sato reads W1's timeline (audited with the worker) and the replay (everyone's data).
    page.goto(f"{auth_url}/viewer/?site={SITE}&view=worker&worker=W1&lang=ja")
    sign_in(page, "sato")
    wait_ready(page)
    page.goto(f"{auth_url}/viewer/?site={SITE}&lang=ja")
    wait_ready(page)
    link = page.locator("#access-link")
    assert link.is_visible() and link.inner_text() == "アクセス記録"
    link.click()
    page.wait_for_function("window.__access && window.__access.ready")
    assert page.evaluate("window.__access.state") == "shown"
    rows = page.locator("#access-table tr[data-id]")
    assert rows.count() >= 3
    w1 = page.locator("#access-table tr[data-worker='W1']").first
    cells = w1.locator("td").all_inner_texts()
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", cells[0]), cells  # local time, Japanese style
    assert cells[1:5] == ["sato", "監督者", "作業者の作業タイムライン", "作業者A"]
    # Filter by worker: W2's rows are W2's own pages and the views of everyone (none of W1's page).
    page.locator("#f-worker").select_option("W2")
    page.wait_for_function("[...document.querySelectorAll('#access-table tr[data-worker=W1]')].length === 0")
    workers = {
        page.locator("#access-table tr[data-id]").nth(k).get_attribute("data-worker")
        for k in range(page.locator("#access-table tr[data-id]").count())
    }
    assert workers <= {"", "W2"} and "" in workers
    page.locator("#f-worker").select_option("W1")
    # Filter by day (the site's local day): yesterday has nothing, today has W1's rows.
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    page.locator("#f-day").fill((today - timedelta(days=1)).isoformat())
    page.wait_for_function("document.querySelector('#access-count').textContent === '0 件'")
    page.locator("#f-day").fill(today.isoformat())
    page.wait_for_function("document.querySelectorAll('#access-table tr[data-worker=W1]').length >= 1")
    shown = page.locator("#access-table tr[data-id]").count()
    with page.expect_download() as dl:
        page.locator("#csv-btn").click()
    csv = dl.value.path().read_text(encoding="utf-8-sig").strip().splitlines()
    assert csv[0].startswith("t_local,t,user,role") and len(csv) == shown + 1
    assert all(",W1," in line or ",," in line for line in csv[1:])
    assert dl.value.suggested_filename == f"access-{SITE}-{today.isoformat()}-W1.csv"
    # English: English dates.
    page.locator("#lang-btn").click()
    page.wait_for_function("document.querySelector('#access-table th').textContent === 'When'")
    first = page.locator("#access-table tr[data-id] td").first.inner_text()
    assert re.fullmatch(r"\d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}:\d{2}", first), first
    ctx.close()


def test_a_worker_cannot_open_the_access_log(browser, auth_url):
    import httpx

    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    page.goto(f"{auth_url}/viewer/access.html?site={SITE}&lang=en")
    sign_in(page, "alice")
    page.wait_for_function("window.__access && window.__access.ready")
    assert page.evaluate("window.__access.state") == "forbidden"
    assert page.locator("#status-msg").inner_text() == "You may not open this page"
    assert page.locator("#access-view").is_hidden()
    # The server refuses her too, whatever the page does.
    status = page.evaluate(f"fetch('/api/audit?site={SITE}').then(r => r.status)")
    assert status == 403
    ctx.close()
    assert httpx.get(f"{auth_url}/api/audit").status_code == 401
