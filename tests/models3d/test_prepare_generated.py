"""``prepare`` on meshes made in code, where the right answer is known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from m3d_meshes import machine_on_floor, machine_welded_to_floor, sphere_cloud, textured_box, with_bad_faces

from models3d.__main__ import main
from models3d.clean import component_labels
from models3d.decimate import decimate, vertex_groups
from models3d.prepare import PrepareOptions, prepare


def _glb(path: Path) -> trimesh.Trimesh:
    return trimesh.load(path, file_type="glb").to_geometry()


def test_floor_and_debris_are_removed(tmp_path: Path) -> None:
    mesh, facts = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=5)
    scan = tmp_path / "machine.ply"
    mesh.export(scan)
    out, report = tmp_path / "m.glb", tmp_path / "m.json"
    assert main(["prepare", str(scan), "--out", str(out), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["floor_found"]
    assert data["floor_faces_removed"] == facts["floor_faces"]
    assert data["components_removed"] == 5
    result = _glb(out)
    assert len(result.faces) == facts["box_faces"]
    assert result.extents == pytest.approx([2.0, 1.5, 1.0], abs=1e-4)
    # no red debris, no grey floor: only the blue box's colour is left
    assert np.unique(result.visual.vertex_colors[:, :3], axis=0).tolist() == [[40, 80, 200]]


def test_z_up_stl_is_levelled_by_its_floor_and_faces_the_chosen_axis(tmp_path: Path) -> None:
    mesh, _ = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=0)
    # a Z-up export (as CAD tools write STL)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    scan = tmp_path / "machine.stl"
    mesh.export(scan)
    out = tmp_path / "m.glb"
    # the box's 2 m side is along the scan's x axis: calling +x the front puts it along Z
    assert main(["prepare", str(scan), "--out", str(out), "--front", "+x"]) == 0
    assert _glb(out).extents == pytest.approx([1.0, 1.5, 2.0], abs=1e-4)
    assert main(["prepare", str(scan), "--out", str(out)]) == 0  # default front for Z-up: -y
    assert _glb(out).extents == pytest.approx([2.0, 1.5, 1.0], abs=1e-4)
    # the same Z-up scan as PLY (conventionally Y-up): the floor is not taken on a guess, the
    # report says which --up would take it, and with it the result is the same
    ply = tmp_path / "machine.ply"
    mesh.export(ply)
    _, report = prepare(ply, PrepareOptions())
    assert not report.floor_found
    assert any("--up +z" in w for w in report.warnings)
    assert main(["prepare", str(ply), "--out", str(out), "--up", "+z", "--front", "-y"]) == 0
    assert _glb(out).extents == pytest.approx([2.0, 1.5, 1.0], abs=1e-4)


def test_unit_and_implausible_size_warning(tmp_path: Path) -> None:
    mesh, _ = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=0)
    mesh.apply_scale(1000.0)  # millimetres
    scan = tmp_path / "mm.ply"
    mesh.export(scan)
    out = tmp_path / "m.glb"
    _, report = prepare(scan, PrepareOptions())
    assert any("implausible" in w for w in report.warnings)
    assert main(["prepare", str(scan), "--out", str(out), "--unit", "mm"]) == 0
    assert _glb(out).extents == pytest.approx([2.0, 1.5, 1.0], abs=1e-4)


def test_point_cloud_is_reconstructed(tmp_path: Path) -> None:
    cloud = sphere_cloud(radius_m=0.5, points=6000, outliers=100)
    scan = tmp_path / "sphere.ply"
    cloud.export(scan)
    out, report = tmp_path / "s.glb", tmp_path / "s.json"
    assert (
        main(["prepare", str(scan), "--out", str(out), "--triangles", "2000", "--report", str(report)]) == 0
    )
    data = json.loads(report.read_text())
    assert data["kind"] == "point_cloud" and data["points_in"] == len(cloud.vertices)
    assert data["noise_points_removed"] >= 50  # most of the floating outliers
    result = _glb(out)
    assert 1000 < len(result.faces) <= 2000
    centre = np.array([0.0, 0.5, 0.0])
    radius = np.linalg.norm(result.vertices - centre, axis=1)
    assert np.median(radius) == pytest.approx(0.5, rel=0.03)
    assert radius.max() < 0.6, "no blob grown from outliers"
    assert len(np.unique(result.visual.vertex_colors[:, :3], axis=0)) > 20


def test_degenerate_and_duplicate_faces_are_counted_and_removed(tmp_path: Path) -> None:
    mesh, degenerate, duplicates = with_bad_faces(degenerate=7, duplicates=11)
    scan = tmp_path / "bad.ply"
    mesh.export(scan)
    _, report = prepare(scan, PrepareOptions(triangles=100_000))
    assert report.degenerate_faces == degenerate
    assert report.duplicate_faces == duplicates
    assert report.triangles_after == len(mesh.faces) - degenerate - duplicates
    assert report.watertight_after


def test_textured_mesh_keeps_uvs_and_image(tmp_path: Path) -> None:
    scan = textured_box(tmp_path, subdivisions=4)
    out = tmp_path / "t.glb"
    assert main(["prepare", str(scan), "--out", str(out), "--triangles", "800"]) == 0
    result = _glb(out)
    assert len(result.faces) <= 800
    assert isinstance(result.visual, trimesh.visual.TextureVisuals)
    assert result.visual.uv is not None and len(result.visual.uv) == len(result.vertices)
    image = result.visual.material.baseColorTexture
    assert image is not None and image.size == (64, 64)
    # UV u = x + 0.5 on the input: averaging along collapses keeps that relation roughly
    assert np.corrcoef(result.visual.uv[:, 0], result.vertices[:, 0])[0, 1] > 0.95


def test_vertex_groups_follow_collapse_chains() -> None:
    # 4 <- 3, then 3's root 4 <- ... : 1 collapsed into 0, then 0 into 2
    collapses = np.array([[0, 1], [2, 0], [4, 3]])
    assert vertex_groups(5, collapses).tolist() == [2, 2, 2, 4, 4]


def test_decimate_carries_vertex_colours() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4)
    colours = np.where(sphere.vertices[:, :1] > 0, [[255, 0, 0, 255]], [[0, 0, 255, 255]]).astype(np.uint8)
    sphere.visual = trimesh.visual.ColorVisuals(sphere, vertex_colors=colours)
    small, info = decimate(sphere, 500, "vertex_colors")
    assert len(small.faces) <= 500 and info.method in ("fast-simplification", "open3d-quadric")
    red = small.visual.vertex_colors[:, 0].astype(float)
    # vertices well inside either half keep that half's colour
    assert red[small.vertices[:, 0] > 0.3].min() > 200
    assert red[small.vertices[:, 0] < -0.3].max() < 55


def test_floor_connected_to_the_machine_and_tilted_scan(tmp_path: Path) -> None:
    mesh = machine_welded_to_floor()
    assert component_labels(mesh.faces, len(mesh.vertices))[0] == 1, "floor and machine are one surface"
    # the phone was held crooked: the whole scan is tilted 8 degrees about x
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.radians(8.0), [1, 0, 0]))
    scan = tmp_path / "welded.ply"
    mesh.export(scan)
    _, report = prepare(scan, PrepareOptions())
    assert report.floor_found and report.floor_faces_removed > 1000
    assert report.size_m == pytest.approx([2.0, 1.5, 1.0], abs=0.02)  # levelled again, floor gone
    assert report.bbox_min_m[1] == pytest.approx(0.0, abs=0.02)  # standing on y = 0


def test_floating_noise_component_is_removed(tmp_path: Path) -> None:
    # a scan artefact: one connected strip of long triangles between scattered points, with
    # enough area not to count as small debris, but every vertex far from any other
    mesh, _ = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=0)
    rng = np.random.default_rng(3)
    points = rng.uniform([-1.0, 3.0, -1.0], [1.0, 4.5, 1.0], size=(40, 3))
    strip = np.array([[i, i + 1, i + 2] for i in range(38)])
    noise = trimesh.Trimesh(points, strip, process=False)
    noise.visual = trimesh.visual.ColorVisuals(noise, face_colors=np.tile([0, 255, 0, 255], (len(strip), 1)))
    assert 0.005 * (mesh.area + noise.area) < noise.area < 0.5 * mesh.area, "neither debris nor the main part"
    scan = tmp_path / "noisy.ply"
    trimesh.util.concatenate([mesh, noise]).export(scan)
    _, report = prepare(scan, PrepareOptions())
    assert report.noise_components_removed == 1
    assert report.size_m == pytest.approx([2.0, 1.5, 1.0], abs=1e-4)


@pytest.mark.parametrize("suffix", [".glb", ".gltf"])
def test_gltf_inputs_apply_node_transforms(tmp_path: Path, suffix: str) -> None:
    # the scan sits under a node turned 90 degrees about the vertical: its 2 m side runs along z
    mesh, facts = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=0)
    scene = trimesh.Scene()
    turn = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    turn[:3, 3] = [5.0, 0.0, -2.0]
    scene.add_geometry(mesh, node_name="scan", transform=turn)
    scan = tmp_path / f"scan{suffix}"
    if suffix == ".glb":
        scan.write_bytes(scene.export(file_type="glb"))
    else:
        for name, data in scene.export(file_type="gltf").items():
            (tmp_path / name).write_bytes(data)
        (tmp_path / "model.gltf").rename(scan)
    out = tmp_path / "m.glb"
    assert main(["prepare", str(scan), "--out", str(out)]) == 0
    result = _glb(out)
    assert len(result.faces) == facts["box_faces"]
    assert result.extents == pytest.approx([1.0, 1.5, 2.0], abs=1e-4)
