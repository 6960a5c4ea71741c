"""Shared fixtures: real services, the example sites, small builders."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # for `services`
sys.path.insert(0, str(ROOT))  # ahead of tests/: tests/edge_agent must not shadow the package

from services import Influxd, Mosquitto, run_influxd, run_mosquitto  # noqa: E402

DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto for the session; tests use unique topics/sites."""
    with run_mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A mosquitto of this test's own, which the test may stop and restart."""
    with run_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """One influxd for the session; tests use unique database names."""
    with run_influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test's own, which the test may stop and restart."""
    with run_influxd(tmp_path / "influxd") as server:
        yield server


@pytest.fixture(scope="session")
def pilot_site_path() -> Path:
    return ROOT / "examples" / "pilot_site.yaml"


@pytest.fixture(scope="session")
def pilot_site(pilot_site_path: Path):
    from twin_server.site import load_site

    return load_site(pilot_site_path)
