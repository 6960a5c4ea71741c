"""TLS and username/password: the agent publishes through both; doctor tells the failures apart."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from edge_helpers import ROOT, Collector, wait_until, write_config

from edge_agent.agent import Agent
from edge_agent.config import MqttSection, load_config
from edge_agent.doctor import broker_reachable

sys.path.insert(0, str(ROOT / "tests"))
from services import free_port, run_mosquitto

pytestmark = pytest.mark.broker


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def secure_broker(tmp_path: Path):
    """mosquitto with a password file, a plain listener and a TLS listener (own test CA)."""
    d = tmp_path / "pki"
    d.mkdir()
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=edge-test-ca",
        cwd=d,
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=d,
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        cwd=d,
    )
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "pw"), "edge", "s3cret"], check=True, timeout=30)
    tls_port = free_port()
    # user root: when the tests run as root, keep mosquitto from dropping to a user that
    # cannot read the test's private temp folder (ignored when not started as root).
    extra = (
        f"user root\npassword_file {d}/pw\nallow_anonymous false\n"
        f"listener {tls_port} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
    )
    with run_mosquitto(tmp_path / "mq", extra) as broker:
        broker.tls_port = tls_port
        broker.ca = d / "ca.crt"
        yield broker


def test_doctor_tells_auth_and_tls_problems_apart(secure_broker) -> None:
    b = secure_broker
    ok, why = broker_reachable(MqttSection(host=b.host, port=b.port))
    assert not ok and "refused" in why and "authorized" in why.lower()
    assert broker_reachable(MqttSection(host=b.host, port=b.port, username="edge", password="s3cret"))[0]
    tls = MqttSection(
        host=b.host, port=b.tls_port, username="edge", password="s3cret", tls=True, ca_file=str(b.ca)
    )
    assert broker_reachable(tls)[0]
    ok, why = broker_reachable(
        MqttSection(host=b.host, port=b.tls_port, username="edge", password="s3cret", tls=True)
    )
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in why  # system CAs do not know the test CA


def test_agent_publishes_over_tls_with_password(tmp_path: Path, secure_broker) -> None:
    b = secure_broker
    (tmp_path / "r.csv").write_text(
        "time,kind,source,channel,value\n"
        + "".join(f"{1_700_000_000 + i / 10},light,M3,,0.{i % 10}\n" for i in range(30))
    )
    body = '[replay]\nfile = "r.csv"\nspeed = 10.0\n'
    body += '[[sensors]]\nid = "light"\nkind = "light"\ndriver = "replay"\nlevel_period_s = 0.0\n'
    mqtt = f'username = "edge"\npassword = "s3cret"\ntls = true\nca_file = "{b.ca}"'
    cfg = load_config(write_config(tmp_path, body, host=b.host, port=b.tls_port, mqtt_extra=mqtt))
    sub = Collector(b.host, b.port, "twin/v1/#", username="edge", password="s3cret")
    agent = Agent(cfg)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: len(sub.readings()) >= 30, 15)
    finally:
        stop.set()
        runner.join(10)
        sub.close()
    assert [r.seq for r in sub.readings()] == list(range(30))
    assert sub.readings()[0].t_ns == 1_700_000_000 * 10**9  # recorded times kept
