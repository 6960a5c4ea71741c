"""Device scope on ingest: out-of-scope readings are dead letters, counted."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient
from services import wait_until

from edge_agent.wire import Reading, Status, encode_reading, encode_status
from twin_server.api.app import create_app
from twin_server.auth.device_scope import DeviceScope
from twin_server.ingest.publish import Publisher
from twin_server.ingest.subscriber import Ingest, ScopeFilter, classify
from twin_server.settings import Settings
from twin_server.store.journal import DeadLetter, Journal

T0 = 1_700_000_000 * 10**9


def _light(site: str, device: str, source: str, seq: int, sensor: str = "light") -> Reading:
    return Reading(site, device, sensor, "light", T0 + seq * 10**9, seq, source, float(seq), "raw")


def _rssi(site: str, device: str, receiver: str, seq: int) -> Reading:
    return Reading(
        site,
        device,
        f"{receiver}.b-01",
        "rssi",
        T0 + seq * 10**9,
        seq,
        receiver,
        -60.0,
        "dBm",
        channel="b-01",
    )


def _zone(site: str, device: str, source: str, seq: int) -> Reading:
    return Reading(site, device, "b-01", "zone", T0 + seq * 10**9, seq, source, "M3", "zone", channel="b-01")


@pytest.fixture
def site(pilot_site):
    return pilot_site.model_copy(update={"site": "scope-t"})


def test_fast_path_agrees_with_device_scope(site):
    """The precomputed set accepts exactly what DeviceScope.check accepts."""
    scope = DeviceScope.of(site)
    fast = ScopeFilter(scope)
    devices = ["pi-m3", "pi-m7", "pi-m10", "tagsys", "rx-R3", "pi-x"]
    sources = ["M3", "M7", "M10", "R3", "R7", "R10", "tagsys", "nope"]
    kinds = ["light", "pressure", "switch", "light_state", "pressure_state", "rssi", "zone"]
    n_ok = 0
    for s, dev, kind, src in itertools.product(["scope-t", "other"], devices, kinds, sources):
        r = Reading(s, dev, "x", kind, T0, 0, src, 1.0, "raw")
        assert fast.reading(r) == scope.check(r), (s, dev, kind, src)
        n_ok += fast.reading(r) is None
    assert n_ok == 3 * 5 + 3 + 1  # 5 machine kinds x 3 machines, 3 receivers at machines, the locator
    assert fast.status(Status("scope-t", "pi-m3", True)) is None
    assert fast.status(Status("scope-t", "pi-x", True)) == "unknown_device"
    assert fast.status(Status("other", "pi-m3", True)) == "foreign_site"


def test_classify_with_scope_names_the_reason(site):
    scope = ScopeFilter(DeviceScope.of(site))
    topic, payload = encode_reading(_light("scope-t", "pi-m3", "M7", 0))
    dead = classify(topic, payload, 5, scope)
    assert isinstance(dead, DeadLetter) and dead.reason == "foreign_machine"
    assert "pi-m3" in dead.detail and "'M7'" in dead.detail and dead.payload == payload
    assert isinstance(classify(topic, payload, 5), Reading)  # no scope: no check
    ok = classify(*encode_reading(_light("scope-t", "pi-m3", "M3", 0)), 5, scope)
    assert isinstance(ok, Reading)


@pytest.mark.broker
def test_out_of_scope_readings_are_dead_letters_and_ingest_goes_on(tmp_path, own_mosquitto, site):
    """A device publishing another machine's sensor, another receiver, another site: counted, not kept."""
    journal = Journal(tmp_path / "j.sqlite")
    # Subscribed to every site ("+"), so a foreign site's topic reaches this server at all.
    ing = Ingest(
        journal,
        own_mosquitto.host,
        own_mosquitto.port,
        site="+",
        client_id="t-scope",
        scope=DeviceScope.of(site),
    )
    ing.start()
    try:
        assert ing.wait_subscribed(10)
        pub = Publisher(own_mosquitto.host, own_mosquitto.port)
        good = [_light("scope-t", "pi-m3", "M3", i) for i in range(50)]
        good += [_rssi("scope-t", "pi-m7", "R7", i) for i in range(10)]
        good += [_zone("scope-t", "tagsys", "tagsys", i) for i in range(5)]
        bad = {
            "foreign_machine": [_light("scope-t", "pi-m3", "M7", i, sensor="m7-light") for i in range(4)],
            "foreign_receiver": [_rssi("scope-t", "pi-m3", "R10", i) for i in range(3)],
            "foreign_site": [_light("other-site", "pi-m3", "M3", i) for i in range(2)],
            "unknown_device": [_light("scope-t", "pi-rogue", "M3", 0)],
            "kind_not_allowed": [_zone("scope-t", "pi-m10", "pi-m10", 0)],
            "foreign_locator": [_zone("scope-t", "tagsys", "M3", 0)],
        }
        pub.publish(good[:30])
        for readings in bad.values():
            pub.publish(readings)
        pub.publish_raw(*encode_status(Status("scope-t", "pi-m3", True, T0, True, "0.1")))
        pub.publish_raw(*encode_status(Status("scope-t", "pi-ghost", True, T0, True, "0.1")))
        pub.publish(good[30:])  # ingest keeps going after the rejects
        pub.close()
        n_bad = sum(len(v) for v in bad.values())
        wait_until(lambda: ing.stats.received >= len(good) + n_bad + 2)
    finally:
        ing.stop()
    expected = {reason: len(v) for reason, v in bad.items()}
    expected["unknown_device"] += 1  # the ghost's status
    assert dict(ing.stats.dead_by_reason) == expected
    assert journal.dead_letter_counts() == expected
    assert ing.stats.accepted == len(good) == journal.count()
    assert journal.count("other-site") == 0
    assert {(r["device"], r["source"]) for r in journal.rows("scope-t")} == {
        ("pi-m3", "M3"),
        ("pi-m7", "R7"),
        ("tagsys", "tagsys"),
    }
    assert [d["device"] for d in journal.device_status()] == ["pi-m3"]
    letter = journal.dead_letters(reason="foreign_machine")[0]
    assert letter["topic"] == "twin/v1/scope-t/pi-m3/light/m7-light" and '"source":"M7"' in letter["payload"]


@pytest.mark.broker
def test_serve_counts_out_of_scope_in_health(tmp_path, mosquitto, site):
    """The app wires the site's scope into ingest by default; /health counts per reason."""
    settings = Settings(
        site=site,
        data_dir=tmp_path / "data",
        broker_host=mosquitto.host,
        broker_port=mosquitto.port,
        client_id="t-scope-app",
        analysis_interval_s=600,
    )
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.get("/health").json()["broker"]["subscribed"])
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.publish(
            [
                _light("scope-t", "pi-m3", "M3", 0),
                _light("scope-t", "pi-m3", "M10", 0, sensor="x"),
                _light("scope-t", "pi-m3", "M3", 1),
            ]
        )
        pub.close()
        wait_until(lambda: client.get("/health").json()["ingest"]["received"] >= 3)
        ingest = client.get("/health").json()["ingest"]
    assert ingest["dead_by_reason"] == {"foreign_machine": 1}
    assert ingest["accepted"] == 2
