"""USD / USDZ scans (iPhone Object Capture, Reality Composer, Polycam) through Pixar's usd-core.

usd-core (``pxr``) is Pixar's maintained Python build of OpenUSD. It is optional: without it a
USD file is refused with a message that says what to install. Every ``UsdGeom.Mesh`` of the
default time is read with its world transform, polygons are fan-triangulated, ``metersPerUnit``
is applied (the result is in metres) and ``upAxis`` is returned as the up hint. Colour comes
from the bound UsdPreviewSurface's diffuse texture (with the ``st`` primvar) when there is one
mesh with a texture, else from ``displayColor``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import trimesh

from models3d.errors import ScanError

__all__ = ["load_usd"]

INSTALL_HINT = "pip install 'usd-core>=24.8,<27'"


def _triangulate(counts: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons; returns (triangles as indices into ``indices``' positions,
    i.e. face-vertex corners, shape (n, 3)) and the polygon each triangle came from."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tris = []
    owner = []
    for k in range(3, int(counts.max(initial=0)) + 1):
        poly = np.flatnonzero(counts == k)
        if len(poly) == 0:
            continue
        base = starts[poly]
        for j in range(1, k - 1):
            tris.append(np.column_stack([base, base + j, base + j + 1]))
            owner.append(poly)
    if not tris:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.vstack(tris), np.concatenate(owner)


def _texture_image(path: Path, shader_file: str) -> object | None:
    """The texture image named by a UsdUVTexture, from the usdz package or next to the file."""
    from PIL import Image

    name = shader_file.split("[")[-1].rstrip("]") if "[" in shader_file else shader_file
    if path.suffix.lower() == ".usdz":
        with zipfile.ZipFile(path) as z:
            members = {m.lstrip("./"): m for m in z.namelist()}
            key = name.lstrip("./")
            if key not in members:
                return None
            return Image.open(io.BytesIO(z.read(members[key]))).convert("RGB")
    candidate = (path.parent / name).resolve()
    return Image.open(candidate).convert("RGB") if candidate.is_file() else None


def _diffuse_file(prim: object) -> str | None:
    from pxr import UsdShade

    material = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()[0]
    if not material:
        return None
    surface = material.ComputeSurfaceSource()[0]
    if not surface:
        return None
    diffuse = surface.GetInput("diffuseColor")
    if not diffuse:
        return None
    for source in diffuse.GetConnectedSources()[0]:
        shader = UsdShade.Shader(source.source.GetPrim())
        file_input = shader.GetInput("file")
        if file_input:
            asset = file_input.Get()
            if asset is not None:
                return str(asset.path)
    return None


def load_usd(path: Path) -> tuple[trimesh.Trimesh, str, list[str]]:
    """Read all meshes of a USD/USDZ stage; returns (mesh in metres, up axis "+y"/"+z", warnings).

    Raises
    ------
    ScanError
        usd-core missing, unreadable stage, or no mesh in it.
    """
    try:
        from pxr import Usd, UsdGeom
    except ImportError:
        raise ScanError(f"{path.name}: reading USD/USDZ needs usd-core ({INSTALL_HINT})") from None
    try:
        stage = Usd.Stage.Open(str(path))
    except Exception as exc:  # pxr raises Tf.ErrorException with a multi-line message
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[0][:160] if lines else "not a valid USD/USDZ file"
        raise ScanError(f"{path.name}: cannot read as USD: {detail}") from None
    if stage is None:
        raise ScanError(f"{path.name}: cannot read as USD: not a valid USD/USDZ file")
    metres = float(UsdGeom.GetStageMetersPerUnit(stage)) or 1.0
    up = "+z" if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z else "+y"
    cache = UsdGeom.XformCache()
    parts: list[trimesh.Trimesh] = []
    warnings: list[str] = []
    for prim in stage.Traverse():
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        points = np.asarray(mesh.GetPointsAttr().Get() or [], dtype=np.float64)
        counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], dtype=np.int64)
        indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get() or [], dtype=np.int64)
        if len(points) == 0 or len(counts) == 0:
            continue
        if counts.sum() != len(indices) or indices.max() >= len(points):
            warnings.append(f"mesh {prim.GetPath()} has inconsistent face indices: skipped")
            continue
        world = np.array(cache.GetLocalToWorldTransform(prim), dtype=np.float64).T  # USD is row-vector
        corners, owner = _triangulate(counts, indices)
        primvars = UsdGeom.PrimvarsAPI(prim)
        st = primvars.GetPrimvar("st")
        texture_file = _diffuse_file(prim)
        if st and st.Get() is not None and texture_file:
            uv = np.asarray(st.ComputeFlattened(), dtype=np.float64)
            interp = st.GetInterpolation()
            # one output vertex per face corner keeps face-varying UVs exact; merged later
            if interp == UsdGeom.Tokens.faceVarying and len(uv) == len(indices):
                vertices, faces, uv_out = points[indices], corners, uv
            elif interp == UsdGeom.Tokens.vertex and len(uv) == len(points):
                vertices, faces, uv_out = points, indices[corners], uv
            else:
                vertices, faces, uv_out = points, indices[corners], None
            image = _texture_image(path, texture_file) if uv_out is not None else None
            part = trimesh.Trimesh(vertices, faces, process=False)
            if image is not None:
                part.visual = trimesh.visual.TextureVisuals(
                    uv=uv_out, material=trimesh.visual.material.SimpleMaterial(image=image)
                )
            else:
                warnings.append(
                    f"texture {texture_file!r} of {prim.GetPath()} not found: exported without it"
                )
        else:
            part = trimesh.Trimesh(points, indices[corners], process=False)
            colour = primvars.GetPrimvar("displayColor")
            values = (
                np.asarray(colour.ComputeFlattened(), dtype=np.float64) if colour and colour.Get() else None
            )
            if values is not None and len(values):
                rgb = np.clip(values * 255, 0, 255).astype(np.uint8)
                if len(rgb) == len(points):
                    part.visual = trimesh.visual.ColorVisuals(part, vertex_colors=rgb)
                elif len(rgb) == len(counts):
                    part.visual = trimesh.visual.ColorVisuals(part, face_colors=rgb[owner])
                else:
                    part.visual = trimesh.visual.ColorVisuals(
                        part, face_colors=np.tile(rgb[0], (len(owner), 1))
                    )
        part.apply_transform(world)
        parts.append(part)
    if not parts:
        raise ScanError(f"{path.name}: the USD stage holds no mesh")
    if len(parts) > 1 and any(isinstance(p.visual, trimesh.visual.TextureVisuals) for p in parts):
        # several textured parts would need a texture atlas: keep colours only
        parts = [p if not isinstance(p.visual, trimesh.visual.TextureVisuals) else _baked(p) for p in parts]
        warnings.append("several textured meshes: textures baked to vertex colours")
    combined = parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)
    if metres != 1.0:
        combined.apply_scale(metres)
    return combined, up, warnings


def _baked(part: trimesh.Trimesh) -> trimesh.Trimesh:
    part.visual = part.visual.to_color()
    return part
