"""The agent's version, reported in its status message."""

__version__ = "0.1.0"
