"""Fixtures of the viewer tests: three simulated days of the pilot, a viewer server, Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from viewer_harness import chromium, serve, simulate_days


class Shifts:
    """The simulated days on disk and their truth documents (used as the analysis result)."""

    def __init__(self, directory: Path, truths: list[dict[str, Any]]) -> None:
        self.dir = directory
        self.truths = truths
        self.last = truths[-1]


@pytest.fixture(scope="session")
def shifts(tmp_path_factory: pytest.TempPathFactory) -> Shifts:
    d = tmp_path_factory.mktemp("replay-site")
    # Two shorter earlier days give the worker view something to compare with; the last day
    # is a full 8-hour shift.
    return Shifts(d, simulate_days(d, [4, 4, 8]))


@pytest.fixture(scope="session")
def viewer_url(shifts: Shifts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from twin_server.api.viewer import create_viewer_app
    from twin_server.store.replay_data import FileReplayProvider

    app = create_viewer_app(
        FileReplayProvider(shifts.dir), tmp_path_factory.mktemp("viewer-data"), build_scenes=False
    )
    with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # A 10-inch tablet in landscape.
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, f"page errors: {errors}"
