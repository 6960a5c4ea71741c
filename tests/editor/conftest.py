"""Fixtures of the site editor tests: a site folder, the real server app over it, Chromium."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parents[1]
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(ROOT / "tests" / "replay"))
sys.path.insert(0, str(ROOT / "scripts"))

from viewer_harness import chromium  # noqa: E402


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A folder holding a copy of the pilot's site file as ``site.yaml``."""
    d = tmp_path / "site"
    d.mkdir()
    shutil.copy(ROOT / "examples" / "pilot_site.yaml", d / "site.yaml")
    return d


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Per module: one sync Playwright per process at a time, and tests/replay starts its own.
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 10-inch tablet in landscape, in Japan (the site's time zone and language)."""
    ctx = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="ja-JP", timezone_id="Asia/Tokyo", has_touch=False
    )
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, f"page errors: {errors}"
