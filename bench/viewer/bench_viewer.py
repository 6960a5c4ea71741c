"""Viewer benchmark: first rendered frame (with and without the KPI strip), replay data size,
frame rate at 600x.

    .venv/bin/python bench/viewer/bench_viewer.py [--hours 8] [--repeat 3]

Runs the replay page in headless Debian Chromium with software WebGL (SwiftShader) against a
simulated shift of the pilot site (3 machines, 2 workers) served by uvicorn, and prints each
figure beside a baseline measured in the same run: a bare three.js page with one cube served by
the same server. The frame rate is measured again with the ideal day replayed side by side.
Targets: first frame < 2 s for an 8-hour shift, the KPI strip adds < 100 ms to it, replay data
< 1 MB compressed, >= 30 fps at 600x (the fastest speed). The three first-frame variants (cube,
viewer without the strip ``kpi=0``, viewer with it) alternate within each repeat.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "replay"))

from viewer_harness import DAY0_START_S, chromium, serve, simulate_days, wait_ready  # noqa: E402

from twin_server.api.viewer import create_viewer_app  # noqa: E402
from twin_server.store.replay_data import FileReplayProvider  # noqa: E402

SITE = "toyama-pilot"
VIEWPORT = {"width": 1280, "height": 800}
PROBE = "window.__replay.stats"


def first_frame_ms(browser, url: str, probe: str) -> float:
    """Navigation start to the first rendered WebGL frame, in a fresh (cold cache) context."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function(f"{probe} && {probe}.firstFrameMs !== null", timeout=60000)
    ms = page.evaluate(f"{probe}.firstFrameMs")
    ctx.close()
    return float(ms)


