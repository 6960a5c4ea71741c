"""Fixtures of the deploy tests: the pilot's generated ACL on a real, locked-down mosquitto."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helpers live in a module of their own (``conftest`` is taken by tests/conftest.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_broker import Deployment, SecureMosquitto
from services import free_port

from twin_server.cli.deploy_acl import write_deployment


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, pilot_site) -> Iterator[Deployment]:
    """The pilot site's generated ACL (Python hasher, with the simulator user) on a real mosquitto."""
    out = tmp_path_factory.mktemp("acl")
    passwords = write_deployment(pilot_site, out, simulator=True, hasher="python")
    workdir = tmp_path_factory.mktemp("secure-mosquitto")
    broker = SecureMosquitto(workdir, free_port(), password_file=out / "passwd", acl_file=out / "acl")
    broker.start()
    try:
        yield Deployment(broker, out, passwords)
    finally:
        broker.stop()
