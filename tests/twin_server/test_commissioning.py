"""The commissioning checklist: pure logic, and the API over a real broker and the real app."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge_agent.wire import Reading, Status, encode_status
from twin_server.api.app import create_app
from twin_server.ingest.publish import Publisher
from twin_server.live.commissioning import (
    STALE_S,
    MachineSession,
    machine_of_reading,
    machine_view,
    overall,
)
from twin_server.settings import Settings
from twin_server.site import parse_site

NOW_NS = 1_800_000_000 * 10**9
S_NS = 10**9


# --- pure logic ---------------------------------------------------------------------------------
def row(
    i: int,
    kind: str,
    value: float | None,
    *,
    source: str = "M3",
    channel: str = "",
    sensor: str = "",
    device: str = "pi-m3",
    rx_s: float = -1.0,
    unit: str = "raw",
    **extra: Any,
) -> dict[str, Any]:
    """A journal row received ``rx_s`` seconds before NOW_NS."""
    rx = NOW_NS + round(rx_s * S_NS)
    return {
        "id": i,
        "site": "toyama-pilot",
        "device": device,
        "sensor": sensor or kind,
        "seq": i,
        "kind": kind,
        "t_ns": rx - 20_000_000,
        "received_ns": rx,
        "source": source,
        "channel": channel,
        "value": value,
        "label": "",
        "unit": unit,
        "count": None,
        "rssi_max_dbm": None,
        "window_ms": None,
        **extra,
    }


def by_key(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["key"]: i for i in view["checklist"]}


def status_of(view: dict[str, Any]) -> dict[str, str]:
    return {k: i["status"] for k, i in by_key(view).items()}


def passed(view: dict[str, Any]) -> set[str]:
    return {k for k, s in status_of(view).items() if s == "pass"}


ONLINE = {
    "online": True,
    "clock_synced": True,
    "received_ns": NOW_NS - 5 * S_NS,
    "t_ns": NOW_NS - 5 * S_NS,
    "agent_version": "0.1.0",
}


def test_nothing_received_is_all_waiting(pilot_site):
    m3 = pilot_site.machine("M3")
    view = machine_view(pilot_site, m3, MachineSession("M3", NOW_NS), None, NOW_NS)
    st = status_of(view)
    assert set(st.values()) == {"waiting"} and view["status"] == "waiting"
    # The kit of the site file, and one line per worker beacon.
    assert {
        "online",
        "clock",
        "data",
        "live:light",
        "light_on_off:light",
        "live:pressure",
        "pressure_excursion:pressure",
        "switch:sw-tool",
        "switch:sw-program",
        "switch:sw-material",
        "beacon:b-01",
        "beacon:b-02",
    } == set(st)
    assert by_key(view)["switch:sw-tool"]["code"] == "press_it"


def test_readings_tick_exactly_their_lines(pilot_site):
    s = MachineSession("M3", NOW_NS - 60 * S_NS, start_id=0)
    for r in [
        row(1, "light", 0.11, rx_s=-20),
        row(2, "light_state", 0.0, sensor="light", rx_s=-19),
        row(3, "light", 0.84, rx_s=-10),
        row(4, "light_state", 1.0, sensor="light", rx_s=-9),
        row(5, "switch", 1.0, channel="tool_change", sensor="sw-tool", unit="bool", rx_s=-8),
        row(6, "switch", 0.0, channel="tool_change", sensor="sw-tool", unit="bool", rx_s=-7.8),
        row(7, "rssi", -63.0, source="R3", channel="b-01", unit="dBm", count=9, rssi_max_dbm=-55.0, rx_s=-2),
    ]:
        s.apply(r)
    view = machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS, clock_offset_s=0.4)
    st = status_of(view)
    assert passed(view) == {
        "online",
        "clock",
        "data",
        "live:light",
        "light_on_off:light",
        "switch:sw-tool",
        "beacon:b-01",
    }
    assert {k for k, v in st.items() if v == "fail"} == set()
    assert view["status"] == "waiting"
    items = by_key(view)
    assert items["switch:sw-tool"]["args"]["presses"] == 1
    assert items["switch:sw-tool"]["args"]["first_press_ns"] == NOW_NS - 8 * S_NS
    assert items["light_on_off:light"]["args"]["min"] == pytest.approx(0.11)
    assert items["light_on_off:light"]["args"]["max"] == pytest.approx(0.84)
    assert items["live:light"]["args"]["value"] == pytest.approx(0.84)
    assert items["live:light"]["args"]["unit"] == "raw"
    assert items["clock"]["args"]["offset_s"] == 0.4
    assert items["beacon:b-01"]["args"]["receivers"] == [
        {"receiver": "R3", "rssi_dbm": -63.0, "rssi_max_dbm": -55.0}
    ]
    assert view["beacons"] == [
        {
            "receiver": "R3",
            "beacon": "b-01",
            "worker": "W1",
            "rssi_dbm": -63.0,
            "rssi_max_dbm": -55.0,
            "adverts": 9,
            "age_s": 2.0,
        }
    ]
    light = next(x for x in view["sensors"] if x["id"] == "light")
    assert light["states_seen"] == [0, 1] and light["value"] == pytest.approx(0.84)
    assert items["switch:sw-program"]["status"] == "waiting"


def test_lamp_seen_on_only_asks_for_off_and_pressure_needs_an_excursion(pilot_site):
    s = MachineSession("M3", NOW_NS)
    s.apply(row(1, "light_state", 1.0, sensor="light"))
    s.apply(row(2, "pressure", 0.6, sensor="pressure"))
    s.apply(row(3, "pressure_state", 0.0, sensor="pressure"))
    items = by_key(machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS))
    lamp = items["light_on_off:light"]
    assert (lamp["status"], lamp["code"]) == ("waiting", "seen_on")
    assert items["pressure_excursion:pressure"]["status"] == "waiting"
    assert items["live:pressure"]["status"] == "pass"
    s.apply(row(4, "pressure_state", 1.0, sensor="pressure"))
    items = by_key(machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS))
    assert items["pressure_excursion:pressure"]["status"] == "pass"


def test_offline_unsynced_and_silent_are_failures(pilot_site):
    s = MachineSession("M3", NOW_NS - 600 * S_NS)
    s.apply(row(1, "light", 0.5, rx_s=-(STALE_S + 5)))
    status = {**ONLINE, "online": False, "clock_synced": False}
    view = machine_view(pilot_site, pilot_site.machine("M3"), s, status, NOW_NS)
    st = status_of(view)
    assert st["online"] == st["clock"] == st["data"] == st["live:light"] == "fail"
    assert view["status"] == "fail" and by_key(view)["data"]["args"]["age_s"] == STALE_S + 5
    # Sync state unknown: waiting, never a pass.
    view = machine_view(pilot_site, pilot_site.machine("M3"), s, {**ONLINE, "clock_synced": None}, NOW_NS)
    assert by_key(view)["clock"]["code"] == "clock_unknown" and by_key(view)["clock"]["status"] == "waiting"


def test_sensors_the_agent_cannot_open_fail_and_name_the_error(pilot_site):
    s = MachineSession("M3", NOW_NS - 60 * S_NS)
    m3 = pilot_site.machine("M3")
    assert "drivers" not in by_key(machine_view(pilot_site, m3, s, ONLINE, NOW_NS))  # not reported
    ok = by_key(machine_view(pilot_site, m3, s, {**ONLINE, "extra": {"driver_errors": {}}}, NOW_NS))
    assert ok["drivers"]["status"] == "pass"
    bad = {**ONLINE, "extra": {"driver_errors": {"pressure": "SPI device /dev/spidev0.0 not found"}}}
    view = machine_view(pilot_site, m3, s, bad, NOW_NS)
    item = by_key(view)["drivers"]
    assert item["status"] == "fail" and view["status"] == "fail"
    assert item["args"]["errors"] == {"pressure": "SPI device /dev/spidev0.0 not found"}
    assert "spidev0.0" in item["reason"]
    odd = {**ONLINE, "extra": {"driver_errors": "not a mapping"}}  # from some other publisher
    assert "drivers" not in by_key(machine_view(pilot_site, m3, s, odd, NOW_NS))


def test_sequence_gaps_wait_while_fillable_and_fail_when_lost(pilot_site):
    s = MachineSession("M3", NOW_NS - 60 * S_NS)
    m3 = pilot_site.machine("M3")
    assert "delivery" not in by_key(machine_view(pilot_site, m3, s, ONLINE, NOW_NS))  # no tracker
    none_yet = {"missing": 0, "lost": 0, "sensors": {}, "lost_gaps": []}
    assert "delivery" not in by_key(machine_view(pilot_site, m3, s, ONLINE, NOW_NS, delivery=none_yet))
    light = {"light": {"upto": 99, "max_seq": 99, "missing": 0, "lost": 0}}
    ok = {"missing": 0, "lost": 0, "sensors": light, "lost_gaps": []}
    item = by_key(machine_view(pilot_site, m3, s, ONLINE, NOW_NS, delivery=ok))["delivery"]
    assert item["status"] == "pass"
    gap = {**ok, "missing": 12}
    item = by_key(machine_view(pilot_site, m3, s, ONLINE, NOW_NS, delivery=gap))["delivery"]
    assert item["status"] == "waiting" and item["code"] == "readings_missing" and "12" in item["reason"]
    lost = {
        **ok,
        "lost": 40,
        "lost_gaps": [
            {
                "device": "pi-m3",
                "sensor": "light",
                "first_seq": 100,
                "last_seq": 139,
                "missing": 40,
                "declared_ns": NOW_NS,
            }
        ],
    }
    view = machine_view(pilot_site, m3, s, ONLINE, NOW_NS, delivery=lost)
    item = by_key(view)["delivery"]
    assert item["status"] == "fail" and view["status"] == "fail"
    assert item["args"]["gaps"] == [{"sensor": "light", "first_seq": 100, "last_seq": 139, "missing": 40}]
    assert "40 reading(s) lost" in item["reason"] and "light seq 100..139" in item["reason"]


def test_a_press_never_released_is_a_stuck_switch(pilot_site):
    s = MachineSession("M3", NOW_NS - 600 * S_NS)
    s.apply(row(1, "switch", 1.0, channel="tool_change", unit="bool", rx_s=-(STALE_S + 1)))
    item = by_key(machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS))["switch:sw-tool"]
    assert (item["status"], item["code"]) == ("fail", "held")
    s.apply(row(2, "switch", 0.0, channel="tool_change", unit="bool", rx_s=-2))
    item = by_key(machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS))["switch:sw-tool"]
    assert (item["status"], item["code"]) == ("pass", "pressed")


def test_rows_before_the_start_and_odd_rows_are_ignored(pilot_site):
    s = MachineSession("M3", NOW_NS, start_id=10)
    s.apply(row(5, "switch", 1.0, channel="tool_change", unit="bool"))  # before the session
    s.apply(row(11, "light", None))  # no numeric value
    s.apply(row(12, "light", "0.5"))  # text
    s.apply(row(13, "humidity", 0.5))  # a kind this page does not know
    s.apply(row(14, "zone", None, label="M3"))
    assert s.sensors == {} and s.ignored == 3
    view = machine_view(pilot_site, pilot_site.machine("M3"), s, None, NOW_NS)
    assert by_key(view)["switch:sw-tool"]["status"] == "waiting"
    assert by_key(view)["online"]["code"] == "no_status"


def test_recent_levels_window_forgets_old_extremes(pilot_site):
    s = MachineSession("M3", NOW_NS - 3600 * S_NS)
    s.apply(row(1, "light", 0.95, rx_s=-1000))
    s.apply(row(2, "light", 0.2, rx_s=-1))
    light = next(
        x
        for x in machine_view(pilot_site, pilot_site.machine("M3"), s, ONLINE, NOW_NS)["sensors"]
        if x["id"] == "light"
    )
    assert (light["min"], light["max"]) == (0.2, 0.2)


def test_machine_of_reading(pilot_site):
    assert machine_of_reading(pilot_site, "switch", "M7", "pi-m7") == "M7"
    assert machine_of_reading(pilot_site, "light", "M99", "pi-m3") is None
    assert machine_of_reading(pilot_site, "rssi", "R10", "pi-m10") == "M10"
    assert machine_of_reading(pilot_site, "rssi", "R-new", "pi-m3") == "M3"  # by its Pi
    assert machine_of_reading(pilot_site, "rssi", "R-new", "scanner-9") is None
    assert machine_of_reading(pilot_site, "zone", "tagsys", "tagsys") is None


def test_minimal_site_uses_the_kit_and_says_when_no_receiver():
    site = parse_site(
        {
            "site": "s",
            "machines": [{"id": "A", "zone": [[0, 0], [1, 0], [1, 1]]}],
            "workers": [{"id": "W1", "beacon": "b-1"}],
        }
    )
    s = MachineSession("A", NOW_NS)
    s.apply(row(1, "switch", 1.0, source="A", channel="program_input", device="box-a", unit="bool"))
    view = machine_view(site, site.machine("A"), s, None, NOW_NS)
    st = status_of(view)
    assert view["device"] == "box-a"
    assert st["switch:sw-program"] == "pass" and st["switch:sw-tool"] == "waiting"
    assert st["receivers"] == "waiting" and "beacon:b-1" not in st


def test_overall():
    from twin_server.live.commissioning import Item

    def it(status: str) -> Item:
        return Item("k", "data", status, "c", {}, "r")

    assert overall([it("pass"), it("pass")]) == "pass"
    assert overall([it("pass"), it("waiting")]) == "waiting"
    assert overall([it("waiting"), it("fail")]) == "fail"


# --- the API over a real broker -----------------------------------------------------------------
@pytest.fixture
def site(pilot_site):
    # A site id of its own: other tests publish the pilot's topics on the shared broker.
    return pilot_site.model_copy(update={"site": f"cm-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
def client(tmp_path, mosquitto, site):
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id=f"{site.site}-server",
        analysis_interval_s=60,
    )
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 15
        while not c.get("/health").json()["broker"]["subscribed"]:
            assert time.monotonic() < deadline, "ingest did not subscribe"
            time.sleep(0.05)
        yield c


def wait_for(c: TestClient, site: str, machine: str, cond, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        doc = c.get(f"/api/commissioning/{site}").json()
        view = next(m for m in doc["machines"] if m["id"] == machine)
        if cond(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


def test_api_ticks_the_published_lines_over_mqtt(client, mosquitto, site):
    sid = site.site
    before = wait_for(client, sid, "M3", lambda v: True)
    assert set(status_of(before).values()) == {"waiting"}
    now = time.time_ns()
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        pub.publish_raw(
            *encode_status(Status(sid, "pi-m3", True, t_ns=now, clock_synced=True, agent_version="0.1.0"))
        )

        def rd(
            seq: int,
            kind: str,
            value: float,
            sensor: str,
            unit: str = "raw",
            channel: str = "",
            source: str = "M3",
            **kw: Any,
        ) -> Reading:
            return Reading(
                sid, "pi-m3", sensor, kind, now + seq * 1000, seq, source, value, unit, channel, **kw
            )

        pub.publish(
            [
                rd(0, "light", 0.1, "light"),
                rd(1, "light_state", 0.0, "light", "bool"),
                rd(2, "light", 0.86, "light"),
                rd(3, "light_state", 1.0, "light", "bool"),
                rd(0, "switch", 1.0, "sw-tool", "bool", "tool_change"),
                rd(1, "switch", 0.0, "sw-tool", "bool", "tool_change"),
                rd(
                    0,
                    "rssi",
                    -61.0,
                    "R3.b-01",
                    "dBm",
                    "b-01",
                    source="R3",
                    count=8,
                    rssi_max_dbm=-54.0,
                    window_ms=1000,
                ),
                # A machine this site does not have (ignored here; a dead letter with device scopes).
                rd(5, "light", 0.5, "light", source="M99"),
            ]
        )
        # Malformed: not JSON, and a switch with an impossible value; both become dead letters.
        pub.publish_raw(f"twin/v1/{sid}/pi-m3/light/light", b"\xff{not json")
        pub.publish_raw(
            f"twin/v1/{sid}/pi-m3/switch/sw-program",
            b'{"v":1,"t_ns":%d,"seq":9,"source":"M3","channel":"program_input","value":7,'
            b'"unit":"bool"}' % now,
        )
        pub.flush()
    finally:
        pub.close()
    expected = {
        "online",
        "clock",
        "data",
        "delivery",
        "live:light",
        "light_on_off:light",
        "switch:sw-tool",
        "beacon:b-01",
    }
    view = wait_for(
        client, sid, "M3", lambda v: passed(v) == expected and {"bad_json", "bad_value"} <= set(v["rejected"])
    )
    st = status_of(view)
    assert passed(view) == expected, st
    assert st["switch:sw-program"] == st["switch:sw-material"] == "waiting"  # never pressed
    assert st["beacon:b-02"] == "waiting" and st["pressure_excursion:pressure"] == "waiting"
    assert view["status"] == "waiting" and "fail" not in st.values()
    assert view["rejected"]["bad_json"] == view["rejected"]["bad_value"] == 1
    assert view["device_status"]["online"] is True and view["device_status"]["agent_version"] == "0.1.0"
    assert view["beacons"][0]["receiver"] == "R3" and view["beacons"][0]["rssi_dbm"] == -61.0
    assert by_key(view)["clock"]["args"]["offset_s"] is not None  # the ingest's estimate
    # The other machines saw nothing.
    doc = client.get(f"/api/commissioning/{sid}").json()
    assert all(set(status_of(m).values()) == {"waiting"} for m in doc["machines"] if m["id"] != "M3")

    # Start commissioning again: the press no longer counts; the device is still online.
    r = client.post(f"/api/commissioning/{sid}/start", params={"machine": "M3"})
    assert r.status_code == 200
    st = status_of(r.json())
    assert st["switch:sw-tool"] == "waiting" and st["online"] == "pass" and st["data"] == "waiting"
    assert r.json()["rejected"] == {}

    # And the WebSocket pushes the same document.
    with client.websocket_connect(f"/ws/commissioning/{sid}") as ws:
        msg = ws.receive_json()
    assert msg["type"] == "commissioning" and [m["id"] for m in msg["machines"]] == ["M3", "M7", "M10"]


def test_api_shows_the_agents_driver_errors_from_its_status(client, mosquitto, site):
    sid = site.site
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        pub.publish_raw(
            *encode_status(
                Status(
                    sid,
                    "pi-m7",
                    True,
                    t_ns=time.time_ns(),
                    clock_synced=True,
                    extra={"driver_errors": {"light": "ADC not answering"}},
                )
            )
        )
        pub.flush()
    finally:
        pub.close()
    view = wait_for(client, sid, "M7", lambda v: "drivers" in by_key(v))
    assert by_key(view)["drivers"]["status"] == "fail"
    assert by_key(view)["drivers"]["args"]["errors"] == {"light": "ADC not answering"}


def test_api_errors_name_the_problem(client, site):
    sid = site.site
    r = client.post(f"/api/commissioning/{sid}/start", params={"machine": "M99"})
    assert r.status_code == 404 and "M99" in r.json()["detail"]
    assert client.post(f"/api/commissioning/{sid}/start").status_code == 422
    r = client.get("/api/commissioning/elsewhere")
    assert r.status_code == 404 and "elsewhere" in r.json()["detail"]
    assert client.get("/commissioning/").headers["content-type"].startswith("text/html")
    assert client.get("/commissioning/src/commissioning.js").status_code == 200
    assert client.get("/commissioning/../pyproject.toml").status_code == 404
    assert client.get("/commissioning/src/app.js").status_code == 404  # only the page's own files


# --- with sign-in: engineers and supervisors only -------------------------------------------------
def test_roles_sessions_and_csrf(tmp_path, pilot_site):
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path / "data", broker_host=None, auth=True))
    store = app.state.auth.store
    sid = pilot_site.site
    for name, role, worker in (
        ("eng", "engineer", None),
        ("sup", "supervisor", None),
        ("w1", "worker", "W1"),
        ("integ", "integrator", None),
    ):
        store.add_user(name, sid, role, "correct horse battery", worker=worker)
    url = f"/api/commissioning/{sid}"
    with TestClient(app) as anon:
        assert anon.get(url).status_code == 401
        assert anon.get("/commissioning/").status_code == 200  # the page itself is public, like the viewer's
        for name in ("w1", "integ"):
            headers = {"Authorization": f"Bearer {store.create_token(store.user(name), 600)[1]}"}
            assert anon.get(url, headers=headers).status_code == 403, name
        sup = {"Authorization": f"Bearer {store.create_token(store.user('sup'), 600)[1]}"}
        assert anon.get(url, headers=sup).status_code == 200
    with TestClient(app) as eng:
        csrf = eng.post("/api/auth/login", json={"name": "eng", "password": "correct horse battery"}).json()
        assert eng.get(url).status_code == 200
        start = f"{url}/start?machine=M7"
        assert eng.post(start).status_code == 403  # a cookie session needs the CSRF header
        r = eng.post(start, headers={"X-CSRF-Token": csrf["csrf_token"]})
        assert r.status_code == 200 and r.json()["id"] == "M7"
    changes = [a for a in store.audit_rows(site=sid) if a["route"] == "/api/commissioning/{site}/start"]
    assert [(a["user"], a["status"], a["target_machine"]) for a in changes] == [
        ("eng", 403, "M7"),
        ("eng", 200, "M7"),
    ]


def test_tracker_reads_only_new_rows_and_caps_a_long_backlog(tmp_path, pilot_site, monkeypatch):
    from twin_server.api import commissioning as api
    from twin_server.store.journal import Journal

    journal = Journal(tmp_path / "journal.sqlite")
    old = [
        (
            Reading(
                pilot_site.site, "pi-m3", "sw-tool", "switch", NOW_NS, 0, "M3", 1.0, "bool", "tool_change"
            ),
            NOW_NS,
        )
    ]
    journal.write_batch(old)
    tracker = api.CommissioningTracker(pilot_site, journal, clock_ns=lambda: NOW_NS + S_NS)
    # A press from before the server started does not count.
    assert status_of(tracker.view("M3")["machines"][0])["switch:sw-tool"] == "waiting"

    def press(seq: int, channel: str, sensor: str) -> tuple[Reading, int]:
        return Reading(
            pilot_site.site, "pi-m3", sensor, "switch", NOW_NS + seq, seq, "M3", 1.0, "bool", channel
        ), NOW_NS + seq

    journal.write_batch([press(1, "tool_change", "sw-tool")])
    assert tracker.refresh() == 1 and tracker.refresh() == 0
    assert status_of(tracker.view("M3")["machines"][0])["switch:sw-tool"] == "pass"
    monkeypatch.setattr(api, "MAX_CATCHUP_ROWS", 3)
    journal.write_batch(
        [press(seq, "program_input", "sw-program") for seq in range(10)]
        + [press(seq, "material_setting", "sw-material") for seq in range(2)]
    )
    doc = tracker.view()
    st = status_of(doc["machines"][0])
    assert doc["skipped_rows"] == 9 and st["switch:sw-program"] == st["switch:sw-material"] == "pass"
    assert doc["machines"][0]["sensors"][3]["presses"] == 1  # only the newest program press was read
    journal.close()
