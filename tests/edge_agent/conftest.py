"""Fixtures for the edge agent tests: gpiozero MockFactory pins."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
# tests/conftest.py puts tests/ on sys.path, where this folder (tests/edge_agent, no
# __init__) would shadow the real package as a namespace package: the repository root
# goes first. Test modules import edge_helpers from this folder.
sys.path[:0] = [str(_HERE.parent.parent), str(_HERE)]


@pytest.fixture
def mock_factory() -> Iterator[object]:
    """gpiozero's MockFactory as the default pin factory for the duration of a test."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    old = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = old
