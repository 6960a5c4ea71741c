"""``prepare`` on the real scans: the clean hammer and the messy room (broken texture reference)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from m3d_helpers import run_cli

from models3d.__main__ import main
from models3d.prepare import PrepareOptions, prepare, prepare_file


def _load_glb(path: Path) -> trimesh.Trimesh:
    scene = trimesh.load(path, file_type="glb")
    assert isinstance(scene, trimesh.Scene) and len(scene.geometry) == 1
    return scene.to_geometry()


def test_hammer_stays_watertight_after_decimation(
    scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = trimesh.load(scans / "hammer_scan" / "hammer.obj")
    assert source.is_watertight and len(source.faces) == 60_160
    out, report = tmp_path / "hammer.glb", tmp_path / "hammer.json"
    assert (
        main(
            [
                "prepare",
                str(scans / "hammer_scan" / "hammer.obj"),
                "--out",
                str(out),
                "--triangles",
                "3000",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "60160 -> " in printed
    mesh = _load_glb(out)
    assert 2500 <= len(mesh.faces) <= 3000
    assert mesh.is_watertight
    data = json.loads(report.read_text())
    assert data["triangles_before"] == 60_160 and data["triangles_after"] == len(mesh.faces)
    assert data["watertight_before"] and data["watertight_after"]
    assert not data["floor_found"], "a closed mesh has no scanned floor to cut"
    assert set(data["timings_s"]) >= {"load", "clean", "floor", "orient", "scale", "decimate", "export"}
    # no measured size and unknown units: kept as is, sitting on the floor, centred
    assert np.allclose(sorted(mesh.extents), sorted(source.extents), rtol=0.02)
    assert mesh.bounds[0][1] == pytest.approx(0.0, abs=1e-6)
    assert np.allclose((mesh.bounds[0] + mesh.bounds[1])[[0, 2]] / 2, 0.0, atol=1e-6)


def test_hammer_scaled_to_a_measured_length(scans: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "hammer.glb", tmp_path / "hammer.json"
    # the hammer's long axis is its z; with front +z that is the model's depth
    assert (
        main(
            [
                "prepare",
                str(scans / "hammer_scan" / "hammer.obj"),
                "--out",
                str(out),
                "--triangles",
                "2000",
                "--dimension",
                "depth=0.33",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    mesh = _load_glb(out)
    assert mesh.extents[2] == pytest.approx(0.33, rel=0.01)
    source = trimesh.load(scans / "hammer_scan" / "hammer.obj")
    scale = 0.33 / source.extents[2]
    assert mesh.extents[0] == pytest.approx(source.extents[0] * scale, rel=0.03)
    assert json.loads(report.read_text())["scale"] == pytest.approx(scale, rel=1e-6)


def test_room_scan_with_broken_texture_reference_warns_and_is_levelled(scans: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "room.glb", tmp_path / "room.json"
    result = run_cli(
        "prepare",
        str(scans / "copyroom_rgbd" / "copyroom_c2000_opt.obj"),
        "--out",
        str(out),
        "--triangles",
        "4000",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "copyroom_c2000_opt_0.png" in result.stdout and "missing" in result.stdout
    data = json.loads(report.read_text())
    assert any("copyroom_c2000_opt_0.png" in w for w in data["warnings"])
    assert data["triangles_before"] == 30_947 and data["triangles_after"] <= 4000
    assert data["degenerate_faces"] + data["duplicate_faces"] > 0
    assert data["components_removed"] >= 1
    assert data["floor_found"] and data["floor_faces_removed"] > 300
    mesh = _load_glb(out)
    # levelled: the floor was tilted ~37 degrees in the scan; now the room is about 2.5 m high
    # and there is no large upward-facing surface left at floor height
    assert 2.2 < mesh.extents[1] < 2.8
    low = mesh.triangles_center[:, 1] < 0.05
    up_facing = mesh.face_normals[:, 1] > 0.95
    assert mesh.area_faces[low & up_facing].sum() < 0.02 * mesh.area
    assert data["size_m"] == pytest.approx(mesh.extents.tolist(), abs=1e-3)


def test_room_ply_keeps_its_colours(scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "room.glb"
    assert (
        main(
            [
                "prepare",
                str(scans / "copyroom_rgbd" / "copyroom_c2000_opt.ply"),
                "--out",
                str(out),
                "--triangles",
                "3000",
            ]
        )
        == 0
    )
    mesh = _load_glb(out)
    assert len(mesh.faces) <= 3000
    assert mesh.visual.kind == "vertex"
    colours = mesh.visual.vertex_colors[:, :3].astype(int)
    assert len(np.unique(colours, axis=0)) > 100, "the scan's colours must survive, not one flat colour"


def test_room_scan_with_its_texture_repaired(scans: Path, tmp_path: Path) -> None:
    # point the MTL at the image that does exist: a real textured scan with UV seams
    src = scans / "copyroom_rgbd"
    for name in ("copyroom_c2000_opt.obj", "copyroom_c2000_opt_0_1024.jpg"):
        shutil.copy(src / name, tmp_path / name)
    mtl = (src / "copyroom_c2000_opt.mtl").read_text()
    (tmp_path / "copyroom_c2000_opt.mtl").write_text(
        mtl.replace("copyroom_c2000_opt_0.png", "copyroom_c2000_opt_0_1024.jpg")
    )
    scan = tmp_path / "copyroom_c2000_opt.obj"
    out = tmp_path / "room.glb"
    kept = prepare_file(scan, out, PrepareOptions(triangles=8000))
    assert kept.visual == "texture" and kept.triangles_after <= 8000 and not kept.warnings
    mesh = _load_glb(out)
    assert mesh.visual.material.baseColorTexture.size == (1024, 1024)
    assert mesh.visual.uv.min() >= -1e-6 and mesh.visual.uv.max() <= 1 + 1e-6
    # a budget the UV seams cannot reach: baked to vertex colours, and the report says so
    _, baked = prepare(scan, PrepareOptions(triangles=2000))
    assert baked.visual == "vertex_colors" and baked.triangles_after <= 2000
    assert any("baked" in w for w in baked.warnings)