def first_frame_and_kpi_ms(browser, url: str) -> tuple[float, float]:
    """First rendered frame, and the moment the KPI strip was filled, both from navigation."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function(
        "window.__replay?.stats && window.__replay.stats.firstFrameMs !== null", timeout=60000
    )
    page.wait_for_function("document.querySelector('#kpi-strip').dataset.ready === '1'", timeout=60000)
    ms = page.evaluate("window.__replay.stats.firstFrameMs")
    ready = page.evaluate("performance.now()")
    ctx.close()
    return float(ms), float(ready)


def fps(page, probe: str, seconds: float) -> float:
    a = page.evaluate(f"[{probe}.frames, performance.now()]")
    time.sleep(seconds)
    b = page.evaluate(f"[{probe}.frames, performance.now()]")
    return (b[0] - a[0]) / ((b[1] - a[1]) / 1000)


def analyse(data: Path, tmp: Path, hours: float) -> None:
    """Replace the truth by the analysis of the same shift's simulated readings."""
    sim = tmp / "sim"
    t0 = time.perf_counter()
    for cmd in (
        [
            "simulate",
            "--site",
            str(data / "site.yaml"),
            "--hours",
            str(hours),
            "--seed",
            "1",
            "--start",
            str(DAY0_START_S),
            "--out",
            str(sim),
        ],
        [
            "analyze",
            "--site",
            str(data / "site.yaml"),
            "--readings",
            str(sim / "readings.csv"),
            "--out",
            str(data / "analysis.json"),
        ],
    ):
        subprocess.run(
            [sys.executable, "-m", "twin_server", *cmd], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
        )
    (data / "day0.json").unlink()
    print(f"replaying the analysis of the simulated readings ({time.perf_counter() - t0:.1f} s to make)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="frame-rate sampling time")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="frame-rate rounds (the single and side-by-side views alternate)",
    )
    ap.add_argument(
        "--analyze",
        action="store_true",
        help="replay the output of `twin_server analyze` on the simulated readings"
        " instead of the simulator's truth (adds ~30 s)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "site"
        t0 = time.perf_counter()
        simulate_days(data, [args.hours])
        print(f"simulated {args.hours:g} h shift of {SITE} in {time.perf_counter() - t0:.1f} s")
        if args.analyze:
            analyse(data, Path(tmp), args.hours)
        app = create_viewer_app(FileReplayProvider(data), Path(tmp) / "viewer-data", build_scenes=False)
        app.mount("/bench", StaticFiles(directory=HERE), name="bench")
        with serve(app) as url, chromium() as browser:
            r = httpx.get(f"{url}/api/replay/{SITE}", headers={"Accept-Encoding": "gzip"})
            raw = r.content  # httpx decodes; re-measure the wire size the server sends
            wire = httpx.get(f"{url}/api/replay/{SITE}", headers={"Accept-Encoding": "gzip"}).headers
            gz = len(gzip.compress(raw, 6))
            n = {k: len(v) for k, v in r.json()["result"].items() if isinstance(v, list)}
            print(
                f"replay data: {len(raw) / 1024:.1f} KiB JSON, {gz / 1024:.1f} KiB gzip "
                f"(content-encoding {wire.get('content-encoding')}); {n}"
            )
            print(f"  = {gz / 1_000_000:.4f} of the 1 MB budget")

            viewer = f"{url}/viewer/?site={SITE}&lang=en"
            base = f"{url}/bench/baseline.html"
            ff_view, ff_base, ff_nokpi, kpi_ready = [], [], [], []
            for _ in range(args.repeat):
                ff_base.append(first_frame_ms(browser, base, "window.__bench"))
                ff_nokpi.append(first_frame_ms(browser, f"{viewer}&kpi=0", "window.__replay?.stats"))
                ms, ready = first_frame_and_kpi_ms(browser, viewer)
                ff_view.append(ms)
                kpi_ready.append(ready)
            fv, fb = statistics.median(ff_view), statistics.median(ff_base)
            fn = statistics.median(ff_nokpi)
            print(
                f"first rendered frame (median of {args.repeat}, cold cache): viewer {fv:.0f} ms, "
                f"baseline cube {fb:.0f} ms, ratio {fv / fb:.2f}; target < 2000 ms -> "
                f"{'OK' if fv < 2000 else 'MISSED'}  (all: {[round(x) for x in ff_view]})"
            )
            print(
                f"KPI strip: first frame without it {fn:.0f} ms (ratio to cube {fn / fb:.2f}), with it "
                f"{fv:.0f} ms (ratio {fv / fb:.2f}): adds {fv - fn:+.0f} ms; target < 100 ms -> "
                f"{'OK' if fv - fn < 100 else 'MISSED'}; strip filled "
                f"{statistics.median(kpi_ready):.0f} ms after navigation (it loads after the first frame)"
            )

            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            page.goto(base)
            page.wait_for_function("window.__bench && window.__bench.frames > 10", timeout=60000)
            fps_base = fps(page, "window.__bench", args.seconds)
            page.goto(viewer)
            wait_ready(page, min_frames=10)
            renderer = page.evaluate(
                "(() => { const gl = document.querySelector('#scene-canvas').getContext('webgl2');"
                " const d = gl.getExtension('WEBGL_debug_renderer_info');"
                " return d ? gl.getParameter(d.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER); })()"
            )
            # The single view and the side-by-side view (the ideal day, one task shortened by
            # 5 min, in the right half of the same canvas) alternate, so a burst of load from
            # other jobs hits both alike; each figure is the median over the rounds.
            views = {
                "single": f"{viewer}&speed=600",
                "side by side": f"{viewer}&ideal=M3%230::300&split=1&speed=600",
            }
            got: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for name, view_url in views.items():
                    page.goto(view_url)
                    wait_ready(page, min_frames=10)
                    split = page.evaluate("window.__replay.scene().split")
                    assert split == (name != "single"), f"{name}: split is {split}"
                    page.locator("#play-btn").click()
                    time.sleep(3)  # steady state: shaders compiled, caches warm
                    got.setdefault((name, "overview"), []).append(fps(page, PROBE, args.seconds))
                    page.locator("#camera-bar [data-cam='machine:M7']").click()
                    time.sleep(1)
                    got.setdefault((name, "machine"), []).append(fps(page, PROBE, args.seconds))
            advanced = page.evaluate("window.__replay.clock.speed")
            ctx.close()
            print(f"WebGL renderer: {renderer}")
            med = {k: statistics.median(v) for k, v in got.items()}
            low = min(med[("single", "overview")], med[("single", "machine")])
            for name in views:
                worst = min(med[(name, "overview")], med[(name, "machine")])
                print(
                    f"frame rate at {advanced}x, 3 machines / 2 workers, {name} (median of {args.rounds}): "
                    f"overview {med[(name, 'overview')]:.1f} fps, "
                    f"machine camera {med[(name, 'machine')]:.1f} fps"
                    f" (all: {[round(x, 1) for x in got[(name, 'overview')] + got[(name, 'machine')]]}); "
                    f"baseline cube {fps_base:.1f} fps; ratio {worst / fps_base:.2f}"
                    + (f", to the single view {worst / low:.2f}" if name != "single" else "")
                    + f"; target >= 30 fps -> {'OK' if worst >= 30 else 'MISSED'}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
