"""Generated mosquitto password + ACL files, checked on paper and against a real broker."""

from __future__ import annotations

import queue
import stat
import subprocess
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from deploy_broker import Client, Deployment, SecureMosquitto, connect, subscribe
from services import free_port

from twin_server.cli.deploy_acl import (
    DeployError,
    acl_text,
    hash_password,
    main,
    parse_credentials,
    plan_broker,
    plan_users,
    site_devices,
    verify_password,
    write_deployment,
)
from twin_server.site import parse_site

ROOT = Path(__file__).resolve().parents[2]
SITE = "toyama-pilot"


# -- pure parts ------------------------------------------------------------------------------------
def test_users_follow_the_site_file(pilot_site) -> None:
    users = {u.name: u for u in plan_users(pilot_site)}
    assert list(users) == ["twin-server", "pi-m3", "pi-m7", "pi-m10", "tagsys"]
    assert users["pi-m3"].write == (f"twin/v1/{SITE}/pi-m3/#",)
    assert users["pi-m3"].read == (f"twin/v1/{SITE}/pi-m3/ack",)  # the server's ack of its own readings
    assert users["twin-server"].read == ("twin/v1/#",)
    assert users["twin-server"].write == (f"twin/v1/{SITE}/+/ack",)
    assert "edge-sim" not in users
    sim = plan_users(pilot_site, simulator=True)[-1]
    assert sim.name == "edge-sim" and sim.write == (f"twin/v1/{SITE}/#",)


def test_acl_text_has_one_block_per_user_and_nothing_for_anonymous(pilot_site) -> None:
    text = acl_text(plan_users(pilot_site), SITE)
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules[0] == "user twin-server"  # no topic line may precede the first user (= anonymous)
    assert rules == [
        "user twin-server",
        f"topic write twin/v1/{SITE}/+/ack",
        "topic read twin/v1/#",
        "user pi-m3",
        f"topic write twin/v1/{SITE}/pi-m3/#",
        f"topic read twin/v1/{SITE}/pi-m3/ack",
        "user pi-m7",
        f"topic write twin/v1/{SITE}/pi-m7/#",
        f"topic read twin/v1/{SITE}/pi-m7/ack",
        "user pi-m10",
        f"topic write twin/v1/{SITE}/pi-m10/#",
        f"topic read twin/v1/{SITE}/pi-m10/ack",
        "user tagsys",
        f"topic write twin/v1/{SITE}/tagsys/#",
        f"topic read twin/v1/{SITE}/tagsys/ack",
    ]


def test_names_that_would_widen_an_acl_are_refused(pilot_site) -> None:
    for bad in ("pi/#", "pi+", "a b", "", "$SYS"):
        with pytest.raises(DeployError):
            site_devices(pilot_site, [bad])
    with pytest.raises(DeployError, match="server user"):
        plan_users(pilot_site, extra_devices=["twin-server"])


def test_devices_are_unique_in_file_order() -> None:
    site = parse_site(
        {
            "site": "s1",
            "machines": [
                {"id": "A", "zone": [[0, 0], [1, 0], [1, 1]], "device": "pi-1"},
                {"id": "B", "zone": [[2, 0], [3, 0], [3, 1]], "device": "pi-1"},  # one Pi, two machines
                {"id": "C", "zone": [[4, 0], [5, 0], [5, 1]]},  # no device named: the default pi-c
            ],
            "locators": ["loc"],
        }
    )
    assert site_devices(site, ["scanner", "pi-1"]) == ["pi-1", "pi-c", "loc", "scanner"]


def test_python_hash_is_the_format_mosquitto_passwd_writes(tmp_path: Path) -> None:
    # mosquitto_passwd's own output must verify with our reader, and ours must look like it.
    pw = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "alice", "s3cret"], check=True)
    theirs = pw.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", theirs)
    assert not verify_password("s3cret!", theirs)
    ours = hash_password("s3cret")
    assert ours.split("$")[:3] == theirs.split("$")[:3] == ["", "7", "101"]
    assert len(ours) == len(theirs)
    assert verify_password("s3cret", ours) and not verify_password("S3cret", ours)
    assert hash_password("s3cret") != ours  # a fresh salt every time


