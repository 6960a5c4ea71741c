"""Push switches on GPIO (gpiozero ``Button``, internal pull-up, switch to GND), debounced."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from edge_agent.clock import Clock
from edge_agent.config import ConfigError, get_number
from edge_agent.drivers import Driver, Emit, Sample

__all__ = ["ButtonDriver"]


class ButtonDriver(Driver):
    """One push switch: emits 1 when pressed, 0 when released.

    Options: ``gpio`` (BCM number 0..27), ``bounce_ms`` (debounce, default 30).

    Debouncing is done here rather than by the pin library, so it behaves the same on
    every gpiozero pin factory (lgpio, RPi.GPIO, mock): an edge within ``bounce_ms`` of the
    last accepted one is ignored, and the pin is read again once the contacts have settled,
    so chatter never hides the final state. The press is stamped at its first edge.
    """

    name: ClassVar[str] = "button"
    kinds: ClassVar[frozenset[str]] = frozenset({"switch"})

    def __init__(self, sensor: dict[str, Any], clock: Clock, pin_factory: Any = None) -> None:
        super().__init__(sensor, clock)
        from gpiozero import Button  # hardware library: imported only when a driver is built

        self.bounce_s = sensor.get("bounce_ms", 30) / 1000.0
        self._button = Button(sensor["gpio"], pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._emit: Emit | None = None
        self._emitted = 1 if self._button.is_pressed else 0
        self._last_accept = -1e9
        self._timer: threading.Timer | None = None
        self.ignored_edges = 0

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        if "gpio" not in sensor:
            raise ConfigError(f"{where}.gpio", "missing (BCM GPIO number of the switch)")
        get_number(sensor, "gpio", where, None, 0, 27, integer=True)
        get_number(sensor, "bounce_ms", where, 30, 0, 1000, integer=True)

    def _edge(self) -> None:
        t_ns = self.clock.now_ns()
        now = time.monotonic()
        with self._lock:
            if now - self._last_accept < self.bounce_s:
                self.ignored_edges += 1
                if self._timer is None:
                    self._timer = threading.Timer(
                        self._last_accept + self.bounce_s - now + 0.001, self._settled
                    )
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._accept(now, t_ns)

    def _settled(self) -> None:
        with self._lock:
            self._timer = None
            self._accept(time.monotonic(), self.clock.now_ns())

    def _accept(self, now: float, t_ns: int) -> None:
        state = 1 if self._button.is_pressed else 0
        if state != self._emitted:
            self._emitted = state
            self._last_accept = now
            if self._emit is not None:
                self._emit(Sample(self.sensor_id, t_ns, float(state)))

    def start(self, emit: Emit) -> None:
        self._emit = emit
        self._button.when_pressed = self._edge
        self._button.when_released = self._edge

    def probe(self, timeout_s: float = 2.0) -> list[Sample]:
        return [Sample(self.sensor_id, self.clock.now_ns(), 1.0 if self._button.is_pressed else 0.0)]

    def close(self) -> None:
        self._emit = None
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._button.close()  # also drops the callbacks
