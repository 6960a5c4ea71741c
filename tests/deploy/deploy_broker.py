"""Helpers for the deploy tests: a locked-down mosquitto and small synchronous paho clients."""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from services import Mosquitto, require_binary, wait_for_port


@dataclass
class SecureMosquitto(Mosquitto):
    """``Mosquitto`` with its own config: the base class's config allows anonymous clients."""

    password_file: Path | None = None
    acl_file: Path | None = None
    conf_text: str = ""  # a whole config of the caller's instead (e.g. the shipped one, remapped)

    def start(self) -> None:
        binary = require_binary("mosquitto", "mosquitto")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            self.conf_text
            or f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.acl_file}\n"
            "persistence false\nmax_inflight_messages 0\nmax_queued_messages 0\n"
            # "Denied PUBLISH" is a debug message: tests read the log to prove nobody was denied.
            "log_type all\n"
            # Started as root, mosquitto drops to its own user *before* reading the password
            # file, which then cannot open pytest's 0700 folders; as a normal user this is a no-op.
            "user root\n"
        )
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port, 10.0, self.proc)


@dataclass
class Deployment:
    """Generated broker files plus the broker running them."""

    broker: SecureMosquitto
    out_dir: Path
    passwords: dict[str, str]


@dataclass
class Client:
    """A connected paho client whose received messages land in ``inbox``."""

    mqttc: mqtt.Client
    connect_rc: int
    inbox: queue.Queue = field(default_factory=queue.Queue)
    acks: dict[int, int] = field(default_factory=dict)  # message id -> PUBACK reason code
    acked: threading.Condition = field(default_factory=threading.Condition)

    def publish_all(self, messages: list[tuple[str, bytes]], timeout_s: float = 10.0) -> list[int]:
        """Publish in order at QoS 1; the PUBACK reason codes (MQTT 5: 0 ok, 0x87 not authorized).

        One at a time: mosquitto 2.0.11 sometimes drops a client ("Bad socket read/write")
        that has further publishes queued behind one it denies, about 1 run in 15 here.
        """
        codes = []
        for topic, payload in messages:
            mid = self.mqttc.publish(topic, payload, qos=1).mid
            with self.acked:
                if not self.acked.wait_for(lambda mid=mid: mid in self.acks, timeout_s):
                    raise TimeoutError(
                        f"no PUBACK for {topic} (mid {mid}); connected={self.mqttc.is_connected()}"
                    )
                codes.append(self.acks.pop(mid))
        return codes

    def close(self) -> None:
        self.mqttc.disconnect()
        self.mqttc.loop_stop()


def connect(
    broker: Mosquitto,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311,
    timeout_s: float = 10.0,
    tls_ca: Path | None = None,
) -> Client:
    """Connect and wait for CONNACK; ``connect_rc`` is its reason code (0 = accepted).

    ``tls_ca``: connect with TLS, trusting this CA certificate (host name checked).
    """
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if tls_ca is not None:
        c.tls_set(ca_certs=str(tls_ca))
    c.max_inflight_messages_set(100)
    if username is not None:
        c.username_pw_set(username, password)
    result: dict[str, int] = {}
    done = threading.Event()
    client = Client(c, -1)

    def on_connect(_c, _u, _flags, reason_code, _props) -> None:
        result.setdefault("rc", reason_code.value)
        done.set()

    def on_message(_c, _u, msg) -> None:
        client.inbox.put((msg.topic, msg.payload))

    def on_publish(_c, _u, mid, reason_code, _props) -> None:
        with client.acked:
            client.acks[mid] = reason_code.value
            client.acked.notify_all()

    c.on_connect = on_connect
    c.on_message = on_message
    c.on_publish = on_publish
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    if not done.wait(timeout_s):
        c.loop_stop()
        raise TimeoutError(f"no CONNACK for {client_id} within {timeout_s} s")
    client.connect_rc = result["rc"]
    if client.connect_rc != 0:
        c.loop_stop()  # paho would otherwise keep retrying a refused login
    return client


def subscribe(client: Client, topic: str, qos: int = 1, timeout_s: float = 10.0) -> list[int]:
    """Subscribe and wait for SUBACK; returns the granted QoS / reason codes."""
    got: dict[str, list[int]] = {}
    done = threading.Event()

    def on_subscribe(_c, _u, _mid, reason_codes, _props) -> None:
        got["codes"] = [rc.value for rc in reason_codes]
        done.set()

    client.mqttc.on_subscribe = on_subscribe
    client.mqttc.subscribe(topic, qos)
    if not done.wait(timeout_s):
        raise TimeoutError(f"no SUBACK for {topic}")
    return got["codes"]
