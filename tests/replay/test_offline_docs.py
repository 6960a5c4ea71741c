"""``/docs`` renders from the project's own Swagger UI with every other host unreachable."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx
import pytest
from viewer_harness import serve

pytestmark = pytest.mark.browser


def test_api_docs_render_offline_in_chromium(browser, tmp_path, pilot_site):
    from twin_server.api.app import create_app
    from twin_server.settings import Settings

    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    with serve(app, lifespan="on") as url:
        own = urlparse(url).netloc
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        blocked: list[str] = []
        failed: list[str] = []

        def only_the_server(route):  # the network: this server and nothing else
            if urlparse(route.request.url).netloc == own:
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort("internetdisconnected")

        ctx.route("**/*", only_the_server)
        page = ctx.new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30000)
        assert "factory twin server" in page.locator(".swagger-ui .info .title").inner_text()
        # The operations are listed (a blank page has none): the viewer's and the KPI routes too.
        page.wait_for_function("document.querySelectorAll('.opblock').length > 20")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/kpis/" in p for p in paths) and any("/api/replay/" in p for p in paths)
        assert blocked == [], f"the docs page reached for other hosts: {blocked}"
        assert failed == [], failed
        # /redoc leads to the same page; the assets are the npm package's files.
        page.goto(f"{url}/redoc")
        assert urlparse(page.url).path == "/docs"
        ctx.close()
        html = httpx.get(f"{url}/docs").text
        assert "cdn" not in html.lower() and "/viewer/vendor/swagger-ui/swagger-ui-bundle.js" in html


def test_docs_without_swagger_ui_say_what_to_install(tmp_path):
    from fastapi import FastAPI

    from twin_server.api.docs import install_docs

    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app, replay_dir=tmp_path)  # no node_modules here
    with serve(app) as url:
        r = httpx.get(f"{url}/docs")
    assert r.status_code == 200 and "npm ci" in r.text and "/openapi.json" in r.text
