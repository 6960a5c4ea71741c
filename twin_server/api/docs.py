"""The API docs at ``/docs`` from the project's own copy of Swagger UI: no CDN, works offline.

FastAPI's default ``/docs`` loads Swagger UI from a CDN, which is a blank page on a shop
network without internet. Here the page loads ``swagger-ui-dist`` from the viewer's npm
packages (``replay/node_modules``, served at ``/viewer/vendor/swagger-ui/``); ``/redoc``
(which would need another CDN bundle) leads to ``/docs``. Create the app with
``docs_url=None, redoc_url=None`` and call :func:`install_docs`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

__all__ = ["ASSETS_URL", "install_docs", "swagger_dir"]

REPLAY_DIR = Path(__file__).resolve().parents[2] / "replay"
ASSETS_URL = "/viewer/vendor/swagger-ui"


def swagger_dir(replay_dir: Path = REPLAY_DIR) -> Path | None:
    """Where ``swagger-ui-dist`` is installed, or None."""
    d = Path(replay_dir) / "node_modules" / "swagger-ui-dist"
    return d if (d / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI, replay_dir: Path = REPLAY_DIR) -> None:
    """Add ``/docs`` (Swagger UI from local files), its OAuth2 redirect, and ``/redoc`` -> ``/docs``."""
    have = swagger_dir(replay_dir) is not None
    if have and not any(getattr(r, "path", None) == ASSETS_URL for r in app.router.routes):
        # Mounted first so that a later ``/viewer`` mount does not swallow it.
        app.router.routes.insert(0, _mount(replay_dir))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if not have:
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>API docs</title><h1>API docs</h1>"
                "<p>Swagger UI is not installed on this server (run <code>npm ci</code> in "
                "<code>replay/</code>, or <code>bash scripts/setup.sh</code>). The API description is at "
                "<a href='/openapi.json'>/openapi.json</a>.</p>",
                status_code=200,
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse("/docs")


def _mount(replay_dir: Path) -> Mount:
    return Mount(ASSETS_URL, app=StaticFiles(directory=swagger_dir(replay_dir)), name="swagger-ui")
