"""Shared by tests/auth: an injectable clock, the test environment, names."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi.testclient import TestClient

from twin_server.auth import AuthStore

PASSWORD = "correct horse battery"
OTHER_SITE = "other-site"


@contextlib.contextmanager
def serve_in_thread(app: object) -> Iterator[int]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the port."""
    import uvicorn
    from services import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


class Clock:
    """An injectable clock: real time plus a shift the test controls."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


@dataclass
class Env:
    app: object
    store: AuthStore
    clock: Clock
    site: str
    day: str
    client: TestClient  # runs the app's lifespan (hub, analysis loop)

    def login(self, name: str, password: str = PASSWORD, address: str = "10.0.0.1") -> tuple[TestClient, str]:
        """A fresh browser (own cookie jar) signed in as ``name``: ``(client, csrf token)``."""
        c = TestClient(self.app, client=(address, 40000))
        r = c.post("/api/auth/login", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf_token"]

    def token(self, name: str, ttl_s: float = 86_400.0) -> dict[str, str]:
        """Authorization header of a new API token of ``name``."""
        _id, secret, _ = self.store.create_token(self.store.user(name), ttl_s)
        return {"Authorization": f"Bearer {secret}"}


def foreign_data(doc: object, worker: str = "W2", beacon: str = "b-02") -> bool:
    """Whether a JSON document holds data of ``worker``: a row of theirs, a series keyed by
    them, or their beacon (the site layout's bare list of names does not count)."""
    if isinstance(doc, dict):
        return any(
            k == worker or (k == "worker" and v == worker) or foreign_data(v, worker, beacon)
            for k, v in doc.items()
        )
    if isinstance(doc, list):
        return any(foreign_data(v, worker, beacon) for v in doc)
    return isinstance(doc, str) and beacon in doc
