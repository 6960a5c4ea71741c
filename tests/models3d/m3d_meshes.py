"""Meshes made in code for the models3d tests and benchmark: a machine on a floor with debris,
a noisy point cloud of a sphere, a textured box, faces that are degenerate or duplicated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh


def grid_plane(size_m: float, cells: int, height_m: float = 0.0) -> trimesh.Trimesh:
    """A flat square floor in the XZ plane, centred at the origin, ``cells`` x ``cells`` quads."""
    ticks = np.linspace(-size_m / 2, size_m / 2, cells + 1)
    xx, zz = np.meshgrid(ticks, ticks, indexing="ij")
    vertices = np.column_stack([xx.ravel(), np.full(xx.size, height_m), zz.ravel()])
    idx = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    # winding so normals point +Y
    faces = np.vstack([np.column_stack([a, d, c]), np.column_stack([a, c, b])])
    return trimesh.Trimesh(vertices, faces, process=False)


def machine_on_floor(
    box_m: tuple[float, float, float] = (2.0, 1.5, 1.0),
    floor_m: float = 6.0,
    debris: int = 5,
    subdivisions: int = 3,
    seed: int = 0,
) -> tuple[trimesh.Trimesh, dict[str, object]]:
    """A box "machine" (x, y, z extents, Y up, bottom at y = 0) on a floor with floating debris.

    The box has no bottom (a scan never sees it) and touches the floor; debris are tiny
    tetrahedra floating around it. Returns the mesh (face colours: grey floor, blue box, red
    debris) and the facts a test checks against.
    """
    rng = np.random.default_rng(seed)
    box = trimesh.creation.box(extents=box_m)
    box.apply_translation([0.0, box_m[1] / 2, 0.0])
    for _ in range(subdivisions):
        box = box.subdivide()
    bottom = (box.vertices[box.faces][:, :, 1] < 1e-9).all(axis=1)
    box.update_faces(~bottom)
    box.remove_unreferenced_vertices()
    floor = grid_plane(floor_m, 40)
    parts = [floor, box]
    for _ in range(debris):
        tet = trimesh.creation.icosphere(subdivisions=0, radius=0.02)
        tet.apply_translation(rng.uniform([-2.5, 0.3, -2.5], [2.5, 2.5, 2.5]))
        parts.append(tet)
    colours = [[128, 128, 128, 255], [40, 80, 200, 255]] + [[220, 30, 30, 255]] * debris
    for part, colour in zip(parts, colours, strict=True):
        part.visual = trimesh.visual.ColorVisuals(part, face_colors=np.tile(colour, (len(part.faces), 1)))
    mesh = trimesh.util.concatenate(parts)
    return mesh, {
        "box_m": box_m,
        "debris": debris,
        "floor_faces": len(floor.faces),
        "box_faces": len(box.faces),
    }


def sphere_cloud(
    radius_m: float = 0.5, points: int = 30_000, noise_m: float = 0.003, outliers: int = 200, seed: int = 0
) -> trimesh.PointCloud:
    """Points on a sphere centred at (0, radius, 0), coloured by height, plus floating outliers."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(points, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    centre = np.array([0.0, radius_m, 0.0])
    pts = d * (radius_m + rng.normal(scale=noise_m, size=(points, 1))) + centre
    far = rng.uniform(-3 * radius_m, 3 * radius_m, size=(outliers, 3)) + centre
    far = far[np.linalg.norm(far - centre, axis=1) > 1.5 * radius_m]
    allp = np.vstack([pts, far])
    red = np.clip(allp[:, 1] / (2 * radius_m) * 255, 0, 255).astype(np.uint8)
    colours = np.column_stack(
        [red, np.full(len(allp), 60, np.uint8), 255 - red, np.full(len(allp), 255, np.uint8)]
    )
    return trimesh.PointCloud(allp, colors=colours)


def textured_box(folder: Path, subdivisions: int = 4) -> Path:
    """A closed box with UVs and a PNG texture, written as OBJ + MTL + PNG; returns the OBJ."""
    from PIL import Image

    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    box.apply_translation([0.0, 0.5, 0.0])
    for _ in range(subdivisions):
        box = box.subdivide()
    # planar UVs from x/z plus a band from y: enough to prove UVs survive
    uv = np.column_stack([box.vertices[:, 0] + 0.5, (box.vertices[:, 1] + box.vertices[:, 2] + 0.5) / 2])
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:, :32] = [230, 40, 40]
    pixels[:, 32:] = [40, 40, 230]
    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(pixels))
    box.visual = trimesh.visual.TextureVisuals(uv=np.clip(uv, 0, 1), material=material)
    obj = folder / "textured_box.obj"
    box.export(obj)
    return obj


