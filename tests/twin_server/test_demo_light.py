"""The light demo install can build the scene from the scanned machine model (no open3d)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Distribution name -> import name, for the packages only the full models3d extra brings.
IMPORT_NAME = {
    "open3d-cpu": "open3d",
    "fast-simplification": "fast_simplification",
    "xxhash": "xxhash",
    "usd-core": "pxr",
}


def _names(reqs: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def test_models3d_scene_runs_with_only_the_light_extras(tmp_path):
    from twin_server.cli.demo import DEFAULT_MODEL, DEFAULT_SITE, site_with_models

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    light = _names(extras["server"]) | _names(extras["edge"]) | _names(extras["scene"])
    missing = sorted(_names(extras["models3d"]) - light)
    assert missing, "the full extra should bring more than the light one"
    blocked = [IMPORT_NAME.get(m, m.replace("-", "_")) for m in missing]
    site = site_with_models(DEFAULT_SITE, DEFAULT_MODEL, tmp_path / "site.yaml")
    out = tmp_path / "factory.glb"
    # Run the real CLI with every package of the full install (open3d ...) made unimportable.
    code = (
        f"import sys, runpy\nfor m in {blocked!r}: sys.modules[m] = None\n"
        "sys.argv = ['models3d', 'scene', '--site', sys.argv[1], '--out', sys.argv[2]]\n"
        "runpy.run_module('models3d', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(site), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import struct

    raw = out.read_bytes()
    (n,) = struct.unpack_from("<I", raw, 12)
    gltf = json.loads(raw[20 : 20 + n])
    machines = [nd for nd in gltf["nodes"] if nd.get("name", "").startswith("machine:")]
    assert len(machines) == 3
    assert all(nd["extras"]["placeholder"] is False for nd in machines), machines
    assert all(nd["extras"]["model"].endswith("hammer_scan.glb") for nd in machines)


def test_the_scanned_model_ships_with_its_licence_note():
    note = (ROOT / "examples" / "models" / "README.md").read_text()
    assert "CC BY 4.0" in note and "Andrea Spognetta" in note and "models3d prepare" in note