def test_files_modes_and_password_reuse(tmp_path: Path, pilot_site) -> None:
    out = tmp_path / "secrets"
    first = write_deployment(pilot_site, out, hasher="python")
    assert len(set(first.values())) == len(first)  # every user has its own password
    assert all(len(p) >= 32 for p in first.values())
    modes = {"passwd": 0o644, "acl": 0o644, "credentials.txt": 0o600, "twin-server.env": 0o600}
    for name, mode in modes.items():
        assert stat.S_IMODE((out / name).stat().st_mode) == mode, name
    assert parse_credentials((out / "credentials.txt").read_text()) == first
    env = (out / "twin-server.env").read_text()
    assert env == f"TWIN_MQTT_USERNAME=twin-server\nTWIN_MQTT_PASSWORD={first['twin-server']}\n"
    # The broker file holds hashes only, each matching its user's password.
    for line in (out / "passwd").read_text().splitlines():
        user, h = line.split(":", 1)
        assert first[user] not in line and verify_password(first[user], h)

    again = write_deployment(pilot_site, out, hasher="python", simulator=True)
    assert {u: again[u] for u in first} == first  # adding a user keeps everyone else's password
    assert "edge-sim" in again and (out / "edge-sim.env").exists()
    rotated = write_deployment(pilot_site, out, hasher="python", rotate=True)
    assert all(rotated[u] != first[u] for u in first)