def with_bad_faces(degenerate: int = 7, duplicates: int = 11) -> tuple[trimesh.Trimesh, int, int]:
    """An icosphere with extra zero-area faces and exact duplicate faces appended."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    faces = sphere.faces
    n = len(sphere.vertices)
    # zero area: repeated vertex; and collinear: three vertices on one line appended below
    repeated = np.column_stack([np.arange(degenerate), np.arange(degenerate), np.arange(degenerate) + 1])
    dup = faces[:duplicates]
    vertices = sphere.vertices
    all_faces = np.vstack([faces, repeated, dup])
    mesh = trimesh.Trimesh(vertices, all_faces, process=False)
    assert len(mesh.vertices) == n
    return mesh, degenerate, duplicates


def usdz_machine(folder: Path, extents_cm: tuple[float, float, float] = (200.0, 150.0, 100.0)) -> Path:
    """A textured box "machine" in a Z-up, centimetre USD stage, packaged as USDZ (needs usd-core)."""
    from PIL import Image
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils

    box = trimesh.creation.box(extents=extents_cm)
    box.apply_translation([0.0, 0.0, extents_cm[2] / 2])
    stage = Usd.Stage.CreateNew(str(folder / "machine.usda"))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    root = UsdGeom.Xform.Define(stage, "/root")
    stage.SetDefaultPrim(root.GetPrim())
    mesh = UsdGeom.Mesh.Define(stage, "/root/machine")
    mesh.CreatePointsAttr([Gf.Vec3f(*map(float, v)) for v in box.vertices])
    mesh.CreateFaceVertexCountsAttr([3] * len(box.faces))
    mesh.CreateFaceVertexIndicesAttr([int(i) for i in box.faces.ravel()])
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar(
        "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.faceVarying
    )
    corners = box.vertices[box.faces.ravel()]
    st.Set([Gf.Vec2f(float(x / extents_cm[0] + 0.5), float(z / extents_cm[2])) for x, _, z in corners])
    Image.fromarray(np.full((8, 8, 3), [200, 30, 30], np.uint8)).save(folder / "paint.png")
    material = UsdShade.Material.Define(stage, "/root/paint")
    surface = UsdShade.Shader.Define(stage, "/root/paint/surface")
    surface.CreateIdAttr("UsdPreviewSurface")
    texture = UsdShade.Shader.Define(stage, "/root/paint/texture")
    texture.CreateIdAttr("UsdUVTexture")
    texture.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("paint.png")
    texture.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(
        texture.ConnectableAPI(), "rgb"
    )
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()
    out = folder / "machine.usdz"
    assert UsdUtils.CreateNewUsdzPackage(Sdf.AssetPath(str(folder / "machine.usda")), str(out))
    return out


def machine_welded_to_floor(noise_m: float = 0.003, seed: int = 1) -> trimesh.Trimesh:
    """A 2 x 1.5 x 1 m box standing in a 6 m floor as ONE connected surface (as a phone scan
    gives it: the floor runs into the machine's sides), the floor a little bumpy."""
    rng = np.random.default_rng(seed)
    floor = grid_plane(6.0, 24)  # 0.25 m cells: the box's corners fall on grid vertices
    centres = floor.triangles_center
    inside = (np.abs(centres[:, 0]) < 1.0) & (np.abs(centres[:, 2]) < 0.5)
    floor.update_faces(~inside)
    floor.remove_unreferenced_vertices()
    floor.vertices[:, 1] += rng.normal(scale=noise_m, size=len(floor.vertices))
    box = trimesh.creation.box(extents=(2.0, 1.5, 1.0))
    box.apply_translation([0.0, 0.75, 0.0])
    for _ in range(3):
        box = box.subdivide()
    bottom = (box.vertices[box.faces][:, :, 1] < 1e-9).all(axis=1)
    box.update_faces(~bottom)
    box.remove_unreferenced_vertices()
    mesh = trimesh.util.concatenate([floor, box])
    # weld the box's bottom corners to the floor vertices at the same place
    mesh.merge_vertices(digits_vertex=2)
    return mesh
