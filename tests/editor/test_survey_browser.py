"""Survey by tapping, in Chromium, with simulated RSSI readings over a real mosquitto.

The engineer walks with beacon b-01 and taps where they stand; meanwhile simulated receivers
publish what they hear (a log-distance model of the distance to the tapped point). The walk
becomes ``survey.walks`` in the site file, in the format ``analyze`` and ``serve`` read.
"""

from __future__ import annotations

import math
import time
import uuid

import pandas as pd
import pytest
from editor_helpers import make_app, open_editor, screen, served

from edge_agent.wire import Reading
from twin_server.analysis.survey import survey_map, survey_points
from twin_server.ingest.publish import Publisher
from twin_server.readings import load_readings_csv
from twin_server.site import load_site

pytestmark = [pytest.mark.browser, pytest.mark.broker]

RECEIVERS = {"R3": ("pi-m3", (3.0, 5.4)), "R7": ("pi-m7", (8.0, 5.4)), "R10": ("pi-m10", (13.0, 5.4))}
STOPS = [(2.0, 4.2), (4.5, 4.2), (8.0, 4.2), (11.0, 2.2), (13.0, 4.2)]


def test_a_walk_tapped_on_the_plan_becomes_a_survey_walk(page, site_dir, mosquitto):
    site_id = f"survey-{uuid.uuid4().hex[:8]}"
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace("site: toyama-pilot", f"site: {site_id}"))
    app = make_app(
        path,
        site_dir / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id=f"{site_id}-server",
        analysis_interval_s=60,
    )
    pub = Publisher(mosquitto.host, mosquitto.port)
    seq = {rx: 0 for rx in RECEIVERS}
    sent_b01 = 0

    def hear(x: float, y: float, rounds: int = 4) -> int:
        n = 0
        for _ in range(rounds):
            rows = []
            for rx, (dev, (rxx, rxy)) in RECEIVERS.items():
                d = max(0.3, math.hypot(x - rxx, y - rxy))
                for beacon, offset in (("b-01", 0.0), ("b-02", -12.0)):
                    rows.append(
                        Reading(
                            site_id,
                            dev,
                            f"{rx}.{beacon}",
                            "rssi",
                            time.time_ns(),
                            seq[rx],
                            rx,
                            round(-45.0 - 22.0 * math.log10(d) + offset, 1),
                            "dBm",
                            beacon,
                            count=3,
                            rssi_max_dbm=-40.0,
                            window_ms=1000,
                        )
                    )
                    seq[rx] += 1
                    n += beacon == "b-01"
            pub.publish(rows)
            time.sleep(0.08)
        pub.flush()
        return n

    with served(app) as url:
        open_editor(page, url)
        page.locator('[data-tool="survey"]').click()
        page.select_option("#ed-walk-beacon", "b-01")
        page.locator("#ed-walk-start").click()
        page.wait_for_selector("#ed-walk-status")
        for k, (x, y) in enumerate(STOPS):
            page.mouse.click(*screen(page, x, y))  # "I stand here"
            page.wait_for_function(
                f"window.__editor.walk && window.__editor.walk.points.length === {2 * k + 1}"
            )
            sent_b01 += hear(x, y)
            page.locator("#ed-walk-still").click()  # "still here", then walk on
            page.wait_for_function(f"window.__editor.walk.points.length === {2 * k + 2}")
        deadline = time.monotonic() + 10
        while (
            len(app.state.twin.journal.rows(site_id, kind="rssi")) < 2 * sent_b01
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        page.wait_for_function("Object.values(window.__editor.walk.heard).reduce((a, b) => a + b, 0) > 0")
        assert "R3" in page.locator("#ed-walk-status").inner_text()
        page.locator("#ed-walk-finish").click()
        page.wait_for_function("window.__editor.doc.survey && window.__editor.doc.survey.walks")
        walk = page.evaluate("window.__editor.doc.survey.walks[0]")
        page.locator("#ed-save").click()
        page.wait_for_function("window.__editor.lastSave")
        running = app.state.twin.analysis.params
    pub.close()

    assert (
        walk["beacon"] == "b-01"
        and walk["track"].endswith("_track.csv")
        and walk["readings"].endswith(".csv")
    )
    site = load_site(path)
    assert site.survey.walks[0].track == walk["track"]
    track = pd.read_csv(site_dir / walk["track"])
    assert list(track.columns) == ["time", "x_m", "y_m"] and len(track) == 2 * len(STOPS)
    tapped = track[["x_m", "y_m"]].to_numpy()[::2].ravel().tolist()
    assert tapped == pytest.approx([v for p in STOPS for v in p], abs=0.051)
    assert (track["time"].diff().dropna() > 0).all()
    readings = load_readings_csv(site_dir / walk["readings"], site)
    assert readings.rejected_rows == 0 and len(readings.frame) == sent_b01  # only the beacon carried
    assert set(readings.frame["channel"]) == {"b-01"}
    # What analyze and serve read: survey points near the stops, and a fingerprint map.
    points, dropped = survey_points(site, site_dir)
    assert set(points["receiver_id"]) == set(RECEIVERS) and dropped["unknown_receiver"] == 0
    for x, y in STOPS:
        near = points[(abs(points["x_m"] - x) <= 0.5) & (abs(points["y_m"] - y) <= 0.5)]
        assert len(near) == len(RECEIVERS), (x, y)
    assert survey_map(site, site_dir) is not None
    assert running is not None and running.survey_map is not None  # the server reloaded with it
