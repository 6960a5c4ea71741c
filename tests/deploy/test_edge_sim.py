"""The stack's simulated shop floor: real edge agents through the production ACL.

deploy/edge-sim/edge_sim.py runs one real edge agent per device of the pilot site, each
logged in with its own generated user, against a mosquitto running the generated password
and ACL files. Every agent's topics must fit its ACL: the server user receives readings and
status from every device, and the broker denies nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from deploy_broker import connect, subscribe

from edge_agent.wire import Reading, Status, decode

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "edge-sim" / "edge_sim.py"
sys.path.insert(0, str(SCRIPT.parent))

from edge_sim import agent_logins, with_login, with_replay_options  # noqa: E402

DEVICES = {"pi-m3", "pi-m7", "pi-m10", "tagsys"}


def test_logins_prefer_the_devices_own_user() -> None:
    creds = {"pi-m3@s": "a", "pi-m7": "b", "edge-sim": "c"}
    assert agent_logins(["pi-m3", "pi-m7"], "s", creds, {}) == {
        "pi-m3": ("pi-m3@s", "a"),
        "pi-m7": ("pi-m7", "b"),
    }
    with pytest.raises(KeyError):
        agent_logins(["pi-m10"], "s", creds, {})
    env = {"TWIN_MQTT_USERNAME": "edge-sim", "TWIN_MQTT_PASSWORD": "c"}
    assert agent_logins(["pi-m3"], "s", None, env) == {"pi-m3": ("edge-sim", "c")}
    with pytest.raises(KeyError):
        agent_logins(["pi-m3"], "s", None, {})


def test_config_edits_land_in_the_right_tables() -> None:
    import tomllib

    text = '[agent]\nsite = "s"\n[mqtt]\nhost = "h"\n[replay]\nfile = "f.csv"\n'
    doc = tomllib.loads(with_replay_options(with_login(text, "pi-m3", 'p"w'), True, False))
    assert doc["mqtt"] == {"host": "h", "username": "pi-m3", "password": 'p"w'}
    assert doc["replay"] == {"file": "f.csv", "restamp": True, "loop": False}
    with pytest.raises(ValueError):
        with_login('[agent]\nsite = "s"\n', "u", "p")


@pytest.mark.broker
def test_real_agents_publish_within_their_acl(secured, tmp_path: Path) -> None:
    server = connect(
        secured.broker, f"srv-{uuid.uuid4().hex[:6]}", "twin-server", secured.passwords["twin-server"]
    )
    assert server.connect_rc == 0
    try:
        subscribe(server, "twin/v1/#")
        log = secured.broker.workdir / "mosquitto.log"
        log_before = log.read_text().count("Denied PUBLISH")
        done = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "--site",
                str(ROOT / "examples" / "pilot_site.yaml"),
                "--broker",
                f"{secured.broker.host}:{secured.broker.port}",
                "--hours",
                "0.1",
                "--speed",
                "600",
                "--credentials",
                str(secured.out_dir / "credentials.txt"),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        time.sleep(0.5)  # the last acknowledged messages are on their way to the server
        by_device: Counter = Counter()
        statuses = set()
        while not server.inbox.empty():
            topic, payload = server.inbox.get_nowait()
            msg = decode(topic, payload)
            if isinstance(msg, Reading):
                by_device[msg.device] += 1
            elif isinstance(msg, Status):
                statuses.add(msg.device)
    finally:
        server.close()
    assert statuses == DEVICES, statuses  # every agent logged in and published its status
    assert {"pi-m3", "pi-m7", "pi-m10"} <= set(by_device), by_device
    lines = log.read_text().splitlines()
    # The log is verbose enough to show denials: it shows every accepted publish.
    assert any("Received PUBLISH" in line and "'twin/v1/toyama-pilot/pi-m10/" in line for line in lines)
    assert sum("Denied PUBLISH" in line for line in lines) == log_before  # nobody stepped outside its ACL
