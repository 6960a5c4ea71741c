"""Shared by the editor tests: a served app over a site folder, and page helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from viewer_harness import serve

from twin_server.api.app import create_app
from twin_server.settings import Settings
from twin_server.site import load_site


def make_app(site_path: Path, data_dir: Path, site: Any = None, **kw: Any) -> Any:
    """The real server app for ``site_path`` (default: no broker)."""
    site = site if site is not None else load_site(site_path)
    kw.setdefault("broker_host", None)
    return create_app(Settings(site=site, data_dir=data_dir, site_path=site_path, **kw))


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free port with its lifespan (ingest connected when it has a broker)."""
    with serve(app, lifespan="on") as url:
        ingest = app.state.twin.ingest
        if ingest is not None:
            assert ingest.wait_subscribed(15), "ingest did not subscribe"
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


PILOT_PIS = {"pi-m3": ("M3", "R3"), "pi-m7": ("M7", "R7"), "pi-m10": ("M10", "R10")}


def publish_pis(
    host: str,
    port: int,
    site: str,
    beacons: tuple[str, ...] = ("b-01", "b-02"),
    locator: str | None = "tagsys",
) -> None:
    """Simulated pilot Pis saying hello: status, a reading of each sensor, RSSI of each beacon,
    and a locator's zone report (all refused as unknown devices until the site names them)."""
    from edge_agent.wire import Reading, Status, encode_status
    from twin_server.ingest.publish import Publisher

    now = time.time_ns()
    pub = Publisher(host, port)
    try:
        for dev, (machine, rx) in PILOT_PIS.items():
            pub.publish_raw(
                *encode_status(Status(site, dev, True, t_ns=now, clock_synced=True, agent_version="0.1.0"))
            )
            rows = [
                Reading(site, dev, "light", "light", now, 0, machine, 0.8, "raw"),
                Reading(site, dev, "light", "light_state", now, 1, machine, 1.0, "bool"),
                Reading(site, dev, "pressure", "pressure", now, 0, machine, 0.6, "raw"),
            ]
            rows += [
                Reading(site, dev, sensor, "switch", now, 0, machine, 1.0, "bool", task)
                for sensor, task in (
                    ("sw-tool", "tool_change"),
                    ("sw-program", "program_input"),
                    ("sw-material", "material_setting"),
                )
            ]
            rows += [
                Reading(
                    site,
                    dev,
                    f"{rx}.{b}",
                    "rssi",
                    now,
                    0,
                    rx,
                    -60.0,
                    "dBm",
                    b,
                    count=5,
                    rssi_max_dbm=-55.0,
                    window_ms=1000,
                )
                for b in beacons
            ]
            pub.publish(rows)
        if locator:
            pub.publish([Reading(site, locator, "tags", "zone", now, 0, locator, "M3", "zone", beacons[0])])
        pub.flush()
    finally:
        pub.close()


class Actions:
    """Drives the page like a person on a tablet and counts what they do: each tap, drag or
    file pick is one click; each character typed or key pressed is one keystroke."""

    def __init__(self, page: Any, shots: Path | None = None) -> None:
        self.page = page
        self.clicks = 0
        self.keys = 0
        self.shots = shots
        self.steps: list[tuple[str, int, int]] = []
        self._mark = (0, 0)

    @property
    def total(self) -> int:
        return self.clicks + self.keys

    def tap(self, x: float, y: float) -> None:
        self.page.mouse.click(x, y)
        self.clicks += 1

    def click(self, selector: str) -> None:
        self.page.locator(selector).click()
        self.clicks += 1

    def drag(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        m = self.page.mouse
        m.move(*a)
        m.down()
        m.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
        m.move(*b, steps=4)
        m.up()
        self.clicks += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.keys += len(text)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.keys += 1

    def pick_file(self, selector: str, path: Path) -> None:
        with self.page.expect_file_chooser() as fc:
            self.page.locator(selector).click()
        fc.value.set_files(str(path))
        self.clicks += 2  # the button, then the file in the picker

    def step(self, name: str) -> None:
        """End a step: note its actions, and take a screenshot when asked to."""
        c, k = self.clicks - self._mark[0], self.keys - self._mark[1]
        self._mark = (self.clicks, self.keys)
        self.steps.append((name, c, k))
        if self.shots is not None:
            self.page.wait_for_timeout(150)
            self.page.screenshot(path=str(self.shots / f"{len(self.steps):02d}-{name}.png"))
