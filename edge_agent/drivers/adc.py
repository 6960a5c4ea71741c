"""Level sensors through an ADC: MCP3008 (SPI, via gpiozero) and ADS1115 (I2C, stdlib ioctl).

Both give a level in 0..1 (fraction of the ADC's reference), scaled by the sensor's
``scale`` and ``offset`` into the published unit.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from edge_agent.clock import Clock
from edge_agent.config import ConfigError, get_number
from edge_agent.drivers import PolledDriver

__all__ = ["ADS1115Driver", "MCP3008Driver", "ads1115_config_word", "ads1115_fraction"]


class MCP3008Driver(PolledDriver):
    """MCP3008 10-bit ADC on SPI0 (CE0 by default), single-ended channel ``adc_channel``.

    Options: ``adc_channel`` 0..7, ``spi_port`` 0..1, ``spi_device`` 0..1 (chip select).
    """

    name: ClassVar[str] = "mcp3008"
    kinds: ClassVar[frozenset[str]] = frozenset({"light", "pressure"})

    def __init__(self, sensor: dict[str, Any], clock: Clock, pin_factory: Any = None) -> None:
        super().__init__(sensor, clock)
        from gpiozero import MCP3008  # hardware library: imported only when a driver is built

        self._adc = MCP3008(
            channel=sensor["adc_channel"],
            port=sensor.get("spi_port", 0),
            device=sensor.get("spi_device", 0),
            pin_factory=pin_factory,
        )
        self._scale = float(sensor.get("scale", 1.0))
        self._offset = float(sensor.get("offset", 0.0))

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        if "adc_channel" not in sensor:
            raise ConfigError(f"{where}.adc_channel", "missing (MCP3008 input 0..7)")
        get_number(sensor, "adc_channel", where, None, 0, 7, integer=True)
        get_number(sensor, "spi_port", where, 0, 0, 1, integer=True)
        get_number(sensor, "spi_device", where, 0, 0, 1, integer=True)

    def read(self) -> float:
        return float(self._adc.value) * self._scale + self._offset

    def close(self) -> None:
        super().close()
        self._adc.close()


# ADS1115 register map and config bits (datasheet SBAS444, table 8).
_REG_CONVERSION = 0x00
_REG_CONFIG = 0x01
_I2C_SLAVE = 0x0703
_PGA = {6.144: 0b000, 4.096: 0b001, 2.048: 0b010, 1.024: 0b011, 0.512: 0b100, 0.256: 0b101}


def ads1115_config_word(channel: int, fsr_v: float = 4.096) -> int:
    """Config register for one single-shot, single-ended conversion at 128 SPS.

    Parameters
    ----------
    channel : int
        AIN0..AIN3 against GND.
    fsr_v : float
        Full-scale range in volts (programmable gain), one of the ADS1115's six.
    """
    if channel not in range(4):
        raise ValueError(f"ADS1115 channel must be 0..3, got {channel}")
    return (
        (1 << 15)  # OS: start a conversion
        | ((0b100 + channel) << 12)  # MUX: AINx vs GND
        | (_PGA[fsr_v] << 9)
        | (1 << 8)  # MODE: single shot
        | (0b100 << 5)  # DR: 128 samples/s
        | 0b11  # comparator off
    )


def ads1115_fraction(msb: int, lsb: int) -> float:
    """Conversion register bytes -> fraction of full scale, clamped to 0..1 (single-ended)."""
    raw = (msb << 8) | lsb
    if raw >= 0x8000:
        raw -= 0x10000
    return min(max(raw / 32767.0, 0.0), 1.0)


class ADS1115Driver(PolledDriver):
    """ADS1115 16-bit ADC on I2C (``/dev/i2c-{i2c_bus}``), through the kernel's i2c-dev.

    Options: ``adc_channel`` 0..3, ``i2c_bus`` (1), ``i2c_address`` (0x48..0x4B, default
    72 = 0x48), ``fsr_v`` full-scale volts (4.096).
    """

    name: ClassVar[str] = "ads1115"
    kinds: ClassVar[frozenset[str]] = frozenset({"light", "pressure"})

    def __init__(self, sensor: dict[str, Any], clock: Clock) -> None:
        super().__init__(sensor, clock)
        self._fd = os.open(f"/dev/i2c-{sensor.get('i2c_bus', 1)}", os.O_RDWR)
        import fcntl

        fcntl.ioctl(self._fd, _I2C_SLAVE, sensor.get("i2c_address", 0x48))
        word = ads1115_config_word(sensor["adc_channel"], float(sensor.get("fsr_v", 4.096)))
        self._start = bytes([_REG_CONFIG, word >> 8, word & 0xFF])
        self._scale = float(sensor.get("scale", 1.0))
        self._offset = float(sensor.get("offset", 0.0))

    @classmethod
    def validate(cls, sensor: dict[str, Any], where: str) -> None:
        if "adc_channel" not in sensor:
            raise ConfigError(f"{where}.adc_channel", "missing (ADS1115 input 0..3)")
        get_number(sensor, "adc_channel", where, None, 0, 3, integer=True)
        get_number(sensor, "i2c_bus", where, 1, 0, 10, integer=True)
        get_number(sensor, "i2c_address", where, 0x48, 0x48, 0x4B, integer=True)
        fsr = get_number(sensor, "fsr_v", where, 4.096, 0.256, 6.144)
        if fsr not in _PGA:
            raise ConfigError(f"{where}.fsr_v", f"must be one of {', '.join(map(str, sorted(_PGA)))}")

    def read(self) -> float:
        os.write(self._fd, self._start)
        time.sleep(0.009)  # one conversion at 128 SPS is 7.8 ms
        os.write(self._fd, bytes([_REG_CONVERSION]))
        data = os.read(self._fd, 2)
        if len(data) != 2:
            raise OSError("short read from ADS1115")
        return ads1115_fraction(data[0], data[1]) * self._scale + self._offset

    def close(self) -> None:
        super().close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
