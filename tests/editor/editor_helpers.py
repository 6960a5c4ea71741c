"""Shared by the editor tests: a served app over a site folder, and page helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from viewer_harness import serve

from twin_server.app import create_app
from twin_server.settings import Settings
from twin_server.site import load_site


def make_app(site_path: Path, data_dir: Path, site: Any = None, **kw: Any) -> Any:
    """The real server app for ``site_path`` (default: no broker)."""
    site = site if site is not None else load_site(site_path)
    kw.setdefault("broker_host", None)
    return create_app(Settings(site=site, data_dir=data_dir, extra={"site_path": site_path}, **kw))


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free port with its lifespan (ingest connected when it has a broker)."""
    with serve(app, lifespan="on") as url:
        ingest = app.state.twin.ingest
        if ingest is not None:
            deadline = time.monotonic() + 15
            while not ingest.connected:
                assert time.monotonic() < deadline, "ingest did not connect"
                time.sleep(0.05)
            time.sleep(0.3)  # subscribed
        yield url


def open_editor(page: Any, url: str, lang: str = "en") -> None:
    page.goto(f"{url}/editor/?lang={lang}")
    page.wait_for_function("window.__editor && window.__editor.ready", timeout=20000)


def wait_checked(page: Any, timeout_ms: float = 10000) -> None:
    """Wait until the live check has answered for the current document."""
    n = page.evaluate("window.__editor.checks")
    page.wait_for_function(f"window.__editor.checks > {n}", timeout=timeout_ms)


def screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of floor point (x, y) in metres."""
    sx, sy = page.evaluate(f"window.__editor.floorToScreen({x}, {y})")
    box = page.locator("#ed-svg").bounding_box()
    return box["x"] + sx, box["y"] + sy


def plan_screen(page: Any, px: float, py: float) -> tuple[float, float]:
    """Page coordinates of plan-image pixel (px, py)."""
    sx, sy = page.evaluate(f"window.__editor.toScreen([{px}, {py}])")
    box = page.locator("#ed-svg").bounding_box()
    return box["x"] + sx, box["y"] + sy
