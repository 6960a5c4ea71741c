"""Sensor drivers behind one small interface, chosen by name from the config.

A driver turns one configured sensor into :class:`Sample` objects. Every driver has the
same three methods:

``start(emit)``
    begin delivering samples to ``emit`` (from a thread of the driver's own);
``probe(timeout_s)``
    take what the sensor gives right now (one reading, or what arrives within the timeout);
``close()``
    release pins, ports and threads.

Hardware libraries (gpiozero, pyserial, bleak) are imported inside the driver modules'
functions, never at import time, so the agent starts on a machine without GPIO.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from edge_agent.clock import Clock

__all__ = ["DRIVERS", "Driver", "PolledDriver", "Sample", "build_driver", "driver_class"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One raw observation of one configured sensor.

    Parameters
    ----------
    sensor : str
        Sensor id from the config.
    t_ns : int
        Time of sampling, UTC epoch ns (from the agent's :class:`~edge_agent.clock.Clock`).
    value : float or str
        Level (ADC 0..1 scaled by the sensor's ``scale``/``offset``), 1/0 for a switch,
        RSSI dBm for one BLE advertisement, machine id for a replayed zone.
    channel : str
        Beacon id for BLE advertisements, else empty.
    """

    sensor: str
    t_ns: int
    value: float | str
    channel: str = ""


Emit = Callable[[Sample], None]


class Driver:
    """Base class: one configured sensor. Subclasses set ``name`` and ``kinds``."""

    #: Registry name, the ``driver`` key in the config.
    name: ClassVar[str] = ""
    #: Sensor kinds this driver can serve.
    kinds: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        self.sensor = sensor
        self.sensor_id: str = sensor["id"]
        self.clock = clock

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        """Raise :class:`~edge_agent.config.ConfigError` naming a bad driver option."""

    def start(self, emit: Emit) -> None:
        raise NotImplementedError

    def probe(self, timeout_s: float = 2.0) -> list[Sample]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; safe to call twice."""


class PolledDriver(Driver):
    """A driver read by polling (ADC levels): ``start`` runs a thread at ``sample_hz``."""

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        super().__init__(sensor, clock)
        self.period_s = 1.0 / float(sensor.get("sample_hz", 10.0))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def read(self) -> float:
        """One level, already scaled; raises ``OSError`` if the device does not answer."""
        raise NotImplementedError

    def sample(self) -> Sample:
        # Stamp right after the conversion: the ADC read itself takes well under 1 ms.
        value = self.read()
        return Sample(self.sensor_id, self.clock.now_ns(), value)

    def probe(self, timeout_s: float = 2.0) -> list[Sample]:
        return [self.sample()]

    def start(self, emit: Emit) -> None:
        def loop() -> None:
            next_t = time.monotonic()
            while not self._stop.is_set():
                try:
                    emit(self.sample())
                except OSError:
                    self.errors += 1  # counted; a flaky SPI read must not stop sampling
                next_t += self.period_s
                delay = next_t - time.monotonic()
                if delay < 0:  # fell behind (CPU starved): skip, do not burst
                    next_t = time.monotonic()
                    delay = 0
                self._stop.wait(delay)

        self._thread = threading.Thread(target=loop, name=f"poll-{self.sensor_id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None


def _registry() -> dict[str, type[Driver]]:
    # The driver modules import only the stdlib at module level, so this is cheap.
    from edge_agent.drivers.adc import ADS1115Driver, MCP3008Driver
    from edge_agent.drivers.ble import BleakDriver, SerialScannerDriver
    from edge_agent.drivers.button import ButtonDriver
    from edge_agent.drivers.replay import ReplayDriver

    classes: list[type[Driver]] = [
        MCP3008Driver,
        ADS1115Driver,
        ButtonDriver,
        BleakDriver,
        SerialScannerDriver,
        ReplayDriver,
    ]
    return {cls.name: cls for cls in classes}


#: Plain dict registry: config ``driver`` name -> driver class.
DRIVERS: dict[str, type[Driver]] = _registry()


def driver_class(name: str) -> type[Driver]:
    return DRIVERS[name]


def build_driver(sensor: dict[str, Any], clock: Clock, **context: Any) -> Driver:
    """Instantiate the driver named by ``sensor["driver"]`` (config already validated)."""
    cls = DRIVERS[sensor["driver"]]
    if context:
        return cls(sensor, clock, **context)  # type: ignore[call-arg]
    return cls(sensor, clock)
