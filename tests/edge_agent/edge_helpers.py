"""Helpers for the edge agent tests: a mock MCP3008 SPI device, config writers, waits."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = HERE / "data"


def wait_until(cond, timeout_s: float = 5.0) -> bool:
    """Poll ``cond`` until it is true or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def mock_mcp3008(levels: list[float], vref: float = 3.3):
    """A mock MCP3008 on SPI0/CE0 (GPIO 11 clock, 10 MOSI, 9 MISO, 8 CE0) of the MockFactory.

    ``levels[ch]`` is the voltage on input ``ch``; mutate the list to change inputs. It speaks
    the chip's protocol bit by bit (start bit, SGL/DIFF, 3 channel bits, then a null bit and
    10 data bits), so gpiozero's real MCP3008 class talks to it unchanged.
    """
    from gpiozero.pins.mock import MockSPIDevice

    class MockMCP3008(MockSPIDevice):
        def __init__(self) -> None:
            super().__init__(11, 10, 9, 8)
            self.levels = levels
            self.state = "idle"
            self.reads = 0

        def on_start(self) -> None:
            super().on_start()
            self.state = "idle"

        def on_bit(self) -> None:
            if self.state == "idle":
                if self.rx_buf[-1]:
                    self.state = "mode"
                    self.rx_buf = []
            elif self.state == "mode":
                self.state = "single" if self.rx_buf[-1] else "diff"
                self.rx_buf = []
            elif self.state in ("single", "diff"):
                if len(self.rx_buf) == 3:
                    channel = self.rx_word()
                    volts = min(max(self.levels[channel], 0.0), vref)
                    self.tx_word(round(volts / vref * 1023), 12)  # null bit + 10 bits (+1 pad)
                    self.reads += 1
                    self.state = "result"
            elif self.state == "result" and not self.tx_buf:
                self.state = "idle"
                self.rx_buf = []

    return MockMCP3008()


def write_config(
    tmp_path: Path,
    body: str,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    agent_extra: str = "",
    mqtt_extra: str = "",
    outbox: str = 'synchronous = "NORMAL"',
) -> Path:
    """Write an agent config with the pilot's M3 ids and the given [[sensors]] body."""
    text = textwrap.dedent(
        f"""
        [agent]
        site = "toyama-pilot"
        device = "pi-m3"
        machine = "M3"
        receiver = "R3"
        data_dir = "{tmp_path / "data"}"
        {agent_extra}
        [mqtt]
        host = "{host}"
        port = {port}
        reconnect_min_s = 1
        reconnect_max_s = 2
        {mqtt_extra}
        [outbox]
        {outbox}
        """
    ) + textwrap.dedent(body)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


PYTHON = sys.executable


class Collector:
    """A paho subscriber (QoS 1) that decodes every message with the wire contract."""

    def __init__(
        self, host: str, port: int, topic: str = "twin/v1/#", username: str = "", password: str = ""
    ) -> None:
        import threading

        import paho.mqtt.client as mqtt

        from edge_agent.wire import decode

        self.messages: list = []
        self.arrival_ns: list[int] = []  # wall time each decoded message arrived, same order
        self.errors: list = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}")
        if username:
            self.client.username_pw_set(username, password)

        def on_connect(client, userdata, flags, rc, props):
            client.subscribe(topic, qos=1)

        def on_subscribe(client, userdata, mid, rcs, props):
            self._subscribed.set()

        def on_message(client, userdata, msg):
            t_ns = time.time_ns()
            try:
                item = (decode(msg.topic, msg.payload), msg.retain)
            except Exception as exc:
                with self._lock:
                    self.errors.append((msg.topic, exc))
                return
            with self._lock:
                self.messages.append(item)
                self.arrival_ns.append(t_ns)

        def on_disconnect(client, userdata, flags, rc, props):
            self._subscribed.clear()

        self.client.on_disconnect = on_disconnect
        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.reconnect_delay_set(0.2, 0.5)
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("test subscriber did not get SUBACK")

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        return self._subscribed.wait(timeout_s)

    def readings_with_arrival(self) -> list:
        """``(reading, arrival_ns)`` pairs."""
        from edge_agent.wire import Reading

        with self._lock:
            pairs = zip(self.messages, self.arrival_ns, strict=True)
            return [(m, t) for (m, _), t in pairs if isinstance(m, Reading)]

    def readings(self) -> list:
        from edge_agent.wire import Reading

        with self._lock:
            return [m for m, _ in self.messages if isinstance(m, Reading)]

    def statuses(self) -> list:
        from edge_agent.wire import Status

        with self._lock:
            return [(m, retained) for m, retained in self.messages if isinstance(m, Status)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
