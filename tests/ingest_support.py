"""Small helpers shared by the ingest tests (tests/twin_server/test_ingest*.py)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], object], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll ``cond`` every 50 ms until it is true; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout_s} s")
