"""BLE beacons: BlueZ through bleak, or a USB serial BLE scanner through pyserial.

Both drivers emit one :class:`Sample` per advertisement heard from a configured beacon
(``value`` = RSSI dBm, ``channel`` = beacon id); the agent aggregates them per window.

Serial scanner line format
--------------------------
One advertisement per line, ASCII, ``\\n`` or ``\\r\\n`` terminated::

    MAC,RSSI[,anything else]

``MAC`` is six hex pairs separated by ``:`` (any case), ``RSSI`` an integer or decimal dBm
in -150..20. Further comma-separated fields (name, raw advert bytes) are ignored, as are
blank lines and lines starting with ``#``. Anything else is counted in ``bad_lines`` and
skipped. Example: ``C3:00:00:0A:12:01,-67``. Scanners with another format need a one-line
firmware setting or a small adapter script that prints this format.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from typing import Any, ClassVar

from edge_agent.clock import Clock
from edge_agent.config import ConfigError, get_number, get_value
from edge_agent.drivers import Driver, Emit, Sample

__all__ = ["BleakDriver", "SerialScannerDriver", "parse_scanner_line"]

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def parse_scanner_line(line: str | bytes) -> tuple[str, float] | None:
    """Parse one scanner line into ``(MAC upper-case, RSSI dBm)``.

    Returns None for a blank or ``#`` comment line; raises ``ValueError`` for a bad line.
    """
    if isinstance(line, bytes):
        line = line.decode("ascii")  # UnicodeDecodeError is a ValueError
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    parts = line.split(",")
    if len(parts) < 2:
        raise ValueError(f"expected MAC,RSSI, got {line[:60]!r}")
    mac, rssi_text = parts[0].strip(), parts[1].strip()
    if not _MAC.match(mac):
        raise ValueError(f"bad MAC {mac[:30]!r}")
    rssi = float(rssi_text)
    if not math.isfinite(rssi) or not -150.0 <= rssi <= 20.0:
        raise ValueError(f"RSSI {rssi_text[:20]!r} outside -150..20 dBm")
    return mac.upper(), rssi


class _BeaconDriver(Driver):
    kinds: ClassVar[frozenset[str]] = frozenset({"ble"})

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        super().__init__(sensor, clock)
        self.beacons: dict[str, str] = sensor.get("beacons", {})  # MAC -> beacon id
        self.unknown = 0
        self._emit: Emit | None = None
        self._stop = threading.Event()

    def on_advert_mac(self, mac: str, rssi: float, t_ns: int) -> None:
        beacon = self.beacons.get(mac.upper())
        if beacon is None:
            self.unknown += 1  # other people's phones, TVs, ...: not ours
            return
        if self._emit is not None:
            self._emit(Sample(self.sensor_id, t_ns, float(rssi), beacon))

    def probe(self, timeout_s: float = 2.0) -> list[Sample]:
        got: list[Sample] = []
        self.start(got.append)
        time.sleep(timeout_s)
        self.close()
        return got


class SerialScannerDriver(_BeaconDriver):
    """A USB BLE scanner printing ``MAC,RSSI`` lines (see module docstring).

    Options: ``port`` (e.g. ``/dev/ttyUSB0``, or any pyserial URL), ``baudrate`` (115200).
    """

    name: ClassVar[str] = "serial_ble"

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        super().__init__(sensor, clock)
        self.bad_lines = 0
        self.reopens = 0
        self._thread: threading.Thread | None = None
        self._serial: Any = None

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        port = get_value(sensor, "port", str, where)
        if not port:
            raise ConfigError(f"{where}.port", "must name the scanner's serial port, e.g. /dev/ttyUSB0")
        get_number(sensor, "baudrate", where, 115200, 1200, 4_000_000, integer=True)

    def _open(self) -> Any:
        import serial  # hardware library: imported only when used

        return serial.serial_for_url(
            self.sensor["port"], baudrate=self.sensor.get("baudrate", 115200), timeout=0.2
        )

    def start(self, emit: Emit) -> None:
        self._emit = emit
        self._stop.clear()
        self._serial = self._open()
        self._thread = threading.Thread(target=self._loop, name=f"serial-{self.sensor_id}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                if self._serial is None:
                    self._serial = self._open()
                chunk = self._serial.read(self._serial.in_waiting or 1)
            except (OSError, TypeError):  # unplugged: pyserial raises SerialException (OSError)
                # Reopen once it is plugged in again (the port name comes back via udev).
                self.reopens += 1
                self._close_port()
                self._stop.wait(1.0)
                continue
            if not chunk:
                continue
            # Stamp at arrival of the chunk: the scanner prints as it hears.
            t_ns = self.clock.now_ns()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.feed_line(line, t_ns)
            if len(buf) > 4096:  # a device spewing without newlines: drop, count
                self.bad_lines += 1
                buf = b""

    def feed_line(self, line: bytes | str, t_ns: int) -> None:
        try:
            parsed = parse_scanner_line(line)
        except ValueError:
            self.bad_lines += 1
            return
        if parsed is not None:
            self.on_advert_mac(parsed[0], parsed[1], t_ns)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._close_port()

    def _close_port(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError:
                pass
            self._serial = None


class BleakDriver(_BeaconDriver):
    """BLE advertisements through BlueZ with bleak, in an asyncio loop on its own thread.

    Options: ``adapter`` (e.g. ``hci0``; default the system's default adapter).
    """

    name: ClassVar[str] = "bleak"

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        super().__init__(sensor, clock)
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        get_value(sensor, "adapter", str, where, "")

    def detection_callback(self, device: Any, advertisement: Any) -> None:
        """bleak's ``detection_callback(BLEDevice, AdvertisementData)``."""
        self.on_advert_mac(device.address, advertisement.rssi, self.clock.now_ns())

    def start(self, emit: Emit) -> None:
        self._emit = emit
        self._stop.clear()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._scan()), name=f"bleak-{self.sensor_id}", daemon=True
        )
        self._thread.start()

    async def _scan(self) -> None:
        from bleak import BleakScanner  # hardware library: imported only when used

        kwargs: dict[str, Any] = {}
        if self.sensor.get("adapter"):
            kwargs["adapter"] = self.sensor["adapter"]
        while not self._stop.is_set():
            try:
                # DuplicateData=True: BlueZ otherwise reports a beacon again only when its
                # RSSI changes, which would undercount adverts.
                async with BleakScanner(
                    detection_callback=self.detection_callback,
                    bluez={"filters": {"DuplicateData": True}},
                    **kwargs,
                ):
                    # The stop flag is a threading.Event set from another thread: poll it.
                    while not self._stop.is_set():  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
            except Exception as exc:  # BlueZ restarts, adapter resets: retry, never die
                self.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(2.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