def test_cli_writes_files_and_reports_a_bad_site(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["--site", str(ROOT / "examples" / "pilot_site.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5 MQTT users for toyama-pilot" in printed
    creds = parse_credentials((out / "credentials.txt").read_text())
    assert all(p not in printed for p in creds.values())  # passwords go to the 0600 file only
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: x\nmachines: []\n")
    assert main(["--site", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "deploy_acl" in capsys.readouterr().err


# -- against a real mosquitto ----------------------------------------------------------------------
def _login(dep: Deployment, user: str, protocol=mqtt.MQTTv311) -> Client:
    c = connect(dep.broker, f"{user}-{uuid.uuid4().hex[:6]}", user, dep.passwords[user], protocol)
    assert c.connect_rc == 0, f"{user} was refused ({c.connect_rc})"
    return c


def _drain_until(inbox: queue.Queue, marker: bytes, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
    """Everything received up to and including ``marker`` (fails if it never comes)."""
    got = []
    while True:
        topic, payload = inbox.get(timeout=timeout_s)
        got.append((topic, payload))
        if payload == marker:
            return got


def test_device_publishes_only_under_its_own_topics(secured: Deployment) -> None:
    server = _login(secured, "twin-server")
    # MQTT 5, so the broker says "not authorized" in the PUBACK. (With 3.1.1, mosquitto 2.0.11
    # answers a denied publish with a PUBACK paho 2.2 rejects, and paho drops the connection.)
    m3 = _login(secured, "pi-m3", mqtt.MQTTv5)
    try:
        assert subscribe(server, "twin/v1/#") == [1]
        tag = uuid.uuid4().hex.encode()
        forbidden = [
            f"twin/v1/{SITE}/pi-m7/light/light",  # another machine of the same site
            f"twin/v1/{SITE}/pi-m30/light/light",  # a device id with pi-m3 as a prefix
            "twin/v1/other-site/pi-m3/light/light",  # its own name under another site
        ]
        own = [f"twin/v1/{SITE}/pi-m3/light/light", f"twin/v1/{SITE}/pi-m3/status"]
        acks = m3.publish_all([(t, b"forged-" + tag) for t in forbidden] + [(t, b"ok-" + tag) for t in own])
        # MQTT keeps one publisher's messages in order, so anything forged would arrive first.
        got = _drain_until(server.inbox, b"ok-" + tag)
        got.append(server.inbox.get(timeout=10))
    finally:
        m3.close()
        server.close()
    assert acks == [0x87] * len(forbidden) + [0, 0]
    denied = [
        line
        for line in (secured.broker.workdir / "mosquitto.log").read_text().splitlines()
        if "Denied PUBLISH" in line
    ]
    assert all(any(f"'{t}'" in line for line in denied) for t in forbidden)  # the broker says so too
    assert got == [(t, b"ok-" + tag) for t in own]


def test_devices_cannot_read_each_other(secured: Deployment) -> None:
    server = _login(secured, "twin-server")
    spy = _login(secured, "pi-m7")
    m3 = _login(secured, "pi-m3", mqtt.MQTTv5)
    try:
        subscribe(server, "twin/v1/#")
        subscribe(spy, "twin/v1/#")  # mosquitto 2.0 grants it, then delivers nothing the ACL forbids
        tag = uuid.uuid4().hex.encode()
        for i in range(20):
            m3.mqttc.publish(f"twin/v1/{SITE}/pi-m3/switch/sw-tool", b"%d-" % i + tag, qos=1)
        _drain_until(server.inbox, b"19-" + tag)
        # The spy subscribed before the publishes and shares the broker's delivery pass with
        # the server, so 1 s after the server has everything, nothing more can be in flight.
        with pytest.raises(queue.Empty):
            spy.inbox.get(timeout=1.0)
    finally:
        for c in (m3, spy, server):
            c.close()


def test_the_servers_ack_reaches_its_device_only(secured: Deployment) -> None:
    server = _login(secured, "twin-server", mqtt.MQTTv5)
    m3 = _login(secured, "pi-m3")
    spy = _login(secured, "pi-m7")
    try:
        assert subscribe(m3, f"twin/v1/{SITE}/pi-m3/ack") == [1]
        subscribe(spy, f"twin/v1/{SITE}/+/ack")  # granted, then the ACL delivers nothing of pi-m3
        tag = uuid.uuid4().hex.encode()
        acks = server.publish_all(
            [
                (f"twin/v1/{SITE}/pi-m3/ack", b"ack-" + tag),
                (f"twin/v1/{SITE}/pi-m3/light/light", b"forged-" + tag),
            ]
        )
        assert m3.inbox.get(timeout=10) == (f"twin/v1/{SITE}/pi-m3/ack", b"ack-" + tag)
        with pytest.raises(queue.Empty):
            spy.inbox.get(timeout=1.0)
    finally:
        for c in (server, m3, spy):
            c.close()
    assert acks == [0, 0x87]  # the server writes acknowledgements, never readings


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_anonymous_and_wrong_passwords_are_refused(secured: Deployment, protocol) -> None:
    attempts = [
        (None, None),  # anonymous
        ("pi-m3", secured.passwords["pi-m3"] + "x"),  # wrong password
        ("pi-m3", secured.passwords["pi-m7"]),  # another device's password
        ("nobody", secured.passwords["pi-m3"]),  # unknown user
    ]
    for user, password in attempts:
        c = connect(secured.broker, f"intruder-{uuid.uuid4().hex[:6]}", user, password, protocol)
        # 3.1.1: 5 = not authorised; 5.0: 0x86 bad user name or password, 0x87 not authorized.
        assert c.connect_rc in (5, 0x86, 0x87), (user, c.connect_rc)


def test_broker_accepts_hashes_from_mosquitto_passwd(tmp_path: Path, pilot_site) -> None:
    out = tmp_path / "secrets"
    passwords = write_deployment(pilot_site, out, hasher="mosquitto_passwd")
    broker = SecureMosquitto(tmp_path, free_port(), password_file=out / "passwd", acl_file=out / "acl")
    broker.start()
    try:
        ok = connect(broker, "m10", "pi-m10", passwords["pi-m10"])
        bad = connect(broker, "m10b", "pi-m10", passwords["pi-m3"])
        assert ok.connect_rc == 0 and bad.connect_rc in (5, 0x87)  # paho 2 reports 3.1.1 rc 5 as 0x87
        ok.close()
    finally:
        broker.stop()


# -- several sites on one broker -------------------------------------------------------------------
OTHER_SITE = {
    "site": "kanazawa",
    "machines": [{"id": "L1", "zone": [[0, 0], [2, 0], [2, 2]], "device": "pi-m3"}],  # same device id
}


def test_several_sites_get_qualified_names_and_server_reads_its_own_site(pilot_site) -> None:
    other = parse_site(OTHER_SITE)
    users = {u.name: u for u in plan_broker([pilot_site, other], extra_devices=["scanner@kanazawa"])}
    assert users["pi-m3@toyama-pilot"].write == ("twin/v1/toyama-pilot/pi-m3/#",)
    assert users["pi-m3@kanazawa"].write == ("twin/v1/kanazawa/pi-m3/#",)
    assert users["scanner@kanazawa"].write == ("twin/v1/kanazawa/scanner/#",)
    assert users["twin-server@kanazawa"].read == ("twin/v1/kanazawa/#",)
    assert not [n for n in users if "@" not in n]
    with pytest.raises(DeployError, match="ID@SITE"):
        plan_broker([pilot_site, other], extra_devices=["scanner"])  # which site?
    with pytest.raises(DeployError, match="twice"):
        plan_broker([pilot_site, pilot_site])
    # One site, qualified on request (a broker that will take more sites later).
    assert plan_broker([pilot_site], qualify=True)[0].name == "twin-server@toyama-pilot"


def test_one_broker_keeps_two_factories_apart(tmp_path: Path, pilot_site) -> None:
    other = parse_site(OTHER_SITE)
    out = tmp_path / "secrets"
    pw = write_deployment([pilot_site, other], out, hasher="python")
    assert {p.name for p in out.glob("*.env")} == {"twin-server@toyama-pilot.env", "twin-server@kanazawa.env"}
    broker = SecureMosquitto(tmp_path, free_port(), password_file=out / "passwd", acl_file=out / "acl")
    broker.start()
    clients = []
    try:

        def login(user: str) -> Client:
            c = connect(broker, f"{user}-{uuid.uuid4().hex[:6]}", user, pw[user], mqtt.MQTTv5)
            assert c.connect_rc == 0, user
            clients.append(c)
            return c

        toyama_server = login("twin-server@toyama-pilot")
        subscribe(toyama_server, "twin/v1/#")
        # A second ingest process of the same site, on the shared form of its own site's filter.
        toyama_shared = login("twin-server@toyama-pilot")
        assert subscribe(toyama_shared, "$share/twin-toyama-pilot/twin/v1/toyama-pilot/#") == [1]
        assert connect(broker, "bare", "pi-m3", pw["pi-m3@toyama-pilot"]).connect_rc != 0
        kanazawa_pi, toyama_pi = login("pi-m3@kanazawa"), login("pi-m3@toyama-pilot")
        tag = uuid.uuid4().hex.encode()
        # Kanazawa's pi-m3 may publish at home, never under Toyama (same device id or not).
        acks = kanazawa_pi.publish_all(
            [
                ("twin/v1/toyama-pilot/pi-m3/light/light", b"forged-" + tag),
                ("twin/v1/kanazawa/pi-m3/light/light", b"kanazawa-" + tag),
            ]
        )
        # 0: accepted (Toyama's server has a matching subscription; the read ACL filters delivery).
        assert acks == [0x87, 0]
        # mosquitto routes a QoS 1 message before it acknowledges it, so anything Toyama's
        # server could receive from above is already queued ahead of this one.
        assert toyama_pi.publish_all([("twin/v1/toyama-pilot/pi-m3/light/light", b"toyama-" + tag)]) == [0]
        got = _drain_until(toyama_server.inbox, b"toyama-" + tag)
        got_shared = _drain_until(toyama_shared.inbox, b"toyama-" + tag)
    finally:
        for c in clients:
            c.close()
        broker.stop()
    assert got == got_shared == [("twin/v1/toyama-pilot/pi-m3/light/light", b"toyama-" + tag)]


def test_broken_inputs_give_clear_errors(tmp_path: Path, pilot_site, capsys) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "credentials.txt").write_text("pi-m3 has three words\n")  # hand-edited, broken
    site = str(ROOT / "examples" / "pilot_site.yaml")
    assert main(["--site", site, "--out", str(out)]) == 2
    assert "credentials.txt line 1" in capsys.readouterr().err
    assert main(["--site", site, "--site", site, "--out", str(tmp_path / "x")]) == 2  # same site twice
    assert "twice" in capsys.readouterr().err
    with pytest.raises(DeployError):
        verify_password("x", "$6$old$sha512crypt")  # not a $7$ hash
    with pytest.raises(DeployError):
        write_deployment(pilot_site, tmp_path / "y", hasher="bcrypt")
