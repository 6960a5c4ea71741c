"""Fixtures for the models3d tests: the real scans and a CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANS = ROOT / "tests" / "data" / "scans"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def scans() -> Path:
    """``tests/data/scans`` (copies of ``shared/data/scans`` with their licence notes)."""
    for name in (
        "hammer_scan/hammer.obj",
        "copyroom_rgbd/copyroom_c2000_opt.obj",
        "copyroom_rgbd/copyroom_c2000_opt.ply",
    ):
        assert (SCANS / name).is_file(), f"test scan missing: {SCANS / name}"
    return SCANS
