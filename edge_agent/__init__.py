"""Raspberry Pi edge agent: sensor drivers, edge processing, store-and-forward MQTT publishing.

Stays light for a Pi: the standard library plus paho-mqtt, with gpiozero, pyserial and
bleak imported only inside the drivers that need them.
"""

from edge_agent.version import __version__

__all__ = ["__version__"]
