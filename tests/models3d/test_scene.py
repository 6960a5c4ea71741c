"""``scene``: floor, markings, zones and machines at the right places, findable by node name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from m3d_helpers import ROOT, run_cli

from models3d.__main__ import main
from models3d.scene import (
    _size_mismatch,
    machine_transform,
    polyline_strip,
    site_to_scene,
    triangulate_polygon,
)
from twin_server.site import load_site

PILOT = ROOT / "examples" / "pilot_site.yaml"


def _gltf_json(path: Path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF" and struct.unpack("<I", data[4:8])[0] == 2  # glTF 2.0 binary
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20 : 20 + length])


def _nodes(scene: trimesh.Scene) -> dict[str, tuple[np.ndarray, trimesh.Trimesh]]:
    out = {}
    for node in scene.graph.nodes_geometry:
        transform, geom = scene.graph[node]
        out[node] = (transform, scene.geometry[geom])
    return out


def test_pilot_scene_has_one_node_per_feature_in_place(tmp_path: Path) -> None:
    out = tmp_path / "factory.glb"
    result = run_cli("scene", "--site", str(PILOT), "--out", str(out))
    assert result.returncode == 0, result.stderr
    site = load_site(PILOT)
    nodes = _nodes(trimesh.load(out, file_type="glb"))
    expected = {"floor"} | {f"marking:{i}" for i in range(len(site.floor_markings))}
    expected |= {f"zone:{m.id}" for m in site.machines} | {f"machine:{m.id}" for m in site.machines}
    assert set(nodes) == expected

    xmin, ymin, xmax, ymax = site.floor_size()
    _, floor = nodes["floor"]
    assert floor.bounds[1][1] == pytest.approx(0.0, abs=1e-9)  # floor top at y = 0
    assert floor.bounds[0][[0, 2]] == pytest.approx([xmin, -ymax])
    assert floor.bounds[1][[0, 2]] == pytest.approx([xmax, -ymin])

    for m in site.machines:
        transform, box = nodes[f"machine:{m.id}"]
        world = trimesh.transform_points(box.vertices, transform)
        lo, hi = world.min(axis=0), world.max(axis=0)
        cx, cy = m.centre
        assert (lo + hi)[[0, 2]] / 2 == pytest.approx([cx, -cy])
        assert hi[1] == pytest.approx(m.height_m) and lo[1] == pytest.approx(0.0)
        assert (hi - lo)[[0, 2]] == pytest.approx(list(m.footprint))  # rotation 0: width along x
        _, zone = nodes[f"zone:{m.id}"]
        zx = [p[0] for p in m.zone]
        zy = [p[1] for p in m.zone]
        assert zone.bounds[0][[0, 2]] == pytest.approx([min(zx), -max(zy)])
        assert zone.bounds[1][[0, 2]] == pytest.approx([max(zx), -min(zy)])
        assert zone.area == pytest.approx((max(zx) - min(zx)) * (max(zy) - min(zy)))

    for i, mk in enumerate(site.floor_markings):
        _, geom = nodes[f"marking:{i}"]
        xs = [p[0] for p in mk.points]
        ys = [p[1] for p in mk.points]
        pad = mk.width_m / 2 if mk.kind == "line" else 0.0
        assert geom.bounds[0][[0, 2]] == pytest.approx([min(xs) - pad, -max(ys) - pad])
        assert geom.bounds[1][[0, 2]] == pytest.approx([max(xs) + pad, -min(ys) + pad])
        assert 0.0 < geom.bounds[0][1] < 0.01  # just above the floor

    tree = _gltf_json(out)
    by_name = {n["name"]: n for n in tree["nodes"] if "name" in n}
    assert by_name["machine:M3"]["extras"]["machine_id"] == "M3"
    assert by_name["machine:M3"]["extras"]["placeholder"] is True
    assert by_name["zone:M7"]["extras"]["machine_id"] == "M7"
    assert tree["scenes"][0]["extras"]["mapping"] == "site (x, y) -> scene (x, 0, -y)"
    marking_colours = {tuple(m["pbrMetallicRoughness"]["baseColorFactor"][:3]) for m in tree["materials"]}
    assert (1.0, 1.0, 1.0) in marking_colours  # the white lines


def test_machine_model_is_placed_rotated_and_missing_ones_are_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a "prepared" model: front +Z, footprint centred at the origin, on the floor; its front
    # half is marked by a wedge so the direction it faces can be checked
    body = trimesh.creation.box(extents=[2.0, 1.0, 1.0])
    body.apply_translation([0.0, 0.5, 0.0])
    nose = trimesh.creation.box(extents=[0.2, 0.2, 0.4])
    nose.apply_translation([0.0, 0.5, 0.7])
    model = trimesh.util.concatenate([body, nose])
    (tmp_path / "models").mkdir()
    model.export(tmp_path / "models" / "m1.glb")
    site = {
        "site": "t",
        "machines": [
            {
                "id": "A",
                "position": [5.0, 4.0],
                "rotation_deg": 90,
                "model": "models/m1.glb",
                "zone": [[3, 1], [7, 1], [7, 3], [3, 3]],
            },
            {
                "id": "B",
                "position": [10.0, 4.0],
                "model": "models/missing.glb",
                "footprint": [1.0, 0.5],
                "height_m": 2.2,
                "zone": [[9, 1], [11, 1], [11, 3], [9, 3]],
            },
        ],
        "floor_markings": [{"kind": "line", "points": [[0, 0], [5, 0], [5, 5]], "width_m": 0.1}],
    }
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(site))
    out = tmp_path / "f.glb"
    assert main(["scene", "--site", str(site_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "B: model models/missing.glb" in printed and "drawn as a box" in printed
    nodes = _nodes(trimesh.load(out, file_type="glb"))
    transform, geom = nodes["machine:A"]
    assert len(geom.faces) == len(model.faces)
    world = trimesh.transform_points(geom.vertices, transform)
    # rotation 90 (CCW on the plan): the front turns from site +y to site -x, i.e. scene -X;
    # the 2 m side now runs along site y (scene z)
    span = world.max(axis=0) - world.min(axis=0)
    assert span[[0, 2]] == pytest.approx([1.0 + 0.4, 2.0], abs=1e-6)
    nose_tip = trimesh.transform_points([[0.0, 0.5, 0.9]], transform)[0]
    assert nose_tip == pytest.approx([5.0 - 0.9, 0.5, -4.0])
    # the missing model: a labelled box of the configured footprint and height
    transform, box = nodes["machine:B"]
    world = trimesh.transform_points(box.vertices, transform)
    assert (world.max(axis=0) - world.min(axis=0)) == pytest.approx([1.0, 2.2, 0.5])
    tree = _gltf_json(out)
    b = next(n for n in tree["nodes"] if n.get("name") == "machine:B")
    assert b["extras"]["placeholder"] is True and b["extras"]["machine_id"] == "B"


def test_geometry_helpers() -> None:
    assert site_to_scene(2.0, 3.0).tolist() == [2.0, 0.0, -3.0]
    # rotation 0: model front (+Z) faces site +y = scene -Z
    t = machine_transform((1.0, 2.0), 0.0)
    assert trimesh.transform_points([[0, 0, 1]], t)[0] == pytest.approx([1.0, 0.0, -3.0])
    # an L-shaped (concave) polygon triangulates to its exact area
    poly = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
    faces = triangulate_polygon(poly)
    pts = np.array(poly, dtype=float)
    tri = np.pad(pts[faces], ((0, 0), (0, 0), (0, 1)))  # as 3D points in the z = 0 plane
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    assert len(faces) == 4 and area == pytest.approx(3.0)
    strip = polyline_strip([(0, 0), (4, 0)], 0.1, 0.0)
    assert strip.area == pytest.approx(4.1 * 0.1)
    assert (strip.face_normals[:, 1] > 0.99).all()  # faces up: visible from above
    # a model left in millimetres is flagged, one of about the configured size is not
    assert _size_mismatch("M3", np.array([2400.0, 1800.0, 1600.0]), (2.4, 1.6), 1.8)
    assert not _size_mismatch("M3", np.array([2.3, 1.7, 1.5]), (2.4, 1.6), 1.8)


def test_prepared_scan_placed_in_the_scene_end_to_end(tmp_path: Path) -> None:
    # a scan that is Z-up and in millimetres, prepared with the real CLI, then placed by the site
    from m3d_meshes import machine_on_floor

    mesh, _ = machine_on_floor(box_m=(2.0, 1.5, 1.0), debris=3)
    mesh.apply_scale(1000.0)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    (tmp_path / "scans").mkdir()
    mesh.export(tmp_path / "scans" / "m3.ply")
    (tmp_path / "models").mkdir()
    result = run_cli(
        "prepare", str(tmp_path / "scans" / "m3.ply"), "--out", str(tmp_path / "models" / "M3.glb"),
        "--unit", "mm", "--up", "+z", "--front", "-y",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    site = yaml.safe_load(PILOT.read_text())
    site["machines"][0]["model"] = "models/M3.glb"
    site["machines"][0]["rotation_deg"] = 180
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site, allow_unicode=True))
    out = tmp_path / "factory.glb"
    assert main(["scene", "--site", str(tmp_path / "site.yaml"), "--out", str(out)]) == 0
    nodes = _nodes(trimesh.load(out, file_type="glb"))
    transform, geom = nodes["machine:M3"]
    world = trimesh.transform_points(geom.vertices, transform)
    lo, hi = world.min(axis=0), world.max(axis=0)
    assert lo[1] == pytest.approx(0.0, abs=1e-3) and hi[1] == pytest.approx(1.5, abs=1e-3)
    assert (lo + hi)[[0, 2]] / 2 == pytest.approx([3.0, -6.5], abs=1e-3)  # M3 at (3.0, 6.5)
    assert (hi - lo)[[0, 2]] == pytest.approx([2.0, 1.0], abs=1e-3)
    assert "machine:M7" in nodes and "machine:M10" in nodes  # still placeholders
