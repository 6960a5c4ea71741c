"""Saving in the editor reloads the running server: no restart, and no reading lost (real mosquitto)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import yaml
from editor_helpers import make_app, served

from edge_agent.wire import Reading
from twin_server.ingest.publish import Publisher
from twin_server.site import load_site

pytestmark = [pytest.mark.broker]


def test_readings_published_across_a_reload_are_all_journalled(site_dir, mosquitto):
    site_id = f"reload-{uuid.uuid4().hex[:8]}"
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace("site: toyama-pilot", f"site: {site_id}"))
    app = make_app(
        path,
        site_dir / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id=f"{site_id}-server",
        analysis_interval_s=0.5,
    )
    journal = app.state.twin.journal
    n = 400
    with served(app) as url:
        ingest = app.state.twin.ingest
        pub = Publisher(mosquitto.host, mosquitto.port)
        t0 = time.time_ns()

        def rd(device: str, machine: str, seq: int) -> Reading:
            return Reading(site_id, device, "light", "light", t0 + seq * 10_000_000, seq, machine, 0.5, "raw")

        # A Pi not in the site yet: refused (dead letter) before the save.
        pub.publish([rd("pi-m11", "M11", 0)])
        pub.flush()

        def stream() -> None:
            for seq in range(n):
                pub.publish([rd("pi-m3", "M3", seq)])
                time.sleep(0.005)
            pub.flush()

        sender = threading.Thread(target=stream)
        sender.start()
        time.sleep(0.5)  # readings are flowing
        with httpx.Client(base_url=url, timeout=30) as c:
            st = c.get(f"/api/editor/{site_id}").json()
            doc = st["document"]
            doc["machines"][0]["position"] = [3.4, 6.5]
            doc["machines"].append(
                {
                    "id": "M11",
                    "name": "NC lathe No. 11",
                    "position": [14.0, 8.5],
                    "footprint": [1.8, 1.2],
                    "zone": [[13, 7.2], [15, 7.2], [15, 7.8], [13, 7.8]],
                    "device": "pi-m11",
                }
            )
            saved = c.put(f"/api/editor/{site_id}", json={"document": doc, "base_version": st["version"]})
            assert saved.status_code == 200, saved.text
            during = sender.is_alive()
        sender.join()
        pub.publish([rd("pi-m11", "M11", 1)])  # the new Pi, after the save: accepted
        pub.flush()
        pub.close()
        deadline = time.monotonic() + 15
        while journal.count(site_id) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert during, "the save did not happen while readings were flowing"
        rows = journal.rows(site_id, kind="light")
        seqs = sorted(r["seq"] for r in rows if r["device"] == "pi-m3")
        assert seqs == list(range(n)), f"missing: {sorted(set(range(n)) - set(seqs))[:10]}"
        assert [r["seq"] for r in rows if r["device"] == "pi-m11"] == [1]
        dead = journal.dead_letters(reason="unknown_device")
        assert [d["topic"].split("/")[3] for d in dead if site_id in d["topic"]] == ["pi-m11"]
        # The same server throughout: one broker connection, the new site everywhere.
        assert ingest is app.state.twin.ingest and ingest.stats.connects == 1
        assert app.state.twin.settings.site.machine("M3").position == (3.4, 6.5)
        assert app.state.twin.analysis.site.machine_ids == ["M3", "M7", "M10", "M11"]
        assert "M11" in app.state.commissioning.sessions
        assert load_site(path).machine("M11").device == "pi-m11"
        assert yaml.safe_load(path.read_text())["site"] == site_id
