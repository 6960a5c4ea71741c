"""USDZ (iPhone scanning apps) through usd-core: read in metres, Z-up honoured, texture kept.

usd-core is optional: without it a USDZ must be refused with a message naming the package.
The test checks whichever behaviour applies in this environment (no skip either way).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import trimesh
from m3d_meshes import usdz_machine

from models3d.__main__ import main

HAVE_USD = importlib.util.find_spec("pxr") is not None


def test_usdz_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.glb"
    if not HAVE_USD:
        scan = tmp_path / "machine.usdz"
        scan.write_bytes(b"PK\x03\x04")
        assert main(["prepare", str(scan), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "usd-core" in err and "Traceback" not in err
        return
    scan = usdz_machine(tmp_path, extents_cm=(200.0, 150.0, 100.0))
    assert main(["prepare", str(scan), "--out", str(out)]) == 0
    result = trimesh.load(out, file_type="glb").to_geometry()
    # centimetres -> metres; Z-up -> Y-up; default front of a Z-up file is -y (depth = y extent)
    assert result.extents == pytest.approx([2.0, 1.0, 1.5], abs=1e-4)
    assert isinstance(result.visual, trimesh.visual.TextureVisuals)
    assert result.visual.material.baseColorTexture.size == (8, 8)
