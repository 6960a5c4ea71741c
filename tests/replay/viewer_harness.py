"""Shared by the viewer's browser tests and its benchmark: simulated shifts, a uvicorn server
in a thread on a free loopback port, and headless Debian Chromium through Playwright."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PILOT_SITE = ROOT / "examples" / "pilot_site.yaml"
CHROMIUM = "/usr/bin/chromium"
# Software WebGL through SwiftShader (environment notes: --use-gl=swiftshader fails here).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The pilot's first day, 08:30 Asia/Tokyo (the simulator's default start).
DAY0_START_S = 1675639800.0


def simulate_days(out: Path, hours: list[float], site: Path = PILOT_SITE) -> list[dict[str, Any]]:
    """Simulate one shift per entry of ``hours`` on consecutive days into ``out``.

    ``out`` then holds ``site.yaml`` and ``day{k}.json`` (the simulator's truth, which has the
    contract result schema), ready for :class:`twin_server.store.replay_data.FileReplayProvider`.
    The simulator runs in-process (its public ``simulate``): the viewer needs no readings.csv.
    """
    import dataclasses

    from twin_server.simulate import SimParams, simulate
    from twin_server.site import load_site

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(site, out / "site.yaml")
    site_obj = load_site(site)
    params = dataclasses.replace(SimParams(), rssi=False)
    truths = []
    for k, h in enumerate(hours):
        sim = simulate(site_obj, hours=h, seed=k + 1, start=DAY0_START_S + k * 86400, params=params)
        sim.truth.write(out / f"day{k}.json")
        truths.append(json.loads((out / f"day{k}.json").read_text()))
    return truths


@contextmanager
def serve(app: Any, lifespan: str = "off") -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before uvicorn starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh --system)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RuntimeError("playwright is missing: .venv/bin/pip install 'playwright>=1.45,<2'") from exc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_ready(page: Any, min_frames: int = 2, timeout_ms: float = 30000) -> None:
    """Wait until the replay page has loaded its data and rendered ``min_frames`` frames."""
    page.wait_for_function(
        f"window.__replay && (window.__replay.ready === false || (window.__replay.ready"
        f" && (window.__replay.view !== 'replay' || window.__replay.stats.frames >= {min_frames})))",
        timeout=timeout_ms,
    )
    err = page.evaluate("window.__replay.error || null")
    if err:
        raise AssertionError(f"viewer failed to load: {err}")


def next_frame(page: Any) -> dict[str, float]:
    """The replay clock and performance.now() of a frame rendered after this call."""
    return page.evaluate(
        "new Promise(r => { const n = window.__replay.stats.frames;"
        " const f = () => window.__replay.stats.frames > n + 1 ? r(window.__replay.stats.lastFrame)"
        " : requestAnimationFrame(f); requestAnimationFrame(f); })"
    )


def write_scene_glb(path: Path, site_path: Path = PILOT_SITE, z_sign: float = 1.0) -> None:
    """A models3d-like scene GLB (nodes ``floor``, ``machine:ID``, ``zone:ID``) made with trimesh.

    ``z_sign=1`` places floor point (x, y) at (x, 0, y), ``-1`` at (x, 0, -y): the viewer must
    fit either, since it matches the ``machine:ID`` nodes to the layout.
    """
    import numpy as np
    import trimesh

    from twin_server.site import load_site

    site = load_site(site_path)
    scene = trimesh.Scene()
    x0, y0, x1, y1 = site.floor_size()
    floor = trimesh.creation.box(extents=[x1 - x0, 0.02, y1 - y0])
    scene.add_geometry(
        floor,
        node_name="floor",
        geom_name="floor",
        transform=trimesh.transformations.translation_matrix([(x0 + x1) / 2, -0.01, z_sign * (y0 + y1) / 2]),
    )
    for m in site.machines:
        cx, cy = m.centre
        box = trimesh.creation.box(extents=[m.footprint[0], m.height_m, m.footprint[1]])
        box.visual.face_colors = np.array([200, 120, 40, 255], dtype=np.uint8)
        scene.add_geometry(
            box,
            node_name=f"machine:{m.id}",
            geom_name=f"machine:{m.id}",
            transform=trimesh.transformations.translation_matrix([cx, m.height_m / 2, z_sign * cy]),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scene.export(file_type="glb"))
